"""Push-T data policy: a weak pusher that keeps moving through the block."""

from __future__ import annotations

import numpy as np

from wmbench.envs.pusht import ACTION_SCALE, ARENA
from wmbench.policies import Policy


class WeakPusher(Policy):
    """Heads for random waypoints scattered around the block, so it keeps pushing it about.

    Every 3-8 steps a new waypoint is drawn from a Gaussian (sd 50 px) around the block's
    origin, kept 60 px inside the walls; the action points at it (saturating at 1) with a little Gaussian noise. It moves the
    block a lot and rarely solves the task: diverse contact-rich data, not demonstrations.
    """

    def reset(self):
        self._waypoint = None
        self._steps_left = 0

    def act(self):
        state = self.env.get_state()
        if self._steps_left <= 0:
            # Waypoints stay 60 px inside the arena: the kinematic pusher could squeeze the block through a wall.
            self._waypoint = np.clip(state[2:4] + self.rng.normal(0.0, 50.0, 2), 60.0, ARENA - 60.0)
            self._steps_left = int(self.rng.integers(3, 9))
        self._steps_left -= 1
        action = (self._waypoint - state[0:2]) / ACTION_SCALE + self.rng.normal(0.0, 0.1, 2)
        return np.clip(action, -1.0, 1.0).astype(np.float32)
