"""The world-model protocol: what any checkpoint must provide to be evaluated by wmbench.

A world model encodes frames into latents and predicts the latents that follow a sequence of
action blocks. ``T`` is the history length, ``K`` the number of predictions, and an action
block is ``action_block`` consecutive env actions concatenated (``action_block * action_dim``
numbers, already normalized by the model's ``action_mean`` / ``action_std``):

=====================================  ==========================================================
``encode(pixels)``                     uint8 ``[B, T, 3, H, W]`` -> latents ``[B, T, *latent_shape]``
``rollout(latents, actions)``          latents ``[B, T, ...]``, actions ``[B, T + K, block]`` ->
                                       predicted latents ``[B, K, ...]`` of the frames after the
                                       history. ``actions[:, t]`` is the block taken after frame
                                       ``t``: the first ``T - 1`` were executed, ``actions[:, T -
                                       1 : T + K - 1]`` are the ones being planned, and the last
                                       (after the last predicted frame) only conditions models
                                       that attach an action to every frame; wmbench passes zeros
``cost(predicted, goal)`` (optional)   ``[B, K, ...]``, goal latent ``[B, ...]`` -> ``[B]``; the
                                       default is the squared L2 distance of the last prediction
``meta``                               a :class:`ModelMeta`
=====================================  ==========================================================

This is the shape of the training windows ``wmbench.data.WindowDataset`` yields (``history +
predictions`` frames, one action block after each), so a model trained on them fits as is.

Each row of a batch is independent, and on a CPU the planner calls ``rollout`` from several threads
at once on disjoint rows (``wmbench/eval/controllers.py``). An exported checkpoint is stateless,
but a research-code model must keep its ``rollout`` free of state it writes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class ModelMeta:
    """What the harness must know to feed a model: sizes, history, action blocks and scaling."""

    image_size: tuple[int, int]  # (height, width) of the frames ``encode`` takes
    history: int  # frames of context T
    action_block: int  # env steps per model step (the dataset's frameskip)
    action_dim: int  # the env's action size A; one block is action_block * A numbers
    latent_shape: tuple[int, ...]
    action_mean: tuple[float, ...] | None = None  # per env action component; the model sees (a - mean) / std
    action_std: tuple[float, ...] | None = None
    name: str = "world-model"
    env: str | None = None  # the env it was trained on, if any
    extra: dict[str, Any] = field(default_factory=dict)  # free-form: parameters, training data, authors

    def __post_init__(self):
        def positive_ints(key, value, length=None):
            values = (value,) if isinstance(value, int) else tuple(value)
            if not values or (length and len(values) != length) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
                raise ValueError(f"model metadata {key}={value!r}: expected {length or 'one or more'} positive integer(s)")
            return values if not isinstance(value, int) else value

        object.__setattr__(self, "image_size", positive_ints("image_size", self.image_size, 2))
        object.__setattr__(self, "latent_shape", positive_ints("latent_shape", self.latent_shape))
        for key in ("history", "action_block", "action_dim"):
            positive_ints(key, getattr(self, key))
        for key in ("action_mean", "action_std"):
            value = getattr(self, key)
            if value is not None:
                value = tuple(float(v) for v in value)
                if len(value) != self.action_dim:
                    raise ValueError(f"model metadata {key} has {len(value)} entries; action_dim is {self.action_dim}")
                object.__setattr__(self, key, value)
        if self.action_std is not None and min(self.action_std) <= 0:
            raise ValueError(f"model metadata action_std={self.action_std}: every entry must be > 0")

    @property
    def block_size(self) -> int:
        return self.action_block * self.action_dim

    def normalize_actions(self, blocks: torch.Tensor) -> torch.Tensor:
        """Env actions grouped in blocks ``[..., action_block * action_dim]`` -> what the model takes."""
        if self.action_mean is None and self.action_std is None:
            return blocks
        mean = torch.tensor(self.action_mean or [0.0] * self.action_dim, dtype=blocks.dtype, device=blocks.device)
        std = torch.tensor(self.action_std or [1.0] * self.action_dim, dtype=blocks.dtype, device=blocks.device)
        return (blocks - mean.repeat(self.action_block)) / std.repeat(self.action_block)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> ModelMeta:
        known = set(cls.__dataclass_fields__)
        unknown, missing = sorted(set(fields) - known), sorted(k for k in ("image_size", "history", "action_block", "action_dim", "latent_shape") if k not in fields)
        if unknown or missing:
            raise ValueError(f"model metadata: unknown field(s) {unknown}, missing field(s) {missing}")
        return cls(**fields)


@runtime_checkable
class WorldModel(Protocol):
    meta: ModelMeta

    def encode(self, pixels: torch.Tensor) -> torch.Tensor: ...

    def rollout(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...


def squared_l2_to_goal(predicted: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """The default planning cost: squared L2 between the last predicted latent and the goal's."""
    return (predicted[:, -1] - goal).flatten(1).pow(2).sum(1)
