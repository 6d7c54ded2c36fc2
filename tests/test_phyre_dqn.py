"""The dqn agent of the puzzles: its network learns, trains the same every time, ranks valid candidates, and runs from the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wmbench import cli
from wmbench.envs.phyre.simulation import action_ball, random_valid_placements, valid_placements
from wmbench.envs.phyre.splits import split_tasks
from wmbench.envs.phyre.templates import TEMPLATES, parse_task_id, task, task_id
from wmbench.eval import puzzles
from wmbench.eval.phyre_dqn import CHANNELS, DQNAgent, SuccessNet, scene_channels, scores, train
from wmbench.leaderboard import SubmissionError, make_entry, run_digest
from wmbench.stats import binary_auroc

TASKS = [task_id(name, 0) for name in TEMPLATES]


def above_green(scene, actions) -> np.ndarray:
    """A label the network can learn from a scene and a placement: the ball lies over the green object."""
    green = scene.things[scene.goal_index]
    x, y, radius = np.array([action_ball(action) for action in actions]).T
    return (np.abs(x - green.x) < radius + green.width / 2) & (y > green.y)


def labelled(per_task: int = 64):
    rng = np.random.default_rng(0)
    scenes = [task(*parse_task_id(tid)) for tid in TASKS]
    actions = [random_valid_placements(scene, per_task, rng) for scene in scenes]
    data = {"task": np.repeat(np.arange(len(scenes)), per_task), "actions": np.concatenate(actions).astype(np.float32),
            "solved": np.concatenate([above_green(scene, a) for scene, a in zip(scenes, actions)])}
    return np.stack([scene_channels(scene) for scene in scenes]), data


def test_the_scene_is_one_channel_per_color_of_covered_fractions():
    scene = task(*parse_task_id(TASKS[0]))
    image = scene_channels(scene)
    assert image.shape == (len(CHANNELS), 64, 64) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    for channel, color in enumerate(CHANNELS):
        assert (image[channel].sum() > 0) == any(thing.color == color for thing in scene.things)


def test_training_learns_to_score_the_labelled_placements_above_the_others():
    images, data = labelled()
    assert 0.05 < data["solved"].mean() < 0.5  # both labels are there to learn from

    def separation(net: SuccessNet) -> float:
        ranked = np.concatenate([scores(net, images[i], data["actions"][data["task"] == i]) for i in range(len(images))])
        return binary_auroc(ranked, data["solved"])

    torch.manual_seed(0)
    untrained, trained = separation(SuccessNet().eval()), separation(train(images, data, steps=200, seed=0)[0])
    assert trained > 0.8 and trained > untrained + 0.2


def test_training_is_deterministic_given_the_seed():
    images, data = labelled(16)
    first, loss = train(images, data, steps=5, seed=3)
    again, loss_again = train(images, data, steps=5, seed=3)
    other, _ = train(images, data, steps=5, seed=4)
    assert loss == loss_again
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), other.state_dict().values()))


def test_training_refuses_data_without_both_outcomes():
    images, data = labelled(8)
    with pytest.raises(ValueError, match="0 solving"):
        train(images, {**data, "solved": np.zeros_like(data["solved"])}, steps=1, seed=0)


def test_the_ranking_is_the_candidates_best_score_first():
    torch.manual_seed(0)
    agent = DQNAgent(SuccessNet().eval(), candidates=50)
    scene = task(*parse_task_id(TASKS[1]))
    ranked = np.array(list(agent(scene, np.random.default_rng(7))))
    candidates = random_valid_placements(scene, 50, np.random.default_rng(7))
    assert ranked.shape == candidates.shape and valid_placements(scene, ranked).all()
    assert sorted(map(tuple, ranked)) == sorted(map(tuple, candidates))
    assert np.all(np.diff(agent.scores(scene, ranked)) <= 0)


def test_cli_trains_evaluates_and_reuses_the_network(tmp_path, capsys, monkeypatch):
    train_tasks, test_tasks = split_tasks("within", 0, 0)
    few = train_tasks[:: len(train_tasks) // 20]  # 20 tasks over the templates: 600 labelled placements, a dozen solving
    monkeypatch.setattr(puzzles, "split_tasks", lambda split, fold, seed: (few, test_tasks))
    cache, out, again = tmp_path / "cache", tmp_path / "dqn.json", tmp_path / "again.json"
    tiny = ["phyre", "eval", "--agent", "dqn", "--tasks", "2", "--candidates", "20", "--dqn-samples", "30", "--dqn-steps", "3",
            "--dqn-cache", str(cache)]
    assert cli.main([*tiny, "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    training = results["agent"]["settings"]["training"]
    assert results["agent"]["name"] == "dqn" and len(results["tasks"]) == 2 and results["device"]["type"] == "cpu"
    assert training["examples"] == 30 * len(few) and not training["loaded"]
    weights = list(cache.glob("weights-*.pt"))
    assert len(weights) == 1 and len(list(cache.glob("data-*.npz"))) == 1

    assert cli.main([*tiny, "--out", str(again)]) == 0
    rerun = json.loads(again.read_text())
    assert rerun["agent"]["settings"]["training"]["loaded"] and rerun["timing"]["train_s"] == 0.0
    assert rerun["tasks"] == results["tasks"]
    assert rerun["agent"]["settings"]["training"]["weights_sha256"] == training["weights_sha256"]

    capsys.readouterr()
    assert cli.main([*tiny, "--dqn-steps", "4", "--dqn-weights", str(weights[0]), "--out", str(again)]) == 2
    assert "trained on other tasks or settings" in capsys.readouterr().err

    # on the leaderboard: a reference agent whose settings off the standard are listed, and whose training figures do not define the run
    with pytest.raises(SubmissionError, match="agent.settings.steps: 3000 -> 3"):
        make_entry(results)
    entry = make_entry(results, custom=True)
    assert entry["model"] == entry["agent"] == "dqn" and entry["table"] == "custom" and entry["device"].endswith("threads)")
    assert run_digest(rerun) == run_digest(results)
    with pytest.raises(SubmissionError, match="wmbench's dqn agent has no model"):
        make_entry({**results, "agent": {**results["agent"], "settings": {"candidates": 20}}}, custom=True)


@pytest.mark.parametrize("arguments, word", [
    (["--agent", "random", "--dqn-steps", "3"], "--dqn-steps is a setting of the dqn agent"),
    (["--agent", "dqn", "--dqn-samples", "0"], "--dqn-samples"),
    (["--agent", "dqn", "--dqn-steps", "x"], "--dqn-steps"),
    (["--agent", "dqn", "--probe-samples", "5"], "--probe-samples is a setting of the world-model agent"),
    (["--agent", "dqn", "--folds", "0-1", "--dqn-weights", "w.pt"], "--folds trains one per fold; pass --dqn-cache"),
])
def test_cli_refuses_bad_dqn_options_in_one_line(arguments, word, capsys):
    assert exit_code(["phyre", "eval", *arguments]) == 2
    error = capsys.readouterr().err
    assert word in error and "Traceback" not in error


def exit_code(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as stop:  # argparse's refusals
        return stop.code


def test_a_damaged_weights_file_is_refused_in_one_line(tmp_path, capsys):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"not a network")
    assert cli.main(["phyre", "eval", "--agent", "dqn", "--tasks", "1", "--dqn-weights", str(weights), "--out", str(tmp_path / "r.json")]) == 2
    assert "not a dqn network" in capsys.readouterr().err
