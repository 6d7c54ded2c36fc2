"""The README's world-model example runs as written: it defines, exports and evaluates a model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the example needs the 'torch' extra")

README = Path(__file__).parents[1] / "README.md"


def test_the_world_model_example_exports_a_checkpoint_that_evaluates(tmp_path, monkeypatch):
    from wmbench.cli import main

    [code] = re.findall(r"<!-- example: world-model -->\n```python\n(.*?)```", README.read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md example", "exec"), {"__name__": "readme_example"})
    assert main(["eval", "--model", "my-model.wmb", "--env", "pusht", "--episodes", "3", "--samples", "40",
                 "--iterations", "2", "--out", "run"]) == 0
    assert json.loads((tmp_path / "run" / "results.json").read_text())["model"]["name"] == "my-model"
