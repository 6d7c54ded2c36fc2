"""Two-Room: walls and doors, the success rule, room sampling, resolution-independent pixels,
the hidden target, the door expert and the perturbations."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import wmbench  # noqa: F401  (registers the envs)
from wmbench.policies import make_policy

# The facts of the standard env (LeWM / stable-worldmodel's Two-Room at 224 px, envs/tworoom.md), written out here rather than imported,
# so that a change to the env's constants shows up as a failing test.
WORLD, BORDER, RADIUS, SPEED, SUCCESS_DISTANCE = 224.0, 14.0, 7.0, 5.0, 16.0
WALL_LEFT, WALL_RIGHT = 107.0, 117.0
# The middle wall's solid pieces (y0, y1) between the borders, per door layout.
WALL_PIECES = {
    "standard": [(14.0, 35.0), (63.0, 210.0)],  # one door, center 49, half size 14
    "three_doors": [(14.0, 35.0), (63.0, 98.0), (126.0, 161.0), (189.0, 210.0)],  # centers 49, 112, 175
}
GOAL = np.array([180.0, 190.0])  # in the right room, away from every start used below


def make(**kwargs):
    return gym.make("wmbench/TwoRoom-v0", **{"resolution": 64, **kwargs}).unwrapped


def placed(x, y, goal=GOAL, **kwargs):
    env = make(**kwargs)
    env.reset(options={"state": [x, y], "goal_state": goal})
    return env


def push(env, action, steps):
    for _ in range(steps):
        env.step(np.asarray(action, dtype=np.float64))
    return env.get_state()


def wall_gap(x, y, pieces, radius=RADIUS):
    """Distance from the disc's edge to the nearest wall material (negative: overlap)."""
    gap = min(x - BORDER, WORLD - BORDER - x, y - BORDER, WORLD - BORDER - y) - radius
    for y0, y1 in pieces:
        nearest = (min(max(x, WALL_LEFT), WALL_RIGHT), min(max(y, y0), y1))
        gap = min(gap, math.hypot(x - nearest[0], y - nearest[1]) - radius)
    return gap


# ---------------------------------------------------------------------- motion and walls
def test_free_motion_is_exactly_speed_times_action():
    env = placed(50.0, 100.0)
    action = np.array([0.3, -0.7])
    state = push(env, action, 1)
    assert state.tolist() == [50.0 + SPEED * 0.3, 100.0 + SPEED * -0.7]


@pytest.mark.parametrize(
    "start, action, stop",
    [
        ((90.0, 150.0), (1.0, 0.0), (WALL_LEFT - RADIUS, 150.0)),  # middle wall from the left
        ((135.0, 150.0), (-1.0, 0.0), (WALL_RIGHT + RADIUS, 150.0)),  # middle wall from the right
        ((30.0, 120.0), (-1.0, 0.0), (BORDER + RADIUS, 120.0)),  # left border
        ((160.0, 195.0), (0.0, 1.0), (160.0, WORLD - BORDER - RADIUS)),  # bottom border
        ((30.0, 30.0), (-1.0, -1.0), (BORDER + RADIUS, BORDER + RADIUS)),  # a corner
    ],
)
def test_walls_stop_the_agent_at_contact(start, action, stop):
    state = push(placed(*start), action, 6)
    np.testing.assert_allclose(state, stop, atol=1e-9)


def test_the_agent_slides_along_a_wall():
    state = push(placed(99.0, 150.0), (1.0, 1.0), 3)  # pressed into the wall while moving down
    np.testing.assert_allclose(state, (WALL_LEFT - RADIUS, 165.0), atol=1e-9)


def test_the_agent_passes_through_the_door():
    state = push(placed(90.0, 49.0), (1.0, 0.0), 10)
    assert state.tolist() == [140.0, 49.0]


def test_a_door_corner_deflects_the_agent_into_the_door():
    # 3 units below the center line a straight push grazes the door's lower corner (y 63).
    state = push(placed(90.0, 60.0), (1.0, 0.0), 10)
    assert state[0] > WALL_RIGHT + RADIUS
    assert state[1] == pytest.approx(63.0 - RADIUS)


def test_the_wall_blocks_where_there_is_no_door():
    assert push(placed(90.0, 120.0), (1.0, 0.0), 10).tolist() == [WALL_LEFT - RADIUS, 120.0]
    moved_door = {"door_centers": (150.0,)}
    assert push(placed(90.0, 49.0, variation=moved_door), (1.0, 0.0), 10)[0] == pytest.approx(WALL_LEFT - RADIUS)
    assert push(placed(90.0, 150.0, variation=moved_door), (1.0, 0.0), 10)[0] > WALL_RIGHT + RADIUS


