"""CLEVRER questions and scoring, on hand-made annotations whose truth is known and on random ones.

Hand-made video (``VIDEO``), frames 0-127 observed:

=====  ======================  =================  ====================================
id     object                  start / end        events
=====  ======================  =================  ====================================
0      red metal sphere        moving / moving    collides with 1 at 30, with 3 at 80
1      blue rubber cube        still / still      collides with 0 at 30, with 2 at 60
2      green metal cylinder    still / moving     collides with 1 at 60
3      yellow rubber sphere    out / moving       enters at 20, collides with 0 at 80
=====  ======================  =================  ====================================

After the window 2 and 3 collide. Without 0 only 1-2 collide; without 1 nothing collides;
without 2 only 0-1; without 3 only 0-1, so the yellow sphere is responsible for the collision
between the cube and the cylinder, and the red sphere is not.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import Counter

import pytest

from wmbench.envs.clevrer.questions import (
    ATTRIBUTES, COLORS, MATERIALS, SHAPES, ProgramError, answer_text, execute, generate_questions,
)
from wmbench.eval.videos import score

ALL = {"descriptive": 10_000, "explanatory": 10_000, "predictive": 10_000, "counterfactual": 10_000}  # every candidate
ATTRIBUTE_WORDS = {*COLORS, *MATERIALS, *SHAPES}


def _object(i, color, material, shape):
    return {"object_id": i, "color": color, "material": material, "shape": shape}


def _state(i, speed, in_view=True):
    return {"object_id": i, "location": [0.0, 0.0, 0.2], "orientation": [0.0, 0.0, 0.0], "velocity": [speed, 0.0, 0.0],
            "inside_camera_view": in_view}


def _collision(a, b, frame):
    return {"object_ids": [a, b], "frame_id": frame, "location": [0.0, 0.0, 0.2]}


def _predictive(collisions):
    """The annotation's predictive window (layout of ``annotations.py``): frames 128-160."""
    return {"frames": [128, 160], "collision": collisions, "events": []}


def _counterfactual(by_removed):
    """{removed object: its re-simulated collisions} in CLEVRER's list layout."""
    return [{"removed_object_id": removed, "collision": collisions} for removed, collisions in by_removed.items()]


VIDEO = {
    "scene_index": 7, "video_filename": "video_00007.mp4",
    "object_property": [_object(0, "red", "metal", "sphere"), _object(1, "blue", "rubber", "cube"),
                        _object(2, "green", "metal", "cylinder"), _object(3, "yellow", "rubber", "sphere")],
    "motion_trajectory": [
        {"frame_id": 0, "objects": [_state(0, 1.0), _state(1, 0.0), _state(2, 0.0), _state(3, 1.0, in_view=False)]},
        {"frame_id": 127, "objects": [_state(0, 1.0), _state(1, 0.01), _state(2, 0.5), _state(3, 1.0)]},
    ],
    "collision": [_collision(0, 1, 30), _collision(1, 2, 60), _collision(3, 0, 80)],
    "events": [{"object_id": 3, "frame_id": 20, "type": "enter"}],
    "predictive": _predictive([_collision(2, 3, 140)]),
    "counterfactual": _counterfactual({0: [_collision(1, 2, 62)], 1: [], 2: [_collision(0, 1, 30)], 3: [_collision(0, 1, 30)]}),
}

# Objects 1 and 2 are identical red rubber spheres: only "the sphere that enters the scene" names one of them.
TWINS = {
    "scene_index": 8, "video_filename": "video_00008.mp4",
    "object_property": [_object(0, "red", "metal", "sphere"), _object(1, "red", "rubber", "sphere"),
                        _object(2, "red", "rubber", "sphere"), _object(3, "blue", "rubber", "cube")],
    "motion_trajectory": [
        {"frame_id": 0, "objects": [_state(0, 1.0), _state(1, 1.0, in_view=False), _state(2, 0.0), _state(3, 0.0)]},
        {"frame_id": 127, "objects": [_state(0, 0.0), _state(1, 1.0), _state(2, 1.0), _state(3, 1.0)]},
    ],
    "collision": [_collision(0, 3, 40), _collision(1, 3, 50), _collision(2, 3, 90)],
    "events": [{"object_id": 1, "frame_id": 10, "type": "enter"}],
    "predictive": _predictive([_collision(0, 1, 150), _collision(2, 3, 160)]),
    "counterfactual": _counterfactual({0: [_collision(1, 3, 50)], 1: [_collision(0, 3, 40)], 2: [_collision(0, 3, 40), _collision(1, 3, 50)],
                                       3: []}),
}


