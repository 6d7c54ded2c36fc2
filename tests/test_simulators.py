"""The oracle's batched simulators give the states the env gives when stepped one action at a time.

Starts come from the frozen evaluation sets, actions are uniform in [-1, 1] (float32, as planners
give them). Two-Room (numpy), Push-T (pymunk in worker processes) and Cube (the env's physics in
worker processes) must match bit for bit; Reacher (``mujoco.rollout``) to rounding, since the env
wraps the shoulder angle between steps.
"""

from __future__ import annotations

import numpy as np
import pytest

import wmbench
from wmbench.data.evalset import load_eval_set
from wmbench.envs.tworoom import WALL_LEFT
from wmbench.eval import simulators

STEPS = {"tworoom": 25, "pusht": 25, "reacher": 25, "cube": 6}  # Cube's physics is slow: fewer steps
ROWS = {"tworoom": 64, "pusht": 8, "reacher": 16, "cube": 3}
REACHER_TOLERANCE = 1e-9  # measured: 9e-16


def stepped(env_name: str, starts: np.ndarray, actions: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference: states and goal costs of the env stepped one action at a time from each start."""
    env = wmbench.make(env_name, obs_type="state", terminate_on_success=False).unwrapped
    env.reset(seed=0)
    states, costs = np.empty((*actions.shape[:2], starts.shape[1])), np.empty(actions.shape[:2])
    for i, (start, goal) in enumerate(zip(starts, goals)):
        env.set_state(start)
        for t, action in enumerate(actions[i]):
            env.step(action)
            states[i, t] = env.get_state()
            costs[i, t] = env.goal_cost(states[i, t], goal)
    return states, costs


def random_case(env_name: str, rows: int, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    evalset = load_eval_set(env_name)
    rng = np.random.default_rng(seed)
    pairs = rng.choice(len(evalset), rows, replace=False)
    actions = rng.uniform(-1, 1, (rows, steps, evalset.actions.shape[-1])).astype(np.float32)
    return evalset.start_states[pairs], actions, evalset.goal_states[pairs]


def assert_matches(env_name: str, got: np.ndarray, expected: np.ndarray) -> None:
    if env_name == "reacher":
        np.testing.assert_allclose(got, expected, rtol=0, atol=REACHER_TOLERANCE)
    else:
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("env_name", ["tworoom", "pusht", "reacher", "cube"])
def test_rollouts_give_the_states_and_costs_of_the_env_stepped_one_action_at_a_time(env_name):
    starts, actions, goals = random_case(env_name, ROWS[env_name], STEPS[env_name])
    expected_states, expected_costs = stepped(env_name, starts, actions, goals)
    states = simulators.rollout(env_name, starts, actions)
    assert_matches(env_name, states, expected_states)
    np.testing.assert_allclose(simulators.step_costs(env_name, states, goals), expected_costs, rtol=1e-12)


@pytest.mark.parametrize("env_name", ["tworoom", "pusht", "reacher"])
def test_goal_costs_are_the_smallest_cost_along_each_candidate(env_name):
    batch, samples = 3, 4
    starts, actions, goals = random_case(env_name, batch * samples, STEPS[env_name], seed=1)
    starts, goals = starts[:batch], goals[:batch]  # every candidate of an episode starts from its state
    _, expected = stepped(env_name, np.repeat(starts, samples, 0), actions, np.repeat(goals, samples, 0))
    costs = simulators.goal_costs(env_name, starts, actions.reshape(batch, samples, *actions.shape[1:]), goals)
    assert costs.shape == (batch, samples)
    np.testing.assert_allclose(costs, expected.min(axis=1).reshape(batch, samples), rtol=1e-12)


def test_tworoom_matches_the_env_where_the_agent_slides_along_walls_and_through_the_door():
    # against the middle wall, heading for the door at y 49 and through it; into the top border; a corner
    starts = np.array([[WALL_LEFT - 7.0, 120.0], [WALL_LEFT - 7.5, 80.0], [60.0, 21.0], [21.0, 21.0]])
    actions = np.zeros((4, 40, 2), np.float32)
    actions[0] = (1.0, -0.35)
    actions[1] = (0.8, -1.0)
    actions[2] = (0.3, -1.0)
    actions[3] = (-1.0, -1.0)
    goals = np.array([[150.0, 49.0]] * 4)
    expected_states, expected_costs = stepped("tworoom", starts, actions, goals)
    free = starts[:, None] + 5.0 * np.cumsum(actions.astype(np.float64), axis=1)
    assert (np.abs(expected_states - free) > 1e-6).any(axis=(1, 2)).all()  # every row meets a wall
    assert expected_states[0, -1, 0] > WALL_LEFT + 10  # the first one got through the door
    states = simulators.rollout("tworoom", starts, actions)
    np.testing.assert_array_equal(states, expected_states)
    np.testing.assert_allclose(simulators.step_costs("tworoom", states, goals), expected_costs, rtol=1e-12)


def test_reacher_matches_the_env_while_the_shoulder_wraps_around():
    starts = np.array([[3.1, 0.5, 4.0, 0.0, 0.0, 0.0], [-3.1, -0.5, -4.0, 0.0, 1.0, 1.0]])
    actions = np.zeros((2, 25, 2), np.float32)
    actions[0, :, 0], actions[1, :, 0] = 1.0, -1.0
    expected, _ = stepped("reacher", starts, actions, starts)
    assert (np.sign(expected[:, :, 0]) != np.sign(starts[:, None, 0])).any(axis=1).all()  # each crossed pi
    np.testing.assert_allclose(simulators.rollout("reacher", starts, actions), expected, rtol=0, atol=REACHER_TOLERANCE)


def test_an_env_without_a_simulator_is_refused():
    with pytest.raises(ValueError, match="no batched simulator for clevrer"):
        simulators.simulator_for("clevrer")
