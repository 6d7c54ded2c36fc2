"""The command line as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from wmbench import cli
from wmbench.envs import ENVS


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "wmbench.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("envs", "render", "rollout"):
        assert command in out.stdout


def test_envs_table_and_json(capsys):
    assert cli.main(["envs"]) == 0
    table = capsys.readouterr().out
    for entry in ENVS.values():
        assert entry.id in table
    assert cli.main(["envs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["id"] for row in rows} == {entry.id for entry in ENVS.values()}
    assert all(row["success"] and row["action"].startswith("Box(-1,1") for row in rows)


def test_without_the_mujoco_extra_the_core_works_and_the_mujoco_envs_say_what_to_install():
    code = (
        "import sys; sys.modules['mujoco'] = None\n"  # as if the extra were not installed
        "import wmbench\n"
        "print(wmbench.make('pusht', resolution=32).reset(seed=0)[0]['pixels'].shape)\n"
        "from wmbench import cli; cli.main(['envs'])\n"
        "try:\n    wmbench.make('cube')\nexcept ImportError as error:\n    print('ImportError:', error)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "(32, 32, 3)" in out
    cube_row = next(line for line in out.splitlines() if line.startswith("cube "))
    assert "not installed: pip install 'wmbench[mujoco]'" in cube_row
    assert "ImportError: wmbench/Cube-v0 needs MuJoCo and ogbench: pip install 'wmbench[mujoco]'" in out


@pytest.mark.parametrize("env", list(ENVS))
def test_render_writes_a_sheet_with_the_goal_beside(env, tmp_path):
    out = tmp_path / "sheet.png"
    assert cli.main(["render", "--env", env, "--steps", "10", "--frames", "4", "--resolution", "32", "--out", str(out)]) == 0
    width, height = Image.open(out).size
    assert width > 5 * 32 and height > 32  # 4 frames + the goal, with labels underneath


@pytest.mark.parametrize("env", list(ENVS))
def test_rollout_writes_a_clip_and_a_summary(env, tmp_path):
    out = tmp_path / "clips" / "run.gif"
    assert cli.main(["rollout", "--env", env, "--steps", "12", "--resolution", "32", "--seed", "3", "--out", str(out)]) == 0
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["env"] == ENVS[env].id and summary["seed"] == 3 and summary["policy"] == ENVS[env].default_policy
    clip = Image.open(out)
    durations = []  # the GIF merges identical consecutive frames (a scene at rest) into one longer frame
    for frame in range(clip.n_frames):
        clip.seek(frame)
        durations.append(clip.info["duration"])
    assert sum(durations) == (summary["steps"] + 1) * 100 and clip.size == (32, 32)
    assert sorted(p.name for p in out.parent.iterdir()) == ["run.gif", "run.json"]  # no leftovers


def test_variation_preset_and_json(tmp_path):
    args = ["render", "--env", "pusht", "--steps", "2", "--frames", "2", "--resolution", "32"]
    assert cli.main([*args, "--variation", "recolored", "--out", str(tmp_path / "a.png")]) == 0
    assert cli.main([*args, "--variation", '{"block_scale": 36}', "--out", str(tmp_path / "b.png")]) == 0
    assert Image.open(tmp_path / "a.png").tobytes() != Image.open(tmp_path / "b.png").tobytes()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["rollout", "--env", "cartpole"], "unknown environment 'cartpole'"),
        (["rollout", "--env", "pusht", "--policy", "nope"], "unknown policy 'nope' for pusht"),
        (["rollout", "--env", "pusht", "--variation", "{\"block_scale\": -1}"], "block_scale"),
        (["rollout", "--env", "pusht", "--variation", "neon"], "unknown variation preset"),
        (["rollout", "--env", "pusht", "--variation", "{block_scale: 36}"], "neither a preset name nor valid JSON"),
    ],
)
def test_bad_names_give_one_clear_line(argv, message, tmp_path, capsys):
    out = tmp_path / "x.gif"
    assert cli.main([*argv, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_an_interrupted_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    from wmbench.files import atomic_write

    target = tmp_path / "clip.gif"

    def interrupted(tmp):
        tmp.write_bytes(b"GIF89a half a clip")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert list(tmp_path.iterdir()) == []
    atomic_write(target, lambda tmp: tmp.write_bytes(b"whole"))
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert list(tmp_path.iterdir()) == [target] and target.read_bytes() == b"whole"
