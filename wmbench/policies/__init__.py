"""Data policies: scripted, seeded controllers that drive an env to collect trajectories.

A policy is built for one env instance and reads the simulator's privileged state
(``env.unwrapped.get_state()``, ``env.unwrapped.goal_state``); it never sees pixels::

    policy = make_policy(env, "weak", seed=0)
    obs, info = env.reset(seed=0)
    policy.reset()
    obs, reward, terminated, truncated, info = env.step(policy.act())
"""

from __future__ import annotations

import importlib

import gymnasium as gym
import numpy as np

from wmbench.envs import short_name


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


# env short name -> policy name -> "module:Class" (imported only when used)
POLICIES: dict[str, dict[str, str]] = {
    "pusht": {"random": "wmbench.policies:UniformRandom", "weak": "wmbench.policies.pusht:WeakPusher"},
    "tworoom": {"random": "wmbench.policies:UniformRandom", "expert": "wmbench.policies.tworoom:DoorExpert"},
    "reacher": {"random": "wmbench.policies:UniformRandom"},
    "cube": {"random": "wmbench.policies:UniformRandom", "oracle": "wmbench.policies.cube:NoisyOracle"},
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