def random_annotation(seed: int) -> dict:
    """A random but coherent video: 3-6 objects, some entering or exiting, up to 4 collisions, predictions and counterfactuals."""
    rng = random.Random(seed)
    n = rng.randint(3, 6)
    objects = [_object(i, rng.choice(COLORS), rng.choice(MATERIALS), rng.choice(SHAPES)) for i in range(n)]
    entering = {i for i in range(n) if rng.random() < 0.3}
    exiting = {i for i in range(n) if i not in entering and rng.random() < 0.2}
    trajectory = [
        {"frame_id": frame, "objects": [_state(i, rng.choice([0.0, rng.uniform(0.2, 2.0)]),
                                               in_view=not (i in entering and frame == 0 or i in exiting and frame == 127))
                                        for i in range(n)]}
        for frame in (0, 64, 127)
    ]
    events = ([{"object_id": i, "frame_id": rng.randint(1, 60), "type": "enter"} for i in sorted(entering)]
              + [{"object_id": i, "frame_id": rng.randint(64, 126), "type": "exit"} for i in sorted(exiting)])
    pairs = list(itertools.combinations(range(n), 2))
    collisions = [_collision(a, b, rng.randint(1, 127)) for a, b in rng.sample(pairs, rng.randint(0, min(4, len(pairs))))]
    predictive = [_collision(a, b, rng.randint(128, 180)) for a, b in rng.sample(pairs, rng.randint(0, 3))]
    counterfactual = {}
    for removed in range(n):
        kept = [c for c in collisions if removed not in c["object_ids"] and rng.random() < 0.6]
        new = [_collision(a, b, rng.randint(1, 127)) for a, b in pairs if removed not in (a, b) and rng.random() < 0.15]
        counterfactual[removed] = kept + new
    return {"scene_index": seed, "video_filename": f"video_{seed:05d}.mp4", "object_property": objects,
            "motion_trajectory": trajectory, "collision": collisions, "events": events, "predictive": _predictive(predictive),
            "counterfactual": _counterfactual(counterfactual)}


RANDOM_VIDEOS = [random_annotation(seed) for seed in range(50)]


@pytest.fixture(scope="module")
def random_questions():
    return [generate_questions(video, rng_seed=video["scene_index"]) for video in RANDOM_VIDEOS]


def _texts(question):
    return [question["question"], *(c["choice"] for c in question.get("choices", []))]


# ---------------------------------------------------------------------------------------------- programs


@pytest.mark.parametrize("program, result", [
    (["collisions", "count"], 3),
    (["objects", "filter_moving end", "filter_material metal", "count"], 2),  # the cube's 0.01 is below MOVING_SPEED
    (["objects", "filter_stationary start", "count"], 2),  # the yellow sphere is out of view
    (["objects", "filter_enter", "filter_shape sphere", "unique", "query_color"], "yellow"),
    (["objects", "filter_shape cube", "unique", "first_collision_partner", "query_shape"], "sphere"),
    (["objects", "filter_color yellow", "filter_shape sphere", "unique", "first_collision_partner", "query_color"], "red"),
    (["objects", "filter_exit", "exist"], False),
    (["objects", "filter_color yellow", "unique", "enter_event",
      "objects", "filter_shape cube", "unique", "objects", "filter_shape cylinder", "unique", "collision_event", "before"], True),
    (["objects", "filter_shape cylinder", "unique", "objects", "filter_color yellow", "unique", "predicted_collision"], True),
    (["objects", "filter_shape cube", "unique", "objects", "filter_color yellow", "unique", "predicted_collision"], False),
    (["objects", "filter_color red", "unique", "objects", "filter_shape cube", "unique", "objects", "filter_shape cylinder", "unique",
      "counterfactual_collision"], True),
    (["objects", "filter_shape cube", "unique", "objects", "filter_shape cylinder", "unique", "collision_event",
      "objects", "filter_color yellow", "unique", "responsible"], True),
    (["objects", "filter_shape cube", "unique", "objects", "filter_shape cylinder", "unique", "collision_event",
      "objects", "filter_color red", "unique", "responsible"], False),
])
def test_execute_reads_the_known_truth(program, result):
    assert execute(program, VIDEO) == result