@pytest.mark.parametrize(
    "variation, layout",
    [
        ({}, "standard"),
        ("three_doors", "three_doors"),
        ({"agent_radius": 12.0}, "standard"),
        ({"speed": 30.0}, "standard"),  # a step much longer than the wall is thick: no tunnelling
    ],
)
def test_the_disc_never_overlaps_a_wall_in_long_rollouts(variation, layout):
    env = make(variation=variation, obs_type="state", terminate_on_success=False)
    env.reset(seed=0)
    radius, speed = env.variation["agent_radius"], env.variation["speed"]
    expert = make_policy(env, "expert", seed=0)
    expert.noise_sd = 1.0  # a very noisy expert: crosses doors and bumps into walls and corners
    crossings = contacts = 0
    for _ in range(3000):
        before = env.get_state()
        action = expert.act()
        env.step(action)
        after = env.get_state()
        assert wall_gap(*after, WALL_PIECES[layout], radius) >= -1e-9, f"overlap at {after.tolist()}"
        crossings += (before[0] < 112.0) != (after[0] < 112.0)
        contacts += not np.allclose(after - before, speed * action.astype(np.float64), atol=1e-9)
        if env.success_rule(after, env.goal_state):
            env.reset(options={"state": after})  # a new goal, in the other room
    assert crossings >= 20 and contacts >= 100  # the rollout did exercise the doors and the walls


def test_a_state_overlapping_a_wall_raises_a_clear_error():
    env = make()
    for where in ([110.0, 150.0], [104.0, 150.0], [10.0, 100.0], [100.0, 218.0]):
        with pytest.raises(ValueError, match="overlaps a wall"):
            env.reset(options={"state": where})
    with pytest.raises(ValueError, match="overlaps a wall"):
        env.reset(options={"state": [50.0, 50.0], "goal_state": [112.0, 150.0]})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="overlaps a wall"):
        env.set_state([WALL_LEFT - RADIUS + 0.01, 150.0])
    env.set_state([WALL_LEFT - RADIUS, 150.0])  # touching is allowed
    env.set_state([112.0, 49.0])  # so is standing in the doorway


@pytest.mark.parametrize(
    "variation, message",
    [
        ({"door_half_size": 6.0}, "wider than the agent"),
        ({"door_centers": (20.0,)}, "between the borders"),
        ({"door_centers": (40.0, 90.0, 140.0, 190.0)}, "1 to 3 door"),
        ({"agent_radius": 50.0}, r"agent_radius=50.0 is out of range; give a number in \[3.5, 14\]"),
    ],
)
def test_impossible_geometry_is_refused_at_construction(variation, message):
    with pytest.raises(ValueError, match=message):
        make(variation=variation)


# ---------------------------------------------------------------------- task
@pytest.mark.parametrize(
    "distance, expected",
    [
        (SUCCESS_DISTANCE - 1e-9, True),
        (SUCCESS_DISTANCE, False),  # exactly at the threshold: the rule is strict
        (SUCCESS_DISTANCE + 1e-9, False),
    ],
)
def test_success_rule_at_hand_built_distances(distance, expected):
    goal = np.array([60.0, 100.0])
    env = make()
    _, info = env.reset(options={"state": goal + [0.0, distance], "goal_state": goal})
    assert info["success"] is expected
    assert env.success_rule(goal + [distance, 0.0], goal) is expected
    assert env.step(np.zeros(2))[4]["pos_error"] == pytest.approx(distance)


def test_the_goal_is_sampled_in_the_other_room_and_both_are_free():
    env = make(obs_type="state")
    start_rooms = set()
    for seed in range(100):
        obs, info = env.reset(seed=seed)
        start, goal = obs["state"], info["goal_state"]
        assert (start[0] < 112.0) != (goal[0] < 112.0)
        assert wall_gap(*start, WALL_PIECES["standard"]) >= 0 and wall_gap(*goal, WALL_PIECES["standard"]) >= 0
        start_rooms.add(bool(start[0] < 112.0))
    assert start_rooms == {True, False}


# ---------------------------------------------------------------------- pixels
def redness(pixels):
    """How much of each pixel is the red agent: R - G is 255 on the agent, 0 on white and black."""
    return pixels[..., 0].astype(np.float64) - pixels[..., 1]


