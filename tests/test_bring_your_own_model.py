"""docs/bring-your-own-model.md works as written, and the state_dict route refuses what it must.

The guide's three examples (patch tokens, a class with a state_dict, object slots) are files in
docs/examples that the guide shows verbatim; their commands are read from the guide and run here,
each with 2 episodes and a small planner. Then the route from a state_dict to a spec:
``wmbench.save_spec``, ``.pt`` weights, and an error naming the fix for each thing that goes wrong.
"""

from __future__ import annotations

import json
import re
import runpy
import shlex
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the examples need the 'torch' extra")

from safetensors.torch import save_file  # noqa: E402

import wmbench  # noqa: E402
from wmbench.checkpoint import CheckpointError, load_model  # noqa: E402
from wmbench.cli import main  # noqa: E402

ROOT = Path(__file__).parents[1]
GUIDE = (ROOT / "docs" / "bring-your-own-model.md").read_text()
EXAMPLES = ROOT / "docs" / "examples"
SMALL = ["--episodes", "2", "--samples", "30", "--iterations", "1", "--budget", "25", "--out", "run"]  # appended to `wmbench eval`


def forget_examples() -> None:
    """Drop the example modules imported so far: each command of the guide is a fresh process."""
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(EXAMPLES)):
            del sys.modules[name]


@pytest.fixture(autouse=True)
def fresh_imports():
    forget_examples()
    yield
    forget_examples()


