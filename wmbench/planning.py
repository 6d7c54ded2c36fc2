"""Planners for model-predictive control: CEM, MPPI, iCEM and gradient descent, batched over episodes.

A planner looks for the action sequence of lowest cost under a world model. Every planner here
optimizes the sequences of a whole batch of episodes at once: it holds tensors of shape
``[B episodes, N candidates, H horizon, D action-block size]`` and calls the cost function once
per iteration on all of them, so a GPU sees one large batch instead of B small ones. Python loops
run over iterations only (and over episodes only to seed their random generators, see below).

===========  ==================================================================================
``cost_fn``  actions ``[B, N, H, D]`` in [-1, 1] -> costs ``[B, N]``, lower is better. The
             sampling planners call it under ``torch.no_grad()``; ``gd`` needs it differentiable
             (not under ``torch.inference_mode``, whose tensors cannot be saved for backward).
``plan``     ``planner.plan(cost_fn, batch, init=None, episode_ids=None)`` -> ``[B, H, D]``.
             ``init`` ``[B, H, D]`` is the warm-start mean (zeros when None), e.g.
             ``shift_plan(previous_plan, executed)``.
===========  ==================================================================================

Planners (defaults from the standard protocol, ``wmbench.protocol``):

=========  ====================================================================================
``cem``    300 samples, 30 elites, 30 iterations, initial mean ``init`` (or 0) and std 1; samples
           are clipped to [-1, 1]; mean and std are refit on the elites. Returns the final mean,
           as the published CEM does (``result="best"``: the best sequence evaluated).
``mppi``   300 samples, temperature 0.5, noise sigma 1 (fixed, as in MPPI), 30 iterations (as many
           as CEM, to compare them at equal cost); the mean becomes the softmax(-cost /
           temperature) weighted mean of the samples. Returns the final mean.
``icem``   CEM with time-correlated (colored, 1/f^beta, beta 2) noise, a population that shrinks
           by 1.25 per iteration down to twice the elites, 30% of the elites carried into the
           next iteration, momentum 0.1 on the mean and std. Returns the best sequence evaluated.
``gd``     Adam (lr 0.1) on 100 sequences started at ``init`` plus noise (std 1), 30 steps,
           projected back into [-1, 1] after every step. Returns the best sequence evaluated.
=========  ====================================================================================

In all three sampling planners the first candidate of every iteration is the current mean (as in
the reference), so a warm start that is already optimal is evaluated and kept among the elites.
CEM returns its mean because the published numbers come from a CEM that does; after 30 iterations
the std has collapsed onto the elites. ``result="best"`` returns the lowest-cost sequence
evaluated, the final mean included, so its model cost is never worse. GD keeps its bounds by
projection rather than through tanh: Adam's step then stays ``lr`` in action units, as in the
reference (which steps the actions themselves), and an optimum on the bound is reached exactly.

Options every planner takes: ``autocast`` (evaluate costs under bf16 autocast; the planner's own
arithmetic stays float32) and ``compile`` (``torch.compile`` the cost function; compiled graphs
are reused by later plans whose cost functions share code). Both are off by default: on a CPU
neither pays. After a plan, ``last_stats`` holds ``iterations``, ``cost_calls`` and
``sequences_per_episode`` (no extra cost evaluation is spent on statistics).

Seeding. Episode ``e``'s random numbers in its ``k``-th plan come from its own generator, seeded
from ``(seed, e, k)``; ``k`` counts the plans of that episode made by this planner object. So the
answer for an episode does not depend on which other episodes share its batch: planning 50
episodes at once gives each the plan it would get alone (to float tolerance: a cost function may
round differently at another batch size). ``episode_ids`` (default ``0..B-1``) names the episodes
of a batch, for an evaluation that replans only its unfinished ones. Generators live on the
planner's device, so a CPU and a GPU planner with the same seed draw different numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, Sequence

import numpy as np
import torch

from wmbench.devices import resolve_device
from wmbench.protocol import GOAL_REACHING

CostFn = Callable[[torch.Tensor], torch.Tensor]


SETTING_TYPES = {"int": int, "float": (int, float), "bool": bool, "str": str}
SETTING_NAMES = {"int": "an integer", "float": "a finite number", "bool": "true or false", "str": "a string"}


def setting(default, meaning: str):
    """A planner hyperparameter with what it means (``wmbench eval --planner X --list-options`` prints it)."""
    return field(default=default, metadata={"meaning": meaning})


@dataclass
class PlannerConfig:
    """Settings every planner has; each planner's own dataclass adds its hyperparameters."""

    samples: int = setting(GOAL_REACHING.samples, "candidate sequences per episode and iteration")
    iterations: int = setting(GOAL_REACHING.iterations, "optimizer iterations per plan")
    autocast: bool = setting(False, "evaluate costs under bf16 autocast (planner arithmetic stays float32); results say so")
    compile: bool = setting(False, "torch.compile the cost function; the compile time is recorded apart from planning time")

    def __post_init__(self):
        for setting in fields(self):
            value, kind = getattr(self, setting.name), setting.type  # the annotation's name: "int", "float", ...
            if not isinstance(value, SETTING_TYPES[kind]) or (kind != "bool" and isinstance(value, bool)) or (
                    kind == "float" and not math.isfinite(value)):
                raise ValueError(f"planner hyperparameter {setting.name}={value!r}: expected {SETTING_NAMES[kind]}")
        for key in ("samples", "iterations"):
            if getattr(self, key) < 1:
                raise ValueError(f"planner hyperparameter {key}={getattr(self, key)!r}: expected a positive integer")


