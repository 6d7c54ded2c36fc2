"""Data policies: scripted, seeded controllers that drive an env to collect trajectories.

A policy is built for one env instance and reads the simulator's privileged state
(``env.unwrapped.get_state()``, ``env.unwrapped.goal_state``); it never sees pixels::

    policy = make_policy(env, "weak", seed=0)
    obs, info = env.reset(seed=0)
    policy.reset()
    obs, reward, terminated, truncated, info = env.step(policy.act())

``play(env, policy, steps, seed)`` runs one such episode and keeps its frames.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from wmbench.envs import short_name
from wmbench.progress import progress_bar


class Policy:
    """Base of every data policy: seeded, reset at each episode, one action per call."""

    def __init__(self, env: gym.Env, seed: int | None = None):
        self.env = env.unwrapped
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        """Forget the previous episode (called after each env reset)."""

    def act(self) -> np.ndarray:
        raise NotImplementedError


class UniformRandom(Policy):
    """Independent uniform actions in [-1, 1]."""

    def act(self):
        return self.rng.uniform(-1.0, 1.0, self.env.action_space.shape).astype(np.float32)


class CorrelatedRandom(Policy):
    """Temporally correlated random actions, so the agent travels instead of jittering in place.

    Each component follows a Gaussian AR(1) process, ``a_t = rho * a_(t-1) + sqrt(1 - rho^2) *
    N(0, sd^2)``, clipped to [-1, 1]: the same marginal at every step (sd ``sd``) with a
    correlation time of about ``1 / (1 - rho)`` = 10 steps, so the agent keeps a heading.
    """

    rho = 0.9
    sd = 0.6

    def reset(self):
        self._latent = self.rng.normal(0.0, self.sd, self.env.action_space.shape)

    def act(self):
        noise = self.rng.normal(0.0, self.sd, self._latent.shape)
        self._latent = self.rho * self._latent + np.sqrt(1.0 - self.rho**2) * noise
        return np.clip(self._latent, -1.0, 1.0).astype(np.float32)


RANDOM = {"random": "wmbench.policies:UniformRandom", "correlated": "wmbench.policies:CorrelatedRandom"}

# env short name -> policy name -> "module:Class" (imported only when used)
POLICIES: dict[str, dict[str, str]] = {
    "pusht": {**RANDOM, "weak": "wmbench.policies.pusht:WeakPusher"},
    "tworoom": {**RANDOM, "expert": "wmbench.policies.tworoom:DoorExpert"},
    "reacher": dict(RANDOM),
    "cube": {**RANDOM, "oracle": "wmbench.policies.cube:NoisyOracle"},
    "clevrer": {**RANDOM, "passive": "wmbench.policies.clevrer:Passive", "push": "wmbench.policies.clevrer:RandomPush"},
    "phyre": {**RANDOM, "random_valid": "wmbench.policies.phyre:RandomValidPlacement"},
}

POLICY_DOCS: dict[str, str] = {  # one line each, for `wmbench collect --help`
    "random": "uniform random actions in [-1, 1]",
    "correlated": "AR(1) random actions (correlation 0.9, sd 0.6): the agent travels",
    "weak": "noisy pusher heading for waypoints around the block (contact-rich, rarely solves)",
    "expert": "noisy expert (sd 0.5) walking to the goal through the nearest door",
    "oracle": "ogbench's cube oracle with action noise 0.1, re-targeting after each placement",
    "passive": "no intervention: the CLEVRER video plays out as sampled",
    "push": "one push of a random object at the first frame, then none",
    "random_valid": "one uniformly drawn valid ball placement (PHYRE's random agent), then nothing",
}


def policy_names(env_name: str) -> list[str]:
    return sorted(POLICIES[short_name(env_name)])


def make_policy(env: gym.Env, name: str, seed: int | None = None) -> Policy:
    """The data policy ``name`` for ``env`` (any wmbench env, wrapped or not)."""
    short = short_name(env.unwrapped.env_name)
    if name not in POLICIES[short]:
        raise ValueError(f"unknown policy {name!r} for {short}; choose one of {sorted(POLICIES[short])}")
    module, cls = POLICIES[short][name].split(":")
    return getattr(importlib.import_module(module), cls)(env, seed=seed)


@dataclass
class PolicyRollout:
    frames: list[np.ndarray] = field(default_factory=list)
    goal: np.ndarray | None = None
    succeeded_at: int | None = None  # first step at which the success rule held
    steps: int = 0
    seconds: float = 0.0
    final_info: dict = field(default_factory=dict)


def play(env: gym.Env, policy: Policy, steps: int, seed: int, progress: bool = False) -> PolicyRollout:
    """One seeded episode of ``policy``, at most ``steps`` steps (fewer if it terminates), keeping every frame."""
    obs, info = env.reset(seed=seed)
    policy.reset()
    rollout = PolicyRollout(frames=[obs["pixels"]], goal=info["goal"], succeeded_at=0 if info["success"] else None)
    start = time.perf_counter()
    for t in progress_bar(range(1, steps + 1), desc="rollout", unit="step", disable=not progress, leave=False):
        obs, _, terminated, truncated, info = env.step(policy.act())
        rollout.frames.append(obs["pixels"])
        rollout.steps = t
        if info["success"] and rollout.succeeded_at is None:
            rollout.succeeded_at = t
        if terminated or truncated:
            break
    rollout.seconds = time.perf_counter() - start
    rollout.final_info = info
    return rollout
