"""The LeWM world model: a ViT encoder to one latent per frame, and an action-conditioned transformer predictor.

=============  ==================================================================================
encoder        pixels -> patches -> ViT (CLS token, learned positions, pre-norm blocks) -> the CLS
               output -> projector MLP (Linear, BatchNorm, GELU, Linear) -> latent [D]
predictor      latents [T, D] of the history, each paired with the action block taken after its
               frame; a transformer with causal attention over time, every block's LayerNorms
               modulated (shift, scale, gate; AdaLN-zero) by an embedding of that action block;
               output t is the latent of frame t + 1
=============  ==================================================================================

``encode``, ``rollout`` and ``meta`` are the wmbench world-model protocol
(``wmbench/world_model.py``); ``predict`` is the teacher-forced step and ``loss`` the training
loss that ``baselines/training.py`` minimizes. The protocol's methods trace with ``torch.export``
(no data-dependent Python control flow).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.lewm.sigreg import sigreg
from wmbench.world_model import ModelMeta


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float = 0.0):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * heads * head_dim)
        self.out = nn.Linear(heads * head_dim, dim)

    def forward(self, x: torch.Tensor, causal: bool = False, newest_only: bool = False) -> torch.Tensor:
        """Self-attention over ``x`` [B, L, dim]; ``newest_only``: only the last token's output [B, 1, dim], which under
        a causal mask attends every token."""
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)  # 3 x [B, heads, L, dim/heads]
        if newest_only:
            q, causal = q[:, :, -1:], False
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=causal)
        return self.out(x.transpose(1, 2).flatten(2))  # [B, L, heads * head_dim] -> [B, L, dim]


def mlp(dim: int, hidden: int, dropout: float = 0.0) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout))


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"encoder width {dim} is not divisible by {heads} heads")
        self.norm1, self.attention = nn.LayerNorm(dim), Attention(dim, heads, dim // heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), mlp(dim, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PredictorBlock(nn.Module):
    """A pre-norm transformer block whose norms are shifted, scaled and gated per token by its condition (AdaLN-zero)."""

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attention = Attention(dim, heads, head_dim, dropout)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.mlp = mlp(dim, mlp_dim, dropout)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        # zero init: every block starts as the identity, so the untrained predictor passes latents through
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.modulated(x, self.modulation(condition))

    def modulated(self, x: torch.Tensor, modulation: torch.Tensor, newest_only: bool = False) -> torch.Tensor:
        """The block on tokens ``x`` [B, L, dim] with their conditions' modulation [B, L, 6 * dim] already computed;
        ``newest_only``: return only the last token's output [B, 1, dim] (the others are then only keys and values)."""
        shift1, scale1, gate1, shift2, scale2, gate2 = modulation.chunk(6, dim=-1)
        attended = self.attention(self.norm1(x) * (1 + scale1) + shift1, causal=True, newest_only=newest_only)
        if newest_only:
            x, shift2, scale2, gate1, gate2 = x[:, -1:], shift2[:, -1:], scale2[:, -1:], gate1[:, -1:], gate2[:, -1:]
        x = x + gate1 * self.drop(attended)
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class LeWM(nn.Module):
    """LeWM with the sizes of a config's ``[model]`` table; ``history``, ``action_block`` (the
    dataset's frameskip), ``action_dim`` and the action statistics come from the data."""

    def __init__(
        self,
        *,
        image_size: int,
        history: int,
        action_block: int,
        action_dim: int,
        patch_size: int,
        encoder_layers: int,
        encoder_heads: int,
        encoder_dim: int,
        projector_hidden: int,
        latent_dim: int,
        predictor_layers: int,
        predictor_heads: int,
        predictor_dim: int,
        predictor_head_dim: int,
        predictor_mlp_dim: int,
        dropout: float = 0.1,
        max_frames: int | None = None,
        action_mean: tuple[float, ...] | None = None,
        action_std: tuple[float, ...] | None = None,
        name: str = "lewm",
        env: str | None = None,
        extra: dict | None = None,
    ):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image size {image_size} is not a multiple of the patch size {patch_size}")
        self.meta = ModelMeta(
            image_size=(image_size, image_size),
            history=history,
            action_block=action_block,
            action_dim=action_dim,
            latent_shape=(latent_dim,),
            action_mean=action_mean,
            action_std=action_std,
            name=name,
            env=env,
            extra=dict(extra or {}),
        )
        patches = (image_size // patch_size) ** 2
        max_frames = max_frames or history

        # encoder: ViT on the frame, CLS token, BatchNorm projector
        self.patchify = nn.Conv2d(3, encoder_dim, kernel_size=patch_size, stride=patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, encoder_dim))
        self.patch_position = nn.Parameter(0.02 * torch.randn(1, patches + 1, encoder_dim))
        self.encoder = nn.ModuleList(EncoderBlock(encoder_dim, encoder_heads) for _ in range(encoder_layers))
        self.encoder_norm = nn.LayerNorm(encoder_dim)
        self.projector = nn.Sequential(
            nn.Linear(encoder_dim, projector_hidden), nn.BatchNorm1d(projector_hidden), nn.GELU(), nn.Linear(projector_hidden, latent_dim)
        )

        # predictor: latents in, one action-block embedding per frame as the AdaLN condition
        self.action_embedding = nn.Sequential(
            nn.Linear(action_block * action_dim, predictor_dim), nn.SiLU(), nn.Linear(predictor_dim, predictor_dim)
        )
        self.predictor_in = nn.Linear(latent_dim, predictor_dim)
        self.time_position = nn.Parameter(0.02 * torch.randn(1, max_frames, predictor_dim))
        self.predictor = nn.ModuleList(
            PredictorBlock(predictor_dim, predictor_heads, predictor_head_dim, predictor_mlp_dim, dropout) for _ in range(predictor_layers)
        )
        self.predictor_norm = nn.LayerNorm(predictor_dim)
        self.predictor_out = nn.Linear(predictor_dim, latent_dim)

    @classmethod
    def from_config(cls, config: dict, facts: dict) -> LeWM:
        """The model of a config's ``[model]`` table; ``facts`` are the data's (image size, history,
        action block and statistics) and the exported model's name and env."""
        data = config["data"]
        return cls(**facts, max_frames=data["history"] + data["predictions"] - 1, **config["model"])  # the teacher-forced window

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 pixels [B, T, 3, H, W] -> latents [B, T, D]."""
        batch, frames = pixels.shape[:2]
        x = pixels.flatten(0, 1).float() / 127.5 - 1  # [-1, 1]
        x = self.patchify(x).flatten(2).transpose(1, 2)  # [B*T, patches, dim]
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.patch_position
        for block in self.encoder:
            x = block(x)
        return self.projector(self.encoder_norm(x[:, 0])).unflatten(0, (batch, frames))

    def predict(self, latents: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
        """latents [B, T, D] and the action block after each frame [B, T, block] -> [B, T, D]: output t
        is the latent of frame t + 1, from the frames and blocks up to t only (causal attention)."""
        x = self.predictor_in(latents) + self.time_position[:, : latents.shape[1]]
        condition = self.action_embedding(blocks)
        for block in self.predictor:
            x = block(x, condition)
        return self.predictor_out(self.predictor_norm(x))

    def rollout(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """latents [B, T, D], blocks [B, T + K, block] -> the K latents after the history, predicted
        autoregressively on a sliding window of the last T latents.

        The same computation as ``predict`` on each window, without its repeats: a block's modulation in
        every layer and a latent's input projection are computed once, not once per window they are in,
        and the last layer carries only the newest token, the one prediction read (1.4x fewer FLOPs
        at history 3 and 5 steps). Positions are the window's, so a token's keys change as the window
        slides and cannot be cached."""
        frames, layers = latents.shape[1], len(self.predictor)
        condition = self.action_embedding(actions)
        modulations = [block.modulation(condition) for block in self.predictor]  # each [B, T + K, 6 * dim]
        tokens, predicted = list(self.predictor_in(latents).unbind(1)), []
        for k in range(actions.shape[1] - frames):
            # the window holds frames k .. k + T - 1; their blocks predict frame k + T
            x = torch.stack(tokens[k : k + frames], dim=1) + self.time_position[:, :frames]
            for i, block in enumerate(self.predictor):
                x = block.modulated(x, modulations[i][:, k : k + frames], newest_only=i == layers - 1)
            following = self.predictor_out(self.predictor_norm(x))
            predicted.append(following)
            tokens.append(self.predictor_in(following[:, 0]))
        return torch.cat(predicted, dim=1)

    def loss(self, pixels: torch.Tensor, blocks: torch.Tensor, train: dict) -> dict[str, torch.Tensor]:
        """The LeWM loss on windows of uint8 pixels [B, T, 3, H, W] and their normalized action blocks
        [B, T, block], with the settings of the config's ``[train]`` table: the total under "loss",
        then each term."""
        z = self.encode(pixels)
        pred = self.predict(z[:, :-1], blocks[:, :-1])
        with torch.autocast(pixels.device.type, enabled=False):  # SIGReg and the MSE in float32, even under the loop's bf16 autocast
            prediction = F.mse_loss(pred.float(), z[:, 1:].float())
            regularizer = sigreg(z.float(), train["sigreg_projections"])
        return {"loss": prediction + train["sigreg_weight"] * regularizer, "prediction": prediction, "sigreg": regularizer}

    def parameter_summary(self) -> dict[str, int]:
        """Parameter counts of the encoder (with its projector), the predictor and the whole model."""
        predictor_parts = ("action_embedding", "predictor_in", "time_position", "predictor", "predictor_norm", "predictor_out")
        counts = {"encoder": 0, "predictor": 0}
        for name, parameter in self.named_parameters():
            counts["predictor" if name.split(".")[0] in predictor_parts else "encoder"] += parameter.numel()
        counts["total"] = counts["encoder"] + counts["predictor"]
        return counts