@dataclass
class CEMConfig(PlannerConfig):
    elites: int = setting(GOAL_REACHING.elites, "best candidates the mean and std are refitted on; 2 <= elites <= samples")
    init_std: float = setting(1.0, "std of the first iteration's sampling noise around the warm start")
    result: str = setting("mean", '"mean": execute the final mean (the standard); "best": the best sequence evaluated')

    def __post_init__(self):
        super().__post_init__()
        if not 2 <= self.elites <= self.samples:
            raise ValueError(f"planner hyperparameter elites={self.elites}: expected 2 <= elites <= samples ({self.samples}); "
                             f"with fewer samples, also pass --option elites=N for some N from 2 to {self.samples}")
        if self.init_std < 0:
            raise ValueError(f"planner hyperparameter init_std={self.init_std}: expected >= 0")
        if self.result not in ("mean", "best"):
            raise ValueError(f"planner hyperparameter result={self.result!r}: expected 'mean' or 'best'")


@dataclass
class MPPIConfig(PlannerConfig):
    temperature: float = setting(0.5, "in cost units: candidates are weighted by softmax(-cost / temperature)")
    noise_std: float = setting(1.0, "std of the sampling noise, in normalized action units; not adapted")

    def __post_init__(self):
        super().__post_init__()
        if self.temperature <= 0 or self.noise_std < 0:
            raise ValueError(f"planner hyperparameters temperature={self.temperature}, noise_std={self.noise_std}: expected > 0 and >= 0")


@dataclass
class ICEMConfig(CEMConfig):
    result: str = setting("best", '"best": execute the best sequence found (iCEM\'s rule); "mean": the final mean')
    noise_beta: float = setting(2.0, "colored noise: power spectrum ~ 1/f^beta over the horizon (0: white)")
    keep_elites: float = setting(0.3, "fraction of the elites carried into the next iteration")
    population_decay: float = setting(1.25, "samples at iteration i: max(samples / decay^i, 2 * elites)")
    momentum: float = setting(0.1, "new mean (and std) = momentum * old + (1 - momentum) * elites'")

    def __post_init__(self):
        super().__post_init__()
        if self.noise_beta < 0 or not 0 <= self.keep_elites <= 1 or self.population_decay < 1 or not 0 <= self.momentum < 1:
            raise ValueError(
                f"planner hyperparameters noise_beta={self.noise_beta}, keep_elites={self.keep_elites}, population_decay="
                f"{self.population_decay}, momentum={self.momentum}: expected >= 0, in [0, 1], >= 1, in [0, 1)"
            )


@dataclass
class GDConfig(PlannerConfig):
    samples: int = setting(100, "sequences optimized in parallel per episode")
    iterations: int = setting(30, "Adam steps")
    lr: float = setting(0.1, "Adam's step size, in normalized action units")
    init_std: float = setting(1.0, "noise added to the warm start to spread the starting sequences (the first gets none)")

    def __post_init__(self):
        super().__post_init__()
        if self.lr <= 0 or self.init_std < 0:
            raise ValueError(f"planner hyperparameters lr={self.lr}, init_std={self.init_std}: expected > 0 and >= 0")


def shift_plan(plan: torch.Tensor, executed: int) -> torch.Tensor:
    """Warm start for the next plan: drop the first ``executed`` blocks of ``[..., H, D]``, pad the end with zeros."""
    if executed < 0:
        raise ValueError(f"shift_plan: executed={executed} must be >= 0")
    kept = plan[..., executed:, :]
    return torch.cat([kept, plan.new_zeros(*plan.shape[:-2], plan.shape[-2] - kept.shape[-2], plan.shape[-1])], dim=-2)


