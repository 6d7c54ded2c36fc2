"""CLEVRER policies: the passive video, or one random push at the first frame.

The env reads an action only at frame 0 (``object``, ``angle``, ``speed``, ``push``), so a policy
decides once per episode.
"""

from __future__ import annotations

import numpy as np

from wmbench.policies import Policy


class Passive(Policy):
    """No intervention: the video plays out as sampled (the zero action)."""

    def act(self):
        return np.zeros(self.env.action_space.shape, np.float32)


class RandomPush(Policy):
    """At the first frame, push a random object in a random direction at a random speed; then nothing."""

    def reset(self):
        self._pushed = False

    def act(self):
        action = np.zeros(self.env.action_space.shape, np.float32)
        if not self._pushed:
            action[:] = self.rng.uniform(-1.0, 1.0, action.shape)
            action[self.env.action_names.index("push")] = 1.0
            self._pushed = True
        return action
