"""The world-model agent of PHYRE's evaluation: the frames the model sees, chained rollouts, the probe, the ranking."""

import json

import numpy as np
import pytest
import torch

from wmbench.checkpoint import export, load_model
from wmbench.envs.phyre import PhyreEnv, simulate, task
from wmbench.eval.puzzle_agent import WorldModelAgent
from wmbench.envs.phyre.simulation import random_valid_placements
from wmbench.envs.phyre.splits import split_tasks
from wmbench.eval.results import validate
from wmbench.stats import fit_logistic, logistic_scores
from wmbench.testing import TinyWorldModel


def tiny_phyre_model(history: int = 2) -> TinyWorldModel:
    return TinyWorldModel(image_size=32, history=history, action_block=1, action_dim=3, name="tiny-phyre", env="phyre")


def small_agent(model, **options) -> WorldModelAgent:
    train, _ = split_tasks("within", 0, seed=0)
    return WorldModelAgent(model, train, **{"candidates": 40, "probe_samples": 40, "horizon": 4, "progress": False, **options})


def test_the_model_sees_the_envs_frames_and_the_placement():
    agent = small_agent(tiny_phyre_model(history=3))
    scene = task("stick_onto_box", 4)
    actions = random_valid_placements(scene, 3, np.random.default_rng(0))
    at_rest, placed = agent.frames(scene, actions)
    blocks = agent.blocks(actions)
    assert at_rest.shape == (1, 1, 3, 32, 32) and placed.shape == (3, 1, 3, 32, 32) and placed.dtype == torch.uint8
    assert blocks.shape == (3, 3 + 4, 3)
    for action, frame, block in zip(actions, placed, blocks):
        env = PhyreEnv(resolution=32, variation={"template": "stick_onto_box", "task": 4})
        before, _ = env.reset(seed=0)
        env_action = 2 * action - 1
        after, *_ = env.step(env_action)
        assert np.array_equal(at_rest[0, 0].permute(1, 2, 0).numpy(), before["pixels"])
        assert np.array_equal(frame[0].permute(1, 2, 0).numpy(), after["pixels"])  # the ball, drawn exactly as the env draws it
        assert torch.allclose(block[1], torch.from_numpy(env_action).float()) and not block[2:].any() and not block[0].any()


def test_the_scene_at_rest_encoded_once_gives_each_placements_own_history():
    model = tiny_phyre_model(history=3)
    agent = small_agent(model)
    scene = task("ball_into_jar", 2)
    actions = random_valid_placements(scene, 4, np.random.default_rng(2))
    at_rest, placed = agent.frames(scene, actions)
    histories = torch.cat([at_rest.expand(4, 2, -1, -1, -1), placed], dim=1)  # every placement's T frames, encoded in full
    with torch.no_grad():
        assert torch.allclose(agent.history_latents(scene, actions), model.encode(histories), atol=1e-6)


def test_rollouts_longer_than_the_checkpoints_horizon_are_chained(tmp_path):
    module = tiny_phyre_model()
    loaded = load_model(export(module, tmp_path / "tiny.wmb", horizon=3))
    scene = task(0, 0)
    actions = random_valid_placements(scene, 5, np.random.default_rng(1))
    chained = small_agent(loaded)  # horizon 4 > 3: two rollouts of 3 and 1 steps
    whole = small_agent(module)  # the module rolls out any horizon at once
    blocks = chained.blocks(actions)
    with torch.no_grad():
        assert torch.allclose(chained.predict(chained.history_latents(scene, actions), blocks),
                              whole.predict(whole.history_latents(scene, actions), blocks), atol=1e-5)


def test_the_logistic_probe_learns_a_separable_rule():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 6))
    labels = (features[:, 2] - 0.5 * features[:, 4] > 0.3).astype(float)
    probe = fit_logistic(features, labels)
    assert probe["train_auroc"] > 0.99 and probe["train_accuracy"] > 0.95 and probe["positives"] == labels.sum()
    held_out = rng.normal(size=(200, 6))
    truth = held_out[:, 2] - 0.5 * held_out[:, 4] > 0.3
    assert ((logistic_scores(probe, held_out) > 0.5) == truth).mean() > 0.95
    constant = fit_logistic(features, np.zeros(400))
    assert constant["train_auroc"] is None and np.all(logistic_scores(constant, features) < 0.5)


def test_candidates_are_valid_and_attempted_best_score_first():
    agent = small_agent(tiny_phyre_model())
    scene = task("ball_into_jar", 11)
    proposals = np.array(list(agent(scene, np.random.default_rng(5))))
    again = np.array(list(agent(scene, np.random.default_rng(5))))
    assert proposals.shape == (40, 3) and np.array_equal(proposals, again)
    assert all(simulate(scene, action, steps=1).valid for action in proposals)
    scores = agent.scores(scene, proposals)
    assert np.all(np.diff(scores) <= 1e-12)


