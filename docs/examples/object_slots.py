"""An object-slot world model: each frame is 4 slots of 16 numbers ([B, T, 4, 16]), read from a conv
feature map by slot queries that compete for its locations (one round of Slot Attention). The
predictor moves every slot by one step from the slot, the mean of all slots and the action block.
Slots come in no fixed order, so the planning cost matches predicted and goal slots (``cost``).

Run it to write object-slots.wmb (untrained here: train it with your own loop first).
"""

import torch
from torch import nn

import wmbench
from wmbench.world_model import ModelMeta


class SlotWorldModel(nn.Module):
    def __init__(self, image_size=32, slots=4, dim=16, action_block=5, action_dim=2, hidden=64):
        super().__init__()
        self.meta = ModelMeta(image_size=(image_size, image_size), history=1, action_block=action_block,
                              action_dim=action_dim, latent_shape=(slots, dim), name="object-slots", env="pusht")
        self.features = nn.Sequential(nn.Conv2d(3, dim, kernel_size=4, stride=4), nn.GELU(), nn.Conv2d(dim, dim, kernel_size=1))
        self.position = nn.Parameter(0.02 * torch.randn((image_size // 4) ** 2, dim))
        self.queries = nn.Parameter(torch.randn(slots, dim) * dim**-0.5)
        self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.dynamics = nn.Sequential(nn.Linear(2 * dim + action_block * action_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def encode(self, pixels):  # uint8 [B, T, 3, 32, 32] -> [B, T, 4, 16]
        batch, frames = pixels.shape[:2]
        x = self.features(pixels.flatten(0, 1).float() / 255 - 0.5).flatten(2).transpose(1, 2) + self.position  # [B * T, 64, 16]
        logits = self.queries @ self.key(x).transpose(1, 2) / self.queries.shape[1] ** 0.5  # [B * T, slots, locations]
        attention = logits.softmax(dim=1)  # the slots compete for each location
        attention = attention / (attention.sum(dim=2, keepdim=True) + 1e-8)  # each slot: the mean over what it won
        return (attention @ self.value(x)).unflatten(0, (batch, frames))

    def rollout(self, latents, actions):  # [B, 1, 4, 16], [B, 1 + K, 10] -> [B, K, 4, 16]
        history, steps = latents.shape[1], actions.shape[1] - latents.shape[1]
        slots, predicted = latents[:, -1], []
        for k in range(steps):
            action = actions[:, history - 1 + k].unsqueeze(1).expand(-1, slots.shape[1], -1)  # every slot gets the block
            context = slots.mean(dim=1, keepdim=True).expand_as(slots)  # what every slot sees of the others
            slots = slots + self.dynamics(torch.cat([slots, context, action], dim=-1))
            predicted.append(slots)
        return torch.stack(predicted, dim=1)

    def cost(self, predicted, goal):  # [B, K, 4, 16], [B, 4, 16] -> [B]
        """Chamfer distance: each predicted slot to its nearest goal slot, and each goal slot to its nearest prediction."""
        distances = (predicted[:, -1].unsqueeze(2) - goal.unsqueeze(1)).pow(2).sum(-1)  # [B, predicted slot, goal slot]
        return distances.amin(dim=2).sum(dim=1) + distances.amin(dim=1).sum(dim=1)


if __name__ == "__main__":
    wmbench.export(SlotWorldModel(), "object-slots.wmb")
