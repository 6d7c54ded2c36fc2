"""Two-Room env steps per second on one core: pixels at 64 and 224 px, and state only.

The env is made with ``gymnasium.make`` (gymnasium's wrappers and the 200-step limit included),
returns its default observation (pixels, state and proprio; state alone for the state-only
figure) and is stepped with seeded uniform random actions; it is reset when its episode ends,
inside the timed loop, as in data collection. The target is absolute, 5,000 steps/s at 64 px
(the issue's figure): no Two-Room reference implementation is installed to measure a ratio
against."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest

import wmbench  # noqa: F401  (registers the envs)

pytestmark = pytest.mark.benchmark

TARGET_STEPS_PER_S_64PX = 5000  # the target for data collection with 64 px pixels


def stepper(**kwargs):
    """A function doing one env step (and the reset that ends an episode), for ``rate``."""
    env = gym.make("wmbench/TwoRoom-v0", **kwargs)
    env.reset(seed=0)
    actions = itertools.cycle(np.random.default_rng(0).uniform(-1, 1, (1000, 2)).astype(np.float32))

    def step():
        _, _, terminated, truncated, _ = env.step(next(actions))
        if terminated or truncated:
            env.reset()

    return step


def test_tworoom_steps_per_second(rate, report):
    figures = {
        "steps_per_s_pixels_64": rate(stepper(resolution=64), n=5000),
        "steps_per_s_pixels_224": rate(stepper(resolution=224), n=2000),
        "steps_per_s_state_only": rate(stepper(obs_type="state"), n=10000),
    }
    report({**figures, "target_steps_per_s_pixels_64": TARGET_STEPS_PER_S_64PX})
    assert figures["steps_per_s_pixels_64"] >= TARGET_STEPS_PER_S_64PX, (
        f"Two-Room at 64 px runs {figures['steps_per_s_pixels_64']:.0f} steps/s; the target is {TARGET_STEPS_PER_S_64PX}"
    )