@pytest.mark.parametrize("program", [
    ["objects", "filter_shape sphere", "unique", "query_color"],  # two spheres
    ["objects", "filter_shape cube", "unique", "exit_event"],  # the cube never exits
    ["objects", "filter_shape cube", "unique", "objects", "filter_color yellow", "unique", "collision_event"],  # they never collide
    ["objects", "fly_away"],
    ["objects", "objects"],
    ["count"],
])
def test_execute_refuses_what_the_video_cannot_answer(program):
    with pytest.raises(ProgramError):
        execute(program, VIDEO)


def test_every_candidate_of_the_hand_made_video_has_its_known_answer():
    questions = generate_questions(VIDEO, rng_seed=0, per_type=ALL)["questions"]
    answers = {q["question"]: q["answer"] for q in questions if q["question_type"] == "descriptive"}
    assert answers["How many collisions happen?"] == "3"
    assert answers["What color is the sphere that enters the scene?"] == "yellow"
    assert answers["What is the shape of the first object to collide with the cube?"] == "sphere"
    assert answers["How many metal objects are moving when the video ends?"] == "2"
    assert answers["Does the entrance of the yellow sphere happen before the collision between the red sphere and the cube?"] == "yes"
    assert answers["Does the collision between the cube and the cylinder happen before the entrance of the yellow sphere?"] == "no"
    choices = {(q["question"], c["choice"]): c["answer"] for q in questions for c in q.get("choices", [])}
    assert choices["What will happen next?", "The cylinder collides with the yellow sphere."] == "correct"
    assert choices["Without the red sphere, what will happen?", "The cube collides with the cylinder."] == "correct"
    explain = "Which of the following is responsible for the collision between the cube and the cylinder?"
    assert choices[explain, "The presence of the yellow sphere"] == "correct"
    assert choices[explain, "The presence of the red sphere"] == "wrong"
    # Removing 0 or 3 leaves the other collisions in place; removing 1 or 2 breaks both: no wrong choice, no question.
    assert not any("red sphere and the cube" in q["question"] for q in questions if q["question_type"] == "explanatory")


def test_every_answer_and_choice_is_recomputed_from_the_annotation(random_questions):
    videos = [(VIDEO, generate_questions(VIDEO, 0, per_type=ALL)), (TWINS, generate_questions(TWINS, 0, per_type=ALL)),
              *zip(RANDOM_VIDEOS, random_questions)]
    checked = 0
    for video, generated in videos:
        for q in generated["questions"]:
            if q["question_type"] == "descriptive":
                assert answer_text(execute(q["program"], video)) == q["answer"], q
            else:
                for c in q["choices"]:
                    assert execute(c["program"], video) == (c["answer"] == "correct"), (q["question"], c)
            checked += 1
    assert checked > 500


def _attribute_words(text):
    words = re.findall(r"[a-z]+", text.lower())
    return {w[:-1] if w[:-1] in SHAPES else w for w in words} & ATTRIBUTE_WORDS  # "cubes" -> "cube"


def _filter_values(program):
    return {step.split()[1] for step in program if step.split()[0] in {f"filter_{a}" for a in ATTRIBUTES}}


def test_the_text_says_exactly_the_attributes_the_program_filters_on(random_questions):
    for generated in [generate_questions(TWINS, 0, per_type=ALL), *random_questions]:
        for q in generated["questions"]:
            if q["question_type"] == "descriptive":
                assert _attribute_words(q["question"]) == _filter_values(q["program"]), q
            for c in q.get("choices", []):  # a choice's program also singles out the objects its question names
                assert _attribute_words(q["question"] + " " + c["choice"]) == _filter_values(c["program"]), (q["question"], c)


