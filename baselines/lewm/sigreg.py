"""SIGReg: how far a batch of latents is from an isotropic standard Gaussian, tested on random 1-d projections.

By the Cramer-Wold theorem a distribution is N(0, I) when every 1-d projection of it is N(0, 1).
SIGReg draws ``projections`` random unit directions and, for each, measures the Epps-Pulley
statistic of the projected samples x_1..x_N against N(0, 1):

    EP = N * integral over t of w(t) |phi_N(t) - exp(-t^2 / 2)|^2 dt,   w(t) = exp(-t^2 / 2)

with phi_N(t) = mean_n exp(i t x_n) the empirical characteristic function. The integrand is even
in t, so the integral over the real line is twice the one over [0, 3] (beyond 3 the weight is
below 0.012), taken with the trapezoid rule on ``knots`` points. The result averages EP over the
projections (and over time steps for [B, T, D] latents).

Under the null (Gaussian samples) E|phi_N(t) - phi(t)|^2 = (1 - exp(-t^2)) / N, so EP does not
shrink with N: its expectation is 2 * integral_0^3 exp(-t^2/2) (1 - exp(-t^2)) dt ~= 1.06. A
collapsed or mis-scaled batch scores O(N).
"""

from __future__ import annotations

import torch


def sigreg(latents: torch.Tensor, projections: int = 1024, knots: int = 17, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean Epps-Pulley statistic of ``latents`` [N, D] (or [B, T, D]: one test per time step over
    the batch, then averaged) on random unit projections; a differentiable scalar, ~1 when Gaussian.

    The directions are drawn fresh on each call from ``generator`` (the global RNG when None).
    """
    if latents.dim() == 2:
        latents = latents.unsqueeze(1)  # [N, 1, D]: one "time step"
    if latents.dim() != 3:
        raise ValueError(f"sigreg takes latents [N, D] or [B, T, D]; got {list(latents.shape)}")
    samples, dim = latents.shape[0], latents.shape[-1]
    device = generator.device if generator is not None else latents.device
    directions = torch.randn(dim, projections, generator=generator, device=device).to(latents)
    directions = directions / directions.norm(dim=0, keepdim=True)

    t = torch.linspace(0, 3, knots, device=latents.device, dtype=latents.dtype)
    gaussian = torch.exp(-t.square() / 2)  # the characteristic function of N(0, 1), also the weight w(t)
    trapezoid = torch.full_like(t, 3 / (knots - 1))
    trapezoid[[0, -1]] /= 2
    weights = 2 * trapezoid * gaussian  # x2: the integral over [-3, 3] of an even function

    tx = (latents @ directions).unsqueeze(-1) * t  # [N, T, M, knots]
    real, imag = torch.cos(tx).mean(0), torch.sin(tx).mean(0)  # phi_N(t) per time step and projection
    statistic = samples * ((real - gaussian).square() + imag.square()) @ weights  # [T, M]
    return statistic.mean()
