"""``wmbench.evaluate`` on a module in memory: the call a training loop makes every N steps.

It must give what exporting the same weights and evaluating the file gives, on the same pairs, and
hand the module back as it came (modes, requires_grad, gradients, weights, the global RNG).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="evaluating a model needs the 'torch' extra")

import wmbench  # noqa: E402
from wmbench.checkpoint import CheckpointError  # noqa: E402
from wmbench.testing import TinyWorldModel  # noqa: E402

README = Path(__file__).parents[1] / "README.md"
QUICK = {"episodes": 3, "samples": 40, "iterations": 2}  # a small CEM: about a second on 2 cores


def train_step(model: TinyWorldModel, optimizer: torch.optim.Optimizer, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (8, 2, 3, 32, 32), dtype=torch.uint8, generator=generator)
    actions = torch.rand(8, 2, 10, generator=generator) * 2 - 1
    latents = model.encode(pixels)
    loss = (model.rollout(latents[:, :1], actions) - latents[:, 1:].detach()).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_the_readme_training_loop_runs_as_written(tmp_path, monkeypatch, capsys):
    [code] = re.findall(r"<!-- example: training-loop -->\n```python\n(.*?)```", README.read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md training loop", "exec"), {"__name__": "readme_example"})
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in printed] == ["step 10", "step 20"]
    assert all(re.search(r"pusht: \d+/10 = [\d.]+% \(95% Wilson interval", line) for line in printed)
    assert list(tmp_path.iterdir()) == []  # nothing written without out=


def test_in_memory_evaluation_matches_the_exported_file_and_training_carries_on(tmp_path):
    model = TinyWorldModel(image_size=32, env="tworoom", seed=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(2):
        train_step(model, optimizer, step)
    model.train()
    model.conv.eval()  # a submodule kept in eval mode (a frozen encoder) must stay so, not follow model.train()
    model.project.weight.requires_grad_(False)  # a frozen parameter stays frozen; the others stay trainable
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    weights = {name: value.clone() for name, value in model.state_dict().items()}
    rng = torch.get_rng_state()

    in_memory = wmbench.evaluate(model, env="tworoom", out=tmp_path / "in-memory", videos=3, **QUICK)

    assert model.training and not model.conv.training and model.predictor.training
    assert [name for name, p in model.named_parameters() if not p.requires_grad] == ["project.weight"]
    assert all(torch.equal(p.grad, grads[name]) for name, p in model.named_parameters() if name in grads)
    assert all(torch.equal(value, weights[name]) for name, value in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)  # the training's random stream is not consumed

    exported = wmbench.export(model, tmp_path / "model.wmb")  # the same weights
    train_step(model, optimizer, 2)  # training carries on: gradients reach every trainable weight
    assert not torch.equal(model.predictor[0].weight, weights["predictor.0.weight"])
    assert torch.equal(model.project.weight, weights["project.weight"])

    from_file = wmbench.evaluate(exported, env="tworoom", out=tmp_path / "file", videos=3, **QUICK)
    assert in_memory.outcomes == from_file.outcomes and [o["pair"] for o in in_memory.outcomes] == [17, 130, 154]
    assert (in_memory.success_rate, in_memory.ci95) == (from_file.success_rate, from_file.ci95)
    assert in_memory.results["planner"] == from_file.results["planner"]
    assert in_memory.results["references"]["random"] == from_file.results["references"]["random"]
    for gif in sorted((tmp_path / "in-memory").glob("*.gif")):  # every frame the agent saw: the same plans were executed
        assert gif.read_bytes() == (tmp_path / "file" / gif.name).read_bytes()
    assert len(in_memory.files) == len(from_file.files) >= 4  # results.json, 3 GIFs (and summary.png with matplotlib)
    model_block = in_memory.results["model"]
    assert (model_block["source"], model_block["name"], model_block["parameters"]) == ("in-memory", "tiny-world-model", 1928)
    assert re.fullmatch("[0-9a-f]{64}", model_block["sha256"]) and from_file.results["model"]["source"] == "export"


def test_the_result_and_the_other_model_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = TinyWorldModel(image_size=32, env="pusht", seed=1)
    result = wmbench.evaluate(model, env="pusht", **QUICK)
    success = result.results["success"]
    assert isinstance(result, wmbench.EvalResult) and result.env == "pusht"
    assert (result.success_rate, list(result.ci95), result.successes, result.episodes) == (
        success["rate"], success["ci95"], success["successes"], 3)
    assert result.outcomes == result.results["episodes"] and result.timing == result.results["timing"]
    assert str(result).startswith(f"pusht: {result.successes}/3 = ") and "Wilson" in result.summary()
    assert result.files == [] and list(tmp_path.iterdir()) == []

    same = wmbench.evaluate(model, env="pusht", settings=wmbench.EvalSettings(episodes=3, planner_options={"samples": 40, "iterations": 2}))
    assert same.outcomes == result.outcomes and same.results["model"]["sha256"] == result.results["model"]["sha256"]
    wmbench.export(model, "model.wmb")
    loaded = wmbench.load_model("model.wmb")  # loaded once, evaluated as often as needed
    assert wmbench.evaluate(loaded, env="pusht", **QUICK).outcomes == result.outcomes


def test_gradient_planning_leaves_no_gradient_on_the_weights():
    model = TinyWorldModel(image_size=32, env="pusht")
    result = wmbench.evaluate(model, env="pusht", planner="gd", episodes=2, samples=4, iterations=2, budget=10)
    assert result.results["planner"]["name"] == "gd"
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


class WrongLatent(TinyWorldModel):
    def encode(self, pixels):
        return super().encode(pixels)[..., :8]  # meta says 16


@pytest.mark.parametrize(("call", "error", "named"), [
    (lambda: wmbench.evaluate(TinyWorldModel().state_dict(), env="pusht"), CheckpointError, r"state_dict.*model\.load_state_dict"),
    (lambda: wmbench.evaluate(42, env="pusht"), CheckpointError, "of type int; pass an nn.Module"),
    (lambda: wmbench.evaluate("missing.wmb", env="pusht"), CheckpointError, "does not exist"),
    (lambda: wmbench.evaluate(torch.nn.Linear(2, 2), env="pusht"), CheckpointError, "model.meta must be a wmbench.world_model.ModelMeta"),
    (lambda: wmbench.evaluate(WrongLatent(), env="pusht"), CheckpointError, r"model.encode returned \[2, 1, 8\]; model.meta says .* = \[2, 1, 16\]"),
    (lambda: wmbench.evaluate(TinyWorldModel(action_dim=3), env="pusht"), CheckpointError, "3-dimensional actions"),
    (lambda: wmbench.evaluate(TinyWorldModel(), env="pusht", device="meta"), ValueError, "the model is on cpu: leave device out"),
    (lambda: wmbench.evaluate(TinyWorldModel(), env="pusht", settings=wmbench.EvalSettings(), episodes=2), ValueError, r"\(episodes\), not both"),
    (lambda: wmbench.evaluate(TinyWorldModel(), env="pusht", settings=wmbench.EvalSettings(), device="cpu"), ValueError, r"\(device\), not both"),
    (lambda: wmbench.evaluate(TinyWorldModel(), env="pusht", settings=wmbench.EvalSettings(device="meta")), ValueError, "settings.device is 'meta'"),
    (lambda: wmbench.evaluate(TinyWorldModel(), env="pusht", videos=2), ValueError, "give out="),
    (lambda: wmbench.evaluate(TinyWorldModel(), env="nowhere"), ValueError, "nowhere"),
])
def test_bad_input_is_one_clear_error(call, error, named, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=named):
        call()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_evaluation_still_hands_the_module_back():
    model = TinyWorldModel(action_dim=3)  # refused by the env after the module was switched to eval mode
    model.train()
    with pytest.raises(CheckpointError):
        wmbench.evaluate(model, env="pusht")
    assert model.training and all(p.requires_grad for p in model.parameters())
