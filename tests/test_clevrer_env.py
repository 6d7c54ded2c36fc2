"""ClevrerEnv: the passive video is the simulated scene, the state defines the future, the push, perturbations."""

from __future__ import annotations

import numpy as np
import pytest

import wmbench  # noqa: F401  (headless defaults)
from wmbench.envs.clevrer import CAMERA, ClevrerEnv, Scene, SceneObject, sample_scene, simulate
from wmbench.envs.clevrer.env import EPISODE_STEPS, FRAME, FRAME_TIME, PUSH_SPEED, QPOS, QVEL, XY, scene_state, slots

RESOLUTION = (64, 96)
ZERO = np.zeros(4)


@pytest.fixture(scope="module")
def env():
    return ClevrerEnv(resolution=RESOLUTION)


def positions(state) -> np.ndarray:
    return slots(state)[:, QPOS][:, :3]


def hit_and_bystander() -> Scene:
    """Object 0 slides into object 1 (at rest, in view); object 2 rests far away."""
    return Scene(
        (
            SceneObject("cube", "red", "metal", -1.2, 0.2, vx=1.5),
            SceneObject("cylinder", "blue", "rubber", 0.3, 0.2),
            SceneObject("sphere", "green", "rubber", -1.0, 1.6),
        )
    )


def test_the_passive_video_is_the_simulated_scene_and_succeeds_at_its_last_frame():
    env = ClevrerEnv(obs_type="state")
    _, info = env.reset(seed=11)
    scene = sample_scene(11)  # reset(seed=s) plays sample_scene(s)
    trajectory = simulate(scene)
    assert not info["success"]
    n = len(scene.objects)
    for frame in range(1, EPISODE_STEPS + 1):
        obs, reward, terminated, truncated, info = env.step(ZERO)
        state = env.get_state()
        np.testing.assert_array_equal(positions(state)[:n], trajectory.position[frame])  # bit for bit
        assert terminated == info["success"] == (frame == EPISODE_STEPS)
    assert reward == 1.0 and info["frame"] == EPISODE_STEPS
    np.testing.assert_array_equal(state, env.goal_state)
    contact_frames = {c.frame for c in trajectory.collisions}
    assert contact_frames  # seed 11 has collisions; each shows as contacts in the step reaching its frame
    env.reset(seed=11)
    touching = {frame for frame in range(1, EPISODE_STEPS + 1) if env.step(ZERO)[4]["contacts"]}
    assert contact_frames <= touching


