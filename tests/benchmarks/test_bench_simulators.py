"""The oracle's engine: batched true-simulator rollouts against the env stepped one action at a time,
in the same run; and the wall time of the standard-budget oracle on Push-T.

A candidate is what the oracle's planner scores: 25 env actions (5 blocks of 5) from a start of the
env's evaluation set, uniform random here, and its cost, the smallest ``goal_cost`` along the way.
The reference scores candidates as the oracle did before the batched simulators: ``set_state``,
then ``step`` and ``goal_cost`` action by action, one candidate after another in one process. The
batched side is ``wmbench.eval.simulators.goal_costs`` on one CEM iteration's batch (50 episodes x
300 samples) for Two-Room and Reacher, on smaller batches for Push-T and Cube, whose cost per
candidate does not depend on the batch. These use every core (the other benchmarks' one-core pin
is lifted here), as the oracle does; the figures say how many.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import pytest

import wmbench
from wmbench.data.evalset import load_eval_set
from wmbench.eval import simulators
from wmbench.eval.goal_reaching import EvalSettings, evaluate
from wmbench.protocol import GOAL_REACHING

pytestmark = pytest.mark.benchmark

STEPS = 25  # env actions per candidate: the oracle's plan of 5 blocks of 5
# env -> (episodes, samples) of the batched call, candidates of the reference, target ratio on 2 cores
CASES = {
    "tworoom": ((50, 300), 300, 20.0),
    "pusht": ((8, 150), 60, 1.5),
    "reacher": ((50, 300), 200, 5.0),
    "cube": ((2, 12), 6, 1.2),
}
PUSHT_ORACLE_TARGET_S = 20 * 60  # the target for the standard-budget oracle on 50 Push-T episodes, 2 cores


@pytest.fixture
def every_core():
    """Undo the one-core pin for this test: the simulators' workers and threads use every core."""
    if not hasattr(os, "sched_setaffinity"):
        yield os.cpu_count()
        return
    pinned = os.sched_getaffinity(0)
    os.sched_setaffinity(0, range(os.cpu_count()))
    yield len(os.sched_getaffinity(0))
    os.sched_setaffinity(0, pinned)


def candidates(env_name: str, episodes: int, samples: int, seed: int = 0):
    evalset = load_eval_set(env_name)
    rng = np.random.default_rng(seed)
    pairs = rng.integers(len(evalset), size=episodes)
    actions = rng.uniform(-1, 1, (episodes, samples, STEPS, evalset.actions.shape[-1])).astype(np.float32)
    return evalset.start_states[pairs], actions, evalset.goal_states[pairs]


def one_at_a_time(env_name: str, count: int) -> float:
    """Candidates per second of the env stepped one action at a time."""
    starts, actions, goals = candidates(env_name, count, 1, seed=1)
    env = wmbench.make(env_name, obs_type="state", terminate_on_success=False).unwrapped
    env.reset(seed=0)
    began = time.perf_counter()
    for start, sequence, goal in zip(starts, actions[:, 0], goals):
        env.set_state(start)
        best = np.inf
        for action in sequence:
            env.step(action)
            best = min(best, env.goal_cost(env.get_state(), goal))
    return count / (time.perf_counter() - began)


def batched(env_name: str, episodes: int, samples: int) -> float:
    """Candidates per second of ``goal_costs``, its workers or threads started beforehand."""
    starts, actions, goals = candidates(env_name, episodes, samples)
    simulators.goal_costs(env_name, starts[:1], actions[:1, :2], goals[:1])  # start the workers
    began = time.perf_counter()
    simulators.goal_costs(env_name, starts, actions, goals)
    return episodes * samples / (time.perf_counter() - began)


def test_batched_rollouts_against_the_env_one_action_at_a_time(every_core, report):
    figures = {}
    for env_name, ((episodes, samples), reference_count, target) in CASES.items():
        ours, reference = batched(env_name, episodes, samples), one_at_a_time(env_name, reference_count)
        figures[env_name] = {"candidates_per_s_batched": ours, "candidates_per_s_one_at_a_time": reference,
                             "ratio": ours / reference, "target_ratio": target, "batch": episodes * samples}
    report({"machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version(),
                        "cores_used": every_core},
            "steps_per_candidate": STEPS, **figures})
    slow = {name: round(f["ratio"], 2) for name, f in figures.items() if f["ratio"] < f["target_ratio"]}
    assert not slow, f"batched rollouts under their target speed-up: {slow} (targets: { {n: c[2] for n, c in CASES.items()} })"


def test_standard_budget_oracle_on_pusht_wall_time(every_core, report):
    """The oracle at the standard budget (CEM 300 x 30, 30 elites) on the 50 standard Push-T pairs."""
    standard = {"samples": GOAL_REACHING.samples, "iterations": GOAL_REACHING.iterations, "elites": GOAL_REACHING.elites}
    results, _ = evaluate("oracle", "pusht", EvalSettings(planner_options=standard), progress=False)
    timing = results["timing"]
    report({"machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version(),
                        "cores_used": every_core, "load_average_1min": os.getloadavg()[0]},
            "wall_s": timing["wall_s"], "planning_total_s": timing["planning_total_s"],
            "episode_plan_mean_s": timing["episode_plan_mean_s"], "success_rate": results["success"]["rate"],
            "target_wall_s": PUSHT_ORACLE_TARGET_S})
    assert timing["wall_s"] < PUSHT_ORACLE_TARGET_S, f"the Push-T oracle took {timing['wall_s']:.0f} s; the target is {PUSHT_ORACLE_TARGET_S}"
