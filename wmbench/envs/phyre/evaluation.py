"""PHYRE's evaluation: up to 100 ranked valid attempts per test task, scored by AUCCESS.

=================  ===========================================================================
tasks              the test side of a split (``auccess.task_split``: ``within`` or ``cross``
                   templates, fold 0-4, seed); task ids are ``"<template>:<index>"``
attempts           an agent proposes placements in its order of preference; invalid ones
                   (overlapping an object or leaving the scene) are skipped and not counted;
                   the first valid attempt that solves the task ends it
agents             ``random``: uniform (x, y, r), PHYRE's random agent; ``oracle``: simulator
                   search (``templates.solve``), the ceiling
results            AUCCESS with a seeded bootstrap interval, and every task's valid attempts,
                   invalid proposals and the attempt that solved it
=================  ===========================================================================
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from tqdm import tqdm

import wmbench
from wmbench.auccess import MAX_ATTEMPTS, auccess, auccess_interval, task_split
from wmbench.envs.phyre.simulation import Scene, simulate
from wmbench.envs.phyre.templates import TASKS_PER_TEMPLATE, TEMPLATES, solve, task

MAX_PROPOSALS = 100_000  # an agent that proposes only invalid placements is stopped here


def random_agent(scene: Scene, rng: np.random.Generator) -> Iterator[np.ndarray]:
    while True:
        yield rng.uniform(0.0, 1.0, 3)


def oracle_agent(scene: Scene, rng: np.random.Generator) -> Iterator[np.ndarray]:
    action = solve(scene)
    if action is not None:
        yield np.asarray(action)
    yield from random_agent(scene, rng)  # no solution found: fall back on chance


AGENTS = {"random": random_agent, "oracle": oracle_agent}


def attempt_task(scene: Scene, proposals: Iterator[np.ndarray]) -> dict[str, Any]:
    """Valid attempts until one solves the task or 100 are spent."""
    valid = invalid = 0
    for action in proposals:
        if valid == MAX_ATTEMPTS or valid + invalid == MAX_PROPOSALS:
            break
        rollout = simulate(scene, action, stop_when_decided=True)
        if not rollout.valid:
            invalid += 1
            continue
        valid += 1
        if rollout.solved:
            return {"solved_at": valid, "attempts": valid, "invalid": invalid}
    return {"solved_at": None, "attempts": valid, "invalid": invalid}


def evaluate_agent(agent: str, split: str = "within", fold: int = 0, seed: int = 0, tasks: int | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """Run ``agent`` on the test tasks of a split (the first ``tasks`` of them when given)."""
    if agent not in AGENTS:
        raise ValueError(f"--agent {agent!r}: choose one of {sorted(AGENTS)}")
    every_task = {name: [f"{name}:{index:03d}" for index in range(TASKS_PER_TEMPLATE)] for name in TEMPLATES}
    _, test = task_split(every_task, split, fold, seed)
    test = test[:tasks] if tasks is not None else test
    outcomes, start = [], time.perf_counter()
    for task_id in tqdm(test, desc=f"phyre {agent}", unit="task", disable=not progress, dynamic_ncols=True):
        template, index = task_id.split(":")
        scene = task(template, int(index))
        rng = np.random.default_rng([seed, list(TEMPLATES).index(template), int(index)])
        outcomes.append({"task": task_id, **attempt_task(scene, AGENTS[agent](scene, rng))})
    solved_at = [outcome["solved_at"] for outcome in outcomes]
    low, high = auccess_interval(solved_at, seed=seed)
    return {
        "format": 1,
        "env": {"name": "phyre", "id": "wmbench/PHYRE-v0"},
        "protocol": {"split": split, "fold": fold, "seed": seed, "max_attempts": MAX_ATTEMPTS, "tasks": len(test)},
        "agent": agent,
        "auccess": auccess(solved_at),
        "ci95": [low, high],
        "interval": "percentile bootstrap over tasks, 2000 resamples",
        "solved_within_100": sum(s is not None for s in solved_at) / len(solved_at),
        "tasks": outcomes,
        "wall_s": time.perf_counter() - start,
        "wmbench_version": wmbench.__version__,
    }
