"""Puzzles (PHYRE-style): up to 100 ranked valid attempts per test task, scored by AUCCESS.

=================  ===========================================================================
tasks              the test side of a split (``envs.phyre.splits``: ``within`` or ``cross``
                   templates, fold 0-4, seed); task ids are ``"<template>:<index>"``
attempts           an agent proposes placements in its order of preference; invalid ones
                   (overlapping an object or leaving the scene) are skipped and not counted;
                   the first valid attempt that solves the task ends it
agents             ``random``: uniform (x, y, r), PHYRE's random agent; ``oracle``: simulator
                   search (``templates.solve``), the ceiling; ``largest-ball``: random valid
                   balls, largest first (size alone, no physics: the bar a model's ranking
                   must clear to show more); ``world-model``: a checkpoint's
                   predicted latents scored by a probe fitted on the training tasks
                   (``puzzle_agent.WorldModelAgent``); ``dqn``: a network scoring (scene,
                   action) trained on the training tasks' simulated placements, PHYRE's
                   learned baseline (``phyre_dqn``)
AUCCESS            ``sum_k w_k s_k / sum_k w_k`` over k = 1..100, with ``w_k = log(k + 1) -
                   log(k)`` and ``s_k`` the fraction of tasks solved within k valid attempts.
                   Early solutions weigh most: solving every task at attempt k scores
                   ``(log 101 - log k) / log 101``
results            AUCCESS with a seeded percentile bootstrap interval over tasks, and every
                   task's valid attempts, invalid proposals and the attempt that solved it
several folds      ``evaluate_folds``: each fold evaluated on its own, then PHYRE's figure, the
                   mean AUCCESS over the folds and its standard deviation, with each fold's
                   own figures
=================  ===========================================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from wmbench.envs import ENVS
from wmbench.envs.phyre.simulation import Scene, random_valid_placements, simulate
from wmbench.envs.phyre.splits import FOLDS, split_tasks
from wmbench.envs.phyre.templates import TASKS_PER_TEMPLATE, TEMPLATES, parse_task_id, solve, task
from wmbench.eval.results import document_header
from wmbench.progress import progress_bar
from wmbench.protocol import PUZZLES
from wmbench.stats import bootstrap_interval

RESULTS_FORMAT = 1  # bump when a field changes meaning
MAX_ATTEMPTS = PUZZLES.max_attempts
MAX_PROPOSALS = 100_000  # an agent that proposes only invalid placements is stopped here
BOOTSTRAP = "percentile bootstrap over tasks, 2000 resamples"  # what auccess_interval computes by default
WEIGHTS = np.log(np.arange(2, MAX_ATTEMPTS + 2)) - np.log(np.arange(1, MAX_ATTEMPTS + 1))  # w_1 .. w_100


def auccess(solved_at: Sequence[int | None]) -> float:
    """AUCCESS of tasks solved at the given valid attempt (1-based), ``None`` for never (within 100)."""
    if len(solved_at) == 0:
        raise ValueError("AUCCESS of no tasks is undefined; evaluate at least one task")
    attempts = np.array([MAX_ATTEMPTS + 1 if k is None else k for k in solved_at])
    if np.any(attempts < 1):
        raise ValueError(f"attempts are counted from 1; got {attempts.min()}")
    solved_within = (attempts[:, None] <= np.arange(1, MAX_ATTEMPTS + 1)).mean(0)  # s_1 .. s_100
    return float(WEIGHTS @ solved_within / WEIGHTS.sum())


def auccess_interval(solved_at: Sequence[int | None], samples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of AUCCESS over tasks."""
    return bootstrap_interval(solved_at, auccess, samples=samples, seed=seed, level=level)


def random_agent(scene: Scene, rng: np.random.Generator) -> Iterator[np.ndarray]:
    while True:
        yield rng.uniform(0.0, 1.0, 3)


def oracle_agent(scene: Scene, rng: np.random.Generator) -> Iterator[np.ndarray]:
    action = solve(scene)
    if action is not None:
        yield np.asarray(action)
    yield from random_agent(scene, rng)  # no solution found: fall back on chance


