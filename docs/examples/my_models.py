"""Your own model class, in a module file a spec can import (``"factory": "my_models:ConvWorldModel"``).

Its constructor's keyword arguments are the spec's ``config``: loading calls ``ConvWorldModel(**config)``.
"""

import torch
from torch import nn

from wmbench.world_model import ModelMeta


class ConvWorldModel(nn.Module):
    """Encoder: a strided CNN to one latent vector. Predictor: an MLP from (latent, action block) to the next latent."""

    def __init__(self, image_size=64, latent_dim=32, hidden=64, action_block=5, action_dim=2):
        super().__init__()
        self.meta = ModelMeta(image_size=(image_size, image_size), history=1, action_block=action_block,
                              action_dim=action_dim, latent_shape=(latent_dim,), name="conv-model", env="pusht")
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=4, stride=4), nn.GELU(), nn.Conv2d(16, 32, kernel_size=4, stride=4), nn.GELU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, latent_dim),
        )
        self.predictor = nn.Sequential(nn.Linear(latent_dim + action_block * action_dim, hidden), nn.GELU(), nn.Linear(hidden, latent_dim))

    def encode(self, pixels):  # uint8 [B, T, 3, 64, 64] -> [B, T, 32]
        batch, frames = pixels.shape[:2]
        return self.encoder(pixels.flatten(0, 1).float() / 255).unflatten(0, (batch, frames))

    def rollout(self, latents, actions):  # [B, 1, 32], [B, 1 + K, 10] -> [B, K, 32]
        history, steps = latents.shape[1], actions.shape[1] - latents.shape[1]
        latent, predicted = latents[:, -1], []
        for k in range(steps):
            latent = latent + self.predictor(torch.cat([latent, actions[:, history - 1 + k]], dim=-1))
            predicted.append(latent)
        return torch.stack(predicted, dim=1)
