"""Push-T: success rules on hand-built states, exact placement, reference constants, data policy."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pymunk
import pytest

import wmbench  # noqa: F401  (registers the envs)
from wmbench.envs.pusht import GOAL_ANGLE_TOLERANCE, GOAL_POS_TOLERANCE, tee_boxes, wrap_angle
from wmbench.policies import make_policy

GOAL = np.array([200.0, 300.0, 256.0, 256.0, 0.5, 0.0, 0.0])


def make(**kwargs):
    return gym.make("wmbench/PushT-v0", **{"resolution": 64, **kwargs}).unwrapped


def state_with(agent_dx=0.0, block_dx=0.0, angle=GOAL[4]):
    return GOAL + np.array([agent_dx, 0.0, block_dx, 0.0, angle - GOAL[4], 0.0, 0.0])


@pytest.fixture
def env():
    env = make()
    env.reset(seed=0, options={"goal_state": GOAL})
    return env


@pytest.mark.parametrize(
    "offset, expected",
    [
        (GOAL_POS_TOLERANCE, False),  # exactly at the threshold: the rule is strict
        (GOAL_POS_TOLERANCE - 1e-9, True),
        (GOAL_POS_TOLERANCE + 1e-9, False),
    ],
)
def test_goal_rule_position_threshold(env, offset, expected):
    assert env.success_rule(state_with(block_dx=offset), GOAL) is expected
    assert env.success_rule(state_with(agent_dx=offset), GOAL) is expected


def test_goal_rule_uses_the_joint_four_vector(env):
    # 15 px on the agent and 15 px on the block: each alone passes, the 4-vector norm (21.2) does not.
    assert env.success_rule(state_with(agent_dx=15.0), GOAL)
    assert not env.success_rule(state_with(agent_dx=15.0, block_dx=15.0), GOAL)


@pytest.mark.parametrize(
    "angle_error, expected",
    [
        (GOAL_ANGLE_TOLERANCE, False),
        (GOAL_ANGLE_TOLERANCE - 1e-9, True),
        (-(GOAL_ANGLE_TOLERANCE - 1e-9), True),
        (GOAL_ANGLE_TOLERANCE + 1e-9, False),
        (2 * math.pi, True),  # a full turn is the same pose
        (2 * math.pi + GOAL_ANGLE_TOLERANCE + 1e-9, False),
        (math.pi, False),  # the T has no half-turn symmetry
    ],
)
def test_goal_rule_angle_threshold_modulo_a_full_turn(env, angle_error, expected):
    assert env.success_rule(state_with(angle=GOAL[4] + angle_error), GOAL) is expected


def test_goal_rule_wraps_across_plus_minus_pi(env):
    goal = GOAL.copy()
    goal[4] = math.pi - 0.1
    assert env.success_rule(np.r_[goal[:4], -math.pi + 0.2, 0.0, 0.0], goal)  # 0.3 rad apart across the cut
    assert not env.success_rule(np.r_[goal[:4], -math.pi + 0.3, 0.0, 0.0], goal)  # 0.4 rad > pi/9


def test_coverage_of_hand_built_overlaps():
    env = make(task="coverage")
    goal = np.array([0.0, 0.0, 256.0, 256.0, 0.0, 0.0, 0.0])
    env.reset(seed=0, options={"goal_state": goal})
    area = 120 * 30 + 30 * 90  # crossbar + stem
    for dx in (0.0, 3.0, 10.0, 29.0):
        expected = ((120 - dx) * 30 + (30 - dx) * 90) / area  # both boxes slide along x
        assert env.coverage(goal + [0, 0, dx, 0, 0, 0, 0], goal) == pytest.approx(expected, abs=1e-9)
    # Coverage is 1 - dx / 52.5 here, so success (coverage > 0.95) ends at a shift of 2.625 px.
    assert env.success_rule(goal + [0, 0, 2.625 - 1e-6, 0, 0, 0, 0], goal)
    assert not env.success_rule(goal + [0, 0, 2.625 + 1e-6, 0, 0, 0, 0], goal)
    rotated = goal + [0, 0, 0, 0, math.pi, 0, 0]
    assert env.coverage(rotated, goal) < 0.5


def test_coverage_task_defaults_to_the_reference_goal_pose_and_draws_it():
    env = make(task="coverage")
    _, info = env.reset(seed=0)
    np.testing.assert_allclose(info["goal_state"][2:5], [256, 256, math.pi / 4], rtol=1e-6)
    plain = make()
    plain.reset(seed=0)
    assert not np.array_equal(env.render(), plain.render())  # the green goal T is drawn
    hidden = make(task="coverage", variation={"show_goal_region": False})
    hidden.reset(seed=0, options={"goal_state": info["goal_state"]})
    assert not np.array_equal(env.render(), hidden.render())


def test_set_state_places_the_block_exactly_at_any_angle(env):
    for angle in np.linspace(-math.pi, math.pi, 13, endpoint=False):
        target = np.array([100.0, 120.0, 300.5, 211.25, angle, 3.0, -4.0])
        env.set_state(target)
        np.testing.assert_array_equal(env.get_state(), target)
        assert env._block.position == (300.5, 211.25)


def test_state_round_trip_is_exact_along_long_rollouts():
    env = make(obs_type="state")
    policy = make_policy(env, "weak", seed=0)
    for seed in range(10):
        env.reset(seed=seed)
        policy.reset()
        for _ in range(300):
            env.step(policy.act())
            state = env.get_state()
            env.set_state(state)
            assert env.get_state().tobytes() == state.tobytes()


def test_wrap_angle_leaves_angles_in_range_untouched():
    for angle in np.random.default_rng(0).uniform(-math.pi, math.pi, 1000):
        assert wrap_angle(angle) == angle
    assert wrap_angle(math.pi) == -math.pi
    assert -math.pi <= wrap_angle(7 * math.pi + 1e-12) < math.pi


def test_reference_constants():
    env = make()
    env.reset(seed=0)
    space, block = env._space, env._block
    assert space.gravity == (0, 0) and space.damping == 0.0
    assert all(shape.friction == 0.0 for shape in space.shapes)
    crossbar, stem = tee_boxes(30.0)
    assert block.mass == 1.0
    assert block.moment == pytest.approx(2 * pymunk.moment_for_poly(1.0, crossbar))  # the reference's inertia
    assert block.center_of_gravity == pytest.approx((0.0, 45.0))  # mean of the boxes' centroids (0,15), (0,75)
    assert env._agent.body_type == pymunk.Body.KINEMATIC and list(env._agent.shapes)[0].radius == 15.0


def test_relative_action_drives_the_pd_target_100_px_away(env):
    env.set_state(np.array([100.0, 200.0, 400.0, 400.0, 0.0, 0.0, 0.0]))
    path = []
    for _ in range(5):
        env.step(np.array([0.5, -0.25]))  # target: position + (50, -25)
        path.append(env.get_state()[:2])
    steps = np.diff(np.r_[[[100.0, 200.0]], path], axis=0)
    assert np.all(steps[:, 0] > 0) and np.all(steps[:, 0] < 50)  # chases a target 50 px ahead, never reaches it
    np.testing.assert_allclose(steps[:, 1] / steps[:, 0], -0.5, rtol=1e-6)  # along the commanded direction
    env.set_state(np.array([100.0, 100.0, 400.0, 400.0, 0.0, 0.0, 0.0]))
    for _ in range(40):
        env.step(np.zeros(2))
    np.testing.assert_array_equal(env.get_state()[:2], [100.0, 100.0])  # zero action holds position


def test_targets_are_clipped_to_the_arena(env):
    env.set_state(np.array([500.0, 20.0, 250.0, 250.0, 0.0, 0.0, 0.0]))
    for _ in range(60):
        env.step(np.array([1.0, -1.0]))
    x, y = env.get_state()[:2]
    assert x == pytest.approx(512.0, abs=0.5) and y == pytest.approx(0.0, abs=0.5)


def test_block_stops_as_soon_as_it_is_not_pushed(env):
    # damping 0 zeroes every dynamic body's velocity each physics step: no sliding.
    env.set_state(np.array([150.0, 290.0, 256.0, 256.0, 0.0, 0.0, 0.0]))
    for _ in range(5):
        env.step(np.array([1.0, 0.0]))
    env.set_state(np.r_[30.0, 30.0, env.get_state()[2:5], 0.0, 0.0])
    before = env.get_state()
    for _ in range(5):
        env.step(np.zeros(2))
    np.testing.assert_array_equal(env.get_state()[2:5], before[2:5])


def test_weak_policy_keeps_pushing_the_block():
    env = make(obs_type="state")
    policy = make_policy(env, "weak", seed=0)
    displaced = []
    for seed in range(8):
        obs, _ = env.reset(seed=seed)
        policy.reset()
        start = obs["state"][2:4].copy()
        for _ in range(100):
            obs, *_ = env.step(policy.act())
        displaced.append(np.linalg.norm(obs["state"][2:4] - start))
    assert np.median(displaced) > 50, displaced


def ink(frame):
    """How much of each pixel a black shape covers on a white background."""
    return 1.0 - frame.astype(np.float64).mean(axis=-1) / 255.0


@pytest.mark.parametrize("resolution", [64, 96, 224, (80, 120)])
def test_pixels_show_positions_and_sizes_to_a_fraction_of_a_pixel(resolution):
    black = {"agent_color": (0, 0, 0), "block_color": (0, 0, 0), "wall_color": "white"}
    env = make(resolution=resolution, variation=black)
    env.reset(seed=0)
    height, width = env.height, env.width
    px, py = 512 / width, 512 / height
    rows, cols = np.indices((height, width)) + 0.5
    rng = np.random.default_rng(0)
    for _ in range(10):
        x, y = rng.uniform(150, 360, 2)
        weight = ink(env.render_state([x, y, -300.0, -300.0, 0.0, 0.0, 0.0]))  # the pusher alone
        centroid = ((weight * cols).sum() / weight.sum() * px, (weight * rows).sum() / weight.sum() * py)
        assert abs(centroid[0] - x) < px / 20 and abs(centroid[1] - y) < py / 20
        assert weight.sum() * px * py == pytest.approx(math.pi * 15.0**2, rel=0.04)

        weight = ink(env.render_state([-300.0, -300.0, x, y, rng.uniform(-math.pi, math.pi), 0.0, 0.0]))  # the T alone
        outlined_area = 124 * 34 + 34 * 94 - 34 * 4  # both boxes grown by the 2-unit outline, overlap counted once
        assert weight.sum() * px * py == pytest.approx(outlined_area, rel=0.03)
