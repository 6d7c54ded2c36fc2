"""VICReg's anti-collapse terms, over any axis of samples: PLDM applies them across the batch and across time.

For latents with a sample axis (the batch, or the time steps of one trajectory) and a feature
axis D, grouped by every other axis:

    variance   = mean over features of relu(target - sqrt(var + eps))       hinge on each feature's spread
    covariance = sum of the squared off-diagonal covariances / D             decorrelates the features

Both are 0 for samples whose features are uncorrelated with spread >= target, and grow when the
features collapse to a point (variance -> target) or onto a few directions (covariance). The eps
keeps the gradient of the square root finite when a feature is constant.
"""

from __future__ import annotations

import torch


def variance(latents: torch.Tensor, dim: int = 0, target: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """Mean hinge ``relu(target - std)`` of each feature's std over axis ``dim`` (features last)."""
    std = torch.sqrt(latents.var(dim=dim) + eps)
    return torch.relu(target - std).mean()


def covariance(latents: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Sum of squared off-diagonal feature covariances over axis ``dim``, divided by the feature
    count and averaged over the other axes (features last)."""
    samples = latents.movedim(dim, -2)  # [..., N, D]
    centered = samples - samples.mean(-2, keepdim=True)
    cov = centered.transpose(-1, -2) @ centered / (samples.shape[-2] - 1)  # [..., D, D]
    off_diagonal = cov.square().sum((-1, -2)) - cov.diagonal(dim1=-2, dim2=-1).square().sum(-1)
    return (off_diagonal / samples.shape[-1]).mean()
