"""The loaded model the harness plans with, whichever route loaded it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from wmbench.checkpoint.errors import CheckpointError
from wmbench.world_model import ModelMeta, squared_l2_to_goal


class LoadedModel:
    """A world model ready to plan with: the protocol's three calls and what the harness needs to know.

    ``encode(pixels)``: uint8 ``[B, T, 3, H, W]`` -> ``[B, T, *latent_shape]`` for any ``T >= 1``;
    ``rollout(latents, actions)``: ``[B, history, ...]``, ``[B, history + K, block]`` -> ``[B, K, ...]``
    with ``K <= horizon``; ``cost(predicted, goal)`` -> ``[B]``. Inputs are moved to ``device``;
    gradients flow to the inputs (for gradient planners), never to the weights: wrap sampling
    planners in ``torch.no_grad()``.
    """

    def __init__(
        self,
        meta: ModelMeta,
        encode: Callable,
        rollout: Callable,
        cost: Callable | None,
        *,
        source: str,
        sha256: str,
        device: torch.device,
        horizon: int | None,
        parameters_count: int | None,
        encode_frames: int | None = None,
        cost_steps: int | None = None,
        path: Path | None = None,
        module: nn.Module | None = None,
    ):
        self.meta = meta
        self.source = source  # "export": the self-contained format; "trusted-code": the author's code ran; "in-memory": a module passed in
        self.sha256 = sha256
        self.device = device
        self.horizon = horizon  # the most predictions one rollout gives; None: any
        self.parameters_count = parameters_count
        self.encode_frames = encode_frames  # the only number of frames the exported encode takes at once; None: any
        self.cost_steps = cost_steps  # the only K the exported cost takes; None: any
        self.path = path
        self.module = module  # the author's nn.Module (trusted code or in memory; what `wmbench export` re-exports)
        self.has_cost = cost is not None
        self._encode, self._rollout, self._cost = encode, rollout, cost

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, T, *latent_shape]`` of uint8 pixels ``[B, T, 3, H, W]``, for any ``T >= 1``.

        Where the export fixed the number of frames (``encode_frames``), the frames go through it in
        chunks of that many, the last chunk padded with copies of its last frame: valid because the
        protocol's encode maps each frame to its own latent.
        """
        height, width = self.meta.image_size
        if pixels.dim() != 5 or tuple(pixels.shape[2:]) != (3, height, width) or pixels.dtype != torch.uint8:
            raise ValueError(
                f"{self.meta.name}.encode takes uint8 pixels [B, T, 3, {height}, {width}]; got {pixels.dtype} {list(pixels.shape)}"
            )
        pixels = pixels.to(self.device)
        batch, frames = pixels.shape[:2]
        chunk = self.encode_frames
        if chunk is None or frames == chunk:
            return self._encode(pixels)
        padded = torch.cat([pixels, pixels[:, -1:].expand(-1, -frames % chunk, -1, -1, -1)], dim=1)
        latents = self._encode(padded.unflatten(1, (-1, chunk)).flatten(0, 1))  # the chunks side by side in one batch
        return latents.unflatten(0, (batch, -1)).flatten(1, 2)[:, :frames]

    def rollout(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        history, block = self.meta.history, self.meta.block_size
        steps = actions.shape[1] - latents.shape[1] if actions.dim() == 3 else 0
        if latents.shape[1:2] != (history,) or actions.dim() != 3 or actions.shape[2] != block or steps < 1:
            raise ValueError(
                f"{self.meta.name}.rollout takes latents [B, {history}, ...] and actions [B, {history} + K, {block}] "
                f"with K >= 1; got latents {list(latents.shape)} and actions {list(actions.shape)}"
            )
        latents, actions = latents.to(self.device), actions.to(self.device)
        if self.horizon is None or steps == self.horizon:
            return self._rollout(latents, actions)
        if steps > self.horizon:
            raise CheckpointError(
                f"{self.meta.name} was exported with a rollout horizon of {self.horizon} model steps; "
                f"{steps} were asked for: plan over at most {self.horizon} steps, or re-export with "
                f"wmbench.export(model, path, horizon={steps})"
            )
        padding = actions.new_zeros(actions.shape[0], self.horizon - steps, block)
        return self._rollout(latents, torch.cat([actions, padding], dim=1))[:, :steps]

    def cost(self, predicted: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        if self._cost is None:
            return squared_l2_to_goal(predicted, goal)
        if self.cost_steps is not None and predicted.shape[1] != self.cost_steps:
            raise CheckpointError(
                f"{self.meta.name}'s exported cost takes exactly {self.cost_steps} predictions; got {predicted.shape[1]}: "
                f"plan over {self.cost_steps} steps"
            )
        return self._cost(predicted.to(self.device), goal.to(self.device))

    def __repr__(self) -> str:
        horizon = "any" if self.horizon is None else self.horizon
        return f"LoadedModel({self.meta.name!r}, source={self.source}, horizon={horizon}, device={self.device}, sha256={self.sha256[:12]})"
