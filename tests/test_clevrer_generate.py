"""`wmbench clevrer generate` and `score`: files, determinism across workers, resume (settings checked
before anything is written, no temporary file left, a stale lock taken over), one writer per
folder, and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("av", reason="MP4 writing needs the 'clevrer' extra")
pytest.importorskip("mujoco", reason="CLEVRER needs the 'clevrer' extra")

from wmbench.cli import main  # noqa: E402
from wmbench.data import clevrer_videos  # noqa: E402
from wmbench.data.clevrer_videos import LOCK_FILE, SETTINGS_FILE, generate, paths  # noqa: E402

SMALL = dict(resolution=(64, 96), progress=False)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    out = tmp_path_factory.mktemp("clevrer") / "run"
    return out, generate(3, out, seed=7, workers=2, **SMALL)


def texts(out, videos, kind):
    return [paths(out, i)[kind].read_text() for i in range(videos)]


def every_file(folder) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def decoded(video) -> np.ndarray:
    import av

    with av.open(str(video)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]).astype(np.int16)


def leave_a_stale_lock(lock_path) -> int:
    """Take the lock in a process that is then killed; returns that process's pid."""
    script = f"import os, signal\nfrom wmbench.files import exclusive\nwith exclusive({str(lock_path)!r}, 'a test'):\n    os.kill(os.getpid(), signal.SIGKILL)"
    killed = subprocess.run([sys.executable, "-c", script])
    assert killed.returncode == -9 and lock_path.exists()
    return json.loads(lock_path.read_text())["pid"]


def test_every_video_gets_its_files_and_the_manifest(two_workers):
    import av

    out, manifest = two_workers
    for index in range(3):
        with av.open(str(paths(out, index)["video"])) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        assert len(frames) == 128 and frames[0].shape == (64, 96, 3)
        annotation = json.loads(paths(out, index)["annotation"].read_text())
        assert annotation["scene_index"] == index and len(annotation["motion_trajectory"]) == 128
    merged = json.loads((out / "questions.json").read_text())
    assert [video["scene_index"] for video in merged] == [0, 1, 2] and manifest["questions"] == sum(len(v["questions"]) for v in merged)
    assert manifest["videos"] == 3 and manifest["videos_per_minute"] > 0


def test_files_do_not_depend_on_workers_and_resume_finishes_a_run(two_workers, tmp_path):
    out, _ = two_workers
    alone = tmp_path / "alone"
    generate(3, alone, seed=7, workers=1, **SMALL)
    for kind in ("annotation", "questions"):
        assert texts(alone, 3, kind) == texts(out, 3, kind)

    # as if killed while writing video 1: its questions not yet written, a temporary file, the lock left behind
    paths(alone, 1)["questions"].unlink()
    (alone / "videos" / f".video_00001.mp4.{os.getpid()}.tmp").write_bytes(b"half a video")
    for name in ("manifest.json", "questions.json"):
        (alone / name).unlink()
    assert leave_a_stale_lock(alone / LOCK_FILE) != os.getpid()
    with pytest.raises(ValueError, match="--resume"):
        generate(3, alone, seed=7, workers=1, **SMALL)
    generate(3, alone, seed=7, workers=1, resume=True, **SMALL)
    assert texts(alone, 3, "questions") == texts(out, 3, "questions")
    assert not list(alone.rglob("*.tmp")) and not (alone / LOCK_FILE).exists()
    assert (alone / "questions.json").read_text() == (out / "questions.json").read_text()


@pytest.mark.parametrize(("flag", "value", "difference"), [("--seed", "8", "seed 7 there, 8 here"),
                                                          ("--resolution", "96x96", "resolution [64, 96] there, [96, 96] here")])