def test_indistinguishable_objects_are_never_named_by_attributes_alone():
    questions = generate_questions(TWINS, 0, per_type=ALL)["questions"]
    texts = [text for q in questions for text in _texts(q)]
    assert any("the sphere that enters the scene" in t for t in texts)  # object 1, singled out by entering
    assert any("the metal sphere" in t for t in texts)  # object 0: "red sphere" would be ambiguous
    for text in texts:
        assert not re.search(r"\bthe (red )?(rubber )?sphere\b(?! that)", text), text


# ---------------------------------------------------------------------------------------------- balance


def test_multiple_choice_labels_are_balanced(random_questions):
    labels = Counter((q["question_type"], c["answer"]) for g in random_questions for q in g["questions"] for c in q.get("choices", []))
    for question_type in ("explanatory", "predictive", "counterfactual"):
        assert labels[question_type, "correct"] + labels[question_type, "wrong"] >= 40, labels
    correct = sum(n for (_, label), n in labels.items() if label == "correct")
    assert 0.35 <= correct / sum(labels.values()) <= 0.65, labels


def test_yes_and_no_are_balanced(random_questions):
    answers = Counter(q["answer"] for g in random_questions for q in g["questions"] if q.get("question_subtype") in ("exist", "order"))
    assert sum(answers.values()) >= 40 and set(answers) == {"yes", "no"}
    assert 0.35 <= answers["yes"] / sum(answers.values()) <= 0.65, answers


def test_no_count_dominates(random_questions):
    counts = Counter(q["answer"] for g in random_questions for q in g["questions"] if q.get("question_subtype") == "count")
    assert sum(counts.values()) >= 30 and len(counts) >= 3
    assert max(counts.values()) / sum(counts.values()) <= 0.6, counts


def test_every_descriptive_subtype_occurs(random_questions):
    subtypes = {q.get("question_subtype") for g in random_questions for q in g["questions"]}
    assert {"count", "exist", "order", "query_color", "query_shape", "query_material"} <= subtypes


# ---------------------------------------------------------------------------------------------- generation


def test_generation_is_deterministic_in_the_seed():
    assert generate_questions(VIDEO, 3) == generate_questions(VIDEO, 3)
    assert json.dumps([generate_questions(v, 1) for v in RANDOM_VIDEOS]) != json.dumps([generate_questions(v, 2) for v in RANDOM_VIDEOS])


def test_layout_and_counts():
    generated = generate_questions(VIDEO, 0, per_type={"descriptive": 4, "predictive": 1})
    assert (generated["scene_index"], generated["video_filename"]) == (7, "video_00007.mp4")
    questions = generated["questions"]
    assert [q["question_id"] for q in questions] == ["7-0", "7-1", "7-2", "7-3", "7-4"]
    assert Counter(q["question_type"] for q in questions) == {"descriptive": 4, "predictive": 1}
    assert all(set(q) == {"question_id", "question_type", "question_subtype", "question", "answer", "program"} for q in questions[:4])
    assert [c["choice_id"] for c in questions[4]["choices"]] == [0, 1]
    with pytest.raises(ValueError, match="unknown question types"):
        generate_questions(VIDEO, 0, per_type={"descriptiv": 1})


# ---------------------------------------------------------------------------------------------- scoring


def _truth(question):
    if "choices" in question:
        return {c["choice_id"]: c["answer"] for c in question["choices"]}
    return question["answer"]


def _file(tmp_path, videos):
    path = tmp_path / "questions.json"
    path.write_text(json.dumps(videos))
    return path


def test_true_answers_score_one(tmp_path, random_questions):
    predictions = {q["question_id"]: _truth(q) for g in random_questions for q in g["questions"]}
    report = score(_file(tmp_path, random_questions), json.loads(json.dumps(predictions)))  # choice ids become strings
    assert report["overall"]["per_question"] == report["overall"]["per_option"] == 1.0
    assert set(report["by_type"]) == {"descriptive", "explanatory", "predictive", "counterfactual"}
    assert report["missing"] == [] and report["overall"]["missing"] == 0


