"""The world-model agent of the puzzles: rank candidate balls by a success score that a probe reads
from the model's predicted latents; and its score maps, where it thinks a ball solves a task.

=================  ===========================================================================
frames             what the env shows: the scene at rest before the ball (repeated to fill the
                   model's history; nothing moves before the ball is placed), then the scene
                   with the ball. The action block leading into the ball's frame holds the
                   placement, every later one zeros (the env ignores actions after the first)
rollout            ``horizon`` model steps from that history (default: 10 s of physics at the
                   env's default stride of one frame per second), chained when a checkpoint's
                   own rollout horizon is shorter
probe              logistic regression (L2, standardized features) on the last predicted
                   latent, fitted on ``probe_samples`` random valid placements on the split's
                   training tasks, each labelled by the simulator. The test tasks are never
                   simulated for it. Its validation AUROC is that of a probe fitted without
                   every fifth of those tasks, scored on them
ranking            ``candidates`` random valid placements per test task, attempted in order of
                   the probe's score, best first
score maps         over a grid of ball positions at one radius (``wmbench phyre maps``): where
                   the simulator says a ball solves the task (invalid cells masked) beside the
                   agent's probe score at the same cells, and how well the scores separate them
=================  ===========================================================================
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmbench.envs.phyre.simulation import (
    FPS, MAX_STEPS, Scene, action_ball, draw, draw_ball, initial_poses, random_valid_placements, simulate, valid_placements,
)
from wmbench.envs.phyre.templates import parse_task_id, task
from wmbench.progress import progress_bar
from wmbench.protocol import PUZZLES
from wmbench.stats import auroc, binary_auroc, fit_logistic, logistic_scores

STRIDE = FPS  # physics steps per env step: the env's default, one frame per second
PROBE_L2 = 1e-3
BATCH = 256


class WorldModelAgent:
    """Ranks random valid placements of each task by a probe's success score on predicted latents."""

    def __init__(self, model, train_tasks: list[str], *, candidates: int = PUZZLES.candidates, probe_samples: int = PUZZLES.probe_samples,
                 horizon: int | None = None, seed: int = 0, progress: bool = True):
        meta = model.meta
        if meta.action_dim != 3:
            raise ValueError(f"model {meta.name!r} takes {meta.action_dim}-d actions; PHYRE's action is the ball's (x, y, r): train it on PHYRE data")
        for name, value in (("candidates", candidates), ("probe_samples", probe_samples)):
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} {value}: must be at least 1")
        self.model = model
        self.candidates = candidates
        self.horizon = horizon if horizon is not None else math.ceil(PUZZLES.horizon_seconds / meta.action_block)
        if not 1 <= self.horizon * meta.action_block * STRIDE <= MAX_STEPS:
            raise ValueError(f"--horizon {self.horizon}: must be at least 1 model step and stay within PHYRE's 17 s of physics")
        start = time.perf_counter()
        self.probe = self._fit_probe(train_tasks, probe_samples, np.random.default_rng([seed, 1]), progress)
        self.probe_s = time.perf_counter() - start

    # ------------------------------------------------------------------ the model
    def frames(self, scene: Scene, actions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels of the scene at rest ``[1, 1, 3, H, W]``, the same before every placement, and of each placement's ball
        ``[N, 1, 3, H, W]``."""
        before = draw(scene, initial_poses(scene), self.model.meta.image_size)
        placed = np.stack([draw_ball(before, action) for action in actions])
        return (torch.from_numpy(before[None, None]).permute(0, 1, 4, 2, 3),
                torch.from_numpy(np.ascontiguousarray(placed[:, None])).permute(0, 1, 4, 2, 3))

    def blocks(self, actions: np.ndarray) -> torch.Tensor:
        """The normalized action blocks ``[N, T + horizon, block]`` of each placement: the placement leads into the ball's frame."""
        meta = self.model.meta
        blocks = np.zeros((len(actions), meta.history + self.horizon, meta.action_block, meta.action_dim), np.float32)
        if meta.history > 1:
            blocks[:, meta.history - 2, 0] = 2.0 * actions - 1.0  # the env's action space is [-1, 1]^3
        return meta.normalize_actions(torch.from_numpy(blocks.reshape(len(actions), meta.history + self.horizon, -1)))

    def history_latents(self, scene: Scene, actions: np.ndarray) -> torch.Tensor:
        """Each placement's history ``[N, T, ...]``: the scene at rest, repeated, then the ball's frame. The encoder reads
        each frame on its own (as for goals), so the scene at rest is encoded once for all placements: 1 frame in T."""
        at_rest, placed = (self.model.encode(pixels) for pixels in self.frames(scene, actions))
        return torch.cat([at_rest.expand(len(actions), self.model.meta.history - 1, *at_rest.shape[2:]), placed], dim=1)

    @torch.no_grad()
    def features(self, scene: Scene, actions: np.ndarray) -> np.ndarray:
        """The last predicted latent (flattened) of each placement in ``scene``."""
        out = []
        for start in range(0, len(actions), BATCH):
            chunk = actions[start : start + BATCH]
            out.append(self.predict(self.history_latents(scene, chunk), self.blocks(chunk))[:, -1].flatten(1).float().cpu().numpy())
        return np.concatenate(out)

    def predict(self, latents: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
        """``horizon`` predicted latents, in pieces of at most the checkpoint's own rollout horizon."""
        history, limit = self.model.meta.history, getattr(self.model, "horizon", None) or self.horizon
        predicted = []
        done = 0
        while done < self.horizon:
            steps = min(limit, self.horizon - done)
            chunk = self.model.rollout(latents, blocks[:, done : done + history + steps])
            predicted.append(chunk)
            latents = torch.cat([latents, chunk], dim=1)[:, -history:]
            done += steps
        return torch.cat(predicted, dim=1)

    # ------------------------------------------------------------------ the probe
    def _fit_probe(self, train_tasks: list[str], samples: int, rng: np.random.Generator, progress: bool) -> dict[str, Any]:
        chosen = [train_tasks[i] for i in rng.integers(len(train_tasks), size=samples)]
        tasks = sorted(set(chosen))
        features, labels, held_out = [], [], []
        for position, tid in enumerate(progress_bar(tasks, desc="phyre probe data", unit="task", disable=not progress)):
            scene = task(*parse_task_id(tid))
            actions = random_valid_placements(scene, chosen.count(tid), rng)
            labels.extend(simulate(scene, action, stop_when_decided=True).solved for action in actions)
            features.append(self.features(scene, actions))
            held_out.extend([position % 5 == 4] * len(actions))  # every fifth task, for the validation figure
        features, labels, held_out = np.concatenate(features), np.array(labels, dtype=float), np.array(held_out)
        validation = fit_logistic(features[~held_out], labels[~held_out], PROBE_L2)
        return {**fit_logistic(features, labels, PROBE_L2), "validation_auroc": binary_auroc(logistic_scores(validation, features[held_out]), labels[held_out])}

    def scores(self, scene: Scene, actions: np.ndarray) -> np.ndarray:
        return logistic_scores(self.probe, self.features(scene, actions))

    # ------------------------------------------------------------------ the agent
    def __call__(self, scene: Scene, rng: np.random.Generator) -> Iterator[np.ndarray]:
        actions = random_valid_placements(scene, self.candidates, rng)
        order = np.argsort(-self.scores(scene, actions), kind="stable")
        yield from actions[order]

    def settings(self) -> dict[str, Any]:
        probe = self.probe
        return {"candidates": self.candidates, "probe_samples": probe["samples"], "horizon": self.horizon,
                "horizon_seconds": self.horizon * self.model.meta.action_block * STRIDE / FPS,
                "probe": {"positives": probe["positives"], "train_accuracy": probe["train_accuracy"], "train_auroc": probe["train_auroc"],
                          "validation_auroc": probe["validation_auroc"], "l2": PROBE_L2, "features": int(len(probe["weight"]))}}



# ---------------------------------------------------------------------- score maps
GRID = 32


@dataclass(frozen=True)
class ScoreMap:
    task: str
    scene: Scene
    radius: float  # PHYRE's r of the ball at every cell
    valid: np.ndarray  # [grid, grid] bool, rows from the top of the scene
    truth: np.ndarray  # [grid, grid] bool
    scores: np.ndarray  # [grid, grid] float, NaN where invalid

    @property
    def auroc(self) -> float | None:
        """How well the scores separate solving cells from the others (valid cells only)."""
        solves = self.truth[self.valid]
        if solves.all() or not solves.any():
            return None
        scores = self.scores[self.valid]
        return auroc(scores[solves], scores[~solves])


def grid_actions(grid: int = GRID, radius: float = PUZZLES.map_radius) -> np.ndarray:
    """``[grid * grid, 3]`` placements at the cell centres, row by row from the top of the scene."""
    centres = (np.arange(grid) + 0.5) / grid
    y, x = np.meshgrid(centres[::-1], centres, indexing="ij")
    return np.stack([x.ravel(), y.ravel(), np.full(grid * grid, radius)], axis=1)


def score_map(agent, task_id: str, scene: Scene, grid: int = GRID, radius: float = PUZZLES.map_radius) -> ScoreMap:
    actions = grid_actions(grid, radius)
    valid = valid_placements(scene, actions)
    truth = np.zeros(len(actions), bool)
    truth[valid] = [simulate(scene, action, stop_when_decided=True).solved for action in actions[valid]]
    scores = np.full(len(actions), np.nan)
    if valid.any():
        scores[valid] = agent.scores(scene, actions[valid])
    shape = (grid, grid)
    return ScoreMap(task_id, scene, radius, valid.reshape(shape), truth.reshape(shape), scores.reshape(shape))


def plot_score_maps(maps: list[ScoreMap], path: str | Path, title: str = "") -> None:
    """One row per task: the scene, where a ball solves it, and the agent's scores (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(maps), 3, figsize=(7.5, 2.6 * len(maps)), dpi=110, squeeze=False)
    for row, found in zip(axes, maps):
        scene_axis, truth_axis, score_axis = row
        scene_axis.imshow(draw(found.scene, initial_poses(found.scene), 128))
        scene_axis.set_title(found.task, fontsize=8)
        truth = np.where(found.valid, found.truth.astype(float), np.nan)
        truth_axis.imshow(truth, cmap="Greens", vmin=0, vmax=1, interpolation="nearest")
        truth_axis.set_title(f"solves ({int(found.truth.sum())} of {int(found.valid.sum())} valid cells)", fontsize=8)
        shown = score_axis.imshow(found.scores, cmap="viridis", interpolation="nearest")
        separation = "n/a" if found.auroc is None else f"{found.auroc:.2f}"
        score_axis.set_title(f"agent's score (AUROC {separation})", fontsize=8)
        figure.colorbar(shown, ax=score_axis, fraction=0.046, pad=0.04)
        for axis in row:
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_facecolor("#dddddd")  # invalid cells
    caption = f"a ball of radius {action_ball((0.0, 0.0, maps[0].radius))[2]:.0f} px at each cell; gray: invalid"
    figure.suptitle(f"{title}\n{caption}" if title else caption, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
