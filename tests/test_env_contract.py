"""The environment contract (DESIGN.md, "Contracts"), checked on every registered environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import load_env_creator
from gymnasium.utils.env_checker import check_env

import wmbench
from wmbench.envs import ENVS

ENV_IDS = [entry.id for entry in ENVS.values()]
PRESETS = [(e.id, preset) for e in ENVS.values() for preset in load_env_creator(e.entry_point).PRESETS]


def make(env_id, **kwargs):
    return gym.make(env_id, **{"resolution": 48, **kwargs}).unwrapped


def seeded_actions(env, n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *env.action_space.shape))


@pytest.mark.parametrize("env_id, preset", PRESETS)
def test_check_env_passes_on_every_variation_preset(env_id, preset):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker reports most problems as warnings
        check_env(make(env_id, variation=preset), skip_render_check=False)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_observation_keys_shapes_and_dtypes(env_id):
    env = make(env_id, resolution=(40, 56))
    obs, info = env.reset(seed=0)
    assert set(obs) == {"pixels", "state", "proprio"}
    assert obs["pixels"].shape == (40, 56, 3) and obs["pixels"].dtype == np.uint8
    assert obs["state"].dtype == np.float32 and obs["state"].shape == (len(env.state_names),)
    assert obs["proprio"].dtype == np.float32 and obs["proprio"].shape == (len(env.proprio_names),)
    assert info["goal"].shape == (40, 56, 3) and isinstance(info["success"], bool)
    assert obs in env.observation_space

    state_only = make(env_id, obs_type="state")
    assert set(state_only.reset(seed=0)[0]) == {"state"}
    assert set(state_only.observation_space.spaces) == {"state"}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_default_resolution_is_224(env_id):
    obs, _ = gym.make(env_id).reset(seed=0)
    assert obs["pixels"].shape == (224, 224, 3)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_state_round_trip_is_exact_and_defines_the_future(env_id):
    env = make(env_id)
    env.reset(seed=3)
    for action in seeded_actions(env, 15):
        env.step(action)
    state = env.get_state()
    env.set_state(state)
    assert env.get_state().tobytes() == state.tobytes()

    goal = env.goal_state
    actions = seeded_actions(env, 20, seed=1)
    after_set = [env.step(a)[0]["pixels"].tobytes() for a in actions]
    fresh = make(env_id)
    fresh.reset(seed=99, options={"state": state, "goal_state": goal})
    after_reset = [fresh.step(a)[0]["pixels"].tobytes() for a in actions]
    assert after_set == after_reset


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_goal_image_is_the_rendered_goal_state(env_id):
    env = make(env_id)
    _, info = env.reset(seed=5)
    assert info["goal_state"].dtype == np.float64 and np.array_equal(info["goal_state"], env.goal_state)
    other = make(env_id)
    obs, _ = other.reset(options={"state": info["goal_state"], "goal_state": info["goal_state"]})
    np.testing.assert_array_equal(info["goal"], obs["pixels"])
    np.testing.assert_array_equal(info["goal"], env.render_state(info["goal_state"]))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_start_at_goal_is_reported_and_terminates(env_id):
    env = make(env_id)
    _, info = env.reset(seed=0)
    goal = info["goal_state"]
    _, info = env.reset(options={"state": goal, "goal_state": goal})
    assert info["success"]
    _, reward, terminated, _, info = env.step(np.zeros(env.action_space.shape))
    assert info["success"] and terminated and reward > 0

    patient = make(env_id, terminate_on_success=False)
    patient.reset(options={"state": goal, "goal_state": goal})
    assert not patient.step(np.zeros(env.action_space.shape))[2]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_goal_cost_ranks_the_goal_below_a_random_start(env_id):
    """The oracle planner's cost: finite, non-negative, and lower at the goal than at a sampled start."""
    env = make(env_id, obs_type="state")
    for seed in range(5):
        _, info = env.reset(seed=seed)
        start, goal = env.get_state(), info["goal_state"]
        at_start, at_goal = env.goal_cost(start, goal), env.goal_cost(goal, goal)
        assert np.isfinite(at_start) and 0 <= at_goal < at_start


# A seeded rollout's observation bytes, hashed; run here and in fresh interpreters.
DIGEST = """
import hashlib, gymnasium as gym, numpy as np, wmbench
def rollout_digest(env_id, seed):
    env = gym.make(env_id, resolution=48).unwrapped
    obs, info = env.reset(seed=seed)
    digest = hashlib.sha256(info["goal"].tobytes())
    for action in np.random.default_rng(seed).uniform(-1, 1, (30, *env.action_space.shape)):
        digest.update(b"".join(obs[k].tobytes() for k in sorted(obs)))
        obs = env.step(action)[0]
    return digest.hexdigest()
"""


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_and_actions_give_identical_bytes_across_processes(env_id):
    namespace = {}
    exec(DIGEST, namespace)
    digests = {namespace["rollout_digest"](env_id, 7)}
    for hash_seed in ("1", "2"):  # fresh interpreters with different hash seeds
        code = DIGEST + f"print(rollout_digest({env_id!r}, 7))"
        env_vars = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_vars, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1
    assert namespace["rollout_digest"](env_id, 8) not in digests  # another seed is another episode


