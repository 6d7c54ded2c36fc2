"""Cube data policy: ogbench's scripted cube oracle with Gaussian action noise, as in its datasets."""

from __future__ import annotations

import numpy as np
from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle

from wmbench.envs.cube import CUBE_POS, CUBE_POSE, quaternion_yaw
from wmbench.policies import Policy


class NoisyOracle(Policy):
    """ogbench's ``CubeMarkovOracle`` (move above the cube, descend, grasp, carry, place, retreat)
    aimed at the goal state's cube pose, plus independent Gaussian noise of sd 0.1 per action
    component (``noise_sd``, the noise of ogbench's cube datasets), clipped to [-1, 1].

    The oracle reads the arm and cube from the simulator at every step, so it recovers from noise
    and perturbations. ``min_norm=0.4`` is ogbench's default for its cube datasets.
    """

    noise_sd = 0.1

    def __init__(self, env, seed=None):
        super().__init__(env, seed)
        self.oracle = CubeMarkovOracle(env=self.env.sim, min_norm=0.4)

    def reset(self):
        # The oracle draws the pose it retreats to from numpy's global generator: seed it from
        # ours for this one call and put the caller's global state back.
        saved = np.random.get_state()
        np.random.seed(int(self.rng.integers(2**32)))
        try:
            self.oracle.reset(None, None)
        finally:
            np.random.set_state(saved)

    def act(self):
        info = self.env.sim.compute_ob_info()
        goal = self.env.goal_state
        info["privileged/target_block_pos"] = goal[CUBE_POS]
        info["privileged/target_block_yaw"] = np.array([quaternion_yaw(goal[CUBE_POSE][3:])])
        action = self.oracle.select_action(None, info)
        return np.clip(action + self.rng.normal(0.0, self.noise_sd, action.shape), -1.0, 1.0).astype(np.float32)