def episode_seed(seed: int, episode: int, call: int) -> int:
    """The seed of one episode's generator in its ``call``-th plan: independent streams from SeedSequence."""
    return int(np.random.SeedSequence([seed, episode, call]).generate_state(1, np.uint64)[0] >> np.uint64(1))


class EpisodeNoise:
    """Standard normal noise ``[B, *shape]`` from one generator per episode.

    Episode b's numbers come from its own generator, so they are the same whether it is planned
    alone or with others. Drawing costs one call per episode; the planning itself stays batched.
    """

    def __init__(self, seeds: Sequence[int], device: torch.device):
        self.device = device
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        self.buffers: dict[tuple[int, ...], torch.Tensor] = {}  # by shape: iterations reuse their memory, no fresh pages each time

    def __call__(self, *shape: int) -> torch.Tensor:
        """Fresh noise in a buffer of its shape that the next call of that shape overwrites: use it, or copy it, before then."""
        buffer = self.buffers.get(shape)
        if buffer is None:
            buffer = self.buffers[shape] = torch.empty((len(self.generators), *shape), device=self.device)
        for generator, row in zip(self.generators, buffer):
            torch.randn(shape, generator=generator, out=row)  # the same numbers as a fresh draw: the stream is the episode's
        return buffer


def colored_noise(normal: EpisodeNoise, samples: int, horizon: int, size: int, beta: float) -> torch.Tensor:
    """Gaussian noise ``[B, samples, horizon, size]`` with unit variance and power spectrum ~ 1/f^beta over time.

    Complex Gaussian coefficients are scaled by f^(-beta/2) (the zero frequency gets the lowest
    nonzero frequency's scale: 1/f has no finite value at 0) and transformed back with an inverse
    real FFT. The zero and Nyquist terms are real, so their real parts get twice the variance to
    keep the spectrum flat at beta 0. The result is divided by its exact per-step std.
    """
    freqs = torch.fft.rfftfreq(horizon, device=normal.device)
    freqs[0] = freqs[1] if horizon > 1 else 1.0
    scale = freqs ** (-beta / 2)
    real_only = torch.zeros_like(scale, dtype=torch.bool)
    real_only[0] = True
    if horizon % 2 == 0:
        real_only[-1] = True
    coefficients = normal(samples, size, 2, len(freqs))
    real = coefficients[:, :, :, 0] * torch.where(real_only, math.sqrt(2), 1.0)
    imag = coefficients[:, :, :, 1] * ~real_only
    signal = torch.fft.irfft(torch.complex(real * scale, imag * scale), n=horizon)  # [B, samples, size, horizon]
    # per-step variance of the inverse transform: (sum of the real terms' 2 s^2 + 4 s^2 per complex pair) / H^2
    variance = (torch.where(real_only, 2.0, 4.0) * scale**2).sum() / horizon**2
    return (signal / variance.sqrt()).transpose(-1, -2)