@pytest.mark.parametrize("resolution", [32, 64, 97, 224, (48, 80), (90, 40)])
@pytest.mark.parametrize("position", [(60.3, 150.7), (164.9, 40.2), (112.0, 49.0)])
def test_drawing_is_resolution_independent(resolution, position):
    env = make(resolution=resolution)
    obs, _ = env.reset(options={"state": position, "goal_state": GOAL})
    height, width = obs["pixels"].shape[:2]
    pixel_w, pixel_h = WORLD / width, WORLD / height
    weight = redness(obs["pixels"])
    rows, cols = np.indices(weight.shape)
    centroid = ((weight * (cols + 0.5)).sum() * pixel_w, (weight * (rows + 0.5)).sum() * pixel_h) / weight.sum()
    # Sub-pixel accurate: the drawn disc's centroid is its world position to a twentieth of a pixel.
    assert abs(centroid[0] - position[0]) < pixel_w / 20 and abs(centroid[1] - position[1]) < pixel_h / 20
    drawn_area = weight.sum() / 255 * pixel_w * pixel_h  # anti-aliasing keeps the disc's area
    assert drawn_area == pytest.approx(math.pi * RADIUS**2, rel=0.02)

    # Walls are black, the floor white and the agent red, so 1 - R/255 is how much of a pixel is wall.
    wall = 1.0 - obs["pixels"][..., 0] / 255.0
    centers = (np.arange(width) + 0.5) * pixel_w
    across_wall, across_door = wall[int(120.0 / pixel_h)], wall[int(49.0 / pixel_h)]
    assert across_wall.sum() * pixel_w == pytest.approx(2 * BORDER + WALL_RIGHT - WALL_LEFT, abs=0.1)
    assert across_door.sum() * pixel_w == pytest.approx(2 * BORDER, abs=0.1)
    middle = across_wall * ((centers > 50.0) & (centers < 174.0))
    assert (middle * centers).sum() / middle.sum() == pytest.approx(112.0, abs=pixel_w / 2)


def test_the_target_is_hidden_unless_show_target():
    start = (60.0, 100.0)
    hidden = [placed(*start, goal=goal).render() for goal in ([180.0, 190.0], [150.0, 40.0])]
    np.testing.assert_array_equal(hidden[0], hidden[1])
    assert not (hidden[0][..., 1].astype(int) - hidden[0][..., 0] > 0).any()  # nothing green

    shown = placed(*start, goal=np.array([150.0, 40.0]), variation={"show_target": True}).render()
    greenness = np.clip(shown[..., 1].astype(np.float64) - shown[..., 0], 0.0, None)
    rows, cols = np.indices(greenness.shape)
    centroid = np.array([(greenness * (cols + 0.5)).sum(), (greenness * (rows + 0.5)).sum()]) / greenness.sum() * WORLD / 64
    np.testing.assert_allclose(centroid, (150.0, 40.0), atol=WORLD / 64)


# ---------------------------------------------------------------------- data policy
@pytest.mark.parametrize("variation", ["standard", "three_doors", "narrow_door"])
def test_the_door_expert_reaches_the_goal_in_most_episodes(variation):
    env = gym.make("wmbench/TwoRoom-v0", obs_type="state", variation=variation)  # with its 200-step limit
    expert = make_policy(env, "expert", seed=0)
    successes = 0
    for seed in range(25):
        env.reset(seed=seed)
        expert.reset()
        terminated = truncated = False
        while not (terminated or truncated):
            _, _, terminated, truncated, info = env.step(expert.act())
        successes += info["success"]
    assert successes >= 23  # measured: every episode succeeds


# ---------------------------------------------------------------------- perturbations
def test_teleport_to_a_given_or_random_position():
    env = placed(60.0, 100.0)
    _, info = env.perturb("teleport", position=[150.0, 150.0])
    assert env.get_state().tolist() == [150.0, 150.0]
    assert info["perturbation"]["before"] == [60.0, 100.0] and info["perturbation"]["after"] == [150.0, 150.0]

    env.perturb("teleport")
    x, y = env.get_state()
    assert x < 112.0 and wall_gap(x, y, WALL_PIECES["standard"]) >= 0  # a free spot in the other room

    with pytest.raises(ValueError, match="overlaps a wall"):
        env.perturb("teleport", position=[112.0, 150.0])
    assert env.get_state().tolist() == [x, y]


@pytest.mark.parametrize(
    "target, where",
    [("agent", (60.0, 100.0)), ("walls", (112.0, 150.0)), ("background", (40.0, 190.0))],
)
def test_recolor_repaints_only_its_target(target, where):
    env = placed(60.0, 100.0)
    before = env.render()
    _, info = env.perturb("recolor", target=target, color=(10, 200, 30))
    after = env.render()
    assert info["perturbation"]["after"] == (10, 200, 30) and info["perturbation"]["before"] != (10, 200, 30)
    col, row = int(where[0] / (WORLD / 64)), int(where[1] / (WORLD / 64))
    assert after[row, col].tolist() == [10, 200, 30]
    changed = (before != after).any(axis=-1)
    others = {"agent": (112.0, 150.0), "walls": (40.0, 190.0), "background": (60.0, 100.0)}[target]
    assert not changed[int(others[1] / (WORLD / 64)), int(others[0] / (WORLD / 64))]
    np.testing.assert_array_equal(env.reset(seed=0)[0]["pixels"], make().reset(seed=0)[0]["pixels"])  # until the next reset