@pytest.fixture
def my_models(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import my_models

    return my_models


# ---------------------------------------------------------------------- the guide
def test_the_guide_shows_every_example_file_as_it_is():
    shown = dict(re.findall(r"<!-- file: (\S+) -->\n```python\n(.*?)```", GUIDE, re.S))
    assert set(shown) == {f"docs/examples/{path.name}" for path in EXAMPLES.glob("*.py")}
    for name, code in shown.items():
        assert code == (ROOT / name).read_text(), f"the guide's copy of {name} differs from the file"


def run_command(line: str, monkeypatch) -> None:
    """One line of the guide, as a shell would run it from the repository root (outputs to the current folder)."""
    words = shlex.split(line)
    path = [str(ROOT / words.pop(0).partition("=")[2]) for _ in range(len(words)) if words and words[0].startswith("PYTHONPATH=")]
    forget_examples()
    with monkeypatch.context() as patch:
        for folder in path:
            patch.syspath_prepend(folder)
        if words[0] == "python":  # python puts the script's own folder on the path
            patch.syspath_prepend(str((ROOT / words[1]).parent))
            runpy.run_path(str(ROOT / words[1]), run_name="__main__")
        else:
            assert words[0] == "wmbench", line
            assert main(words[1:] + (SMALL if words[1] == "eval" else [])) == 0, line


@pytest.mark.parametrize(("example", "name"), [("patch-tokens", "patch-tokens"), ("state-dict", "conv-model"), ("object-slots", "object-slots")])
def test_each_example_exports_and_evaluates_as_the_guide_says(example, name, tmp_path, monkeypatch):
    [commands] = re.findall(rf"<!-- commands: {example} -->\n```bash\n(.*?)```", GUIDE, re.S)
    monkeypatch.chdir(tmp_path)
    for line in commands.strip().splitlines():
        run_command(line, monkeypatch)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (results["model"]["name"], results["model"]["source"], results["success"]["episodes"]) == (name, "export", 2)


def test_the_examples_latents_have_the_shapes_the_guide_names(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from object_slots import SlotWorldModel
    from patch_tokens import PatchTokenWorldModel

    for model, shape in ((PatchTokenWorldModel(), (16, 32)), (SlotWorldModel(), (4, 16))):
        pixels = torch.zeros(3, model.meta.history, 3, 32, 32, dtype=torch.uint8)
        assert model.meta.latent_shape == shape and model.encode(pixels).shape == (3, model.meta.history, *shape)
    slots = SlotWorldModel()
    predicted, goal = torch.randn(2, 3, 4, 16), torch.randn(2, 4, 16)
    swapped = predicted[:, :, [1, 0, 3, 2]]  # the same objects in another order: the same cost
    assert torch.allclose(slots.cost(predicted, goal), slots.cost(swapped, goal))


# ---------------------------------------------------------------------- wmbench.save_spec
def test_save_spec_takes_a_module_a_state_dict_or_a_weights_file(my_models, tmp_path):
    torch.manual_seed(0)
    model = my_models.ConvWorldModel(latent_dim=16)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    save_file(model.state_dict(), tmp_path / "weights.safetensors")
    pixels = torch.randint(0, 256, (2, 1, 3, 64, 64), dtype=torch.uint8)
    for i, (factory, weights) in enumerate([(my_models.ConvWorldModel, model), ("my_models:ConvWorldModel", model.state_dict()),
                                            (my_models.ConvWorldModel, tmp_path / "weights.pt"), (my_models.ConvWorldModel, str(tmp_path / "weights.safetensors"))]):
        spec = wmbench.save_spec(tmp_path / f"spec{i}.json", factory, {"latent_dim": 16}, weights)
        assert json.loads(spec.read_text()) == {"factory": "my_models:ConvWorldModel", "config": {"latent_dim": 16}, "weights": f"spec{i}.safetensors"}
        loaded = load_model(spec, trust_code=True)
        with torch.no_grad():
            assert torch.equal(loaded.encode(pixels), model.encode(pixels))


def test_a_written_spec_takes_pt_weights_relative_to_the_spec_or_absolute(my_models, tmp_path, monkeypatch):
    model = my_models.ConvWorldModel()
    (tmp_path / "specs" / "trained").mkdir(parents=True)
    torch.save(model.state_dict(), tmp_path / "specs" / "trained" / "weights.pt")
    for i, weights in enumerate(["trained/weights.pt", str(tmp_path / "specs" / "trained" / "weights.pt")]):
        spec = tmp_path / "specs" / f"model{i}.json"
        spec.write_text(json.dumps({"factory": "my_models:ConvWorldModel", "weights": weights}))
        monkeypatch.chdir(tmp_path)  # not the spec's folder: the path is read relative to the spec
        assert torch.equal(load_model(spec, trust_code=True).module.predictor[0].weight, model.predictor[0].weight)


def test_a_key_mismatch_lists_every_difference_and_writes_nothing(my_models, tmp_path):
    weights = my_models.ConvWorldModel().state_dict()
    del weights["encoder.0.bias"], weights["predictor.2.weight"]
    weights["head.weight"] = torch.zeros(3)
    weights["predictor.0.weight"] = torch.zeros(64, 7)
    with pytest.raises(CheckpointError) as refused:
        wmbench.save_spec(tmp_path / "model.json", my_models.ConvWorldModel, {}, weights)
    message = str(refused.value)
    assert "missing from the weights (2): encoder.0.bias, predictor.2.weight." in message
    assert "unexpected in the weights (1): head.weight." in message
    assert "shape mismatch (1): predictor.0.weight is [64, 7] in the weights, [64, 42] in the model." in message
    assert "fix: the weights come from another model or config" in message
    assert list(tmp_path.iterdir()) == []

    many = {f"extra.{i}": torch.zeros(1) for i in range(25)} | my_models.ConvWorldModel().state_dict()
    with pytest.raises(CheckpointError, match=r"unexpected in the weights \(25\): extra.0, .*extra.19, \.\.\. and 5 more\."):
        wmbench.save_spec(tmp_path / "model.json", my_models.ConvWorldModel, {}, many)
    with pytest.raises(CheckpointError, match=r"(?s)shape mismatch \(3\).*fix: the same layers with other sizes: give the config"):
        wmbench.save_spec(tmp_path / "model.json", my_models.ConvWorldModel, {"hidden": 32}, my_models.ConvWorldModel())


@pytest.mark.parametrize(("prefix", "left_by"), [("module.", "DataParallel"), ("_orig_mod.", "torch.compile")])
def test_a_wrapper_prefix_is_named_with_its_fix(my_models, tmp_path, prefix, left_by):
    weights = {prefix + key: value for key, value in my_models.ConvWorldModel().state_dict().items()}
    with pytest.raises(CheckpointError, match=rf"prefix '{re.escape(prefix)}' \(left by .*{left_by}.*\): save the inner model's state_dict, or strip it"):
        wmbench.save_spec(tmp_path / "model.json", my_models.ConvWorldModel, {}, weights)


def test_weights_files_that_are_not_a_state_dict(my_models, tmp_path):
    model = my_models.ConvWorldModel()
    torch.save({"epoch": 3, "state_dict": model.state_dict(), "optimizer": {}}, tmp_path / "checkpoint.pt")
    torch.save(model, tmp_path / "whole.pt")
    (tmp_path / "notes.txt").write_text("not weights")
    for file, named in (("checkpoint.pt", r"training checkpoint .*under 'state_dict': save that entry alone"),
                        ("whole.pt", r"holds objects, not only tensors .*torch.save\(model.state_dict\(\), path\)"),
                        ("notes.txt", "neither a safetensors file nor a torch.save file"),
                        ("missing.pt", "does not exist")):
        with pytest.raises(CheckpointError, match=named):
            wmbench.save_spec(tmp_path / "model.json", my_models.ConvWorldModel, {}, tmp_path / file)
    assert not (tmp_path / "model.json").exists() and not (tmp_path / "model.safetensors").exists()


class DefinedInAScript(torch.nn.Module):
    pass


DefinedInAScript.__module__ = "__main__"


def test_factories_and_configs_that_a_spec_cannot_hold(my_models, tmp_path, monkeypatch):
    class Local(my_models.ConvWorldModel):
        pass

    model = my_models.ConvWorldModel()
    for factory, config, named in (
        (DefinedInAScript, {}, r"defined in the script or notebook being run \(__main__\).*move it into a module file"),
        (Local, {}, "defined inside a function"),
        ("my_models.ConvWorldModel", {}, "must be \"package.module:function\""),
        ("my_models:Missing", {}, "module 'my_models' has no 'Missing'"),
        ("not_on_the_path:Model", {}, r"cannot import the factory's module 'not_on_the_path'.*PYTHONPATH"),
        (my_models.ConvWorldModel, {"layers": 3}, r"ConvWorldModel\(\*\*config\) failed: TypeError.*'layers'.*config holds the keyword arguments"),
        (my_models.ConvWorldModel, {"size": torch.zeros(1)}, "config must hold only JSON values"),
    ):
        with pytest.raises(CheckpointError, match=named):
            wmbench.save_spec(tmp_path / "model.json", factory, config, model)
    with pytest.raises(CheckpointError, match="a spec is a JSON file"):
        wmbench.save_spec(tmp_path / "model.safetensors", my_models.ConvWorldModel, {}, model)
    with pytest.raises(CheckpointError, match=r"config is a list: give the factory's keyword arguments as a dict"):
        wmbench.save_spec(tmp_path / "model.json", my_models.ConvWorldModel, [64, 32], model)
    with pytest.raises(CheckpointError, match=r"weights=\.\.\.\) is a int, not a state_dict .*model.state_dict\(\)"):
        wmbench.save_spec(tmp_path / "model.json", my_models.ConvWorldModel, {}, 42)
    assert list(tmp_path.iterdir()) == []

    (tmp_path / "needs_more.py").write_text("import a_package_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CheckpointError, match="importing the factory's module 'needs_more' failed .*install what it imports"):
        wmbench.save_spec(tmp_path / "model.json", "needs_more:Model", {}, model)


def test_a_module_left_off_the_path_is_found_and_named(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps({"factory": "beside_the_spec:Model"}))
    (tmp_path / "beside_the_spec.py").write_text("")
    with pytest.raises(CheckpointError, match=f"add the folder that holds 'beside_the_spec' to PYTHONPATH \\(PYTHONPATH={tmp_path} wmbench"):
        load_model(tmp_path / "spec.json", trust_code=True)
    (tmp_path / "spec.json").write_text(json.dumps({"factory": "beside_the_spec:Model", "weight": "model.safetensors"}))
    with pytest.raises(CheckpointError, match=r"unknown key\(s\) \['weight'\]"):
        load_model(tmp_path / "spec.json", trust_code=True)


def test_a_state_dict_where_a_model_belongs_says_to_write_a_spec(my_models, tmp_path):
    model = my_models.ConvWorldModel()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    save_file(model.state_dict(), tmp_path / "weights.safetensors")
    for file, trust in (("weights.pt", False), ("weights.pt", True), ("weights.safetensors", False)):
        with pytest.raises(CheckpointError, match=r"weights only \(a state_dict of 10 tensors\).*wmbench.save_spec\(.*--trust-code"):
            load_model(tmp_path / file, trust_code=trust)
    with pytest.raises(CheckpointError, match=r"got a state_dict .*model.load_state_dict\(state_dict\).*wmbench.save_spec"):
        wmbench.export(model.state_dict(), tmp_path / "model.wmb")
    (tmp_path / "damaged.safetensors").write_bytes((tmp_path / "weights.safetensors").read_bytes()[:60])
    with pytest.raises(CheckpointError, match="damaged.safetensors is truncated or corrupted"):
        load_model(tmp_path / "damaged.safetensors", trust_code=True)


def test_the_command_line_gives_the_key_diff_on_one_line(my_models, tmp_path, monkeypatch, capsys):
    weights = my_models.ConvWorldModel(latent_dim=16).state_dict()
    save_file(weights, tmp_path / "model.safetensors")
    (tmp_path / "model.json").write_text(json.dumps({"factory": "my_models:ConvWorldModel", "weights": "model.safetensors"}))
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--model", "model.json", "--trust-code", "--out", "model.wmb"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: model.json: my_models:ConvWorldModel(**config) with model.safetensors: the weights do not fit")
    assert "shape mismatch (5): encoder.6.weight is [16, 32] in the weights, [32, 32] in the model;" in line and "fix: the same layers" in line
    assert not (tmp_path / "model.wmb").exists()
