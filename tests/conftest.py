"""Fixtures shared by the baseline tests."""

from __future__ import annotations

from pathlib import Path

import pytest


def collect_tiny(tmp_path_factory, name: str, env: str, policy: str) -> Path:
    """A Minari root holding ``name``: 8 episodes of 40 steps at 32 px (about a second to collect)."""
    from wmbench.data import Recipe
    from wmbench.data.collect import collect

    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        collect(Recipe(name=name, env=env, policy=policy, episodes=8, steps=40, resolution=32), progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_tworoom_root(tmp_path_factory) -> Path:
    """A Minari root holding ``tiny-tworoom-v0``: expert Two-Room episodes."""
    return collect_tiny(tmp_path_factory, "tiny-tworoom-v0", "tworoom", "expert")


@pytest.fixture(scope="session")
def tiny_pusht_root(tmp_path_factory) -> Path:
    """A Minari root holding ``tiny-pusht-v0``: weak-policy Push-T episodes."""
    return collect_tiny(tmp_path_factory, "tiny-pusht-v0", "pusht", "weak")


@pytest.fixture(scope="session")
def train_tiny(tmp_path_factory):
    """``train_tiny(train_main, config_text, dataset_root)``: a baseline's training command run on the CPU with a
    config written out, its dataset read from ``dataset_root``; returns the output folder."""

    def train(train_main, config_text: str, dataset_root: Path) -> Path:
        out = tmp_path_factory.mktemp("run")
        config = out / "config.toml"
        config.write_text(config_text)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MINARI_DATASETS_PATH", str(dataset_root))
            assert train_main(["--config", str(config), "--out", str(out), "--device", "cpu"]) == 0
        return out

    return train


@pytest.fixture(scope="session")
def check_causal_rollout():
    """``check_causal_rollout(model, latents, steps)``: with history T, changing action block j (T - 1 <= j <= T - 1 +
    steps) leaves the predictions before j - T + 1 unchanged and changes prediction j - T + 1, if there is one."""

    def check(model, latents, steps: int) -> None:
        import torch

        history = latents.shape[1]
        actions = torch.randn(len(latents), history + steps, model.meta.block_size)
        before = model.rollout(latents, actions)
        for changed in range(history - 1, history + steps):  # block T - 1 is the first planned one; the last conditions nothing
            later = actions.clone()
            later[:, changed] += 1.0
            after = model.rollout(latents, later)
            first_affected = changed - history + 1  # prediction k depends on blocks up to T - 1 + k
            assert torch.equal(before[:, :first_affected], after[:, :first_affected])
            if first_affected < steps:
                assert not torch.allclose(before[:, first_affected], after[:, first_affected])

    return check
