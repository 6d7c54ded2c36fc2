"""Cube: ogbench's physics, the success rule, resets, the oracle data policy, variations, perturbations."""

from __future__ import annotations

import wmbench  # noqa: F401, I001  (first: its headless defaults must be set before ogbench loads MuJoCo)

import numpy as np
import pytest
from ogbench.manipspace.envs.cube_env import CubeEnv as OgbenchCubeEnv

from wmbench.envs.cube import CUBE_POS, CUBE_POSE, MIN_TARGET_DISTANCE, NQ, NV, SUCCESS_DISTANCE, TARGET, CubeEnv
from wmbench.policies import make_policy


@pytest.fixture(scope="module")
def env():
    return CubeEnv(resolution=48)


def moved_cube(state, offset):
    out = np.array(state, dtype=np.float64)
    out[CUBE_POS] += offset
    return out


def test_steps_are_ogbenchs_cube_single(env):
    reference = OgbenchCubeEnv(env_type="single", mode="data_collection", visualize_info=False)
    reference.reset(seed=0)
    env.reset(seed=1)
    start = env.get_state()
    reference.set_state(start[:NQ], start[NQ : NQ + NV])
    reference.data.mocap_pos[0], reference.data.mocap_quat[0] = start[TARGET][:3], start[TARGET][3:]
    reference.data.qacc_warmstart[:] = 0.0  # as after our set_state: the warm start is history
    for action in np.random.default_rng(1).uniform(-1, 1, (40, 5)):
        env.step(action)
        reference.step(action)
        ours = env.get_state()
        np.testing.assert_array_equal(ours[:NQ], reference.data.qpos)
        np.testing.assert_array_equal(ours[NQ : NQ + NV], reference.data.qvel)


def test_state_layout_matches_the_model(env):
    model = env.sim.model
    joints = [model.joint(i).name.split("/")[-1].removesuffix("_joint") for i in range(model.njnt - 1)]
    assert joints == [name for name in env.state_names[: len(joints)]]
    assert len(env.state_names) == model.nq + model.nv + 7 and (model.nq, model.nv) == (NQ, NV)


def test_success_rule_on_hand_built_states(env):
    env.reset(seed=0)
    goal = env.goal_state
    inside, outside = 0.99 * SUCCESS_DISTANCE, 1.01 * SUCCESS_DISTANCE
    assert env.success_rule(moved_cube(goal, [inside, 0, 0]), goal)
    assert env.success_rule(moved_cube(goal, np.array([1, 1, 1]) * inside / np.sqrt(3)), goal)  # a 3-D distance
    assert not env.success_rule(moved_cube(goal, [0, outside, 0]), goal)
    assert not env.success_rule(moved_cube(goal, [0, 0, outside]), goal)  # lifted above the goal is not there
    arm_elsewhere = env.get_state()
    arm_elsewhere[CUBE_POSE] = goal[CUBE_POSE]
    assert env.success_rule(arm_elsewhere, goal)  # only the cube counts, not the arm


def test_sampled_starts_rest_on_the_floor_away_from_the_target(env):
    for seed in range(10):
        obs, info = env.reset(seed=seed)
        state, goal = env.get_state(), info["goal_state"]
        assert state[CUBE_POS][2] == pytest.approx(0.02) and goal[CUBE_POS][2] == pytest.approx(0.02)
        assert np.linalg.norm(state[CUBE_POS][:2] - state[TARGET][:2]) >= MIN_TARGET_DISTANCE
        np.testing.assert_array_equal(goal[CUBE_POSE], state[TARGET])  # the goal: the cube on the target
        assert not info["success"]
    z = [env.step(np.zeros(5))[0]["state"][CUBE_POS][2] for _ in range(5)]
    np.testing.assert_allclose(z, 0.02, atol=1e-3)  # a resting cube stays put


def test_the_oracle_policy_reaches_the_goal_in_most_episodes():
    env = wmbench.make("cube", obs_type="state", resolution=16)
    successes = 0
    for seed in range(20):
        env.reset(seed=seed)
        policy = make_policy(env, "oracle", seed=seed)
        policy.reset()
        for _ in range(200):
            _, _, terminated, truncated, info = env.step(policy.act())
            if terminated or truncated:
                break
        successes += info["success"]
    assert successes > 10, f"the oracle reached the goal in {successes} of 20 episodes"


