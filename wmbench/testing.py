"""Tiny world models that keep the protocol, for tests and for trying the tools without a GPU.

They are untrained: seeded random weights, a few thousand parameters, milliseconds a call on a
CPU. ``TinyWorldModel`` is also a valid research-code factory (``"wmbench.testing:TinyWorldModel"``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from wmbench.world_model import ModelMeta


class TinyWorldModel(nn.Module):
    """A conv encoder to a ``[latent_dim]`` latent and a residual MLP predictor.

    ``image_size`` is one side of square frames or ``(height, width)``; the encoder takes any size
    of at least 4 px (4x4 patches, averaged).

    The predictor reads the last latent and one action block and returns the next latent, applied
    once per planned block, so prediction ``k`` depends only on the actions up to block ``T - 1 + k``
    (causal, which is what lets an exported rollout serve any horizon up to its own).
    """

    def __init__(
        self,
        image_size: int | tuple[int, int] = 32,
        history: int = 1,
        action_block: int = 5,
        action_dim: int = 2,
        latent_dim: int = 16,
        hidden: int = 32,
        seed: int = 0,
        name: str = "tiny-world-model",
        env: str | None = None,
    ):
        super().__init__()
        self.meta = ModelMeta(
            image_size=(image_size, image_size) if isinstance(image_size, int) else tuple(image_size),
            history=history,
            action_block=action_block,
            action_dim=action_dim,
            latent_shape=(latent_dim,),
            name=name,
            env=env,
        )
        self.conv = nn.Conv2d(3, 8, kernel_size=4, stride=4)
        self.project = nn.Linear(8, latent_dim)
        self.predictor = nn.Sequential(
            nn.Linear(latent_dim + action_block * action_dim, hidden), nn.GELU(), nn.Linear(hidden, latent_dim)
        )
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in self.parameters():
                fan_in = parameter[0].numel() if parameter.dim() > 1 else parameter.numel()
                parameter.normal_(0.0, fan_in**-0.5, generator=generator)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        batch, frames = pixels.shape[:2]
        x = pixels.flatten(0, 1).float() / 255.0
        x = F.gelu(self.conv(x)).mean(dim=(2, 3))
        return self.project(x).unflatten(0, (batch, frames))

    def rollout(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        history = latents.shape[1]
        latent = latents[:, -1]
        predicted = []
        for k in range(actions.shape[1] - history):
            latent = latent + self.predictor(torch.cat([latent, actions[:, history - 1 + k]], dim=-1))
            predicted.append(latent)
        return torch.stack(predicted, dim=1)


class TinyWorldModelWithCost(TinyWorldModel):
    """A tiny model with its own planning cost: the last prediction's distance plus a tenth of the mean
    distance along the way (so the cost differs from the default and depends on every step)."""

    def cost(self, predicted: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        distances = (predicted - goal.unsqueeze(1)).flatten(2).pow(2).sum(-1)
        return distances[:, -1] + 0.1 * distances.mean(dim=1)


class TinyAnsweringModel(TinyWorldModel):
    """A tiny model with a CLEVRER answering head that ignores the video: "yes" to every descriptive
    question, and every multiple-choice option marked correct (so the scorer's figures are known)."""

    def answer(self, pixels: torch.Tensor, question: dict):
        if "choices" in question:
            return {choice["choice_id"]: "correct" for choice in question["choices"]}
        return "yes"
