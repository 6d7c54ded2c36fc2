"""Paired comparison of two goal-reaching runs on the same pairs, or of two PHYRE runs on the same test
tasks (``wmbench compare A.json B.json``).

Two runs on the same pairs of the same evaluation set are paired: each pair was solved by both,
by neither, or by one only. The pairs solved by one only (the discordant pairs) carry the whole
difference, which is why a paired test sees a difference that two overlapping Wilson intervals hide.

=====================  ========================================================================
difference             success rate of A - success rate of B, over the same pairs
interval               95% percentile bootstrap of that difference: the pairs are resampled
                       with replacement, each keeping both outcomes (10,000 draws, seed 0)
discordant pairs       ``A only``: solved by A and not by B; ``B only``: the reverse
p-value                exact two-sided McNemar test: under "no difference" a discordant pair
                       is equally likely either way, so ``A only ~ Binomial(A only + B only,
                       1/2)``; p = min(1, 2 P(X <= min(A only, B only)))
=====================  ========================================================================

Runs are refused unless they share the env, the evaluation set (sha256), the budget and the
pairs: on other pairs the difference would mix the models with the pairs' difficulty.

Two PHYRE runs (``wmbench phyre eval``) are paired by test task. AUCCESS is the mean over tasks of
each task's own AUCCESS (the weighted share of attempts 1..100 by which it was solved), so the
difference is the mean of the per-task differences: its interval is the same paired bootstrap over
tasks, its p-value a two-sided paired t-test on them. They are refused unless they share the split,
the fold (or folds), the seed and the test tasks.

    comparison = compare_runs(json.load(open("a.json")), json.load(open("b.json")), ("a.json", "b.json"))
    print(comparison_text(comparison))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wmbench.eval.results import is_phyre, validate
from wmbench.stats import mcnemar_exact, paired_difference_interval, paired_t_test, wilson_interval

BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0


def compare_runs(first: dict[str, Any], second: dict[str, Any], names: tuple[str, str] = ("A", "B")) -> dict[str, Any]:
    """The paired comparison of two goal-reaching (or two PHYRE) results documents; ``ValueError`` naming the
    difference (and the fix) when they are not on the same pairs (test tasks)."""
    if all(is_phyre(document) for document in (first, second)):
        return compare_puzzle_runs(first, second, names)
    for name, document in zip(names, (first, second)):
        if "episodes" not in document or "env" not in document:
            raise ValueError(f"{name} is not a goal-reaching results file (`wmbench eval` writes them) nor a PHYRE one (`wmbench phyre "
                             "eval`); `wmbench compare` pairs two runs of the same kind")
        try:
            validate(document)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    check_same_pairs(first, second, names)
    outcomes = [{e["pair"]: e["success"] for e in document["episodes"]} for document in (first, second)]
    pairs = sorted(outcomes[0])
    solved = [[outcome[pair] for pair in pairs] for outcome in outcomes]
    only_first = sum(a and not b for a, b in zip(*solved))
    only_second = sum(b and not a for a, b in zip(*solved))
    low, high = paired_difference_interval(solved[0], solved[1], samples=BOOTSTRAP_SAMPLES, seed=BOOTSTRAP_SEED)
    runs = []
    for name, document, succeeded in zip(names, (first, second), solved):
        successes = sum(succeeded)
        runs.append({"file": name, "model": document["model"]["name"], "source": document["model"]["source"],
                     "successes": successes, "episodes": len(pairs), "rate": successes / len(pairs),
                     "ci95": list(wilson_interval(successes, len(pairs)))})
    return {
        "env": first["env"]["name"],
        "eval_set_sha256": first["protocol"]["eval_set"]["sha256"],
        "pairs": len(pairs),
        "budget": first["protocol"]["budget"],
        "runs": runs,
        "difference": {"rate": (only_first - only_second) / len(pairs), "ci95": [low, high], "interval": "paired percentile bootstrap",
                       "bootstrap_samples": BOOTSTRAP_SAMPLES, "bootstrap_seed": BOOTSTRAP_SEED},
        "discordant": {"first_only": only_first, "second_only": only_second,
                       "both": sum(a and b for a, b in zip(*solved)), "neither": sum(not (a or b) for a, b in zip(*solved))},
        "mcnemar_p": mcnemar_exact(only_first, only_second),
    }


def check_same_pairs(first: dict[str, Any], second: dict[str, Any], names: tuple[str, str]) -> None:
    """Refuse two runs that are not paired: another env, evaluation set, budget or list of pairs."""
    a, b = names
    if first["env"]["name"] != second["env"]["name"]:
        raise ValueError(f"{a} is on {first['env']['name']}, {b} on {second['env']['name']}: compare runs on the same env")
    sets = [document["protocol"]["eval_set"]["sha256"] for document in (first, second)]
    if sets[0] != sets[1]:
        raise ValueError(f"{a} used evaluation set {sets[0][:12]}..., {b} {sets[1][:12]}...: evaluate both with the same "
                         "wmbench so that they run on the same committed set")
    budgets = [document["protocol"]["budget"] for document in (first, second)]
    if budgets[0] != budgets[1]:
        raise ValueError(f"{a} had a budget of {budgets[0]} env steps, {b} {budgets[1]}: success is only paired under the "
                         "same budget; evaluate both with the same --budget")
    pairs = [[e["pair"] for e in document["episodes"]] for document in (first, second)]
    for name, listed in zip(names, pairs):
        if len(set(listed)) != len(listed):
            raise ValueError(f"{name} lists a pair twice; the file was edited")
    if sorted(pairs[0]) != sorted(pairs[1]):
        draws = [f"--episodes {d['protocol']['episodes']} --seed {d['protocol']['seed']}" for d in (first, second)]
        raise ValueError(f"{a} ran {len(pairs[0])} pairs ({draws[0]}), {b} {len(pairs[1])} pairs ({draws[1]}), "
                         f"{len(set(pairs[0]) ^ set(pairs[1]))} of them not in both: evaluate both with the same --episodes and --seed")


def compare_puzzle_runs(first: dict[str, Any], second: dict[str, Any], names: tuple[str, str]) -> dict[str, Any]:
    """The paired comparison of two PHYRE results documents on the same test tasks."""
    from wmbench.eval.puzzles import MAX_ATTEMPTS, auccess

    for name, document in zip(names, (first, second)):
        try:
            validate(document, "phyre_results")
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    a, b = names
    places = [{key: document["protocol"].get(key) for key in ("split", "fold", "folds", "seed")} for document in (first, second)]
    if places[0] != places[1]:
        raise ValueError(f"{a} ran {places[0]}, {b} {places[1]}: compare runs of the same split, fold and seed")
    tasks = [[task["task"] for task in document["tasks"]] for document in (first, second)]
    for name, listed in zip(names, tasks):
        if len(set(listed)) != len(listed):
            raise ValueError(f"{name} lists a task twice; the file was edited")
    if sorted(tasks[0]) != sorted(tasks[1]):
        raise ValueError(f"{a} ran {len(tasks[0])} test tasks, {b} {len(tasks[1])}, {len(set(tasks[0]) ^ set(tasks[1]))} of them not in "
                         "both: evaluate both with the same --tasks")
    solved_at = [{task["task"]: task["solved_at"] for task in document["tasks"]} for document in (first, second)]
    order = sorted(solved_at[0])
    per_task = [np.array([auccess([solved[task]]) for task in order]) for solved in solved_at]
    low, high = paired_difference_interval(per_task[0], per_task[1], samples=BOOTSTRAP_SAMPLES, seed=BOOTSTRAP_SEED)
    attempts = [np.array([MAX_ATTEMPTS + 1 if solved[task] is None else solved[task] for task in order]) for solved in solved_at]
    runs = [{"file": name, "agent": document["agent"]["name"], "model": (document["agent"]["model"] or {}).get("name"),
             "auccess": float(scores.mean()), "ci95": document["auccess"]["ci95"], "solved_within_100": document["auccess"]["solved_within_100"]}
            for name, document, scores in zip(names, (first, second), per_task)]
    return {
        "env": "phyre",
        **places[0],
        "tasks": len(order),
        "runs": runs,
        "difference": {"auccess": float((per_task[0] - per_task[1]).mean()), "ci95": [low, high],
                       "interval": "paired percentile bootstrap over tasks", "bootstrap_samples": BOOTSTRAP_SAMPLES,
                       "bootstrap_seed": BOOTSTRAP_SEED},
        "attempts": {"first_earlier": int((attempts[0] < attempts[1]).sum()), "second_earlier": int((attempts[1] < attempts[0]).sum()),
                     "same": int((attempts[0] == attempts[1]).sum())},
        "paired_t_p": paired_t_test(per_task[0], per_task[1])[1],
    }


def puzzle_comparison_text(comparison: dict[str, Any]) -> str:
    where = f"folds {comparison['folds']}" if comparison.get("folds") else f"fold {comparison['fold']}"
    lines = [f"phyre {comparison['split']} {where}: the same {comparison['tasks']} test tasks in both runs, seed {comparison['seed']}"]
    for label, run in zip("AB", comparison["runs"]):
        lo, hi = run["ci95"]
        lines.append(f"{label}  {run['model'] or run['agent']} ({run['file']}): AUCCESS x100 {100 * run['auccess']:.1f} "
                     f"(95% interval {100 * lo:.1f}-{100 * hi:.1f}), solved within 100 attempts {100 * run['solved_within_100']:.0f}%")
    difference, attempts = comparison["difference"], comparison["attempts"]
    lo, hi = difference["ci95"]
    lines += [
        f"difference A - B  {100 * difference['auccess']:+.1f} points (95% paired bootstrap interval over tasks {100 * lo:+.1f} to {100 * hi:+.1f})",
        f"tasks            solved earlier by A {attempts['first_earlier']}, by B {attempts['second_earlier']}, at the same attempt (or "
        f"by neither) {attempts['same']}",
        f"paired t-test    p = {comparison['paired_t_p']:.3g} (two-sided, on each task's AUCCESS)",
    ]
    return "\n".join(lines)


def comparison_text(comparison: dict[str, Any]) -> str:
    """The printed comparison: each run's success, the paired difference, the discordant pairs, McNemar's p
    (for PHYRE: each run's AUCCESS, the paired difference, which run solved each task earlier, the paired t-test)."""
    if comparison["env"] == "phyre":
        return puzzle_comparison_text(comparison)
    first, second = comparison["runs"]
    difference, discordant = comparison["difference"], comparison["discordant"]
    disagreeing = discordant["first_only"] + discordant["second_only"]
    lines = [f"{comparison['env']}: the same {comparison['pairs']} pairs of evaluation set {comparison['eval_set_sha256'][:12]} in "
             f"both runs, budget {comparison['budget']}"]
    for label, run in zip("AB", (first, second)):
        lo, hi = run["ci95"]
        lines.append(f"{label}  {run['model']} ({run['file']}): {run['successes']}/{run['episodes']} = {100 * run['rate']:.1f}% "
                     f"(95% Wilson interval {100 * lo:.1f}-{100 * hi:.1f}%)")
    lo, hi = difference["ci95"]
    lines += [
        f"difference A - B  {100 * difference['rate']:+.1f} points (95% paired bootstrap interval {100 * lo:+.1f} to {100 * hi:+.1f})",
        f"pairs            A only {discordant['first_only']}, B only {discordant['second_only']}, "
        f"both {discordant['both']}, neither {discordant['neither']}",
        f"McNemar exact    p = {comparison['mcnemar_p']:.3g} (two-sided, on the {disagreeing} discordant pairs)",
    ]
    return "\n".join(lines)
