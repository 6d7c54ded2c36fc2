"""Reference bounds of the CLEVRER question scorer, so that a model's accuracy can be placed between them.

===============  ==============================================================================
most frequent    every descriptive question answered with its subtype's most frequent answer
                 in these questions (e.g. "yes", "2", "cube"), every choice with its question
                 type's most frequent label: a floor that knows the answer statistics, no video
random           the expected score of uniform guesses: a descriptive answer drawn among the
                 subtype's answers seen here, each choice "correct" or "wrong" by a coin
                 (exact expectations, not a sample)
ground truth     every answer computed by running the question's program on the video's
                 annotation: the ceiling, 100% when questions and annotations agree
===============  ==============================================================================

With ``trajectories``, the floor and ceiling of answering through predicted object trajectories
(``trajectory_answers.py``): velocity extrapolation (no interactions) and re-simulation.

    bounds("clevrer_test")  # the folder `wmbench clevrer generate` wrote
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from wmbench.data.clevrer_videos import read_generated
from wmbench.envs.clevrer.questions import answer_all
from wmbench.eval.trajectory_answers import Resimulation, VelocityExtrapolation, trajectory_predictions
from wmbench.eval.videos import load_questions, score


def most_frequent_predictions(questions: list[dict]) -> dict[str, Any]:
    """Each question's prediction by the most frequent answer of its subtype (descriptive) or label of its type (choices)."""
    answers = Counter((q["question_subtype"], q["answer"]) for q in questions if "choices" not in q)
    labels = Counter((q["question_type"], c["answer"]) for q in questions for c in q.get("choices", []))

    def top(counter: Counter, key: str) -> str:
        return max(sorted(value for k, value in counter if k == key), key=lambda value: counter[key, value])

    return {q["question_id"]: ({c["choice_id"]: top(labels, q["question_type"]) for c in q["choices"]} if "choices" in q
                               else top(answers, q["question_subtype"])) for q in questions}


def random_expectation(questions: list[dict]) -> dict[str, dict[str, float]]:
    """Expected per-option and per-question accuracy of uniform guesses, by question type."""
    vocabulary: dict[str, set] = {}
    for q in questions:
        if "choices" not in q:
            vocabulary.setdefault(q["question_subtype"], set()).add(q["answer"])
    by_type: dict[str, list[tuple[float, float, int]]] = {}
    for q in questions:
        if "choices" in q:
            k = len(q["choices"])
            row = (0.5 * k, 0.5**k, k)  # right options expected, chance all right, options
        else:
            p = 1 / len(vocabulary[q["question_subtype"]])
            row = (p, p, 1)
        by_type.setdefault(q["question_type"], []).append(row)
    return {t: {"per_option": sum(r[0] for r in rows) / sum(r[2] for r in rows), "per_question": sum(r[1] for r in rows) / len(rows)}
            for t, rows in by_type.items()}


def ground_truth_predictions(videos: list[dict], annotations: dict[int, dict]) -> dict[str, Any]:
    """Each question answered by running its programs on its video's annotation."""
    return {qid: prediction for video in videos for qid, prediction in answer_all(video["questions"], annotations[video["scene_index"]]).items()}


def bounds(generated: str | Path | None = None, *, videos: list[dict] | None = None, annotations: dict[int, dict] | None = None,
           trajectories: bool = False) -> dict:
    """The three references by question type (per option and per question): of a ``generate`` folder, or of ``videos`` and
    ``annotations``. ``trajectories`` adds the two references of answering through object trajectories
    (``trajectory_answers.py``): velocity extrapolation and re-simulation (about 2 s per video)."""
    if generated is not None:
        videos, annotations = read_generated(generated)
    questions = load_questions(videos)

    def table(report: dict) -> dict:
        return {t: {"per_option": r["per_option"], "per_question": r["per_question"]} for t, r in
                {**report["by_type"], "overall": report["overall"]}.items()}

    references = {"questions": Counter(q["question_type"] for q in questions),
                  "most_frequent": table(score(videos, most_frequent_predictions(questions))),
                  "random": random_expectation(questions),
                  "ground_truth": table(score(videos, ground_truth_predictions(videos, annotations)))}
    if trajectories:
        for key, model in (("velocity_extrapolation", VelocityExtrapolation()), ("resimulation", Resimulation())):
            references[key] = table(score(videos, trajectory_predictions(videos, annotations, model)))
    return references
