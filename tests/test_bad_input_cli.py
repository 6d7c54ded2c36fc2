"""Every command refuses bad input the same way: one line naming the problem, exit code 2, no
traceback, and no file written or changed. The table below is generated: each numeric option of
each command with values out of range or of the wrong kind, then bad names, paths, files, models,
planner options and combinations, command by command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the model commands need the 'torch' extra")

from wmbench.cli import main  # noqa: E402

NOT_WHOLE = ["abc", "1.5", "", "1e3", "nan", "0x10", "99999999999999999999999"]

# command prefix (valid apart from the option under test), then each whole-number option with its lowest value
NUMERIC = [
    (["render", "--env", "pusht", "--out", "x.png"], {"--steps": 1, "--frames": 1, "--seed": 0}),
    (["rollout", "--env", "pusht", "--out", "x.gif"], {"--steps": 1, "--fps": 1, "--seed": 0}),
    (["collect", "--env", "pusht", "--episodes", "1", "--steps", "1", "--out", "x-v0"],
     {"--episodes": 1, "--steps": 1, "--seed": 0, "--resolution": 8, "--workers": 1}),
    (["datasets", "show", "nothing-v0"], {"--episodes": 1, "--seed": 0}),
    (["eval", "--model", "random", "--env", "pusht"],
     {"--episodes": 1, "--budget": 1, "--seed": 0, "--horizon": 1, "--replan-every": 1, "--samples": 1, "--iterations": 1, "--videos": 0}),
    (["voe", "--model", "MODEL", "--env", "tworoom"], {"--episodes": 2, "--steps": 1, "--perturb-step": 1, "--seed": 0}),
    (["export", "--model", "SPEC", "--trust-code", "--out", "x.wmb"], {"--horizon": 1}),
    (["phyre", "eval", "--agent", "random"], {"--fold": 0, "--seed": 0, "--tasks": 1}),
    (["phyre", "eval", "--agent", "world-model", "--model", "MODEL"], {"--candidates": 1, "--probe-samples": 1, "--horizon": 1}),
    (["phyre", "maps", "--model", "MODEL"], {"--fold": 0, "--seed": 0, "--tasks": 1, "--grid": 2, "--probe-samples": 1, "--horizon": 1}),
    (["clevrer", "generate", "--out", "videos"], {"--videos": 1, "--seed": 0, "--workers": 1}),
    (["clevrer", "eval", "--model", "MODEL"], {"--videos": 2, "--horizons": 1, "--seed": 0}),
]


def numeric_cases():
    for prefix, options in NUMERIC:
        for option, lowest in options.items():
            for value in [str(lowest - 1), *NOT_WHOLE]:
                yield pytest.param([*prefix, option, value], option, id=f"{' '.join(prefix[:2])} {option}={value!r}")


PLANNER_OPTIONS = ["elites", "elites=", "=3", "elites=abc", "elites=1.5", "elites=1", "elites=1000", "autocast=yes", "compile=1",
                   "init_std=Infinity", "init_std=NaN", "init_std=-1", "init_std=\"x\"", "result=worst", "samples=0",
                   "iterations=-2", "nope=1", "temperature=0"]
EVAL = ["eval", "--model", "MODEL", "--env", "tworoom", "--episodes", "1"]

OTHER_CASES = [
    # names
    *[(["render", "--env", env, "--out", "x.png"], "env") for env in ("nope", "", "push-t", "wmbench/Nope-v0")],
    *[(["rollout", "--env", env, "--out", "x.gif"], "env") for env in ("nope", "")],
    (["render", "--env", "pusht", "--policy", "nope", "--out", "x.png"], "policy"),
    (["rollout", "--env", "tworoom", "--policy", "weak", "--out", "x.gif"], "policy"),
    (["render", "--env", "pusht", "--variation", "{bad json", "--out", "x.png"], "variation"),
    (["render", "--env", "pusht", "--variation", "no-such-preset", "--out", "x.png"], "variation"),
    (["render", "--env", "pusht", "--variation", '{"nope": 1}', "--out", "x.png"], "nope"),
    (["render", "--env", "pusht", "--variation", '{"block_scale": 1e308}', "--out", "x.png"], "block_scale"),
    (["render", "--env", "tworoom", "--variation", '{"speed": 1e308}', "--out", "x.png"], "speed"),
    (["render", "--env", "tworoom", "--variation", '{"agent_radius": 1e-300}', "--out", "x.png"], "agent_radius"),
    *[(["render", "--env", "pusht", "--resolution", size, "--out", "x.png"], "resolution")
      for size in ("0", "0x0", "7", "5000", "64x", "x64", "64x64x3", "-64", "abc", "")],
    *[(["clevrer", "generate", "--videos", "1", "--out", "videos", "--resolution", size], "resolution") for size in ("0x0", "9999x64", "axb")],
    (["eval", "--model", "random", "--env", "clevrer"], "clevrer"),
    (["eval", "--model", "random", "--env", "phyre"], "phyre"),
    (["eval", "--model", "random", "--env", "nope"], "nope"),
    (["eval", "--model", "random", "--env", "pusht", "--planner", "nope"], "planner"),
    (["eval", "--model", "random", "--env", "pusht", "--episodes", "201"], "episodes"),
    (["eval", "--model", "random", "--env", "pusht", "--horizon", "2", "--replan-every", "3"], "replan-every"),
    (["eval", "--model", "random", "--env", "pusht", "--samples", "30"], "random"),
    (["eval", "--model", "oracle", "--env", "pusht", "--planner", "gd"], "gd"),
    (["evalset", "--env", "nope"], "nope"),
    (["evalset", "--env", "clevrer"], "clevrer"),
    (["voe", "--model", "MODEL", "--env", "nope"], "nope"),
    (["voe", "--model", "MODEL", "--env", "tworoom", "--steps", "7"], "steps"),
    (["voe", "--model", "MODEL", "--env", "tworoom", "--steps", "40", "--perturb-step", "41"], "perturb_step"),
    (["phyre", "eval", "--agent", "nope"], "agent"),
    (["phyre", "eval", "--agent", "world-model"], "model"),
    (["phyre", "eval", "--agent", "random", "--model", "MODEL"], "model"),
    (["phyre", "eval", "--agent", "random", "--candidates", "10"], "candidates"),
    (["phyre", "eval", "--agent", "random", "--split", "diagonal"], "split"),
    (["phyre", "eval", "--agent", "random", "--fold", "5"], "fold"),
    # devices
    *[([*EVAL, "--device", device], "device") for device in ("tpu", "", "cuda:x", "gpu", "cpu:0:1")],
    *[(["voe", "--model", "MODEL", "--env", "tworoom", "--device", device], "device") for device in ("tpu", "cuda:x")],
    *[(["phyre", "eval", "--agent", "world-model", "--model", "MODEL", "--device", device], "device") for device in ("tpu", "cuda:x")],
    *[(["clevrer", "eval", "--model", "MODEL", "--device", device], "device") for device in ("tpu", "cuda:x")],
    # planner options
    *[([*EVAL, "--option", option], option.partition("=")[0] or "option") for option in PLANNER_OPTIONS],
    *[(["eval", "--model", "oracle", "--env", "tworoom", "--episodes", "1", "--option", option], option.partition("=")[0] or "option")
      for option in ("elites=abc", "autocast=yes", "init_std=Infinity", "nope=1")],
    (["eval", "--model", "MODEL", "--env", "tworoom", "--samples", "16"], "elites"),
    (["eval", "--model", "MODEL", "--env", "tworoom", "--samples", "1000000"], "samples"),
    (["eval", "--model", "MODEL", "--env", "tworoom", "--planner", "mppi", "--option", "elites=3"], "elites"),
    # models
    *[([command, *rest, "--model", model], word)
      for command, rest in (("eval", ["--env", "tworoom"]), ("voe", ["--env", "tworoom"]), ("export", ["--out", "x.wmb"]))
      for model, word in (("missing.wmb", "does not exist"), ("folder", "directory"), ("corrupt.wmb", "checkpoint"),
                          ("pickle.pt", "pickle"), ("spec.json", "trust-code"), ("notes.txt", "checkpoint"))],
    *[(["phyre", "eval", "--agent", "world-model", "--model", model], word)
      for model, word in (("missing.wmb", "does not exist"), ("corrupt.wmb", "checkpoint"), ("MODEL", "actions"))],
    *[(["clevrer", "eval", "--model", model], word) for model, word in (("missing.wmb", "does not exist"), ("MODEL", "actions"))],
    *[(["clevrer", "answer", "--model", model, "--generated", "folder"], word)
      for model, word in (("missing.wmb", "does not exist"), ("MODEL", "actions"))],
    (["phyre", "maps", "--model", "MODEL"], "actions"),
    (["export", "--model", "MODEL", "--out", "again.wmb"], "self-contained"),
    (["eval", "--model", "MODEL", "--env", "pusht", "--trust-code", "--episodes", "1", "--samples", "0"], "samples"),
    # files and folders
    (["render", "--env", "pusht", "--steps", "2", "--out", "folder"], "folder"),
    (["rollout", "--env", "pusht", "--steps", "2", "--out", "folder"], "folder"),
    (["eval", "--model", "random", "--env", "tworoom", "--episodes", "1", "--out", "notes.txt"], "notes.txt"),
    (["clevrer", "generate", "--videos", "1", "--out", "notes.txt"], "notes.txt"),
    (["submit", "missing.json", "--leaderboard", "board.json"], "missing.json"),
    (["submit", "folder", "--leaderboard", "board.json"], "folder"),
    (["submit", "notes.txt", "--leaderboard", "board.json"], "JSON"),
    (["submit", "array.json", "--leaderboard", "board.json"], "results"),
    (["submit", "empty.json", "--leaderboard", "board.json"], "results"),
    (["leaderboard", "--leaderboard", "missing.json", "--out", "page"], "missing.json"),
    (["leaderboard", "--leaderboard", "board.json", "--readme", "missing.md", "--out", "page"], "missing.md"),
    (["leaderboard", "--leaderboard", "board.json", "--readme", "notes.txt", "--out", "page"], "leaderboard:start"),
    (["clevrer", "score", "--questions", "missing.json", "--predictions", "empty.json"], "missing.json"),
    (["clevrer", "score", "--questions", "notes.txt", "--predictions", "empty.json"], "JSON"),
    (["clevrer", "score", "--questions", "questions.json", "--predictions", "notes.txt"], "JSON"),
    (["clevrer", "score", "--questions", "questions.json", "--predictions", "unknown_prediction.json"], "do not exist"),
    (["clevrer", "score", "--questions", "questions.json", "--predictions", "bad_prediction.json"], "string"),
    (["compare", "missing.json", "empty.json"], "missing.json"),
    (["compare", "notes.txt", "empty.json"], "JSON"),
    (["compare", "empty.json", "empty.json"], "results"),
    (["compare", "folder", "empty.json"], "folder"),
    (["compare", "array.json"], "B"),
    (["clevrer", "answer", "--model", "answering.json", "--trust-code", "--generated", "missing"], "missing"),
    (["clevrer", "answer", "--model", "answering.json", "--generated", "folder"], "trust-code"),
    (["collect", "--recipe", "missing.toml"], "missing.toml"),
    (["collect", "--recipe", "broken.toml"], "broken.toml"),
    (["collect", "--recipe", "notes.txt", "--env", "pusht"], "--env"),
    (["collect", "--env", "pusht", "--episodes", "1", "--steps", "1"], "--out"),
    (["collect", "--env", "pusht", "--episodes", "1", "--steps", "1", "--out", "bad name!"], "name"),
    (["collect", "--env", "pusht", "--policy", "nope", "--episodes", "1", "--steps", "1", "--out", "x-v0"], "nope"),
    (["collect", "--env", "pusht", "--episodes", "1", "--steps", "1", "--variation", "{bad", "--out", "x-v0"], "variation"),
    (["datasets", "show", "nothing-v0"], "nothing-v0"),
    (["datasets", "nothing-v0"], "show"),
    (["datasets", "show"], "show"),
    # the command line itself
    (["nope"], "nope"),
    ([], "COMMAND"),
    (["phyre"], "ACTION"),
    (["clevrer"], "ACTION"),
    (["eval", "--env", "pusht"], "--model"),
    (["render", "--env", "pusht"], "--out"),
    (["eval", "--model", "random", "--env", "pusht", "--unknown-flag"], "unknown"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder with the files the cases name: a tiny model, a research spec, damaged and odd files."""
    import torch

    from wmbench.checkpoint import export
    from wmbench.testing import TinyWorldModel

    root = tmp_path_factory.mktemp("bad-input")
    export(TinyWorldModel(image_size=16, action_dim=2), root / "model.wmb")
    answering = {"factory": "wmbench.testing:TinyAnsweringModel", "config": {"image_size": 16, "action_dim": 4}}
    (root / "answering.json").write_text(json.dumps(answering))
    (root / "spec.json").write_text(json.dumps({"factory": "wmbench.testing:TinyWorldModel", "config": {"image_size": 16}}))
    (root / "corrupt.wmb").write_bytes(b"\x00not a checkpoint" * 256)
    torch.save({"weights": torch.zeros(2)}, root / "pickle.pt")
    (root / "notes.txt").write_text("not JSON, not TOML = [\n")
    (root / "broken.toml").write_text("name = [unclosed\n")
    (root / "array.json").write_text("[1, 2, 3]")
    (root / "empty.json").write_text("{}")
    (root / "board.json").write_text(json.dumps({"format": 1, "protocol_version": 1, "entries": []}))
    (root / "folder").mkdir()
    questions = [{"scene_index": 0, "video_filename": "video_00000.mp4",
                  "questions": [{"question_id": "0-0", "question_type": "descriptive", "question": "q?", "answer": "yes"}]}]
    (root / "questions.json").write_text(json.dumps(questions))
    (root / "unknown_prediction.json").write_text(json.dumps({"9-9": "yes"}))
    (root / "bad_prediction.json").write_text(json.dumps({"0-0": 3}))
    return root


def listing(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize(("argv", "named"), [*numeric_cases(), *(pytest.param(argv, named, id=" ".join(argv)[:90]) for argv, named in OTHER_CASES)])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, named, workspace, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(workspace / "minari"))
    argv = [str(workspace / "model.wmb") if a == "MODEL" else str(workspace / "spec.json") if a == "SPEC" else a for a in argv]
    before = listing(workspace)
    try:
        code = main(argv)
    except SystemExit as stopped:  # argparse's own refusals
        code = stopped.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit code {code}; stderr: {err}"
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert named.lower() in lines[0].lower(), f"the error does not name {named!r}: {lines[0]}"
    assert listing(workspace) == before, "a refused command wrote or changed files"


def test_the_table_is_large_enough():
    assert len(list(numeric_cases())) + len(OTHER_CASES) >= 200
