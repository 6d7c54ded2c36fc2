"""Reacher: dm_control's physics and pictures, the goal-reaching rule, hidden target, variations."""

from __future__ import annotations

import wmbench  # noqa: F401, I001  (first: its headless defaults must be set before dm_control loads MuJoCo)

import numpy as np
import pytest
from dm_control import suite

from wmbench.envs.reacher import ACTION_REPEAT, SUCCESS_TOLERANCE, ReacherEnv, fingertip


@pytest.fixture(scope="module")
def env():
    return ReacherEnv(resolution=64)


def state(shoulder, wrist, goal_shoulder=0.0, goal_wrist=0.0, velocities=(0.0, 0.0)):
    return np.array([shoulder, wrist, *velocities, goal_shoulder, goal_wrist])


def test_steps_are_dm_controls_reacher_with_action_repeat_2(env):
    reference = suite.load("reacher", "easy", task_kwargs={"random": 0})
    reference.reset()
    env.reset(seed=0)
    start = env.get_state()
    with reference.physics.reset_context():
        reference.physics.data.qpos[:] = start[0:2]
        reference.physics.data.qvel[:] = start[2:4]
    actions = np.random.default_rng(0).uniform(-1, 1, (60, 2))
    for action in actions:
        ours = env.step(action)[0]["state"]
        for _ in range(ACTION_REPEAT):
            reference.step(action)
        theirs = np.r_[reference.physics.data.qpos, reference.physics.data.qvel]
        theirs[0] = (theirs[0] + np.pi) % (2 * np.pi) - np.pi  # we keep the free shoulder in [-pi, pi)
        np.testing.assert_allclose(ours[0:4], theirs, rtol=0, atol=1e-5)  # float32 observation


def test_with_dm_controls_render_settings_the_frame_is_dm_controls_frame():
    """Shadows, multisampling and reflection on: our renderer draws exactly what dm_control draws."""
    full = ReacherEnv(resolution=(48, 64), shadows=True, multisample=True, reflection=True, variation="visible_target")
    full.reset(seed=1)
    physics = full.physics
    physics.named.model.geom_pos["target", :2] = fingertip(*full.goal_state[4:6])  # where our marker is drawn
    physics.forward()
    theirs = physics.render(48, 64, camera_id="fixed")
    np.testing.assert_array_equal(full.render(), theirs)


def test_fast_settings_draw_the_arm_on_the_same_pixels():
    """Without shadows, multisampling and reflection the arm covers the same pixels; only edges differ."""
    green = {"link_color": (0, 255, 0)}
    fast = ReacherEnv(resolution=192, variation=green)
    full = ReacherEnv(resolution=192, shadows=True, multisample=True, reflection=True, variation=green)
    link = lambda frame: (np.diff(frame.astype(int), axis=2) * [1, -1] > 60).all(axis=2)  # noqa: E731  green-dominant
    for seed in range(3):
        s = fast.reset(seed=seed)[0]["state"].astype(np.float64)
        a, b = link(fast.render_state(s)), link(full.render_state(s))
        either = a | b
        interior = either.copy()  # pixels whose four neighbours are link pixels too
        interior[1:-1, 1:-1] &= either[:-2, 1:-1] & either[2:, 1:-1] & either[1:-1, :-2] & either[1:-1, 2:]
        interior[[0, -1], :] = interior[:, [0, -1]] = False
        assert interior.sum() > 50 and np.all((a & b)[interior])


def test_success_rule_on_hand_built_states(env):
    goal = state(1.0, -0.5)
    just_in, just_out = 0.99 * SUCCESS_TOLERANCE, 1.01 * SUCCESS_TOLERANCE
    assert env.success_rule(state(1.0 + just_in, -0.5 - just_in), goal)
    assert not env.success_rule(state(1.0 + just_out, -0.5), goal)
    assert not env.success_rule(state(1.0, -0.5 + just_out), goal)
    # the goal's own goal fields and the velocities do not enter the rule
    assert env.success_rule(state(1.0, -0.5, goal_shoulder=3.0, velocities=(4.0, -4.0)), goal)
    # angles compare modulo 2 pi: -pi + 0.01 and pi - 0.01 are 0.02 apart
    assert env.success_rule(state(-np.pi + 0.01, 0.0), state(np.pi - 0.01, 0.0))


def test_reset_info_reports_a_start_at_the_goal(env):
    _, info = env.reset(options={"state": state(0.3, 0.2, 0.3, 0.2), "goal_state": state(0.3 + 0.03, 0.2, 0.3, 0.2)})
    assert info["success"]
    _, info = env.reset(options={"state": state(0.3, 0.2), "goal_state": state(0.5, 0.2)})
    assert not info["success"]