def test_the_oracle_is_seeded_and_leaves_numpys_global_generator_alone():
    env = wmbench.make("cube", obs_type="state", resolution=16)
    runs = []
    for _ in range(2):
        env.reset(seed=3)
        np.random.seed(123)
        policy = make_policy(env, "oracle", seed=5)
        policy.reset()
        runs.append([policy.act() for _ in range(30)])
        assert np.random.randint(10**9) == np.random.RandomState(123).randint(10**9)
    np.testing.assert_array_equal(runs[0], runs[1])


def test_the_target_marker_is_hidden_unless_asked():
    hidden, shown = CubeEnv(resolution=64), CubeEnv(resolution=64, variation="visible_target")
    for e in (hidden, shown):
        e.reset(seed=0)
    state = hidden.get_state()
    elsewhere = state.copy()
    elsewhere[TARGET][:2] += [0.1, 0.1]
    np.testing.assert_array_equal(hidden.render_state(state), hidden.render_state(elsewhere))
    assert not np.array_equal(shown.render_state(state), shown.render_state(elsewhere))


def test_cube_size_changes_the_physics_and_the_resting_height():
    large = CubeEnv(resolution=32, variation="large_cube")
    standard = CubeEnv(resolution=32)
    model, reference = large.sim.model, standard.sim.model
    np.testing.assert_allclose(model.geom("object_0").size, 0.025)
    assert model.body("object_0").mass[0] == pytest.approx(reference.body("object_0").mass[0] * (5 / 4) ** 3)
    large.reset(seed=0)
    assert large.get_state()[CUBE_POS][2] == pytest.approx(0.025)
    z = [large.step(np.zeros(5))[0]["state"][CUBE_POS][2] for _ in range(5)]
    np.testing.assert_allclose(z, 0.025, atol=1e-3)
    large.reset(seed=0, options={"variation": {"cube_size": 0.04}})  # back to the standard scene for one episode
    np.testing.assert_allclose(large.sim.model.geom("object_0").size, 0.02)


def test_visual_factors_change_the_picture_and_not_the_state():
    standard = CubeEnv(resolution=48)
    obs, _ = standard.reset(seed=0)
    for variation in ({"light_intensity": 0.5}, {"camera_offset": (0.0, 0.05, 0.0)}, {"floor_color": "tan"}, {"cube_color": "blue"}):
        other = CubeEnv(resolution=48, variation=variation)
        varied, _ = other.reset(seed=0)
        np.testing.assert_array_equal(varied["state"], obs["state"])
        assert not np.array_equal(varied["pixels"], obs["pixels"]), variation


def test_teleport_moves_the_cube_or_the_arm(env):
    env.reset(seed=4)
    before = env.get_state()
    env.perturb("teleport")
    after = env.get_state()
    assert np.linalg.norm(after[CUBE_POS][:2] - before[CUBE_POS][:2]) >= 0.1
    assert after[CUBE_POS][2] == pytest.approx(0.02)
    np.testing.assert_array_equal(after[:6], before[:6])  # the arm did not move

    _, info = env.perturb("teleport", target="arm")
    jumped = env.get_state()
    assert np.abs(jumped[:6] - after[:6]).max() > 0.05 and info["perturbation"]["target"] == "arm"
    np.testing.assert_array_equal(jumped[CUBE_POSE], after[CUBE_POSE])

    env.perturb("teleport", position=(0.4, 0.1))
    np.testing.assert_allclose(env.get_state()[CUBE_POS], [0.4, 0.1, 0.02])
    with pytest.raises(ValueError, match="'cube' or the 'arm'"):
        env.perturb("teleport", target="floor")
    with pytest.raises(ValueError, match="position"):
        env.perturb("teleport", position=(0.4, 0.1, 0.0))


def test_recolor_repaints_the_floor_or_the_cube(env):
    obs, _ = env.reset(seed=0)
    floor, info = env.perturb("recolor", target="floor", color=(200, 180, 120))
    assert info["perturbation"]["after"] == (200, 180, 120)
    assert floor["pixels"][-5:].mean() > obs["pixels"][-5:].mean() + 50  # the near floor is much lighter
    np.testing.assert_array_equal(floor["state"], obs["state"])


def test_bad_variations_are_refused():
    with pytest.raises(ValueError, match="cube_size"):
        CubeEnv(variation={"cube_size": 0.2})
    with pytest.raises(ValueError, match="camera_offset"):
        CubeEnv(variation={"camera_offset": (0.5, 0.0, 0.0)})
    with pytest.raises(ValueError, match="camera_offset"):
        CubeEnv(variation={"camera_offset": "left"})
