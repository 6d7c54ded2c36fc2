"""Every shipped baseline config builds its model, and the paper configs have the published sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from baselines.cjepa import CJEPA
from baselines.lewm import LeWM
from baselines.pldm import PLDM
from baselines.training import tomllib

MODELS = {"cjepa": CJEPA, "lewm": LeWM, "pldm": PLDM}
CONFIGS = sorted(Path(__file__).parents[1].glob("baselines/*/configs/*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: f"{path.parents[1].name}/{path.name}")
def test_config_builds_its_model(path):
    model_class = MODELS[path.parents[1].name]
    config = tomllib.loads(path.read_text())
    assert {"dataset", "resolution", "history", "predictions", "frameskip"} <= set(config["data"])
    facts = dict(image_size=config["data"]["resolution"], history=config["data"]["history"], action_block=config["data"]["frameskip"], action_dim=2)
    counts = model_class.from_config(config, facts).parameter_summary()
    assert counts["total"] > 0
    if model_class is LeWM and path.stem == "paper":
        # the LeWM paper: ViT-tiny encoder ~5M, predictor ~10M ("15M params")
        assert 4.5e6 < counts["encoder"] < 7e6 and 9e6 < counts["predictor"] < 11e6, counts
    if config["data"]["resolution"] == 224:
        assert config["train"]["batch_size"] == 128 and config["train"]["bf16"] and config["data"]["frameskip"] == 5


def test_every_baseline_has_a_cpu_and_a_paper_config():
    assert {f"{path.parents[1].name}/{path.stem}" for path in CONFIGS} >= {f"{name}/{kind}" for name in MODELS for kind in ("cpu", "paper")}