def test_the_hidden_target_is_absent_from_the_pixels():
    green = {"target_color": (0, 255, 0)}  # a color nothing else in the scene has
    hidden, shown = ReacherEnv(resolution=64, variation=green), ReacherEnv(resolution=64, variation={**green, "target_visible": True})
    for env in (hidden, shown):
        env.reset(seed=0)
    arm = state(0.4, 1.2)
    for goal in ((2.0, -1.0), (-2.5, 0.7)):
        far_goal = arm.copy()
        far_goal[4:6] = goal
        assert not np.array_equal(shown.render_state(arm), shown.render_state(far_goal))
        np.testing.assert_array_equal(hidden.render_state(arm), hidden.render_state(far_goal))
    greenish = lambda frame: ((np.diff(frame.astype(int), axis=2) * [1, -1] > 60).all(axis=2)).sum()  # noqa: E731  g - r, g - b > 60
    assert greenish(shown.render_state(far_goal)) > 10 and greenish(hidden.render_state(far_goal)) == 0


def test_the_target_marker_sits_on_the_fingertip_of_the_goal_configuration():
    env = ReacherEnv(resolution=64)
    env.reset(seed=0)
    physics = env.physics
    for shoulder, wrist in ((0.3, -1.0), (2.5, 2.0)):
        env.set_state(state(shoulder, wrist))
        np.testing.assert_allclose(fingertip(shoulder, wrist), physics.named.data.geom_xpos["finger", :2], atol=1e-12)


def test_the_free_shoulder_angle_stays_in_range():
    env = ReacherEnv(resolution=16, obs_type="state", terminate_on_success=False)
    env.reset(seed=0)
    shoulders = [env.step(np.array([1.0, 0.0]))[0]["state"][0] for _ in range(400)]
    assert np.all((np.array(shoulders) >= -np.pi) & (np.array(shoulders) < np.pi))
    assert np.ptp(np.unwrap(shoulders)) > 4 * np.pi  # it really turned round more than twice


def test_link_densities_change_the_dynamics_and_nothing_else():
    actions = np.random.default_rng(3).uniform(-1, 1, (20, 2))
    finals = {}
    for preset in ("standard", "heavy_hand", "light_arm"):
        env = ReacherEnv(resolution=16, variation=preset, terminate_on_success=False)
        env.reset(seed=3)
        finals[preset] = [env.step(a)[0]["state"] for a in actions][-1]
    assert not np.allclose(finals["standard"], finals["heavy_hand"])
    assert not np.allclose(finals["standard"], finals["light_arm"])
    heavy = ReacherEnv(resolution=16, variation="heavy_hand")
    light = ReacherEnv(resolution=16)
    hand = heavy.physics.model.body("hand").id
    assert heavy.physics.model.body_mass[hand] == pytest.approx(3 * light.physics.model.body_mass[hand])


def test_floor_color_tints_the_checkered_floor():
    env = ReacherEnv(resolution=64, variation={"floor_color": (200, 120, 40)})
    frame = env.reset(seed=0)[0]["pixels"]
    corner = frame[4:14, 4:14].reshape(-1, 3).mean(axis=0)  # floor only, away from the arm and walls
    standard = ReacherEnv(resolution=64).reset(seed=0)[0]["pixels"][4:14, 4:14].reshape(-1, 3).mean(axis=0)
    assert corner[0] > corner[1] > corner[2]  # the requested hue, where the standard floor is blue
    assert standard[2] > standard[1] > standard[0]


def test_teleport_jumps_the_arm_and_keeps_the_velocities(env):
    env.reset(seed=0)
    for _ in range(5):
        env.step(np.array([1.0, -1.0]))
    before = env.get_state()
    obs, info = env.perturb("teleport")
    after = env.get_state()
    assert np.abs(np.angle(np.exp(1j * (after[0:2] - before[0:2])))).max() >= 0.5
    np.testing.assert_array_equal(after[2:6], before[2:6])
    assert info["perturbation"]["after"] == after[0:2].tolist()
    env.perturb("teleport", joints=(0.1, 0.2))
    np.testing.assert_array_equal(env.get_state()[0:2], [0.1, 0.2])
    with pytest.raises(ValueError, match="teleports only the 'arm'"):
        env.perturb("teleport", target="target")


def test_bad_variations_are_refused():
    with pytest.raises(ValueError, match="arm_density"):
        ReacherEnv(variation={"arm_density": -1})
    with pytest.raises(ValueError, match="link_color"):
        ReacherEnv(variation={"link_color": "not-a-color"})
    with pytest.raises(ValueError, match="shadows"):
        ReacherEnv(shadows="yes")
