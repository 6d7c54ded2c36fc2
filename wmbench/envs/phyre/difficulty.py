"""How hard each PHYRE template is for chance: the share of random valid placements that solve its
tasks, over every radius and at the largest radius only (what ranking balls by size relies on);
or, with ``--by-radius``, the share over every template by the ball's radius.

``python -m wmbench.envs.phyre.difficulty [--tasks 20] [--samples 50] [--by-radius] [--out FILE]``
prints the table (markdown) and writes it to ``--out`` when given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from wmbench.envs.phyre.simulation import action_ball, random_valid_placements, simulate, valid_placements
from wmbench.envs.phyre.templates import TEMPLATES, task


def largest_valid_placements(scene, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` uniform (x, y) with the largest radius (r = 1) that place a valid ball."""
    found = []
    while sum(len(f) for f in found) < count:
        draws = np.column_stack([rng.uniform(0.0, 1.0, (4 * count, 2)), np.ones(4 * count)])
        found.append(draws[valid_placements(scene, draws)])
    return np.concatenate(found)[:count]


def solved_share(scene, actions) -> float:
    return float(np.mean([simulate(scene, action, stop_when_decided=True).solved for action in actions]))


def template_shares(template: str, tasks: int, samples: int, seed: int = 0) -> tuple[float, float]:
    """(any radius, largest radius): the share of random valid placements that solve the first
    ``tasks`` tasks of ``template``, ``samples`` placements of each kind per task."""
    rng = np.random.default_rng([seed, list(TEMPLATES).index(template)])
    any_radius, largest = [], []
    for index in range(tasks):
        scene = task(template, index)
        any_radius.append(solved_share(scene, random_valid_placements(scene, samples, rng)))
        largest.append(solved_share(scene, largest_valid_placements(scene, samples, rng)))
    return float(np.mean(any_radius)), float(np.mean(largest))


def shares_table(tasks: int, samples: int, seed: int = 0) -> str:
    lines = ["| # | template | solving share, any radius | at the largest radius |", "|---|---|---|---|"]
    every = []
    for number, name in enumerate(TEMPLATES):
        any_radius, largest = template_shares(name, tasks, samples, seed)
        every.append((any_radius, largest))
        lines.append(f"| {number} | `{name}` | {100 * any_radius:.1f}% | {100 * largest:.1f}% |")
        print(lines[-1], flush=True)
    mean_any, mean_largest = np.mean(every, axis=0)
    lines.append(f"| | all templates | {100 * mean_any:.1f}% | {100 * mean_largest:.1f}% |")
    return "\n".join(lines)


def radius_table(tasks: int, samples: int, seed: int = 0, bands: int = 10) -> str:
    """The share of random valid placements that solve their task, by band of PHYRE's radius r, over
    the first ``tasks`` tasks of every template with ``samples`` placements each."""
    radii, solved = [], []
    for number, name in enumerate(TEMPLATES):
        rng = np.random.default_rng([seed, number])
        for index in range(tasks):
            scene = task(name, index)
            actions = random_valid_placements(scene, samples, rng)
            radii.extend(actions[:, 2])
            solved.extend(simulate(scene, action, stop_when_decided=True).solved for action in actions)
    band = np.minimum((np.array(radii) * bands).astype(int), bands - 1)
    solved = np.array(solved)
    lines = ["| r | ball radius | placements | solving share |", "|---|---|---|---|"]
    for b in range(bands):
        low, high = b / bands, (b + 1) / bands
        inside = band == b
        share = f"{100 * solved[inside].mean():.1f}%" if inside.any() else "-"
        pixels = f"{action_ball((0, 0, low))[2]:.0f}-{action_ball((0, 0, high))[2]:.0f} px"
        lines.append(f"| {low:.1f}-{high:.1f} | {pixels} | {int(inside.sum())} | {share} |")
    lines.append(f"| all | | {len(solved)} | {100 * solved.mean():.1f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wmbench.envs.phyre.difficulty", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20, help="the first N tasks of every template (default 20)")
    parser.add_argument("--samples", type=int, default=50, help="random valid placements of each kind per task (default 50)")
    parser.add_argument("--by-radius", action="store_true", help="the share by the ball's radius, over every template")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    if not 1 <= args.tasks <= 100 or args.samples < 1:
        parser.error("--tasks takes 1-100 and --samples a positive number")
    if args.by_radius:
        table = radius_table(args.tasks, args.samples)
        print(table)
    else:
        table = shares_table(args.tasks, args.samples)
        print(table.splitlines()[-1])
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
