"""The evaluation harness: the oracle's ceiling, the random floor, a tiny exported model end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="the harness needs the 'torch' extra")

from wmbench.cli import main  # noqa: E402
from wmbench.data.evalset import load_eval_set  # noqa: E402
from wmbench.data.evalset import draw_pairs  # noqa: E402
from wmbench.eval.goal_reaching import EvalSettings, evaluate  # noqa: E402
from wmbench.eval.results import validate  # noqa: E402
from wmbench.stats import wilson_interval  # noqa: E402


def test_wilson_interval_matches_hand_computed_values():
    # p = 5/10: center 0.5, half-width z/(1+z^2/n) * sqrt(p(1-p)/n + z^2/(4n^2)) = 0.2634
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(48, 50)[0] > 0.85 and wilson_interval(48, 50)[1] < 1.0


def test_pairs_are_drawn_reproducibly_and_distinct():
    evalset = load_eval_set("tworoom")
    first, again = draw_pairs(evalset, 50, 42), draw_pairs(evalset, 50, 42)
    assert np.array_equal(first, again) and len(set(first.tolist())) == 50
    assert not np.array_equal(first, draw_pairs(evalset, 50, 43))
    with pytest.raises(ValueError, match="has 200 pairs"):
        draw_pairs(evalset, 201, 0)


def oracle_settings(episodes: int) -> EvalSettings:
    return EvalSettings(episodes=episodes, planner_options={"samples": 64, "iterations": 5, "elites": 8})


# Measured over 50 episodes with this CPU CEM (64 x 5): Two-Room 100%, Push-T 72%; random 4% and 6%.
@pytest.mark.parametrize(("env_name", "episodes", "at_least"), [("tworoom", 12, 11), ("pusht", 8, 5)])
def test_the_oracle_solves_most_episodes(env_name, episodes, at_least):
    results, _ = evaluate("oracle", env_name, oracle_settings(episodes), progress=False)
    validate(results)
    assert results["success"]["successes"] >= at_least, results["episodes"]


@pytest.mark.parametrize("env_name", ["tworoom", "pusht"])
def test_random_stays_near_the_floor(env_name):
    oracle, _ = evaluate("oracle", env_name, oracle_settings(12), progress=False)
    random, _ = evaluate("random", env_name, EvalSettings(episodes=12), progress=False)
    validate(random)
    assert random["success"]["rate"] <= 0.5 and random["success"]["rate"] < oracle["success"]["rate"]
    assert random["timing"]["planning_calls"] == 2  # budget 50 = 10 blocks of 5; a plan of 5 blocks each time


def test_the_scripted_expert_reaches_two_room_goals():
    results, _ = evaluate("expert", "tworoom", EvalSettings(episodes=12), progress=False)
    validate(results)
    assert results["model"]["source"] == "expert" and results["success"]["successes"] == 12, results["episodes"]


def test_the_expert_is_refused_where_the_env_has_none():
    with pytest.raises(ValueError, match="pusht has no scripted expert"):
        evaluate("expert", "pusht", EvalSettings(episodes=1), progress=False)


def test_end_to_end_eval_of_a_tiny_exported_model(tmp_path, capsys):
    from wmbench.checkpoint import export
    from wmbench.testing import TinyWorldModel

    checkpoint = export(TinyWorldModel(image_size=32, action_dim=2), tmp_path / "tiny.wmb")
    out = tmp_path / "run"
    argv = ["eval", "--model", str(checkpoint), "--env", "tworoom", "--episodes", "6", "--samples", "32",
            "--iterations", "3", "--videos", "1", "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    validate(results)
    assert results["model"]["source"] == "export" and len(results["model"]["sha256"]) == 64
    assert results["protocol"]["eval_set"]["sha256"] == load_eval_set("tworoom").meta["sha256"]
    assert results["planner"]["name"] == "cem" and results["success"]["episodes"] == 6
    assert results["timing"]["planning_calls"] >= 1 and results["timing"]["episode_plan_mean_s"] > 0
    assert (out / "summary.png").is_file() and len(list(out.glob("episode_00_*.gif"))) == 1
    assert "success" in capsys.readouterr().out


def test_a_model_for_another_action_size_is_refused(tmp_path, capsys):
    from wmbench.checkpoint import export
    from wmbench.testing import TinyWorldModel

    checkpoint = export(TinyWorldModel(image_size=32, action_dim=5), tmp_path / "cube-sized.wmb")
    assert main(["eval", "--model", str(checkpoint), "--env", "tworoom", "--episodes", "2", "--out", str(tmp_path / "x")]) == 2
    assert "action" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_shipped_checkpoint_evaluates_on_pusht_with_the_defaults(tmp_path):
    """The README's main job, on fewer episodes: the committed checkpoint through the real pipeline."""
    from pathlib import Path

    checkpoint = Path(__file__).parents[1] / "baselines" / "lewm" / "checkpoints" / "pusht-cpu.wmb"
    assert main(["eval", "--model", str(checkpoint), "--env", "pusht", "--episodes", "2", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    validate(results)
    assert results["planner"]["samples"] == 300 and results["planner"]["iterations"] == 30  # the standard CEM: docs/protocol.md#planning
    assert results["model"]["meta"]["image_size"] == [64, 64] and results["env"]["id"] == "wmbench/PushT-v0"
    assert results["model"]["name"] == "lewm-cpu" and results["model"]["parameters"] == 1_852_032


def test_export_command_needs_trust_and_makes_a_self_contained_checkpoint(tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    from wmbench.checkpoint import load_model
    from wmbench.testing import TinyWorldModel

    save_file(TinyWorldModel(seed=3).state_dict(), tmp_path / "weights.safetensors")
    spec = tmp_path / "model.json"
    spec.write_text(json.dumps({"factory": "wmbench.testing:TinyWorldModel", "config": {}, "weights": "weights.safetensors"}))
    assert main(["export", "--model", str(spec), "--out", str(tmp_path / "m.wmb")]) == 2
    assert "--trust-code" in capsys.readouterr().err and not (tmp_path / "m.wmb").exists()
    assert main(["export", "--model", str(spec), "--trust-code", "--out", str(tmp_path / "m.wmb")]) == 0
    exported, original = load_model(tmp_path / "m.wmb"), TinyWorldModel(seed=3)
    pixels = torch.randint(0, 256, (2, 1, 3, 32, 32), dtype=torch.uint8)
    assert exported.source == "export" and torch.allclose(exported.encode(pixels), original.encode(pixels), atol=1e-6)
    assert main(["export", "--model", str(tmp_path / "m.wmb"), "--out", str(tmp_path / "again.wmb")]) == 2
    assert "already a self-contained" in capsys.readouterr().err


def test_voe_command_writes_curves_that_validate(tmp_path, capsys):
    from wmbench.checkpoint import export
    from wmbench.testing import TinyWorldModel

    checkpoint = export(TinyWorldModel(image_size=32, action_dim=2), tmp_path / "tiny.wmb")
    out = tmp_path / "voe"
    assert main(["voe", "--model", str(checkpoint), "--env", "tworoom", "--episodes", "4", "--out", str(out), "--device", "cpu"]) == 0
    result = json.loads((out / "voe.json").read_text())
    validate(result, "voe")
    assert {"teleport", "recolor"} <= set(result["summary"]) and (out / "voe.png").is_file()


def test_an_env_without_a_goal_has_no_mpc_evaluation():
    from wmbench.eval.goal_reaching import EvalSettings, evaluate

    with pytest.raises(ValueError, match="clevrer is a video environment: it has no goal to reach"):
        evaluate("random", "clevrer", EvalSettings(episodes=1))


def test_a_cpu_rolls_candidates_out_in_chunks_side_by_side_to_the_numbers_of_one_call():
    """The latent controller splits a plan's candidates into chunks over threads: each candidate's prediction is that
    of one call over all of them within float32's own rounding (MKL's products may round differently with another
    batch size or buffer alignment, so not bit for bit); its gradient (for gd) and its dtype under autocast (bf16) are
    those of one call, and torch's threads are restored."""
    from types import SimpleNamespace

    import torch

    from wmbench.eval.controllers import CPU_ROLLOUT_CHUNK, rollout_in_chunks
    from wmbench.testing import TinyWorldModel

    model = TinyWorldModel(image_size=16, history=3, action_dim=2).eval()
    candidates = 2 * CPU_ROLLOUT_CHUNK + 7  # two full chunks and a short one
    starts = torch.randn(candidates, 3, *model.meta.latent_shape)
    blocks = torch.rand(candidates, 8, model.meta.block_size) * 2 - 1
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            chunked, whole = rollout_in_chunks(model, starts, blocks), model.rollout(starts, blocks)
            assert torch.get_num_threads() == 2
            exact = model.double().rollout(starts.double(), blocks.double())
            model.float()
        # chunks and one call differ by no more than twice what one call rounds away from float64
        assert (chunked - whole).abs().max() <= 2 * (whole - exact).abs().max()
        linear = torch.nn.Linear(model.meta.block_size, 4)
        bare = SimpleNamespace(rollout=lambda starts, blocks: linear(blocks))  # under autocast a Linear's output is bf16
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
            assert rollout_in_chunks(bare, starts, blocks).dtype == torch.bfloat16
        gradients = []
        for rollout in (rollout_in_chunks, lambda m, s, b: m.rollout(s, b)):
            actions = blocks.clone().requires_grad_(True)
            rollout(model, starts, actions).square().sum().backward()
            gradients.append(actions.grad)
        assert gradients[0].abs().sum() > 0 and torch.allclose(*gradients, atol=1e-5)
    finally:
        torch.set_num_threads(threads)
