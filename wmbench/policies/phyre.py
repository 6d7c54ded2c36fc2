"""PHYRE policy: one random valid ball placement (PHYRE's random agent), then nothing.

The env reads an action only at its first step; later actions are ignored, so they are zeros.
"""

from __future__ import annotations

import numpy as np

from wmbench.policies import Policy

MAX_TRIES = 10_000  # uniform draws before giving up; a scene leaves most of its area free


class RandomValidPlacement(Policy):
    """A uniformly drawn (x, y, r) that places a valid ball (redrawn while it overlaps or leaves the scene)."""

    def act(self):
        if self.env.placed:
            return np.zeros(self.env.action_space.shape, np.float32)
        for _ in range(MAX_TRIES):
            action = self.rng.uniform(-1.0, 1.0, self.env.action_space.shape).astype(np.float32)
            if self.env.is_valid_action(action):
                return action
        raise RuntimeError(f"no valid ball placement in {MAX_TRIES} random draws; the scene leaves no room")