def test_perfect_scores_solve_every_task_at_the_first_attempt(monkeypatch):
    """The ranking's plumbing: with the simulator's verdict as the score, the first attempt is a solution whenever
    any candidate solves the task (about 1% of random placements do)."""
    from wmbench.eval import puzzles

    agent = small_agent(tiny_phyre_model(), candidates=300)
    any_solves = []

    def verdicts(scene, actions):
        solved = np.array([simulate(scene, a, stop_when_decided=True).solved for a in actions], float)
        any_solves.append(bool(solved.any()))
        return solved

    monkeypatch.setattr(agent, "scores", verdicts)
    _, test = split_tasks("within", 0, seed=0)
    outcomes = puzzles.run_agent(agent, test[:3], seed=0, progress=False, desc="")
    assert [outcome["solved_at"] for outcome in outcomes] == [1 if solves else None for solves in any_solves] and any(any_solves)


def test_world_model_agent_through_the_cli(tmp_path, capsys):
    from wmbench.cli import main
    from wmbench.leaderboard import phyre_deviations

    checkpoint = export(tiny_phyre_model(), tmp_path / "tiny.wmb", horizon=3)
    out = tmp_path / "wm.json"
    argv = ["phyre", "eval", "--agent", "world-model", "--model", str(checkpoint), "--tasks", "2", "--candidates", "30",
            "--probe-samples", "30", "--horizon", "5", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    results = json.loads(out.read_text())
    validate(results, "phyre_results")
    agent = results["agent"]
    assert agent["name"] == "world-model" and agent["model"]["sha256"] == load_model(checkpoint).sha256
    assert agent["settings"]["candidates"] == 30 and agent["settings"]["horizon"] == 5 and agent["settings"]["probe_samples"] == 30
    assert set(agent["settings"]["probe"]) >= {"train_auroc", "validation_auroc", "positives"}
    deviations = phyre_deviations(results)  # a leaderboard lists every setting off the standard
    assert deviations["agent.settings.candidates"] == [1000, 30] and deviations["agent.settings.horizon_seconds"] == [10, 5.0]
    assert deviations["agent.settings.probe_samples"] == [2000, 30] and deviations["tasks"] == [len(split_tasks("within", 0, 0)[1]), 2]
    assert results["device"]["type"] == "cpu" and results["protocol"]["tasks"] == 2 and "AUCCESS" in capsys.readouterr().out
    assert results["timing"]["probe_s"] > 0

    assert main(["phyre", "eval", "--agent", "world-model", "--tasks", "1"]) == 2  # no --model
    assert main(["phyre", "eval", "--agent", "random", "--candidates", "5", "--tasks", "1"]) == 2
    assert "setting of the world-model agent" in capsys.readouterr().err
    wrong = export(TinyWorldModel(image_size=32, action_dim=2), tmp_path / "two-d.wmb")
    assert main(["phyre", "eval", "--agent", "world-model", "--model", str(wrong), "--tasks", "1"]) == 2
    assert "takes 2-dimensional actions" in capsys.readouterr().err


@pytest.mark.parametrize("option", [{"candidates": 0}, {"probe_samples": 0}, {"horizon": 0}, {"horizon": 30}])
def test_bad_settings_are_refused(option):
    with pytest.raises(ValueError, match="must"):
        small_agent(tiny_phyre_model(), **option)


def test_score_maps_show_where_balls_solve_and_what_the_agent_scores(tmp_path, capsys):
    from wmbench.cli import main
    from wmbench.eval.puzzle_agent import grid_actions, score_map

    agent = small_agent(tiny_phyre_model())
    scene = task("ball_off_shelf", 3)
    found = score_map(agent, "ball_off_shelf:003", scene, grid=6, radius=0.3)
    actions = grid_actions(6, radius=0.3)
    assert found.radius == 0.3
    assert actions[0, 1] > actions[-1, 1] and actions[0, 0] < actions[5, 0]  # row 0 is the top of the scene, x grows along a row
    for cell in (0, 14, 35):
        row, column = divmod(cell, 6)
        rollout = simulate(scene, actions[cell], stop_when_decided=True)
        assert found.valid[row, column] == rollout.valid and found.truth[row, column] == rollout.solved
        assert np.isnan(found.scores[row, column]) != rollout.valid

    checkpoint = export(tiny_phyre_model(), tmp_path / "tiny.wmb", horizon=3)
    out = tmp_path / "maps.png"
    argv = ["phyre", "maps", "--model", str(checkpoint), "--tasks", "2", "--grid", "6", "--probe-samples", "20", "--horizon", "2",
            "--radius", "0.3", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    from PIL import Image

    assert Image.open(out).size[1] > Image.open(out).size[0] / 2  # two rows of panels
    printed = capsys.readouterr().out
    assert printed.count("valid cells solve it") == 2 and f"wrote {out}" in printed


def test_the_default_map_ball_is_small_enough_to_solve_a_task():
    """No ball of r >= 0.5 fits the roofs' openings: a map drawn with one has nothing to find."""
    from wmbench.eval.puzzle_agent import grid_actions

    scene = task("stick_onto_box", 4)
    assert any(simulate(scene, action, stop_when_decided=True).solved for action in grid_actions(16))
    assert not any(simulate(scene, action, stop_when_decided=True).solved for action in grid_actions(16, radius=0.5))