def take(candidates: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``candidates[b, index[b, k]]`` for every episode b: ``[B, N, H, D]``, ``[B, K]`` -> ``[B, K, H, D]``."""
    # gather, not take_along_dim: that one first wraps negative indices, a pass topk's indices do not need
    return torch.gather(candidates, 1, index[:, :, None, None].expand(-1, -1, *candidates.shape[2:]))


class Planner:
    """Base class: checks the inputs, seeds the episodes, evaluates costs; subclasses write ``optimize``."""

    name: str
    Config: type[PlannerConfig]
    differentiable = False  # whether ``optimize`` needs gradients of the cost

    def __init__(self, horizon: int, action_size: int, *, seed: int = 0, device: str | torch.device = "cpu", **hyperparameters):
        known = [f.name for f in fields(self.Config)]
        unknown = sorted(set(hyperparameters) - set(known))
        if unknown:
            raise ValueError(f"planner {self.name!r}: unknown hyperparameter(s) {unknown}; known: {known}")
        for key, value in (("horizon", horizon), ("action_size", action_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"planner {self.name!r}: {key}={value!r} must be a positive integer")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"planner {self.name!r}: seed={seed!r} must be a non-negative integer")
        self.horizon, self.action_size, self.seed = horizon, action_size, seed
        self.device = resolve_device(device)
        self.hp = self.Config(**hyperparameters)
        self.plans_made: dict[int, int] = {}  # episode id -> plans made for it (the k in its seed)
        self.last_stats: dict = {}

    def config(self) -> dict:
        """The planner's name and every setting, JSON-ready, for the results file."""
        return {"name": self.name, "horizon": self.horizon, "action_size": self.action_size, "seed": self.seed,
                "device": str(self.device), **asdict(self.hp)}

    def plan(self, cost_fn: CostFn, batch: int, init: torch.Tensor | None = None,
             episode_ids: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
        """Best action sequences ``[B, H, D]`` in [-1, 1]; ``init`` ``[B, H, D]`` is the warm-start mean (None: zeros)."""
        shape = (batch, self.horizon, self.action_size)
        if init is None:
            init = torch.zeros(shape, device=self.device)
        elif tuple(init.shape) != shape:
            raise ValueError(f"planner {self.name!r}: init has shape {tuple(init.shape)}; expected {shape} (batch, horizon, action size)")
        init = init.to(self.device, torch.float32).clamp(-1, 1)
        ids = list(range(batch)) if episode_ids is None else [int(e) for e in episode_ids]
        if len(ids) != batch or len(set(ids)) != batch:
            raise ValueError(f"planner {self.name!r}: episode_ids must be {batch} distinct ids, got {ids}")
        normal = EpisodeNoise([episode_seed(self.seed, e, self.plans_made.get(e, 0)) for e in ids], self.device)
        for e in ids:
            self.plans_made[e] = self.plans_made.get(e, 0) + 1

        function = self.compiled(cost_fn)
        calls, sequences = 0, 0

        def cost(actions: torch.Tensor) -> torch.Tensor:
            nonlocal calls, sequences
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.hp.autocast):
                costs = function(actions)
            if tuple(costs.shape) != tuple(actions.shape[:2]):
                raise ValueError(f"cost_fn returned shape {tuple(costs.shape)} for actions {tuple(actions.shape)}; expected {tuple(actions.shape[:2])}")
            calls, sequences = calls + 1, sequences + actions.shape[1]
            return costs.float()

        with torch.set_grad_enabled(self.differentiable):
            best = self.optimize(cost, init, normal)
        self.last_stats = {"iterations": self.hp.iterations, "cost_calls": calls, "sequences_per_episode": sequences}
        return best

    def compiled(self, cost_fn: CostFn) -> CostFn:
        # dynamic: the batch shrinks as episodes finish, which would otherwise recompile at every new size
        return torch.compile(cost_fn, dynamic=True) if self.hp.compile else cost_fn

    def warm_up(self, cost_fn: CostFn, batch: int) -> None:
        """Compile ``cost_fn`` by evaluating it once on zero actions, the size a plan evaluates: timing then keeps
        compilation apart from planning. Draws no noise and counts no plan, so the plans that follow are unchanged."""
        zeros = torch.zeros(batch, self.hp.samples, self.horizon, self.action_size, device=self.device, requires_grad=self.differentiable)
        with torch.set_grad_enabled(self.differentiable), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.hp.autocast):
            self.compiled(cost_fn)(zeros)

    def optimize(self, cost: CostFn, mean: torch.Tensor, normal: EpisodeNoise) -> torch.Tensor:
        raise NotImplementedError


class Best:
    """The lowest-cost sequence seen so far, per episode."""

    def __init__(self, start: torch.Tensor):
        self.actions = start.clone()
        self.cost = torch.full(start.shape[:1], math.inf, device=start.device)

    def update(self, candidates: torch.Tensor, costs: torch.Tensor):
        """Offer ``[B, N, H, D]`` candidates with their ``[B, N]`` costs."""
        cost, index = costs.min(dim=1)
        better = cost < self.cost
        self.cost = torch.where(better, cost, self.cost)
        self.actions = torch.where(better[:, None, None], take(candidates, index[:, None])[:, 0], self.actions)


class CEM(Planner):
    """Cross-entropy method: sample around the mean, refit mean and std on the elites."""

    name, Config = "cem", CEMConfig

    def optimize(self, cost, mean, normal):
        hp = self.hp
        std = torch.full_like(mean, hp.init_std)
        best = Best(mean)
        for _ in range(hp.iterations):
            # in place in the noise buffer (same arithmetic, in the same order, as mean + std * noise)
            candidates = normal(hp.samples, self.horizon, self.action_size).mul_(std[:, None]).add_(mean[:, None]).clamp_(-1, 1)
            candidates[:, 0] = mean
            costs = cost(candidates)
            best.update(candidates, costs)
            elites = take(candidates, costs.topk(hp.elites, dim=1, largest=False).indices)
            mean, std = elites.mean(dim=1), elites.std(dim=1)
        if hp.result == "mean":
            return mean
        best.update(mean[:, None], cost(mean[:, None]))
        return best.actions


