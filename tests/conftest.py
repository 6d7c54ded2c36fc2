"""Fixtures shared by the baseline tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_tworoom_root(tmp_path_factory) -> Path:
    """A Minari root holding ``tiny-tworoom-v0``: 8 expert Two-Room episodes of 40 steps at 32 px (about a second to collect)."""
    from wmbench.data import Recipe
    from wmbench.data.collect import collect

    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        collect(Recipe(name="tiny-tworoom-v0", env="tworoom", policy="expert", episodes=8, steps=40, resolution=32), progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_pusht_root(tmp_path_factory) -> Path:
    """A Minari root holding ``tiny-pusht-v0``: 8 weak-policy Push-T episodes of 40 steps at 32 px (under a second to collect)."""
    from wmbench.data import Recipe
    from wmbench.data.collect import collect

    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        collect(Recipe(name="tiny-pusht-v0", env="pusht", policy="weak", episodes=8, steps=40, resolution=32), progress=False)
    return root