def largest_ball_agent(scene: Scene, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """1,000 random valid placements, the largest balls first: what ranking by size alone earns."""
    actions = random_valid_placements(scene, PUZZLES.candidates, rng)
    yield from actions[np.argsort(-actions[:, 2], kind="stable")]


REFERENCE_AGENTS = {"random": random_agent, "oracle": oracle_agent, "largest-ball": largest_ball_agent}  # no model needed
AGENTS = (*REFERENCE_AGENTS, "dqn", "world-model")  # dqn: trains a network on the training tasks (phyre_dqn)


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
                   progress: bool = True, *, model: str | None = None, device: str = "auto", trust_code: bool = False,
                   dqn_options: dict[str, Any] | None = None, **world_model_options) -> dict[str, Any]:
    """Run ``agent`` on the test tasks of a split (the first ``tasks`` of them when given).

    ``world-model`` needs ``model``, a checkpoint; ``world_model_options`` go to ``WorldModelAgent``
    (candidates, probe_samples, horizon); ``dqn_options`` to ``phyre_dqn.trained_agent`` (candidates,
    samples_per_task, steps, cache_dir, weights). Returns the results document
    (``wmbench/schemas/phyre_results.schema.json``).
    """
    if agent not in AGENTS:
        raise ValueError(f"--agent {agent!r}: choose one of {', '.join(AGENTS)}")
    if (agent == "world-model") != (model is not None):
        raise ValueError("--model: the world-model agent needs a checkpoint (--model PATH), and only it takes one")
    train, test = split_tasks(split, fold, seed)
    chosen = test[:tasks] if tasks is not None else test
    start = time.perf_counter()
    if agent == "world-model":
        ranker, description, device_description = world_model_agent(model, train, seed, progress, device, trust_code, world_model_options)
        timing = {"probe_s": ranker.probe_s}
    elif agent == "dqn":
        ranker, description, device_description, timing = dqn_agent(train, seed, progress, dqn_options or {})
    else:
        ranker, description, device_description, timing = REFERENCE_AGENTS[agent], {"name": agent, "model": None, "settings": {}}, None, {}
    outcomes = run_agent(ranker, chosen, seed, progress, desc=f"phyre {agent}")
    return results_document(description, split, fold, seed, len(test), outcomes, {**timing, "wall_s": time.perf_counter() - start},
                            device_description)


def dqn_agent(train: list[str], seed: int, progress: bool, options: dict[str, Any]):
    """The trained ranking network of ``phyre_dqn`` (torch on the CPU), its description, the device's and its timing."""
    import torch

    from wmbench.devices import device_info
    from wmbench.eval.phyre_dqn import trained_agent

    ranker = trained_agent(train, seed=seed, progress=progress, **options)
    return ranker, {"name": "dqn", "model": None, "settings": ranker.settings}, device_info(torch.device("cpu")), ranker.timing


def world_model_agent(model: str, train: list[str], seed: int, progress: bool, device: str, trust_code: bool,
                      options: dict[str, Any]):
    """The ranking agent of a checkpoint, its description for the results, and the device's."""
    # imported here: the reference agents run without torch (the 'torch' extra)
    from wmbench.devices import device_info, resolve_device
    from wmbench.eval.models import describe, load_for_env
    from wmbench.eval.puzzle_agent import WorldModelAgent

    torch_device = resolve_device(device)
    loaded = load_for_env(model, "phyre", torch_device, trust_code)
    ranker = WorldModelAgent(loaded, train, seed=seed, progress=progress, **options)
    description = {"name": "world-model", "model": describe(loaded), "settings": ranker.settings()}
    return ranker, description, device_info(torch_device)


def run_agent(agent: Callable[[Scene, np.random.Generator], Iterator[np.ndarray]], test: list[str], seed: int,
              progress: bool, desc: str) -> list[dict[str, Any]]:
    """Every task's outcome (``attempt_task``); task ``t``'s proposals draw from a generator seeded by (seed, t)."""
    outcomes = []
    for tid in progress_bar(test, desc=desc, unit="task", disable=not progress):
        template, index = parse_task_id(tid)
        scene = task(template, index)
        rng = np.random.default_rng([seed, list(TEMPLATES).index(template), index])
        outcomes.append({"task": tid, **attempt_task(scene, agent(scene, rng))})
    return outcomes


def auccess_figures(solved_at: Sequence[int | None], seed: int) -> dict[str, Any]:
    """What a results document claims of a set of tasks, and ``wmbench submit`` recomputes: the AUCCESS, its seeded
    bootstrap interval and the share solved within 100 attempts."""
    low, high = auccess_interval(solved_at, seed=seed)
    return {"value": auccess(solved_at), "ci95": [low, high], "solved_within_100": sum(s is not None for s in solved_at) / len(solved_at)}


def results_document(agent: dict[str, Any], split: str, fold: int | None, seed: int, test_tasks: int,
                     outcomes: list[dict[str, Any]], timing: dict[str, float], device: dict[str, Any] | None = None,
                     folds: list[int] | None = None) -> dict[str, Any]:
    """The results of one fold, or with ``folds`` (``fold`` None, each outcome naming its fold) of several."""
    protocol = {"split": split, "fold": fold, "seed": seed, "max_attempts": MAX_ATTEMPTS, "tasks": len(outcomes), "test_tasks": test_tasks}
    if folds:
        protocol["folds"] = folds
        score = fold_auccess(outcomes, folds, seed)
    else:
        score = {**auccess_figures([outcome["solved_at"] for outcome in outcomes], seed), "interval": BOOTSTRAP}
    return {
        **document_header(RESULTS_FORMAT),
        "env": env_description(),
        "protocol": protocol,
        "agent": agent,
        "device": device,
        "auccess": score,
        "tasks": outcomes,
        "timing": timing,
    }