class MPPI(Planner):
    """Model predictive path integral: the mean moves to the softmax(-cost / temperature) weighted mean."""

    name, Config = "mppi", MPPIConfig

    def optimize(self, cost, mean, normal):
        hp = self.hp
        for _ in range(hp.iterations):
            candidates = normal(hp.samples, self.horizon, self.action_size).mul_(hp.noise_std).add_(mean[:, None]).clamp_(-1, 1)
            candidates[:, 0] = mean
            weights = torch.softmax(-cost(candidates) / hp.temperature, dim=1)
            mean = (weights[:, :, None, None] * candidates).sum(dim=1)
        return mean


class ICEM(Planner):
    """Improved CEM (Pinneri et al. 2020): colored noise, kept elites, shrinking population, momentum.

    Left out from the paper: shifting the elites into the next plan (a planner keeps no state
    between plans; the warm start ``init`` carries the mean).
    """

    name, Config = "icem", ICEMConfig

    def optimize(self, cost, mean, normal):
        hp = self.hp
        std = torch.full_like(mean, hp.init_std)
        best = Best(mean)
        kept = kept_costs = None
        keep = round(hp.keep_elites * hp.elites)
        for i in range(hp.iterations):
            samples = min(hp.samples, max(round(hp.samples / hp.population_decay**i), 2 * hp.elites))
            noise = colored_noise(normal, samples, self.horizon, self.action_size, hp.noise_beta)
            candidates = (mean[:, None] + std[:, None] * noise).clamp(-1, 1)
            candidates[:, 0] = mean
            costs = cost(candidates)
            best.update(candidates, costs)
            if kept is not None:  # carried elites keep their costs: the cost is deterministic
                candidates, costs = torch.cat([candidates, kept], dim=1), torch.cat([costs, kept_costs], dim=1)
            elite_costs, index = costs.topk(hp.elites, dim=1, largest=False)  # sorted, best first
            elites = take(candidates, index)
            mean = hp.momentum * mean + (1 - hp.momentum) * elites.mean(dim=1)
            std = hp.momentum * std + (1 - hp.momentum) * elites.std(dim=1)
            kept, kept_costs = (elites[:, :keep], elite_costs[:, :keep]) if keep else (None, None)
        if hp.result == "mean":
            return mean
        best.update(mean[:, None], cost(mean[:, None]))
        return best.actions


class GradientDescent(Planner):
    """Adam on the action sequences through a differentiable cost, projected onto [-1, 1] after each step."""

    name, Config = "gd", GDConfig
    differentiable = True
    betas, eps = (0.9, 0.999), 1e-8  # Adam's defaults

    def optimize(self, cost, mean, normal):
        hp = self.hp
        actions = (mean[:, None] + hp.init_std * normal(hp.samples, self.horizon, self.action_size)).clamp(-1, 1)
        actions[:, 0] = mean
        best = Best(mean)
        first, second = torch.zeros_like(actions), torch.zeros_like(actions)
        for step in range(1, hp.iterations + 1):
            actions.requires_grad_(True)
            costs = cost(actions)
            (gradient,) = torch.autograd.grad(costs.sum(), actions)  # only the actions' gradient; model weights untouched
            actions = actions.detach()
            best.update(actions, costs.detach())
            first.lerp_(gradient, 1 - self.betas[0])
            second.lerp_(gradient.square(), 1 - self.betas[1])
            step_size = hp.lr / (1 - self.betas[0] ** step)
            denominator = (second / (1 - self.betas[1] ** step)).sqrt_().add_(self.eps)
            actions = (actions - step_size * first / denominator).clamp(-1, 1)
        with torch.no_grad():
            best.update(actions, cost(actions))
        return best.actions


PLANNERS: dict[str, type[Planner]] = {planner.name: planner for planner in (CEM, MPPI, ICEM, GradientDescent)}


def planner_options(name: str) -> list[tuple[str, str, object, str]]:
    """(option, type, default, meaning) of every hyperparameter of the planner ``name``."""
    if name not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; choose one of {sorted(PLANNERS)}")
    return [(f.name, f.type, f.default, f.metadata.get("meaning", "")) for f in fields(PLANNERS[name].Config)]


def make_planner(name: str, horizon: int, action_size: int, **kwargs) -> Planner:
    """A planner by name (``cem``, ``mppi``, ``icem``, ``gd``); kwargs: ``seed``, ``device`` and its hyperparameters."""
    if name not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; choose one of {sorted(PLANNERS)}")
    return PLANNERS[name](horizon, action_size, **kwargs)
