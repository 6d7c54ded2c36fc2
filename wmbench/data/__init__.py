"""Datasets: recipes, collection into Minari datasets, frozen evaluation sets, the training loader.

``wmbench.data.WindowDataset`` (the torch training loader) needs torch and is imported on first
use, so collecting and evaluating never import torch.
"""

from wmbench.data.recipe import Recipe, episode_seeds

__all__ = ["Recipe", "episode_seeds", "WindowDataset"]


def __getattr__(name):
    if name == "WindowDataset":
        from wmbench.data.loader import WindowDataset

        return WindowDataset
    raise AttributeError(f"module 'wmbench.data' has no attribute {name!r}")
