"""CLEVRER's metrics: accuracy per option and per question, by question type and overall.

=============  ===================================================================================
prediction     descriptive question: the answer string ("2", "red", "yes"), compared with the
               truth after stripping spaces and lower-casing; multiple-choice question: a dict
               {choice_id: "correct" | "wrong"} naming every choice (ids as ints or strings,
               so that a JSON round trip is harmless)
per option     the fraction of options judged right; a descriptive question is one option
per question   the fraction of questions answered right; a multiple-choice question is right
               only if all its options are
missing        a question with no prediction is wrong on every option, and its id is listed
=============  ===================================================================================

    report = score("questions.json", {"7-0": "red", "7-12": {0: "correct", 1: "wrong"}})
    report["overall"]["per_question"], report["by_type"]["predictive"]["per_option"]
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LABELS = ("correct", "wrong")


def load_questions(questions_file: str | os.PathLike | Mapping | list) -> list[dict]:
    """The questions of every video: from a JSON file, or already loaded (one video's dict or a list of them)."""
    if isinstance(questions_file, (str, os.PathLike)):
        questions_file = json.loads(Path(questions_file).read_text())
    videos = [questions_file] if isinstance(questions_file, Mapping) else questions_file
    return [q for video in videos for q in video["questions"]]


def options_right(question: Mapping[str, Any], prediction: Any) -> list[bool]:
    """Whether each option of the question is right under the prediction; ValueError naming the question if malformed."""
    if "choices" in question:
        return _choices_right(question, prediction)
    if not isinstance(prediction, str):
        raise ValueError(f"question {question['question_id']!r}: a descriptive prediction must be a string, got {prediction!r}")
    return [prediction.strip().lower() == question["answer"].strip().lower()]


def _choices_right(question: Mapping[str, Any], prediction: Any) -> list[bool]:
    qid = question["question_id"]
    if not isinstance(prediction, Mapping):
        raise ValueError(f"question {qid!r}: a multiple-choice prediction must map choice ids to 'correct'/'wrong', "
                         f"got {prediction!r}")
    labels = {str(choice_id): label for choice_id, label in prediction.items()}
    expected = [str(c["choice_id"]) for c in question["choices"]]
    if sorted(labels) != sorted(expected):
        raise ValueError(f"question {qid!r}: the prediction names choices {sorted(labels)}, the question has {sorted(expected)}")
    bad = {k: v for k, v in labels.items() if v not in LABELS}
    if bad:
        raise ValueError(f"question {qid!r}: labels must be 'correct' or 'wrong', got {bad}")
    return [labels[str(c["choice_id"])] == c["answer"] for c in question["choices"]]


def _accuracy(results: list[tuple[list[bool], bool]]) -> dict:
    """Accuracy over (options right, answered) pairs, one per question."""
    options = [right for result, _ in results for right in result]
    return {"questions": len(results), "per_question": sum(all(result) for result, _ in results) / len(results),
            "options": len(options), "per_option": sum(options) / len(options),
            "missing": sum(not answered for _, answered in results)}


def score(questions_file: str | os.PathLike | Mapping | list, predictions: Mapping[str, Any]) -> dict:
    """Accuracy per option and per question, by question type and overall, and the ids of questions left unanswered.

    ``questions_file`` is what ``load_questions`` takes; ``predictions`` maps question ids to predictions.
    Returns {"overall": {...}, "by_type": {type: {...}}, "missing": [ids]} where each {...} holds
    questions, per_question, options, per_option and missing (a count).
    """
    questions = load_questions(questions_file)
    if not questions:
        raise ValueError("there are no questions to score")
    unknown = set(predictions) - {q["question_id"] for q in questions}
    if unknown:
        raise ValueError(f"predictions for questions that do not exist: {sorted(unknown)[:10]}")
    by_type: dict[str, list[tuple[list[bool], bool]]] = {}
    for q in questions:
        answered = q["question_id"] in predictions
        right = options_right(q, predictions[q["question_id"]]) if answered else [False] * len(q.get("choices", [None]))
        by_type.setdefault(q["question_type"], []).append((right, answered))
    return {"overall": _accuracy([r for results in by_type.values() for r in results]),
            "by_type": {t: _accuracy(results) for t, results in by_type.items()},
            "missing": [q["question_id"] for q in questions if q["question_id"] not in predictions]}