def test_shuffled_answers_score_at_chance(random_questions):
    rng = random.Random(0)
    questions = [q for g in random_questions for q in g["questions"]]
    descriptive = [q for q in questions if "choices" not in q]
    shuffled = [q["answer"] for q in descriptive]
    rng.shuffle(shuffled)
    predictions = {q["question_id"]: answer for q, answer in zip(descriptive, shuffled)}
    predictions |= {q["question_id"]: {c["choice_id"]: rng.choice(["correct", "wrong"]) for c in q["choices"]}
                    for q in questions if "choices" in q}
    report = score(random_questions, predictions)
    for question_type in ("explanatory", "predictive", "counterfactual"):
        stats = report["by_type"][question_type]
        # Coin-flip labels: per option ~ Binomial(n, 1/2) / n; 4 standard errors, 0.5 / sqrt(n), fail by luck 1 time in 16,000.
        assert abs(stats["per_option"] - 0.5) <= 4 * 0.5 / stats["options"] ** 0.5, stats
        assert stats["per_question"] <= 0.5, stats  # each question has 2-4 options: chance is 1/4 to 1/16 (2 choices: 1/4)
    assert report["by_type"]["descriptive"]["per_question"] <= 0.5, report["by_type"]["descriptive"]


def test_hand_computed_scores():
    video = {"scene_index": 0, "video_filename": "v.mp4", "questions": [
        {"question_id": "0-0", "question_type": "descriptive", "question_subtype": "count", "question": "?", "answer": "2",
         "program": []},
        {"question_id": "0-1", "question_type": "descriptive", "question_subtype": "query_color", "question": "?",
         "answer": "red", "program": []},
        {"question_id": "0-2", "question_type": "predictive", "question": "?", "choices": [
            {"choice_id": i, "choice": "?", "answer": label, "program": []}
            for i, label in enumerate(["correct", "wrong", "wrong", "correct"])]},
    ]}
    report = score(video, {"0-0": " 2 ", "0-1": "blue", "0-2": {0: "correct", 1: "wrong", 2: "correct", 3: "correct"}})
    assert report["by_type"]["descriptive"] == {"questions": 2, "per_question": 0.5, "options": 2, "per_option": 0.5, "missing": 0}
    assert report["by_type"]["predictive"] == {"questions": 1, "per_question": 0.0, "options": 4, "per_option": 0.75, "missing": 0}
    assert report["overall"]["per_question"] == pytest.approx(1 / 3)
    assert report["overall"]["per_option"] == pytest.approx(4 / 6)

    missing = score(video, {"0-0": "2"})
    assert missing["missing"] == ["0-1", "0-2"]
    assert missing["by_type"]["predictive"] == {"questions": 1, "per_question": 0.0, "options": 4, "per_option": 0.0, "missing": 1}
    assert missing["overall"]["per_question"] == pytest.approx(1 / 3) and missing["overall"]["missing"] == 2


@pytest.mark.parametrize("predictions, message", [
    ({"0-0": 2}, "question '0-0': a descriptive prediction must be a string"),
    ({"0-2": "correct"}, "question '0-2': a multiple-choice prediction must map"),
    ({"0-2": {0: "correct", 1: "wrong"}}, r"question '0-2': the prediction names choices \['0', '1'\]"),
    ({"0-2": {0: "correct", 1: "yes", 2: "wrong"}}, "question '0-2': labels must be 'correct' or 'wrong'"),
    ({"9-9": "red"}, "predictions for questions that do not exist"),
])
def test_malformed_predictions_name_the_question(predictions, message):
    video = {"scene_index": 0, "video_filename": "v.mp4", "questions": [
        {"question_id": "0-0", "question_type": "descriptive", "question_subtype": "count", "question": "?", "answer": "2",
         "program": []},
        {"question_id": "0-2", "question_type": "predictive", "question": "?", "choices": [
            {"choice_id": i, "choice": "?", "answer": "wrong", "program": []} for i in range(3)]},
    ]}
    with pytest.raises(ValueError, match=message):
        score(video, predictions)