def test_same_seed_and_actions_give_identical_pixels_and_states():
    runs = []
    for _ in range(2):
        env = ClevrerEnv(resolution=RESOLUTION)
        obs, _ = env.reset(seed=4)
        frames = [obs["pixels"]]
        for action in np.random.default_rng(0).uniform(-1, 1, (12, 4)):
            obs = env.step(action)[0]
            frames.append(obs["pixels"])
        runs.append((np.stack(frames), env.get_state()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1].tobytes() == runs[1][1].tobytes()
    other = ClevrerEnv(resolution=RESOLUTION)
    assert not np.array_equal(other.reset(seed=5)[0]["pixels"], runs[0][0][0])


def test_state_round_trip_is_exact_and_defines_the_future(env):
    env.reset(seed=2)
    env.step(np.array([0.0, 0.3, 0.5, 1.0]))  # a push, then the video runs
    for _ in range(9):
        env.step(ZERO)
    state, goal = env.get_state(), env.goal_state
    env.set_state(state)
    assert env.get_state().tobytes() == state.tobytes()
    after_set = [env.step(ZERO)[0] for _ in range(15)]

    fresh = ClevrerEnv(resolution=RESOLUTION)
    fresh.reset(seed=99, options={"state": state, "goal_state": goal})  # another seed: the state carries the scene
    after_reset = [fresh.step(ZERO)[0] for _ in range(15)]
    for a, b in zip(after_set, after_reset):
        assert a["state"].tobytes() == b["state"].tobytes()
        np.testing.assert_array_equal(a["pixels"], b["pixels"])


def test_bad_states_raise_a_clear_error(env):
    env.reset(seed=0)
    for field, value, message in ((0, 0.5, "present"), (1, 3.0, "shape"), (2, 1.5, "color")):
        state = env.get_state()
        slots(state)[0, field] = value
        with pytest.raises(ValueError, match=message):
            env.set_state(state)
    state = env.get_state()
    slots(state)[5] = 0.0
    slots(state)[5, XY] = 1.0  # an absent slot with a position
    with pytest.raises(ValueError, match="absent"):
        env.set_state(state)
    state = env.get_state()
    state[FRAME] = 2.5
    with pytest.raises(ValueError, match="frame"):
        env.set_state(state)


def test_a_push_at_the_first_frame_sets_the_velocity_and_later_ones_do_nothing(env):
    start = scene_state(hit_and_bystander())
    env.reset(options={"state": start})
    # object: the second of 3 present; heading pi/2 (+y); full speed
    env.step(np.array([0.0, 0.5, 1.0, 1.0]))
    pushed = slots(env.get_state())[1]
    assert pushed[QVEL][1] == pytest.approx(PUSH_SPEED, rel=0.05) and abs(pushed[QVEL][0]) < 0.05
    assert pushed[XY][1] - 0.2 == pytest.approx(PUSH_SPEED * FRAME_TIME, rel=0.05)  # it moved a frame's way along +y

    passive = ClevrerEnv(resolution=RESOLUTION)
    passive.reset(options={"state": start})
    passive.step(ZERO)
    env.reset(options={"state": start})
    env.step(np.array([0.0, 0.5, 1.0, -0.2]))  # push switch off: the passive video
    assert env.get_state().tobytes() == passive.get_state().tobytes()
    env.step(np.array([0.0, 0.5, 1.0, 1.0]))  # after frame 0 a push is ignored
    passive.step(ZERO)
    assert env.get_state().tobytes() == passive.get_state().tobytes()


def test_perturb_teleport_moves_an_object_keeping_its_velocity(env):
    env.reset(seed=3)
    for _ in range(5):
        env.step(ZERO)
    before = env.get_state()
    obs, info = env.perturb("teleport", object=0, position=(0.5, 1.0))
    after = env.get_state()
    assert info["perturbation"]["object"] == 0
    expected = before.copy()
    slots(expected)[0, XY] = (0.5, 1.0)
    np.testing.assert_array_equal(after, expected)  # velocity, orientation and everything else kept
    assert not np.array_equal(obs["pixels"], env.render_state(before))
    _, info = env.perturb("teleport")  # a random object in view, to a random free spot in view
    moved = info["perturbation"]
    assert np.linalg.norm(np.subtract(moved["after"], moved["before"])) >= 0.5
    assert CAMERA.in_view((*moved["after"], 0.15))


def test_perturb_recolor_repaints_an_object_only_until_reset(env):
    obs, _ = env.reset(seed=3)
    state = env.get_state()
    obs_c, info = env.perturb("recolor", object=1, color="blue")
    assert info["perturbation"]["after"] == (42, 75, 215) and info["perturbation"]["before"] != (42, 75, 215)
    np.testing.assert_array_equal(env.get_state(), state)  # the physics is untouched
    changed = np.any(obs_c["pixels"] != obs["pixels"], axis=-1)
    column, row = CAMERA.project(positions(state)[1]) * [RESOLUTION[1] / 480, RESOLUTION[0] / 320]
    assert changed.any() and changed[int(row), int(column)]  # the object's own pixels
    twin = ClevrerEnv(resolution=RESOLUTION)
    twin.reset(seed=3)
    assert not np.array_equal(env.step(ZERO)[0]["pixels"], twin.step(ZERO)[0]["pixels"])  # it lasts the episode
    np.testing.assert_array_equal(env.reset(seed=3)[0]["pixels"], obs["pixels"])


def test_perturb_vanish_removes_an_object_from_physics_and_pixels():
    env = ClevrerEnv(resolution=RESOLUTION)
    scene = hit_and_bystander()
    obs, _ = env.reset(options={"state": scene_state(scene)})
    obs_v, info = env.perturb("vanish", object=0)
    assert info["perturbation"] == {"kind": "vanish", "object": 0, "shape": "cube", "color": "red", "material": "metal"}
    state = env.get_state()
    assert not slots(state)[0].any() and len(env.sim.ids) == 2
    # Gone from the picture: the frame is that of a scene it was never in, and nothing red is left.
    never_there = scene_state(scene)
    slots(never_there)[0] = 0.0
    np.testing.assert_array_equal(obs_v["pixels"], ClevrerEnv(resolution=RESOLUTION).reset(options={"state": never_there})[0]["pixels"])
    red = [(o["pixels"][..., 0].astype(int) - o["pixels"][..., 2] > 80).sum() for o in (obs, obs_v)]
    assert red[0] > 0 and red[1] == 0
    # Gone from the physics: the object it was about to hit never moves.
    for _ in range(60):
        assert env.step(ZERO)[4]["contacts"] == []
    np.testing.assert_allclose(positions(env.get_state())[1, :2], [0.3, 0.2], atol=1e-9)
    with pytest.raises(ValueError, match="not in the scene"):
        env.perturb("vanish", object=0)


def test_variations_count_objects_and_change_the_look():
    env = ClevrerEnv(resolution=RESOLUTION, obs_type="state", variation="three_objects")
    for seed in range(3):
        env.reset(seed=seed)
        assert slots(env.get_state())[:, 0].sum() == 3
    looks = {}
    for preset in ("standard", "recolored", "dim_light"):
        looks[preset] = ClevrerEnv(resolution=RESOLUTION, variation=preset).reset(seed=1)[0]["pixels"]
    assert not np.array_equal(looks["standard"], looks["recolored"])
    assert looks["dim_light"].mean() < looks["standard"].mean() - 10
    with pytest.raises(ValueError, match="3 to 6"):
        ClevrerEnv(variation={"objects": 8})
