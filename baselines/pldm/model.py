"""The PLDM world model: a CNN encoder to one latent per frame, a recurrent action-conditioned
predictor, and an inverse-dynamics head used only as a training signal.

=================  ==============================================================================
encoder            pixels -> strided convolutions (kernel 4, stride 2, GroupNorm, ReLU), each
                   halving the frame -> flatten -> linear -> latent [D]
predictor          one step: z' = z + MLP([z, action block]); rolled out recurrently from one
                   latent (PLDM is Markovian: history 1)
inverse dynamics   MLP([z_t, z_t+1]) -> the action block taken between them
=================  ==============================================================================

GroupNorm rather than BatchNorm: no running statistics, so the exported eval-mode model computes
exactly what training saw. ``encode``, ``rollout`` and ``meta`` are the wmbench world-model protocol
(``wmbench/world_model.py``) and trace with ``torch.export``; ``loss`` is the training loss that
``baselines/training.py`` minimizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.pldm.vicreg import covariance, variance
from wmbench.world_model import ModelMeta


def residual_mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.GELU(),
        nn.Linear(hidden, outputs),
    )


class PLDM(nn.Module):
    """PLDM with the sizes of a config's ``[model]`` table; ``history`` (must be 1),
    ``action_block`` (the dataset's frameskip), ``action_dim`` and the action statistics come from the data."""

    def __init__(
        self,
        *,
        image_size: int,
        history: int,
        action_block: int,
        action_dim: int,
        channels: list[int],
        latent_dim: int,
        predictor_hidden: int,
        inverse_hidden: int,
        groups: int = 8,
        action_mean: tuple[float, ...] | None = None,
        action_std: tuple[float, ...] | None = None,
        name: str = "pldm",
        env: str | None = None,
        extra: dict | None = None,
    ):
        super().__init__()
        if history != 1:
            raise ValueError(f"PLDM's predictor is Markovian (one latent in, the next out): set [data] history = 1, not {history}")
        if image_size % 2 ** len(channels):
            raise ValueError(f"image size {image_size} does not halve {len(channels)} times; use a multiple of {2 ** len(channels)}")
        self.meta = ModelMeta(
            image_size=(image_size, image_size),
            history=1,
            action_block=action_block,
            action_dim=action_dim,
            latent_shape=(latent_dim,),
            action_mean=action_mean,
            action_std=action_std,
            name=name,
            env=env,
            extra=dict(extra or {}),
        )
        layers, previous = [], 3
        for width in channels:
            layers += [nn.Conv2d(previous, width, kernel_size=4, stride=2, padding=1), nn.GroupNorm(groups, width), nn.ReLU()]
            previous = width
        side = image_size // 2 ** len(channels)
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(previous * side * side, latent_dim))
        block = action_block * action_dim
        self.predictor = residual_mlp(latent_dim + block, predictor_hidden, latent_dim)
        self.inverse_dynamics = residual_mlp(2 * latent_dim, inverse_hidden, block)

    @classmethod
    def from_config(cls, config: dict, facts: dict) -> PLDM:
        """The model of a config's ``[model]`` table; ``facts`` are the data's (image size, history,
        action block and statistics) and the exported model's name and env."""
        return cls(**facts, **config["model"])

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 pixels [B, T, 3, H, W] -> latents [B, T, D]."""
        x = pixels.flatten(0, 1).float() / 127.5 - 1  # [-1, 1]
        return self.encoder(x).unflatten(0, pixels.shape[:2])

    def step(self, latent: torch.Tensor, block: torch.Tensor) -> torch.Tensor:
        """latent [B, D] and the action block taken after its frame [B, block] -> the next latent."""
        return latent + self.predictor(torch.cat([latent, block], dim=-1))

    def unroll(self, latent: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
        """latent [B, D] of one frame and the K blocks after it [B, K, block] -> the K latents that follow."""
        predicted = []
        for k in range(blocks.shape[1]):
            latent = self.step(latent, blocks[:, k])
            predicted.append(latent)
        return torch.stack(predicted, dim=1)

    def inverse(self, latents: torch.Tensor, following: torch.Tensor) -> torch.Tensor:
        """Latents [..., D] of frames and of the frames after them -> the action blocks taken in between."""
        return self.inverse_dynamics(torch.cat([latents, following], dim=-1))

    def rollout(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """latents [B, 1, D], blocks [B, 1 + K, block] -> the K latents after the history (the last block conditions nothing)."""
        return self.unroll(latents[:, -1], actions[:, : actions.shape[1] - 1])

    def loss(self, pixels: torch.Tensor, blocks: torch.Tensor, train: dict) -> dict[str, torch.Tensor]:
        """The PLDM loss on windows of uint8 pixels [B, 1 + P, 3, H, W] and their normalized action
        blocks [B, 1 + P, block], with the term weights of the config's ``[train]`` table: the total
        under "loss", then each term."""
        z = self.encode(pixels)
        pred = self.unroll(z[:, 0], blocks[:, :-1])
        inverse = self.inverse(z[:, :-1], z[:, 1:])
        with torch.autocast(pixels.device.type, enabled=False):  # the six terms in float32, even under the loop's bf16 autocast
            z, pred, inverse = z.float(), pred.float(), inverse.float()
            terms = {
                "prediction": F.mse_loss(pred, z[:, 1:]),
                "variance": variance(z, dim=0),
                "covariance": covariance(z, dim=0),
                "time_variance": variance(z, dim=1),
                "time_covariance": covariance(z, dim=1),
                "inverse_dynamics": F.mse_loss(inverse, blocks[:, :-1].float()),
            }
        return {"loss": sum(train["weights"][name] * value for name, value in terms.items()), **terms}

    def parameter_summary(self) -> dict[str, int]:
        """Parameter counts of the encoder, the predictor, the inverse-dynamics head and the whole model."""
        counts = {part: sum(p.numel() for p in getattr(self, part).parameters()) for part in ("encoder", "predictor", "inverse_dynamics")}
        counts["total"] = sum(counts.values())
        return counts
