"""The C-JEPA world model: Slot Attention turns each frame into object slots, and a bidirectional
transformer predicts the slots of masked objects and of the next frames from the visible ones and the actions.

==============  =================================================================================
encoder         pixels -> strided convolutions (each halves the frame) + learned positions ->
                LayerNorm, MLP -> Slot Attention (learned per-slot initial values, a fixed number
                of rounds, GRU update, MLP) -> slots [S, D]
decoder         each slot broadcast on a grid with learned positions -> transposed convolutions ->
                RGB and an alpha logit per slot; the frame is the RGB blended by the alphas'
                softmax over the slots (spatial broadcast decoder); trains the encoder
predictor       tokens: every slot of every frame (its projection + the embeddings of its time
                and slot index) and one action token per frame (the embedded action block taken
                after it + its time and a type embedding); a transformer with bidirectional
                attention over all of them; the output at a slot token is that slot's latent
masking         a masked slot token, and each slot of a frame to predict, is a query: the slot's
                first-frame token (its identity anchor) + a learned mask embedding + its time and
                slot embeddings; in training a random ``mask_slots`` objects per window are masked
                over their whole trajectory after the first frame (0: OC-JEPA, no object masking)
==============  =================================================================================

Differs from the published C-JEPA in its encoder: a frozen object-centric encoder on pretrained
DINOv2 features is not available offline, so the slot encoder is trained here from pixels by the
reconstruction loss alone, alongside the predictor, which sees its slots detached (inputs and
targets) as the published predictor sees a frozen encoder's.

``encode``, ``rollout``, ``cost`` and ``meta`` are the wmbench world-model protocol
(``wmbench/world_model.py``), with latents ``[B, T, S, D]``; they trace with ``torch.export`` (no
data-dependent Python control flow). ``predict`` is the masked prediction on one window and ``loss``
the training loss that ``baselines/training.py`` minimizes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from baselines.lewm.model import EncoderBlock  # LeWM's pre-norm transformer block, with bidirectional attention
from wmbench.world_model import ModelMeta


def draw_masked_slots(batch: int, slots: int, count: int, device: torch.device | str) -> torch.Tensor:
    """``count`` slot indices drawn at random for each of ``batch`` windows, as a bool mask [B, S]."""
    return torch.rand(batch, slots, device=device).argsort(dim=1) < count  # a random permutation's first `count` places


def object_mask(masked_slots: torch.Tensor, history: int, future: int) -> torch.Tensor:
    """Where the predictor sees a query instead of a slot, [B, history + future, S]: every slot of the
    ``future`` frames, and the slots of ``masked_slots`` [B, S] in every history frame but the first (their anchor)."""
    time = torch.arange(history + future, device=masked_slots.device)[None, :, None]
    return torch.logical_or(time >= history, torch.logical_and(time >= 1, masked_slots[:, None, :]))  # | and & are not checkpoint operators


def reconstruction_error(reconstructed: torch.Tensor, target: torch.Tensor, foreground_weight: float) -> torch.Tensor:
    """The squared error of frames [N, 3, h, w], each pixel weighted by 1 + ``foreground_weight`` x its distance (0 to 1)
    from its frame's background colour, the median one: 0 is the plain MSE. A weight keeps the decoder from settling on
    the empty table when the objects cover a small part of the frame."""
    if not foreground_weight:
        return F.mse_loss(reconstructed, target)
    background = target.flatten(2).median(dim=2).values[:, :, None, None]
    weights = 1 + foreground_weight * (target - background).abs().mean(dim=1, keepdim=True) / 2  # targets lie in [-1, 1]
    return (weights * (reconstructed - target).pow(2)).sum() / (weights.sum() * target.shape[1])


class GRUUpdate(nn.Module):
    """A GRU cell from linear layers: ``aten.gru_cell`` is not an operator a wmbench checkpoint may call."""

    def __init__(self, dim: int):
        super().__init__()
        self.input_gates, self.hidden_gates = nn.Linear(dim, 3 * dim), nn.Linear(dim, 3 * dim)

    def forward(self, inputs: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        input_reset, input_update, input_new = self.input_gates(inputs).chunk(3, dim=-1)
        hidden_reset, hidden_update, hidden_new = self.hidden_gates(hidden).chunk(3, dim=-1)
        reset, update = torch.sigmoid(input_reset + hidden_reset), torch.sigmoid(input_update + hidden_update)
        return (1 - update) * torch.tanh(input_new + reset * hidden_new) + update * hidden


class SlotAttention(nn.Module):
    """Slots that compete for the input locations over ``iterations`` rounds, from learned per-slot
    initial values: no sampling, so a frame gets the same slots in training and once exported."""

    def __init__(self, slots: int, dim: int, iterations: int, hidden: int):
        super().__init__()
        self.iterations = iterations
        self.initial_slots = nn.Parameter(dim**-0.5 * torch.randn(1, slots, dim))
        self.input_norm, self.slot_norm, self.mlp_norm = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.query, self.key, self.value = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.gru = GRUUpdate(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs [N, L, dim] -> slots [N, S, dim]."""
        inputs = self.input_norm(inputs)
        keys, values = self.key(inputs), self.value(inputs)
        slots = self.initial_slots.expand(inputs.shape[0], -1, -1)
        for _ in range(self.iterations):
            logits = self.query(self.slot_norm(slots)) @ keys.transpose(1, 2) / math.sqrt(keys.shape[-1])  # [N, S, L]
            attention = logits.softmax(dim=1) + 1e-8  # the slots compete for each location
            attention = attention / attention.sum(dim=2, keepdim=True)  # each slot: the mean of what it won
            slots = self.gru(attention @ values, slots)
            slots = slots + self.mlp(self.mlp_norm(slots))
        return slots


