"""Where a ball solves a task, and where a world-model agent thinks it does: both over a grid of
ball positions at one radius, side by side with the scene (``wmbench phyre maps``).

=================  ===========================================================================
truth              1 where the simulator says a ball at that cell centre solves the task, 0
                   where it does not; invalid placements (overlap, outside) are masked
scores             the agent's probe score (``WorldModelAgent.scores``) at the same cells
picture            a row per task: the scene, the truth, the scores (needs matplotlib)
=================  ===========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wmbench.envs.phyre.simulation import Scene, action_ball, draw, initial_poses, simulate, valid_placements
from wmbench.voe import auroc

GRID = 32
RADIUS = 0.5  # PHYRE's r: a ball of 2 + 30 * 0.5 = 17 px


@dataclass(frozen=True)
class ScoreMap:
    task: str
    scene: Scene
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


def grid_actions(grid: int = GRID, radius: float = RADIUS) -> np.ndarray:
    """``[grid * grid, 3]`` placements at the cell centres, row by row from the top of the scene."""
    centres = (np.arange(grid) + 0.5) / grid
    y, x = np.meshgrid(centres[::-1], centres, indexing="ij")
    return np.stack([x.ravel(), y.ravel(), np.full(grid * grid, radius)], axis=1)


def score_map(agent, task_id: str, scene: Scene, grid: int = GRID, radius: float = RADIUS) -> ScoreMap:
    actions = grid_actions(grid, radius)
    valid = valid_placements(scene, actions)
    truth = np.zeros(len(actions), bool)
    truth[valid] = [simulate(scene, action, stop_when_decided=True).solved for action in actions[valid]]
    scores = np.full(len(actions), np.nan)
    if valid.any():
        scores[valid] = agent.scores(scene, actions[valid])
    shape = (grid, grid)
    return ScoreMap(task_id, scene, valid.reshape(shape), truth.reshape(shape), scores.reshape(shape))


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
    radius_px = action_ball((0.0, 0.0, RADIUS))[2]
    figure.suptitle(title or f"a ball of radius {radius_px:.0f} px at each cell; gray: invalid", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