def test_a_resume_with_other_settings_is_refused_and_writes_nothing(two_workers, tmp_path, capsys, flag, value, difference):
    out, _ = two_workers
    interrupted = tmp_path / "interrupted"
    shutil.copytree(out, interrupted)
    for path in (paths(interrupted, 2)["questions"], interrupted / "manifest.json", interrupted / "questions.json"):
        path.unlink()  # killed before video 2 was complete: the manifest, written last, is not there yet
    before = every_file(interrupted)
    command = {"--videos": "3", "--out": str(interrupted), "--seed": "7", "--resolution": "96x64", "--workers": "1", flag: value}
    assert main(["clevrer", "generate", *[word for pair in command.items() for word in pair], "--resume"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --resume") and len(error.strip().splitlines()) == 1
    assert difference in error and "choose another --out" in error
    assert every_file(interrupted) == before


def test_a_resume_with_damaged_settings_is_refused_and_writes_nothing(two_workers, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    shutil.copytree(two_workers[0], damaged)
    (damaged / SETTINGS_FILE).write_text('{"videos": 3, "se')
    before = every_file(damaged)
    assert main(["clevrer", "generate", "--videos", "3", "--out", str(damaged), "--seed", "7", "--resolution", "96x64", "--resume"]) == 2
    error = capsys.readouterr().err
    assert f"{SETTINGS_FILE} is unreadable" in error and "choose another --out" in error and len(error.strip().splitlines()) == 1
    assert every_file(damaged) == before


def test_settings_are_written_before_the_first_video(tmp_path, monkeypatch):
    def stop_at_the_first_video(out, index, seed, resolution):
        raise KeyboardInterrupt

    monkeypatch.setattr(clevrer_videos, "make_video", stop_at_the_first_video)
    with pytest.raises(clevrer_videos.CollectionStopped):
        generate(2, tmp_path / "run", seed=3, workers=1, **SMALL)
    settings = json.loads((tmp_path / "run" / SETTINGS_FILE).read_text())
    assert (settings["videos"], settings["seed"], settings["resolution"]) == (2, 3, [64, 96])
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_a_second_run_on_the_same_folder_is_refused_and_the_first_finishes(two_workers, tmp_path, monkeypatch, capsys):
    out, second_run = tmp_path / "run", []
    make_video = clevrer_videos.make_video

    def make_video_while_a_second_run_starts(*job):
        second_run.append(main(["clevrer", "generate", "--videos", "1", "--out", str(out), "--resolution", "96x64", "--resume"]))
        return make_video(*job)

    monkeypatch.setattr(clevrer_videos, "make_video", make_video_while_a_second_run_starts)
    generate(1, out, seed=7, workers=1, **SMALL)
    assert second_run == [2]
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert f"is being written by another run (pid {os.getpid()} on " in error and str(out / LOCK_FILE) in error
    assert texts(out, 1, "questions") == texts(two_workers[0], 1, "questions")
    # libx264's bytes vary from one encoding of the same frames to the next on some scenes, so the pictures are compared
    assert np.abs(decoded(paths(out, 0)["video"]) - decoded(paths(two_workers[0], 0)["video"])).mean() < 1.0
    assert not (out / LOCK_FILE).exists()


def test_the_cli_generates_and_scores(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["clevrer", "generate", "--videos", "1", "--out", str(out), "--resolution", "96x64", "--workers", "1"]) == 0
    assert "1 videos" in capsys.readouterr().out
    questions = json.loads((out / "questions.json").read_text())
    truth = {}
    for question in questions[0]["questions"]:
        if "choices" in question:
            truth[question["question_id"]] = {choice["choice_id"]: choice["answer"] for choice in question["choices"]}
        else:
            truth[question["question_id"]] = question["answer"]
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    assert main(["clevrer", "score", "--questions", str(out / "questions.json"), "--predictions", str(tmp_path / "truth.json")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["overall"]["per_question"] == 1.0
    assert main(["clevrer", "generate", "--videos", "1", "--out", str(tmp_path / "odd"), "--resolution", "95x64"]) == 2
    assert "even" in capsys.readouterr().err
