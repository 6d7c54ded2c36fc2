"""The frozen CLEVRER split: its question mix, its committed digests, scoring refusals, and the scorer's bounds."""

from __future__ import annotations

import copy
import json
from collections import Counter

import pytest

pytest.importorskip("mujoco", reason="CLEVRER needs the 'clevrer' extra")

from wmbench.cli import main  # noqa: E402
from wmbench.data.clevrer_split import SPLITS, check_folder, check_questions, digest, frozen, video_truth  # noqa: E402
from wmbench.data.clevrer_videos import paths  # noqa: E402
from wmbench.eval.question_bounds import bounds, most_frequent_predictions  # noqa: E402

TYPES = ("descriptive", "explanatory", "predictive", "counterfactual")
TEN = 10


@pytest.fixture(scope="module")
def ten_videos():
    """The first ten videos of the frozen test split, regenerated here (annotations and questions, no pixels)."""
    return [video_truth(SPLITS["test"]["seed"], i) for i in range(TEN)]


def test_ten_videos_hold_at_least_five_questions_of_every_type(ten_videos):
    counts = Counter(q["question_type"] for _, questions in ten_videos for q in questions["questions"])
    assert all(counts[t] >= 5 for t in TYPES), counts


def test_regenerated_videos_match_the_committed_digests(ten_videos):
    table = frozen("test")
    assert table["videos"] == SPLITS["test"]["videos"] and table["seed"] == SPLITS["test"]["seed"]
    assert [digest(a) for a, _ in ten_videos] == table["annotations"][:TEN]
    assert [digest(q) for _, q in ten_videos] == table["questions"][:TEN]


def _ten_table():
    table = frozen("test")
    return {**table, "videos": TEN, "questions": table["questions"][:TEN]}


def test_only_the_frozen_questions_pass_the_check(ten_videos):
    videos = [questions for _, questions in ten_videos]
    check_questions(videos, "test", _ten_table())  # the frozen ones pass
    tampered = copy.deepcopy(videos)
    descriptive = next(q for q in tampered[3]["questions"] if "choices" not in q)
    descriptive["answer"] = "no" if descriptive["answer"] != "no" else "yes"
    with pytest.raises(ValueError, match="questions of video 3 differ from the frozen test split"):
        check_questions(tampered, "test", _ten_table())
    with pytest.raises(ValueError, match="videos 0-8 .9 videos., the frozen test split has videos 0-9"):
        check_questions(videos[:9], "test", _ten_table())


def test_a_generated_folder_is_checked_against_the_digests(ten_videos, tmp_path):
    table = frozen("test")
    table = {**table, "videos": TEN, "annotations": table["annotations"][:TEN], "questions": table["questions"][:TEN]}
    for index, (annotation, questions) in enumerate(ten_videos):
        files = paths(tmp_path, index)
        for kind, document in (("annotation", annotation), ("questions", questions)):
            files[kind].parent.mkdir(exist_ok=True)
            files[kind].write_text(json.dumps(document, indent=1))  # indentation is not part of the digest
    assert check_folder(tmp_path, "test", table) == TEN
    moved = copy.deepcopy(ten_videos[4][0])
    moved["collision"][0]["frame_id"] += 1
    paths(tmp_path, 4)["annotation"].write_text(json.dumps(moved))
    with pytest.raises(ValueError, match="the annotation of video 4 .* differs from the frozen test split"):
        check_folder(tmp_path, "test", table)


def test_scoring_as_a_split_refuses_other_questions_in_one_line(ten_videos, tmp_path, capsys):
    (tmp_path / "questions.json").write_text(json.dumps([questions for _, questions in ten_videos]))
    (tmp_path / "predictions.json").write_text("{}")
    arguments = ["clevrer", "score", "--questions", str(tmp_path / "questions.json"), "--predictions", str(tmp_path / "predictions.json")]
    assert main([*arguments, "--split", "test"]) == 2  # ten videos, not the split's fifty
    error = capsys.readouterr().err
    assert error.startswith("error: these questions are of videos 0-9") and len(error.strip().splitlines()) == 1
    assert main(arguments) == 0  # without --split the same file is scored
    assert json.loads(capsys.readouterr().out)["overall"]["questions"] > 0


def test_generate_with_a_split_takes_no_seed(tmp_path, capsys):
    assert main(["clevrer", "generate", "--split", "test", "--seed", "4", "--out", str(tmp_path / "x")]) == 2
    assert "drop --videos and --seed" in capsys.readouterr().err
    assert main(["clevrer", "generate", "--out", str(tmp_path / "x")]) == 2
    assert "--videos N" in capsys.readouterr().err


def test_the_ground_truth_scores_one_and_the_floors_lie_below(ten_videos):
    reference = bounds(videos=[q for _, q in ten_videos], annotations={a["scene_index"]: a for a, _ in ten_videos})
    for t in TYPES:
        assert reference["ground_truth"][t] == {"per_option": 1.0, "per_question": 1.0}
        for floor in ("most_frequent", "random"):
            assert reference[floor][t]["per_question"] < 1.0
    for t in TYPES[1:]:
        assert reference["random"][t]["per_option"] == 0.5  # a coin per choice
    assert reference["random"]["predictive"]["per_question"] <= 0.25  # two choices or more, all right


def test_the_bounds_command_reads_a_generated_folder(ten_videos, tmp_path, capsys):
    for index, (annotation, _) in enumerate(ten_videos):
        paths(tmp_path, index)["annotation"].parent.mkdir(exist_ok=True)
        paths(tmp_path, index)["annotation"].write_text(json.dumps(annotation))
    (tmp_path / "questions.json").write_text(json.dumps([questions for _, questions in ten_videos]))
    assert main(["clevrer", "bounds", "--generated", str(tmp_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["ground_truth"]["overall"] == {"per_option": 1.0, "per_question": 1.0}
    assert sum(printed["questions"].values()) == sum(len(q["questions"]) for _, q in ten_videos)
    assert main(["clevrer", "bounds", "--generated", str(tmp_path / "missing")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_most_frequent_answers_by_subtype_and_label_by_type():
    questions = [
        {"question_id": f"0-{k}", "question_type": "descriptive", "question_subtype": "count", "answer": answer}
        for k, answer in enumerate(["2", "2", "3"])
    ] + [{"question_id": "0-3", "question_type": "predictive",
          "choices": [{"choice_id": i, "answer": label} for i, label in enumerate(["wrong", "wrong", "correct"])]}]
    predictions = most_frequent_predictions(questions)
    assert [predictions[f"0-{k}"] for k in range(3)] == ["2", "2", "2"]
    assert predictions["0-3"] == {0: "wrong", 1: "wrong", 2: "wrong"}
