"""Paired comparison of two goal-reaching runs on the same pairs (``wmbench compare A.json B.json``).

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

    comparison = compare_runs(json.load(open("a.json")), json.load(open("b.json")), ("a.json", "b.json"))
    print(comparison_text(comparison))
"""

from __future__ import annotations

from typing import Any

from wmbench.eval.results import validate
from wmbench.stats import mcnemar_exact, paired_difference_interval, wilson_interval

BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0


def compare_runs(first: dict[str, Any], second: dict[str, Any], names: tuple[str, str] = ("A", "B")) -> dict[str, Any]:
    """The paired comparison of two goal-reaching results documents; ``ValueError`` naming the
    difference (and the fix) when they are not on the same pairs."""
    for name, document in zip(names, (first, second)):
        if "episodes" not in document or "env" not in document:
            raise ValueError(f"{name} is not a goal-reaching results file (`wmbench eval` writes them); `wmbench compare` pairs those only")
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


def comparison_text(comparison: dict[str, Any]) -> str:
    """The printed comparison: each run's success, the paired difference, the discordant pairs, McNemar's p."""
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
