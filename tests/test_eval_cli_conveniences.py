"""What `wmbench eval` does for the researcher beyond the numbers: a quick smoke test that says when it proves
nothing, run folders that are never overwritten silently, the planner's options listed, the conditions a time was
measured under recorded, and progress that stays out of logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from wmbench.cli import main
from wmbench.eval.goal_reaching import EvalSettings, evaluate, random_like_note, summary_text
from wmbench.eval.results import validate
from wmbench.planning import make_planner, planner_options


def test_quick_runs_ten_pairs_beside_random_and_says_when_they_cannot_be_told_apart(tmp_path, capsys):
    assert main(["eval", "--quick", "--model", "random", "--env", "tworoom", "--out", str(tmp_path / "quick")]) == 0
    results = json.loads((tmp_path / "quick" / "results.json").read_text())
    assert results["protocol"]["episodes"] == 10 and results["references"]["random"]["episodes"] == 10
    assert main(["eval", "--quick", "--episodes", "20", "--model", "random", "--env", "tworoom"]) == 2
    assert "--quick evaluates 10 pairs; drop --episodes 20 or --quick" in capsys.readouterr().err


def test_a_result_no_better_than_random_on_its_pairs_carries_a_note():
    expert, _ = evaluate("expert", "tworoom", EvalSettings(episodes=10), progress=False)
    assert expert["success"]["successes"] >= 9 and random_like_note(expert) is None  # 9+ pairs against random's few
    like_random = expert | {"episodes": expert["references"]["random"]["outcomes"], "model": {**expert["model"], "source": "model"}}
    note = random_like_note(like_random)
    assert note.startswith("not distinguishable from random actions on these pairs (exact McNemar p = 1.00")
    assert "--episodes 200 evaluates every pair" in note and f"note         {note}" in summary_text(like_random)


def test_run_folders_are_never_overwritten_silently_and_name_the_checkpoint(tmp_path, capsys, monkeypatch):
    from wmbench.checkpoint import export
    from wmbench.testing import TinyWorldModel

    out = tmp_path / "run"
    assert main(["eval", "--model", "random", "--env", "tworoom", "--episodes", "2", "--out", str(out)]) == 0
    before = (out / "results.json").read_bytes()
    assert main(["eval", "--model", "random", "--env", "tworoom", "--episodes", "3", "--out", str(out)]) == 2
    assert f"{out} holds an earlier run (results.json); pass --overwrite" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == before
    assert main(["eval", "--model", "random", "--env", "tworoom", "--episodes", "3", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "results.json").read_text())["protocol"]["episodes"] == 3

    # two checkpoints both called model.wmb get two default folders
    monkeypatch.chdir(tmp_path)
    for seed, folder in ((0, "a"), (1, "b")):

        export(TinyWorldModel(image_size=32, action_dim=2, seed=seed), tmp_path / folder / "model.wmb")
        assert main(["eval", "--model", f"{folder}/model.wmb", "--env", "tworoom", "--episodes", "1", "--samples", "8",
                     "--iterations", "1", "--option", "elites=2"]) == 0
    folders = sorted(path.name for path in (tmp_path / "runs" / "eval").iterdir())
    assert len(folders) == 2 and all(name.startswith("tworoom_model-") and name.endswith("_cem_seed42") for name in folders)


def test_list_options_prints_every_hyperparameter_with_its_type_and_default(capsys):
    assert main(["eval", "--planner", "mppi", "--list-options"]) == 0
    listing = capsys.readouterr().out
    for name, kind, default, _ in planner_options("mppi"):
        assert f"--option {name}={kind}" in listing and f"default {json.dumps(default)}" in listing
    assert "temperature" in listing and "elites" not in listing  # mppi's own options, not cem's
    assert main(["eval", "--env", "tworoom"]) == 2
    assert "wmbench eval needs --model" in capsys.readouterr().err


def test_results_record_the_conditions_a_planning_time_was_measured_under():
    from wmbench.testing import TinyWorldModel
    from wmbench.eval.controllers import LatentController
    from wmbench.eval.goal_reaching import run_mpc
    from wmbench.data.evalset import draw_pairs, load_eval_set

    results, _ = evaluate("random", "tworoom", EvalSettings(episodes=2), progress=False)
    validate(results)
    timing = results["timing"]
    assert timing["threads"] >= 1 and timing["precision"] == "float32" and timing["compile_s"] is None
    assert set(timing["load_average_1min"]) == {"start", "end"}

    # compile: the warm-up compiles before the loop, is timed apart, and leaves the plans as they would have been
    evalset = load_eval_set("tworoom")
    pairs = draw_pairs(evalset, 2, 0)
    settings = EvalSettings(episodes=2, budget=10)
    plans = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = TinyWorldModel(image_size=32, action_dim=2).eval()
        planner = make_planner("cem", 5, 5 * 2, seed=0, samples=8, iterations=2, elites=2, compile=compiled)
        run = run_mpc("tworoom", LatentController(model, planner, torch.device("cpu")), settings, evalset, pairs, progress=False)
        plans[compiled] = [e.success_step for e in run.episodes], run.compile_seconds
    assert plans[False][1] is None and plans[True][1] > 0
    assert plans[True][0] == plans[False][0]


def test_quiet_and_logs_keep_progress_bars_out(tmp_path):
    script = "from wmbench.progress import progress_bar\nfor _ in progress_bar(range(3000), desc='work'): pass\n"
    env = {**os.environ, "TQDM_DISABLE": ""}
    logged = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert logged.stderr.count("work") <= 2  # stderr is a pipe, not a terminal: the bar writes at most every 30 s
    quiet = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={**env, "TQDM_DISABLE": "1"})
    assert quiet.stderr == ""
    run = subprocess.run([sys.executable, "-m", "wmbench", "eval", "--quiet", "--model", "random", "--env", "tworoom",
                          "--episodes", "2", "--out", str(tmp_path / "q")], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and "eval tworoom" not in run.stderr and "success" in run.stdout


@pytest.mark.parametrize("command", [["envs"], ["eval", "--list-options"], ["phyre", "eval", "--help"]])
def test_quiet_is_accepted_by_every_command(command, capsys):
    try:
        code = main([*command, "--quiet"])
    except SystemExit as exit:  # --help
        code = exit.code
    assert code == 0


def test_episode_gifs_label_each_panel_with_its_step_and_success():
    import numpy as np

    from wmbench.eval.goal_reaching import episode_clip

    frames, goal = [np.full((64, 64, 3), 90, np.uint8)] * 4, np.full((64, 64, 3), 200, np.uint8)
    clip = episode_clip(frames, goal, success_step=2)
    assert len(clip) == 4 and clip[0].shape[0] > 128 and clip[0].shape[1] > 256  # enlarged agent | goal, labels below
    label_row = clip[0].shape[0] - 16  # below both panels
    ink = [(panel[label_row:, :132] < 60).sum() for panel in clip]  # dark label pixels under the agent's panel
    assert ink[0] > 0 and not (clip[1][label_row:] == clip[0][label_row:]).all()  # "step 0", then "step 1"
    assert ink[2] > 1.5 * ink[1] and (clip[3][:label_row] == clip[2][:label_row]).all()  # from step 2 on: ", solved at 2"
    assert (clip[0][label_row:, 150:] < 60).any()  # the goal panel is labelled too


def test_the_plan_view_shows_the_dataset_frame_nearest_to_each_prediction(tmp_path, monkeypatch, capsys):
    import numpy as np
    from PIL import Image

    from wmbench.checkpoint import export, load_model
    from wmbench.data.collect import collect
    from wmbench.data.recipe import Recipe
    from wmbench.eval.plan_view import frame_index
    from wmbench.testing import TinyWorldModel

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    collect(Recipe(name="wmbench/tworoom-tiny-v0", env="tworoom", policy="expert", episodes=3, steps=20, seed=0, resolution=32),
            workers=1, progress=False)
    checkpoint = export(TinyWorldModel(image_size=32, action_dim=2), tmp_path / "tiny.wmb")

    index = frame_index(load_model(checkpoint), "wmbench/tworoom-tiny-v0", torch.device("cpu"), count=40)
    frames, distances = index.nearest(index.latents[[3, 7]])
    assert np.array_equal(frames, index.frames[[3, 7]]) and np.allclose(distances, 0, atol=1e-6)  # a data frame finds itself

    out = tmp_path / "run"
    assert main(["eval", "--model", str(checkpoint), "--env", "tworoom", "--episodes", "2", "--budget", "10", "--samples", "16",
                 "--iterations", "2", "--option", "elites=2", "--videos", "1", "--plan-view", "wmbench/tworoom-tiny-v0",
                 "--out", str(out)]) == 0
    [gif] = out.glob("*.gif")
    with Image.open(gif) as clip:
        clip.seek(6)
        panel = np.asarray(clip.convert("RGB"))
    assert panel.shape[1] > 3 * 128  # agent | expected | goal
    assert main(["eval", "--model", "random", "--env", "tworoom", "--videos", "1", "--plan-view", "wmbench/tworoom-tiny-v0",
                 "--out", str(tmp_path / "r")]) == 2
    assert "--plan-view shows what a world model predicted; --model random predicts nothing" in capsys.readouterr().err
    assert main(["eval", "--model", str(checkpoint), "--env", "tworoom", "--videos", "1", "--plan-view", "wmbench/none-v0",
                 "--out", str(tmp_path / "n")]) == 2
    assert "no dataset 'wmbench/none-v0'" in capsys.readouterr().err