def evaluate_folds(agent: str, split: str, folds: Sequence[int], seed: int = 0, tasks: int | None = None, progress: bool = True,
                   **options) -> dict[str, Any]:
    """``evaluate_agent`` on each of ``folds`` (each trains, where its agent does, on its own fold's training tasks), merged
    into one document: PHYRE's figure, the mean AUCCESS over the folds with its spread, each fold's own, and every task's
    outcome with its fold. The agent's description is the first fold's."""
    runs = [evaluate_agent(agent, split, fold, seed, tasks, progress, **options) for fold in folds]
    outcomes = [{**outcome, "fold": run["protocol"]["fold"]} for run in runs for outcome in run["tasks"]]
    timing: dict[str, float] = {}
    for run in runs:
        for key, value in run["timing"].items():
            timing[key] = timing.get(key, 0.0) + value
    return results_document(runs[0]["agent"], split, None, seed, sum(run["protocol"]["test_tasks"] for run in runs), outcomes,
                            timing, runs[0]["device"], folds=list(folds))


def fold_auccess(outcomes: list[dict[str, Any]], folds: list[int], seed: int) -> dict[str, Any]:
    """The ``auccess`` block of a several-fold document: the mean of the folds' AUCCESS (as PHYRE reports it), their
    sample standard deviation (``spread``), a bootstrap interval over every task, and each fold's figures."""
    per_fold = []
    for fold in folds:
        solved_at = [outcome["solved_at"] for outcome in outcomes if outcome["fold"] == fold]
        per_fold.append({"fold": fold, **auccess_figures(solved_at, seed), "tasks": len(solved_at)})
    values = [entry["value"] for entry in per_fold]
    every = auccess_figures([outcome["solved_at"] for outcome in outcomes], seed)  # its interval and solved share over every task
    return {**every, "value": float(np.mean(values)), "spread": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "interval": BOOTSTRAP, "per_fold": per_fold}


def env_description() -> dict[str, Any]:
    """The ``env`` block of a results document: which puzzles, as many as this wmbench has."""
    return {"name": "phyre", "id": ENVS["phyre"].id, "templates": len(TEMPLATES), "tasks_per_template": TASKS_PER_TEMPLATE}


def summary_text(results: dict[str, Any]) -> str:
    """The summary printed at the end of ``wmbench phyre eval``: the AUCCESS, then each template's."""
    protocol, score = results["protocol"], results["auccess"]
    low, high = score["ci95"]
    by_template: dict[str, list[int | None]] = {}
    for outcome in results["tasks"]:
        by_template.setdefault(parse_task_id(outcome["task"])[0], []).append(outcome["solved_at"])
    if "folds" in protocol:
        folds = ", ".join(f"fold {entry['fold']} {entry['value']:.3f}" for entry in score["per_fold"])
        head = [f"{results['agent']['name']} on {protocol['tasks']} {protocol['split']}-template test tasks of folds "
                f"{fold_text(protocol['folds'])}: AUCCESS {score['value']:.3f} +- {score['spread']:.3f} (mean +- standard deviation "
                f"over {len(protocol['folds'])} folds), solved within 100 attempts {score['solved_within_100']:.0%}", f"  {folds}"]
    else:
        head = [f"{results['agent']['name']} on {protocol['tasks']} {protocol['split']}-template test tasks (fold {protocol['fold']}): "
                f"AUCCESS {score['value']:.3f} (95% {low:.3f}-{high:.3f}), solved within 100 attempts {score['solved_within_100']:.0%}"]
    lines = [
        *head,
        *(f"  {name:24s} AUCCESS {auccess(solved_at):.3f}  ({len(solved_at)} tasks)" for name, solved_at in by_template.items()),
    ]
    return "\n".join(lines)


def parse_folds(text: str) -> list[int]:
    """``"0-4"``, ``"0,2,3"`` or ``"3"`` -> the folds, each 0-4, in order, without repeats."""
    try:
        if "-" in text:
            first, last = (int(part) for part in text.split("-"))
            folds = list(range(first, last + 1))
        else:
            folds = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--folds {text!r}: give a range such as 0-4 or a list such as 0,2,3") from None
    if not folds or any(not 0 <= fold < FOLDS for fold in folds) or len(set(folds)) != len(folds):
        raise ValueError(f"--folds {text!r}: give distinct folds from 0 to {FOLDS - 1}, as a range such as 0-4 or a list such as 0,2,3")
    return folds


def fold_text(folds: Sequence[int]) -> str:
    """``0-4`` for consecutive folds, else ``0,2,3``."""
    consecutive = list(folds) == list(range(folds[0], folds[0] + len(folds)))
    return f"{folds[0]}-{folds[-1]}" if consecutive and len(folds) > 1 else ",".join(map(str, folds))
