"""Cube data policy: ogbench's scripted cube oracle with Gaussian action noise, as in its datasets."""

from __future__ import annotations

import numpy as np
from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle

from wmbench.envs.cube import CUBE_AREA, CUBE_POS, CUBE_POSE, MIN_TARGET_DISTANCE, quaternion_yaw
from wmbench.policies import Policy


class NoisyOracle(Policy):
    """ogbench's ``CubeMarkovOracle`` (move above the cube, descend, grasp, carry, place, retreat)
    plus independent Gaussian noise of sd 0.1 per action component (``noise_sd``, the noise of
    ogbench's cube datasets), clipped to [-1, 1].

    It first carries the cube to the goal state's cube pose. Once it has placed it there and
    retreated, it draws a new aim (a resting pose in the cube area, at least 8 cm from the cube)
    and carries the cube on, as ogbench's play datasets do, so a long episode keeps moving the
    cube instead of hovering. The oracle reads the arm and cube from the simulator at every
    step, so it recovers from noise and perturbations. ``min_norm=0.4`` is ogbench's default.
    """

    noise_sd = 0.1

    def __init__(self, env, seed=None):
        super().__init__(env, seed)
        self.oracle = CubeMarkovOracle(env=self.env.sim, min_norm=0.4)

    def reset(self):
        goal = self.env.goal_state
        self._aim_pos, self._aim_yaw = goal[CUBE_POS], quaternion_yaw(goal[CUBE_POSE][3:])
        self._reset_oracle()

    def _reset_oracle(self):
        # The oracle draws the pose it retreats to from numpy's global generator: seed it from
        # ours for this one call and put the caller's global state back.
        saved = np.random.get_state()
        np.random.seed(int(self.rng.integers(2**32)))
        try:
            self.oracle.reset(None, None)
        finally:
            np.random.set_state(saved)

    def _new_aim(self, cube_pos: np.ndarray) -> None:
        while True:
            xy = self.rng.uniform(*CUBE_AREA)
            if np.linalg.norm(xy - cube_pos[:2]) >= MIN_TARGET_DISTANCE:
                break
        self._aim_pos = np.array([*xy, self._aim_pos[2]])
        self._aim_yaw = self.rng.uniform(-np.pi, np.pi)
        self._reset_oracle()

    def act(self):
        if self.oracle._done:  # placed and retreated: carry the cube somewhere new
            self._new_aim(self.env.get_state()[CUBE_POS])
        info = self.env.sim.compute_ob_info()
        info["privileged/target_block_pos"] = self._aim_pos
        info["privileged/target_block_yaw"] = np.array([self._aim_yaw])
        action = self.oracle.select_action(None, info)
        return np.clip(action + self.rng.normal(0.0, self.noise_sd, action.shape), -1.0, 1.0).astype(np.float32)
