"""The standard protocol: the numbers a result must be measured with to sit on the leaderboard.

The command line takes its defaults from here, the harness and the evaluation-set generator run
with them, and the leaderboard checks submissions against them, so a number is written once.

Goal reaching (``wmbench eval``, after the published evaluation of LeWM, PLDM and DINO-WM):

=================  ===========================================================================
evaluation set     200 frozen (start, goal) pairs per env; the goal is 25 env steps after the
                   start on a held-out trajectory of the env's data policy
episodes           50 pairs of the set, drawn with seed 42 (the seed also seeds the planner), or
                   all 200 for four times the statistical power; the leaderboard says which
budget             50 env steps per episode; success when the env's rule holds at any of them
planner            CEM, 300 samples, 30 elites, 30 iterations, horizon 5 model steps, replanning
                   after 5 (the whole plan is executed: receding horizon 5)
oracle             the standard planner (CEM 300 x 30, 30 elites) with the true simulator (its
                   cost: the env's ``goal_cost``), action blocks of 5 env steps; Cube's at
                   64 x 5 (8 elites), which 2 CPU cores run in 10 minutes against hours
expert             the env's scripted data policy without noise, aimed at the goal state
                   (Two-Room, Cube)
random             uniform random action blocks of 5 env steps
=================  ===========================================================================

Puzzles (``wmbench phyre eval``): every test task of a fold, seed 0, up to 100 valid attempts;
the world-model agent ranks 1,000 candidates with a probe fitted on 2,000 placements and
predicts 10 s of physics.

Violation of expectation (``wmbench voe``): 50 paired episodes, seed 0, the perturbation 8 model
steps after the history and 8 more steps observed after it.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION = 1  # bump when a number below changes: results of different versions are not compared


@dataclass(frozen=True)
class GoalReaching:
    pairs: int = 200  # in each env's frozen evaluation set
    goal_offset: int = 25  # env steps from a pair's start to its goal
    episodes: int = 50  # or every pair of the set (``pairs``): both are standard
    seed: int = 42
    budget: int = 50  # env steps per episode
    planner: str = "cem"
    samples: int = 300
    elites: int = 30
    iterations: int = 30
    horizon: int = 5  # model steps planned
    replan_every: int = 5  # model steps executed between plans


GOAL_REACHING = GoalReaching()


@dataclass(frozen=True)
class Oracle:
    samples: int = GOAL_REACHING.samples  # the models' budget: the bound is what that search finds with a perfect model
    elites: int = GOAL_REACHING.elites
    iterations: int = GOAL_REACHING.iterations
    action_block: int = 5  # env steps per planned block, for the oracle, expert and random controllers (the papers' frameskip)


@dataclass(frozen=True)
class Puzzles:
    seed: int = 0
    max_attempts: int = 100  # valid attempts per task
    candidates: int = 1000  # random valid placements the world-model agent ranks per task
    probe_samples: int = 2000  # placements on training tasks its success probe is fitted on
    horizon_seconds: int = 10  # physics it predicts: 94% of random valid solutions are decided by then
    dqn_samples_per_task: int = 50  # simulator-labelled placements per training task the dqn agent learns from
    dqn_steps: int = 3000  # its training steps (batches of 64, half solving)
    map_radius: float = 0.2  # the ball of `wmbench phyre maps`, 8 px: the sizes that solve most often (envs/phyre.md)


@dataclass(frozen=True)
class ViolationOfExpectation:
    episodes: int = 50  # or every pair of the set (``pairs``): both are standard
    seed: int = 0
    steps_before: int = 8  # model steps from the end of the history to the perturbation
    steps_after: int = 8  # model steps observed after it


ORACLE = Oracle()
# Envs whose oracle plans at a smaller budget. Cube: a candidate costs 32 ms of CPU (inverse kinematics
# at every step), so 300 x 30 takes hours on 2 cores; envs/cube.md has the measurements and the full run's command.
ORACLE_BUDGETS: dict[str, Oracle] = {"cube": Oracle(samples=64, elites=8, iterations=5)}
PUZZLES = Puzzles()
VOE = ViolationOfExpectation()


def oracle_budget(env_name: str) -> Oracle:
    """The oracle's planner budget on ``env_name``: the standard one unless ``ORACLE_BUDGETS`` names the env."""
    return ORACLE_BUDGETS.get(env_name, ORACLE)


def standard_planners(env_name: str | None = None) -> dict[str, dict]:
    """The planner settings a goal-reaching result must report, by kind of agent: a model, the oracle, the expert, random.

    The oracle's are those of ``env_name`` (the standard budget when it is None or not in ``ORACLE_BUDGETS``).
    """
    g, oracle = GOAL_REACHING, ORACLE if env_name is None else oracle_budget(env_name)
    receding = {"horizon": g.horizon, "replan_every": g.replan_every}
    return {
        "model": {"name": g.planner, "samples": g.samples, "iterations": g.iterations, "elites": g.elites, "init_std": 1.0,
                  **receding, "result": "mean"},
        "oracle": {"name": "cem", "samples": oracle.samples, "iterations": oracle.iterations, "elites": oracle.elites, **receding},
        "expert": {"name": "expert", "noise_sd": 0.0, **receding},
        "random": {"name": "random", "horizon": g.horizon},
    }
