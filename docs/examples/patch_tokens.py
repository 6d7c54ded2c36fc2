"""A patch-token world model: each frame is 16 tokens of 32 numbers (a 4 x 4 grid of 8 x 8 patches),
and a small transformer predicts the next frame's tokens from the last two frames' and the action block.

Run it to write patch-tokens.wmb (untrained here: train it with your own loop first).
"""

import torch
from torch import nn
from torch.nn import functional as F

import wmbench
from wmbench.world_model import ModelMeta


class Block(nn.Module):
    """A pre-norm transformer block: self-attention over all tokens, then an MLP."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):  # [B, N, dim]
        q, k, v = self.qkv(self.norm1(x)).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)  # 3 x [B, heads, N, dim / heads]
        x = x + self.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2))
        return x + self.mlp(self.norm2(x))


class PatchTokenWorldModel(nn.Module):
    def __init__(self, image_size=32, patch=8, dim=32, history=2, action_block=5, action_dim=2, depth=1, heads=4):
        super().__init__()
        tokens = (image_size // patch) ** 2
        self.meta = ModelMeta(image_size=(image_size, image_size), history=history, action_block=action_block,
                              action_dim=action_dim, latent_shape=(tokens, dim), name="patch-tokens", env="pusht")
        self.patchify = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)  # one token per patch
        self.position = nn.Parameter(0.02 * torch.randn(tokens, dim))
        self.time = nn.Parameter(0.02 * torch.randn(history, 1, dim))  # which frame of the history a token is from
        self.action = nn.Linear(action_block * action_dim, dim)  # the action block becomes one more token
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])

    def encode(self, pixels):  # uint8 [B, T, 3, 32, 32] -> [B, T, 16, 32]
        batch, frames = pixels.shape[:2]
        x = self.patchify(pixels.flatten(0, 1).float() / 255 - 0.5)  # [B * T, 32, 4, 4]
        return (x.flatten(2).transpose(1, 2) + self.position).unflatten(0, (batch, frames))

    def rollout(self, latents, actions):  # [B, 2, 16, 32], [B, 2 + K, 10] -> [B, K, 16, 32]
        history, steps, tokens = latents.shape[1], actions.shape[1] - latents.shape[1], latents.shape[2]
        window, predicted = latents, []
        for k in range(steps):  # from the last `history` frames and the block taken after the last one
            action = self.action(actions[:, history - 1 + k]).unsqueeze(1)
            x = self.blocks(torch.cat([(window + self.time).flatten(1, 2), action], dim=1))
            frame = window[:, -1] + x[:, -tokens - 1 : -1]  # the last frame's tokens, moved on by one step
            predicted.append(frame)
            window = torch.cat([window[:, 1:], frame.unsqueeze(1)], dim=1)
        return torch.stack(predicted, dim=1)


if __name__ == "__main__":
    model = PatchTokenWorldModel()
    print(wmbench.evaluate(model, env="pusht", episodes=2, samples=30, iterations=1))  # a quick check that it runs
    wmbench.export(model, "patch-tokens.wmb")
