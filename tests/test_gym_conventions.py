"""gymnasium's conventions, kept by every registered environment.

Async vector envs with gymnasium's default start method, copies (``copy.deepcopy``, ``pickle``)
with the original's future, ``render_fps`` from the step's duration, ``obs_type="pixels"`` as
the image itself (gymnasium's image wrappers), and ``reward_threshold`` in the registration.
Pictures are tiny: MuJoCo draws on the CPU here.
"""

from __future__ import annotations

import copy
import os
import pickle
import signal
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers import GrayscaleObservation, ResizeObservation

import wmbench  # noqa: F401  (registers the envs)
from wmbench.envs import ENVS
from wmbench.policies import make_policy

ENV_IDS = [entry.id for entry in ENVS.values()]
SHORT = {entry.id: entry.short_name for entry in ENVS.values()}
CHILD_TIMEOUT = 240  # s: a child that hangs (a fork after OpenGL started) fails its test instead of the suite


def run_child(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter; on a timeout, its whole process group (vector env workers too) is killed."""
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = child.communicate(timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        pytest.fail(f"hung for {CHILD_TIMEOUT} s:\n{code}")
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


# ---------------------------------------------------------------------- async vector envs
ASYNC_VECTOR = """
import gymnasium as gym, numpy as np, wmbench
env_id = {env_id!r}
vector = gym.make_vec(env_id, num_envs=2, vectorization_mode="async", resolution=16)  # gymnasium's default: fork
obs, _ = vector.reset(seed=[3, 4])
action = np.full(vector.single_action_space.shape, 0.5, np.float32)
stepped = vector.step(np.stack([-action, action]))[0]
vector.close()

alone = gym.make(env_id, resolution=16)
first, _ = alone.reset(seed=4)
second = alone.step(action)[0]
for key in first:
    assert obs[key].shape == (2, *first[key].shape), key
    assert obs[key][1].tobytes() == first[key].tobytes(), key  # the worker's env is the env, byte for byte
    assert stepped[key][1].tobytes() == second[key].tobytes(), key
assert obs["pixels"][0].tobytes() != obs["pixels"][1].tobytes()  # two seeds, two episodes
print("OK")
"""


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_async_vector_env_works_with_the_default_start_method(env_id):
    out = run_child(ASYNC_VECTOR.format(env_id=env_id))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-1] == "OK"


FORK_AFTER_A_FRAME = """
import gymnasium as gym, wmbench
gym.make("wmbench/Reacher-v0", resolution=16).reset(seed=0)  # this process draws a frame: OpenGL is up
try:
    gym.make_vec("wmbench/Reacher-v0", num_envs=2, vectorization_mode="async", resolution=16).reset(seed=0)
except RuntimeError as error:
    print("refused:", error)
spawned = gym.make_vec("wmbench/Reacher-v0", num_envs=2, vectorization_mode="async", vector_kwargs={"context": "spawn"}, resolution=16)
print("spawned:", spawned.reset(seed=0)[0]["pixels"].shape)
spawned.close()
"""


def test_forking_after_a_frame_is_a_clear_error_and_spawn_works():
    out = run_child(FORK_AFTER_A_FRAME)
    assert out.returncode == 0, out.stderr[-3000:]
    refused = next(line for line in out.stdout.splitlines() if line.startswith("refused:"))
    assert "forked" in refused and "vector_kwargs={'context': 'spawn'}" in refused
    assert "spawned: (2, 16, 16, 3)" in out.stdout


# ---------------------------------------------------------------------- copies
COPIES = {"deepcopy": copy.deepcopy, "pickle": lambda env: pickle.loads(pickle.dumps(env))}
# env -> (make arguments, steps before the copy, steps compared after it): long enough for contacts
DRIVES = {
    "pusht": ({}, 25, 15),
    "tworoom": ({}, 10, 10),
    "reacher": ({}, 10, 10),
    "cube": ({}, 12, 8),
    "clevrer": ({}, 40, 10),
    "phyre": ({"stride": 10, "variation": {"template": "ball_into_jar"}}, 8, 10),
}


def same_observation(a, b) -> bool:
    return all(a[key].tobytes() == b[key].tobytes() for key in a) and set(a) == set(b)


@pytest.mark.parametrize("how", COPIES)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_a_copy_has_the_originals_future(env_id, how):
    """Same observations, rewards and ends under the same actions, from before the first reset and mid-episode."""
    duplicate = COPIES[how]
    arguments, before, after = DRIVES[SHORT[env_id]]
    env = gym.make(env_id, resolution=16, terminate_on_success=False, **arguments)
    unused = duplicate(env)
    assert same_observation(env.reset(seed=2)[0], unused.reset(seed=2)[0])

    policy = make_policy(env, ENVS[SHORT[env_id]].default_policy, seed=2)
    policy.reset()
    for _ in range(before):
        env.step(policy.act())
    twin = duplicate(env)
    for _ in range(after):
        action = policy.act()
        (obs, reward, terminated, truncated, _), (twin_obs, twin_reward, *twin_ends, _) = env.step(action), twin.step(action)
        assert same_observation(obs, twin_obs)
        assert (reward, terminated, truncated) == (twin_reward, *twin_ends)
    assert twin.unwrapped.get_state().tobytes() == env.unwrapped.get_state().tobytes()


# ---------------------------------------------------------------------- render_fps and dt
def simulated_seconds(env) -> float:
    """The seconds of simulated time the next zero-action step spans, read from the simulator itself."""
    sim, zero = env.unwrapped, np.zeros(env.action_space.shape)
    if SHORT[env.spec.id] == "pusht":
        spent = []
        step = sim._space.step
        sim._space.step = lambda dt: (spent.append(dt), step(dt))
        env.step(zero)
        sim._space.step = step
        return sum(spent)
    if SHORT[env.spec.id] == "phyre":
        before = env.step(zero)[4]["seconds"]
        return env.step(zero)[4]["seconds"] - before
    data = {"reacher": lambda: sim.physics.data, "cube": lambda: sim.sim.data, "clevrer": lambda: sim.sim.data}[SHORT[env.spec.id]]
    before = data().time
    env.step(zero)
    return data().time - before


@pytest.mark.parametrize("env_id, arguments", [(env_id, {}) for env_id in ENV_IDS] + [("wmbench/PHYRE-v0", {"stride": 15})])
def test_render_fps_is_one_step_per_frame_of_simulated_time(env_id, arguments):
    env = gym.make(env_id, resolution=8, obs_type="state", terminate_on_success=False, **arguments)
    fps, dt = env.metadata["render_fps"], env.unwrapped.dt
    if SHORT[env_id] == "tworoom":
        assert dt is None and fps > 0  # a move per step, no physical time: a display rate only
        return
    _, info = env.reset(seed=0)
    if SHORT[env_id] == "phyre":  # from the solved state: its ball is placed, so every step is physics
        env.reset(options={"state": info["goal_state"], "goal_state": info["goal_state"]})
    assert simulated_seconds(env) == pytest.approx(dt, rel=1e-9)
    assert fps * dt == pytest.approx(1.0, rel=1e-12)


def test_render_fps_values():
    fps = {short: gym.make(entry.id, resolution=8, obs_type="state").metadata["render_fps"] for short, entry in ENVS.items()}
    assert fps == {"pusht": 10, "tworoom": 10, "reacher": 25, "cube": 20, "clevrer": 25.6, "phyre": 1}


# ---------------------------------------------------------------------- obs_type="pixels"
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pixels_obs_type_is_the_image_and_gymnasiums_image_wrappers_take_it(env_id):
    pytest.importorskip("cv2")  # ResizeObservation's
    env = gym.make(env_id, obs_type="pixels", resolution=(24, 32))
    assert env.observation_space == spaces.Box(0, 255, (24, 32, 3), np.uint8)
    obs, info = env.reset(seed=0)
    assert isinstance(obs, np.ndarray) and obs in env.observation_space
    np.testing.assert_array_equal(obs, env.render())
    assert info["goal"].shape == obs.shape
    assert env.step(np.zeros(env.action_space.shape))[0] in env.observation_space

    small = GrayscaleObservation(ResizeObservation(gym.make(env_id, obs_type="pixels", resolution=(24, 32)), (12, 16)))
    gray, _ = small.reset(seed=0)
    assert gray.shape == (12, 16) and gray.dtype == np.uint8 and gray in small.observation_space
    luminance = obs @ np.array([0.2125, 0.7154, 0.0721])
    assert abs(gray.mean() - luminance.mean()) < 2  # the env's own frame, shrunk and grayed

    assert set(gym.make(env_id, obs_type=["pixels"], resolution=16).reset(seed=0)[0]) == {"pixels"}  # a list: the dict


@pytest.mark.parametrize("env_id", ["wmbench/PushT-v0", "wmbench/Reacher-v0"])
def test_check_env_passes_with_pixels_only(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(env_id, obs_type="pixels", resolution=16).unwrapped, skip_render_check=False)


# ---------------------------------------------------------------------- reward_threshold
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reward_threshold_is_reached_by_episodes_that_reach_their_goal(env_id):
    threshold = gym.spec(env_id).reward_threshold
    if ENVS[SHORT[env_id]].task == "video":
        assert threshold is None  # the passive video "succeeds" by itself at its last frame
        return
    assert threshold == 1.0
    env = gym.make(env_id, resolution=8, obs_type="state")
    _, info = env.reset(seed=0)
    goal, zero = info["goal_state"], np.zeros(env.action_space.shape)
    unsolved = sum(env.step(zero)[1] for _ in range(3))
    assert not env.unwrapped.success_rule(env.unwrapped.get_state(), goal) and unsolved < threshold

    env.reset(options={"state": goal, "goal_state": goal})
    solved, terminated = 0.0, False
    while not terminated:
        _, reward, terminated, truncated, info = env.step(zero)
        solved += reward
        assert not truncated
    assert info["success"] and solved >= threshold