class SlotEncoder(nn.Module):
    def __init__(self, image_size: int, channels: list[int], slots: int, slot_dim: int, iterations: int, slot_hidden: int):
        super().__init__()
        if image_size % 2 ** len(channels):
            raise ValueError(f"image size {image_size} does not halve {len(channels)} times; use a multiple of {2 ** len(channels)}")
        layers, previous = [], 3
        for width in channels:
            layers += [nn.Conv2d(previous, width, kernel_size=4, stride=2, padding=1), nn.ReLU()]
            previous = width
        self.features = nn.Sequential(*layers)
        self.position = nn.Parameter(0.02 * torch.randn(1, (image_size // 2 ** len(channels)) ** 2, previous))
        self.project = nn.Sequential(nn.LayerNorm(previous), nn.Linear(previous, slot_dim), nn.ReLU(), nn.Linear(slot_dim, slot_dim))
        self.slot_attention = SlotAttention(slots, slot_dim, iterations, slot_hidden)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames [N, 3, H, W] in [-1, 1] -> slots [N, S, D]."""
        features = self.features(frames).flatten(2).transpose(1, 2) + self.position  # [N, locations, channels]
        return self.slot_attention(self.project(features))


class SlotDecoder(nn.Module):
    def __init__(self, slot_dim: int, channels: int, grid: int, size: int):
        super().__init__()
        self.size = size  # of the frame it draws
        upsamplings = round(math.log2(size / grid))
        if grid * 2**upsamplings != size:
            raise ValueError(f"reconstruction size {size} is not the decoder grid {grid} doubled a whole number of times")
        self.position = nn.Parameter(0.02 * torch.randn(1, slot_dim, grid, grid))
        layers, previous = [], slot_dim
        for _ in range(upsamplings):
            layers += [nn.ConvTranspose2d(previous, channels, kernel_size=4, stride=2, padding=1), nn.ReLU()]
            previous = channels
        self.layers = nn.Sequential(*layers, nn.Conv2d(previous, 4, kernel_size=3, padding=1))

    def parts(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """slots [N, S, D] -> each slot's colors [N, S, 3, size, size] and its share of each pixel [N, S, 1, size, size]."""
        grids = slots.flatten(0, 1)[:, :, None, None] + self.position  # each slot broadcast on the grid: [N * S, D, grid, grid]
        colors, alphas = self.layers(grids).unflatten(0, slots.shape[:2]).split([3, 1], dim=2)
        return colors, alphas.softmax(dim=1)

    def forward(self, slots: torch.Tensor) -> torch.Tensor:
        """slots [N, S, D] -> the frame they reconstruct [N, 3, size, size]."""
        colors, shares = self.parts(slots)
        return (colors * shares).sum(dim=1)


class SlotPredictor(nn.Module):
    """C-JEPA's predictor: a bidirectional transformer over every slot of every frame and one action token per frame."""

    def __init__(self, slot_dim: int, slots: int, block_size: int, layers: int, heads: int, dim: int, max_frames: int):
        super().__init__()
        # slot tokens and action tokens, each with its time (and slot or type) embedding
        self.slot_in = nn.Linear(slot_dim, dim)
        self.action_in = nn.Sequential(nn.Linear(block_size, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_position = nn.Parameter(0.02 * torch.randn(max_frames, 1, dim))  # [W, 1, P]: on every slot
        self.slot_position = nn.Parameter(0.02 * torch.randn(slots, dim))
        self.action_type = nn.Parameter(0.02 * torch.randn(dim))
        self.mask_embedding = nn.Parameter(0.02 * torch.randn(dim))
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, slot_dim)

    def forward(self, history: torch.Tensor, blocks: torch.Tensor, masked: torch.Tensor, slot_ids: torch.Tensor | None = None) -> torch.Tensor:
        """As ``CJEPA.predict``."""
        frames, slots = masked.shape[1], history.shape[2]
        slot_position = self.slot_position if slot_ids is None else self.slot_position[slot_ids]
        observed = self.slot_in(history)  # [B, H, S, P]
        queries = observed[:, :1] + self.mask_embedding  # each slot's first frame is its identity anchor
        tokens = torch.cat([observed, queries.expand(-1, frames - history.shape[1], -1, -1)], dim=1)
        tokens = torch.where(masked[..., None], queries, tokens) + self.time_position[:frames] + slot_position
        actions = self.action_in(blocks) + self.time_position[: frames - 1, 0] + self.action_type  # [B, W - 1, P]
        x = torch.cat([tokens.flatten(1, 2), actions], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.out(self.norm(x[:, : frames * slots])).unflatten(1, (frames, slots))


class CJEPA(nn.Module):
    """C-JEPA with the sizes of a config's ``[model]`` table; ``history``, ``action_block`` (the
    dataset's frameskip), ``action_dim`` and the action statistics come from the data."""

    def __init__(
        self,
        *,
        image_size: int,
        history: int,
        action_block: int,
        action_dim: int,
        channels: list[int],
        slots: int,
        slot_dim: int,
        slot_iterations: int,
        slot_hidden: int,
        decoder_channels: int,
        decoder_grid: int,
        reconstruction_size: int,
        predictor_layers: int,
        predictor_heads: int,
        predictor_dim: int,
        max_frames: int | None = None,
        action_mean: tuple[float, ...] | None = None,
        action_std: tuple[float, ...] | None = None,
        name: str = "cjepa",
        env: str | None = None,
        extra: dict | None = None,
    ):
        super().__init__()
        self.meta = ModelMeta(
            image_size=(image_size, image_size),
            history=history,
            action_block=action_block,
            action_dim=action_dim,
            latent_shape=(slots, slot_dim),
            action_mean=action_mean,
            action_std=action_std,
            name=name,
            env=env,
            extra=dict(extra or {}),
        )
        self.encoder = SlotEncoder(image_size, channels, slots, slot_dim, slot_iterations, slot_hidden)
        self.decoder = SlotDecoder(slot_dim, decoder_channels, decoder_grid, reconstruction_size)

        self.predictor = SlotPredictor(slot_dim, slots, action_block * action_dim, predictor_layers, predictor_heads, predictor_dim,
                                       max_frames or history + 1)

    @classmethod
    def from_config(cls, config: dict, facts: dict) -> CJEPA:
        """The model of a config's ``[model]`` table; ``facts`` are the data's (image size, history,
        action block and statistics) and the exported model's name and env."""
        data = config["data"]
        return cls(**facts, max_frames=data["history"] + data["predictions"], **config["model"])  # the training window

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 pixels [B, T, 3, H, W] -> slots [B, T, S, D]."""
        frames = pixels.flatten(0, 1).float() / 127.5 - 1  # [-1, 1]
        return self.encoder(frames).unflatten(0, pixels.shape[:2])

    def predict(self, history: torch.Tensor, blocks: torch.Tensor, masked: torch.Tensor, slot_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The slots of a window of W frames, predicted at every token [B, W, S, D] (read where ``masked``),
        from the slots of its first H frames [B, H, S, D], the block after each frame but the last
        [B, W - 1, block] and where the predictor sees a query instead of a slot, [B or 1, W, S] (``object_mask``).
        ``slot_ids`` [S] says which of the model's slots ``history`` holds (default all, in order): a subset removes objects."""
        return self.predictor(history, blocks, masked, slot_ids)

    def rollout(self, latents: torch.Tensor, actions: torch.Tensor, slot_ids: torch.Tensor | None = None) -> torch.Tensor:
        """slots [B, T, S, D], blocks [B, T + K, block] -> the K frames' slots after the history [B, K, S, D],
        predicted autoregressively: each from the last T frames, their T blocks and the next frame's queries.
        ``slot_ids`` as in ``predict``: the rollout of a scene without the objects of the slots left out."""
        frames, slots = latents.shape[1], latents.shape[2]
        next_frame_only = object_mask(torch.zeros(1, slots, dtype=torch.bool, device=latents.device), frames, 1)
        window, predicted = latents, []
        for k in range(actions.shape[1] - frames):
            following = self.predict(window, actions[:, k : k + frames], next_frame_only, slot_ids)[:, -1]
            predicted.append(following)
            window = torch.cat([window[:, 1:], following[:, None]], dim=1)
        return torch.stack(predicted, dim=1)

    def cost(self, predicted: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """predicted [B, K, S, D], goal [B, S, D] -> [B]: slots have no fixed order, so each last predicted slot's
        squared distance to its nearest goal slot, plus each goal slot's to its nearest predicted slot."""
        distances = (predicted[:, -1, :, None] - goal[:, None]).pow(2).sum(-1)  # [B, predicted slot, goal slot]
        return distances.amin(dim=2).sum(dim=1) + distances.amin(dim=1).sum(dim=1)

    def loss(self, pixels: torch.Tensor, blocks: torch.Tensor, train: dict) -> dict[str, torch.Tensor]:
        """The C-JEPA loss on windows of ``history`` + P frames of uint8 pixels [B, W, 3, H, W] and their
        normalized action blocks [B, W, block], with the config's ``[train]`` ``mask_slots``, ``reconstruction_weight`` and
        optional ``foreground_weight``: the total under "loss", then each term."""
        history = self.meta.history
        with torch.no_grad():  # the encoder learns from the reconstruction only, as if frozen for the predictor
            slots = self.encode(pixels)
        batch, frames, slot_count = slots.shape[:3]
        masked = object_mask(draw_masked_slots(batch, slot_count, train["mask_slots"], pixels.device), history, frames - history)
        predicted = self.predict(slots[:, :history], blocks[:, : frames - 1], masked)
        # one random frame of each window is reconstructed: in expectation the gradient of all of them, at 1/W of the cost
        shown = pixels[torch.arange(batch, device=pixels.device), torch.randint(frames, (batch,), device=pixels.device)]
        reconstructed = self.decoder(self.encode(shown[:, None])[:, 0])
        target = F.adaptive_avg_pool2d(shown.float() / 127.5 - 1, reconstructed.shape[-1])
        with torch.autocast(pixels.device.type, enabled=False):  # the terms in float32, even under the loop's bf16 autocast
            errors = (predicted.float() - slots.float()).pow(2).mean(dim=-1)  # [B, W, S]
            masked_history = masked[:, :history].float()
            terms = {
                "future": errors[:, history:].mean(),
                "masked_history": (errors[:, :history] * masked_history).sum() / masked_history.sum().clamp(min=1),
                "reconstruction": reconstruction_error(reconstructed.float(), target, train.get("foreground_weight", 0.0)),
            }
        total = terms["future"] + terms["masked_history"] + train["reconstruction_weight"] * terms["reconstruction"]
        return {"loss": total, **terms}

    def parameter_summary(self) -> dict[str, int]:
        """Parameter counts of the slot encoder, the decoder, the predictor and the whole model."""
        encoder, decoder = (sum(p.numel() for p in part.parameters()) for part in (self.encoder, self.decoder))
        total = sum(p.numel() for p in self.parameters())
        return {"encoder": encoder, "decoder": decoder, "predictor": total - encoder - decoder, "total": total}