BAD_ACTIONS = {
    "too long": (lambda dim: np.zeros(dim + 1), "shape"),
    "batched": (lambda dim: np.zeros((1, dim)), "shape"),
    "nan": (lambda dim: np.r_[np.nan, np.zeros(dim - 1)], "finite"),
    "inf": (lambda dim: np.r_[np.inf, np.zeros(dim - 1)], "finite"),
    "text": (lambda dim: "left", "numeric"),
}


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("kind", BAD_ACTIONS)
def test_bad_actions_raise_a_clear_error(env_id, kind):
    env = make(env_id)
    env.reset(seed=0)
    build, message = BAD_ACTIONS[kind]
    with pytest.raises(ValueError, match=message):
        env.step(build(env.action_space.shape[0]))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_out_of_range_actions_are_clipped(env_id):
    env, twin = make(env_id), make(env_id)
    env.reset(seed=0)
    twin.reset(seed=0)
    big = np.full(env.action_space.shape, 7.0)
    with pytest.warns(UserWarning, match="clipping"):
        clipped = env.step(big)[0]["state"]
    np.testing.assert_array_equal(clipped, twin.step(np.ones_like(big))[0]["state"])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_bad_options_and_arguments_raise_a_clear_error(env_id):
    env = make(env_id)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.zeros(env.action_space.shape))
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"start": [0, 0]})
    with pytest.raises(ValueError, match="shape"):
        env.reset(options={"state": [1.0]})
    with pytest.raises(ValueError, match="finite"):
        env.reset(options={"goal_state": np.full(len(env.state_names), np.nan)})
    with pytest.raises(ValueError, match="unknown variation factor"):
        env.reset(options={"variation": {"no_such_factor": 1}})
    with pytest.raises(ValueError, match="unknown variation preset"):
        make(env_id, variation="no_such_preset")
    with pytest.raises(ValueError, match="resolution"):
        make(env_id, resolution=0)
    with pytest.raises(ValueError, match="obs_type"):
        make(env_id, obs_type="depth")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown perturbation"):
        env.perturb("explode")


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_default_variation_is_the_standard_env(env_id):
    frames = []
    for variation in (None, {}, "standard"):
        env = make(env_id, variation=variation)
        frames.append(env.reset(seed=4)[0]["pixels"])
    np.testing.assert_array_equal(frames[0], frames[1])
    np.testing.assert_array_equal(frames[0], frames[2])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_variation_lasts_one_episode(env_id):
    env = make(env_id)
    standard = env.reset(seed=4)[0]["pixels"]
    recolored = env.reset(seed=4, options={"variation": "recolored"})[0]["pixels"]
    assert not np.array_equal(standard, recolored)
    np.testing.assert_array_equal(env.reset(seed=4)[0]["pixels"], standard)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_perturbations_teleport_moves_and_recolor_repaints(env_id):
    env = make(env_id)
    obs, _ = env.reset(seed=2)
    obs_t, info = env.perturb("teleport")
    assert info["perturbation"]["kind"] == "teleport"
    assert not np.array_equal(obs["state"], obs_t["state"])

    obs_c, info = env.perturb("recolor")
    assert info["perturbation"]["before"] != info["perturbation"]["after"]
    np.testing.assert_array_equal(obs_t["state"], obs_c["state"])
    assert not np.array_equal(obs_t["pixels"], obs_c["pixels"])


def test_gym_make_by_id_and_by_module_prefix_in_a_fresh_process():
    code = (
        "import gymnasium as gym, os;"
        "env = gym.make('wmbench:wmbench/PushT-v0', resolution=32);"
        "obs, info = env.reset(seed=0);"
        "print(obs['pixels'].shape, os.environ['MUJOCO_GL'], os.environ['SDL_VIDEODRIVER'])"
    )
    env_vars = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "SDL_VIDEODRIVER", "SDL_AUDIODRIVER")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_vars, check=True)
    assert out.stdout.split() == ["(32,", "32,", "3)", "egl", "dummy"]


def test_headless_defaults_never_override_the_user():
    code = "import wmbench, os, json; print(json.dumps([os.environ[k] for k in ('MUJOCO_GL', 'SDL_VIDEODRIVER', 'SDL_AUDIODRIVER')]))"
    env_vars = {**os.environ, "MUJOCO_GL": "osmesa", "SDL_VIDEODRIVER": "x11"}
    env_vars.pop("SDL_AUDIODRIVER", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_vars, check=True)
    assert json.loads(out.stdout) == ["osmesa", "x11", "dummy"]


def test_short_names_and_make():
    assert wmbench.env_id("pusht") == wmbench.env_id("PushT") == wmbench.env_id("wmbench/PushT-v0") == "wmbench/PushT-v0"
    assert wmbench.make("tworoom", resolution=32).reset(seed=0)[0]["pixels"].shape == (32, 32, 3)
    with pytest.raises(ValueError, match="unknown environment"):
        wmbench.env_id("cartpole")
