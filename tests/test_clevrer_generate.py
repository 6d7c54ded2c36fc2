"""`wmbench clevrer generate` and `score`: files, determinism across workers, resume, and the CLI."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("av", reason="MP4 writing needs the 'clevrer' extra")
pytest.importorskip("mujoco", reason="CLEVRER needs the 'clevrer' extra")

from wmbench.cli import main  # noqa: E402
from wmbench.data.clevrer_videos import generate, paths  # noqa: E402

SMALL = dict(resolution=(64, 96), progress=False)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    out = tmp_path_factory.mktemp("clevrer") / "run"
    return out, generate(3, out, seed=7, workers=2, **SMALL)


def texts(out, videos, kind):
    return [paths(out, i)[kind].read_text() for i in range(videos)]


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

    paths(alone, 1)["questions"].unlink()  # as if interrupted before video 1 was complete
    with pytest.raises(ValueError, match="--resume"):
        generate(3, alone, seed=7, workers=1, **SMALL)
    with pytest.raises(ValueError, match="other settings"):
        generate(3, alone, seed=8, workers=1, resume=True, **SMALL)
    generate(3, alone, seed=7, workers=1, resume=True, **SMALL)
    assert texts(alone, 3, "questions") == texts(out, 3, "questions")


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
