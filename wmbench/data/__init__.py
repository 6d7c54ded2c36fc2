"""Datasets: recipes, collection into Minari datasets, frozen evaluation sets, CLEVRER-style video sets, the training loader.

``wmbench.data.WindowDataset`` and ``split_episodes`` (the torch training loader, the
``torch`` extra) are imported on first use, so collecting and evaluating never import torch.
"""

from wmbench.data.recipe import Recipe, episode_seeds

__all__ = ["Recipe", "episode_seeds", "WindowDataset", "split_episodes"]


def __getattr__(name):
    if name in ("WindowDataset", "split_episodes"):
        from wmbench.data import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'wmbench.data' has no attribute {name!r}")
