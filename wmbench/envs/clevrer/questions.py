"""CLEVRER-style questions about one video, generated from its ground-truth annotation.

Four question types, as in CLEVRER. Descriptive questions have an open answer; the other three
are multiple choice, each choice judged "correct" or "wrong" on its own:

==============  ==================  ===========================================================
type            subtype             example (answer)
==============  ==================  ===========================================================
descriptive     query_color         What color is the cube that enters the scene? (red)
                query_shape         What is the shape of the first object to collide with the
                                    red sphere? (cube)
                query_material      What material is the sphere that is moving when the video
                                    ends? (metal)
                count               How many metal objects are moving when the video ends? (2)
                exist               Is there a rubber cylinder that exits the scene? (no)
                order               Does the entrance of the red sphere happen before the
                                    collision between the cube and the cylinder? (yes)
explanatory                         Which of the following is responsible for the collision
                                    between the red sphere and the cube? (The presence of the
                                    green cylinder: correct iff that collision is absent from
                                    the re-simulation without the green cylinder)
predictive                          What will happen next? (The cube collides with the sphere:
                                    correct iff that pair is in ``predictive["collision"]``)
counterfactual                      Without the green cylinder, what will happen? (The cube
                                    collides with the sphere: correct iff that pair is in
                                    the ``counterfactual`` entry whose ``removed_object_id`` is the green cylinder)
==============  ==================  ===========================================================

Every question (every choice of a multiple-choice one) carries a ``program``: a list of steps
run on a stack by ``execute(program, annotation)``, which recomputes the answer from the
annotation alone. ``["objects", "filter_color red", "filter_shape sphere", "unique",
"query_material"]`` pushes the video's objects, keeps the red spheres, insists on exactly one
and reads its material. Answers are computed by running the program, so a question exists
only if its program runs: "unique" failing (an ambiguous description), a tie in time, or an
event that happens twice each drop the question. The steps:

===============================  =====================  =======================================
step                             pops                   pushes
===============================  =====================  =======================================
objects                                                 every object id
filter_{color,material,shape} V  object ids             those whose attribute is V
filter_moving W                  object ids             those in view and moving at W ("start"
                                                        or "end": the first or last frame)
filter_stationary W              object ids             those in view and not moving at W
filter_enter, filter_exit        object ids             those that enter (exit) the scene
unique                           object ids             the only one (else ProgramError)
count, exist                     a list                 its length, whether it is not empty
query_{color,material,shape}     an object              its attribute
collisions                                              the observed collisions
first_collision_partner          an object              what it first collides with
enter_event, exit_event          an object              its only entrance (exit)
collision_event                  two objects            their only observed collision
before                           two events             whether the first is the earlier
predicted_collision              two objects            whether they collide after the window
counterfactual_collision         removed, two objects   whether they collide without removed
responsible                      an event, removed      whether the event vanishes without
                                                        removed
===============================  =====================  =======================================

Rules the generator keeps:

- Objects are named by the fewest attributes (color, material, on top of the shape) that
  single them out among the objects the description ranges over; an object that no attributes
  single out is never named.
- An object is moving at a frame when it is inside the camera view and its speed exceeds
  ``MOVING_SPEED``; stationary when it is inside the view and not moving. "When the video
  begins/ends" is the first/last frame of ``motion_trajectory``.
- Two collisions are the same event when they involve the same pair of objects: a collision
  "disappears" without an object when no collision of that pair is in its counterfactual.
- Descriptive questions: a subtype is drawn uniformly among those that have a question, then an
  answer uniformly among that subtype's distinct answers, then a question with that answer;
  so yes and no come equally often, and no count dominates.
- Multiple choice: a question takes ``k`` correct and ``w`` wrong choices with ``(k, w)`` drawn
  uniformly from the pairs with ``k, w <= m``, ``k + w >= 2``, ``m = min(#correct, #wrong,
  MAX_CHOICES_PER_LABEL)``. That set is symmetric in ``k`` and ``w``, so in expectation half the
  choices are correct, while a question may be all correct or all wrong. A question with no
  correct or no wrong candidate (``m = 0``: a video with no collision after the observed
  window has no predictive question) is skipped, since keeping it would break the symmetry.
- Everything random is drawn from ``random.Random(rng_seed)``, in a fixed order.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

COLORS = ("gray", "red", "blue", "green", "brown", "yellow", "cyan", "purple")
MATERIALS = ("metal", "rubber")
SHAPES = ("sphere", "cube", "cylinder")
ATTRIBUTES = {"color": COLORS, "material": MATERIALS, "shape": SHAPES}

MOVING_SPEED = 0.05  # in the annotation's velocity units (scene units per second); below it, solver jitter
MAX_CHOICES_PER_LABEL = 2  # at most 2 correct and 2 wrong choices: up to 4, as in CLEVRER
DEFAULT_PER_TYPE = {"descriptive": 11, "explanatory": 3, "predictive": 2, "counterfactual": 3}  # at most, per video


class ProgramError(ValueError):
    """A program that cannot run on this video: an ambiguous description, a missing event, a tie in time."""


@dataclass(frozen=True)
class Event:
    """Something that happens at one frame: a collision between two objects, or one object entering or exiting."""

    kind: str  # "collision", "enter" or "exit"
    frame: int
    object_ids: frozenset[int]


class _Video:
    """The annotation indexed for the program steps."""

    def __init__(self, annotation: Mapping[str, Any]):
        self.objects = {o["object_id"]: o for o in annotation["object_property"]}
        frames = sorted(annotation["motion_trajectory"], key=lambda f: f["frame_id"])
        self.frames = {"start": frames[0]["objects"], "end": frames[-1]["objects"]}
        collisions = (Event("collision", c["frame_id"], frozenset(c["object_ids"])) for c in annotation["collision"])
        self.collisions = sorted(collisions, key=lambda e: e.frame)
        self.scene_events = [Event(e["type"], e["frame_id"], frozenset([e["object_id"]])) for e in annotation["events"]]
        self.predicted = {frozenset(c["object_ids"]) for c in annotation["predictive"]["collision"]}
        self.counterfactual = {
            entry["removed_object_id"]: {frozenset(c["object_ids"]) for c in entry["collision"]} for entry in annotation["counterfactual"]
        }


# ---------------------------------------------------------------------------------------------
# Program steps. Each step pops its inputs off the stack (the last pushed is the last argument),
# takes the text after the step's name as ``arg``, and pushes its result.

_STEPS: dict[str, tuple[int, Callable[..., Any]]] = {}


def _step(name: str, inputs: int):
    def register(fn):
        _STEPS[name] = (inputs, fn)
        return fn
    return register


@_step("objects", inputs=0)
def _objects(video: _Video, arg: str) -> list[int]:
    return sorted(video.objects)


def _filter_attribute(attribute: str, video: _Video, value: str, ids: list[int]) -> list[int]:
    return [i for i in ids if video.objects[i][attribute] == value]


_STEPS.update({f"filter_{a}": (1, partial(_filter_attribute, a)) for a in ATTRIBUTES})


def _moving_in_view(video: _Video, when: str) -> dict[int, bool]:
    """Whether each object in view at the first ("start") or last ("end") frame is moving."""
    if when not in video.frames:
        raise ProgramError(f"unknown frame {when!r}: 'start' or 'end'")
    return {s["object_id"]: math.hypot(*s["velocity"]) > MOVING_SPEED for s in video.frames[when] if s["inside_camera_view"]}


@_step("filter_moving", inputs=1)
def _filter_moving(video: _Video, when: str, ids: list[int]) -> list[int]:
    moving = _moving_in_view(video, when)
    return [i for i in ids if moving.get(i) is True]


@_step("filter_stationary", inputs=1)
def _filter_stationary(video: _Video, when: str, ids: list[int]) -> list[int]:
    moving = _moving_in_view(video, when)
    return [i for i in ids if moving.get(i) is False]


def _filter_scene_event(kind: str, video: _Video, arg: str, ids: list[int]) -> list[int]:
    happened = {i for e in video.scene_events if e.kind == kind for i in e.object_ids}
    return [i for i in ids if i in happened]


_STEPS["filter_enter"] = (1, partial(_filter_scene_event, "enter"))
_STEPS["filter_exit"] = (1, partial(_filter_scene_event, "exit"))


@_step("unique", inputs=1)
def _unique(video: _Video, arg: str, ids: list[int]) -> int:
    if len(ids) != 1:
        raise ProgramError(f"'unique' needs exactly one object, got {len(ids)}")
    return ids[0]


@_step("count", inputs=1)
def _count(video: _Video, arg: str, items: list) -> int:
    return len(items)


@_step("exist", inputs=1)
def _exist(video: _Video, arg: str, items: list) -> bool:
    return bool(items)


def _query(attribute: str, video: _Video, arg: str, object_id: int) -> str:
    return video.objects[object_id][attribute]


_STEPS.update({f"query_{a}": (1, partial(_query, a)) for a in ATTRIBUTES})


@_step("collisions", inputs=0)
def _collisions(video: _Video, arg: str) -> list[Event]:
    return list(video.collisions)


@_step("first_collision_partner", inputs=1)
def _first_collision_partner(video: _Video, arg: str, object_id: int) -> int:
    hits = [e for e in video.collisions if object_id in e.object_ids]
    if not hits:
        raise ProgramError(f"object {object_id} collides with nothing")
    partners = {i for e in hits if e.frame == hits[0].frame for i in e.object_ids} - {object_id}
    if len(partners) != 1:
        raise ProgramError(f"object {object_id} first collides with {len(partners)} objects at once")
    return partners.pop()


def _scene_event(kind: str, video: _Video, arg: str, object_id: int) -> Event:
    matches = [e for e in video.scene_events if e.kind == kind and object_id in e.object_ids]
    if len(matches) != 1:
        raise ProgramError(f"object {object_id} has {len(matches)} '{kind}' events")
    return matches[0]


_STEPS["enter_event"] = (1, partial(_scene_event, "enter"))
_STEPS["exit_event"] = (1, partial(_scene_event, "exit"))


@_step("collision_event", inputs=2)
def _collision_event(video: _Video, arg: str, a: int, b: int) -> Event:
    matches = [e for e in video.collisions if e.object_ids == {a, b}]
    if len(matches) != 1:
        raise ProgramError(f"objects {a} and {b} collide {len(matches)} times, not once")
    return matches[0]


@_step("before", inputs=2)
def _before(video: _Video, arg: str, first: Event, second: Event) -> bool:
    if first.frame == second.frame:
        raise ProgramError(f"both events happen at frame {first.frame}")
    return first.frame < second.frame


@_step("predicted_collision", inputs=2)
def _predicted_collision(video: _Video, arg: str, a: int, b: int) -> bool:
    return frozenset([a, b]) in video.predicted


def _without(video: _Video, removed: int) -> set[frozenset[int]]:
    if removed not in video.counterfactual:
        raise ProgramError(f"no counterfactual simulation without object {removed}")
    return video.counterfactual[removed]


@_step("counterfactual_collision", inputs=3)
def _counterfactual_collision(video: _Video, arg: str, removed: int, a: int, b: int) -> bool:
    return frozenset([a, b]) in _without(video, removed)


@_step("responsible", inputs=2)
def _responsible(video: _Video, arg: str, event: Event, removed: int) -> bool:
    return event.object_ids not in _without(video, removed)


def execute(program: list[str], annotation: Mapping[str, Any]) -> str | int | bool:
    """Run a question's (or a choice's) program on a video's annotation and return its result.

    Descriptive answers are ``answer_text`` of the result; a choice is "correct" iff its result is True.
    Raises ``ProgramError`` when the program cannot run on this video.
    """
    return _run(program, _Video(annotation))


def _run(program: list[str], video: _Video) -> Any:
    stack: list[Any] = []
    for step in program:
        name, _, arg = step.partition(" ")
        if name not in _STEPS:
            raise ProgramError(f"unknown step {step!r}")
        inputs, fn = _STEPS[name]
        if len(stack) < inputs:
            raise ProgramError(f"step {step!r} needs {inputs} inputs, the stack holds {len(stack)}")
        args = stack[len(stack) - inputs:]
        del stack[len(stack) - inputs:]
        stack.append(fn(video, arg, *args))
    if len(stack) != 1:
        raise ProgramError(f"the program leaves {len(stack)} values, not one")
    return stack[0]


def _try_run(program: list[str], video: _Video) -> Any:
    """The program's result, or None when it cannot run on this video."""
    try:
        return _run(program, video)
    except ProgramError:
        return None


def answer_all(questions: list[dict], annotation: Mapping[str, Any]) -> dict[str, Any]:
    """The predictions of one video's questions, each by running its programs on ``annotation``: an answer text, or
    ``{choice_id: "correct" | "wrong"}``. A question whose program cannot run on it gets none."""
    video, predictions = _Video(annotation), {}
    for question in questions:
        try:
            if "choices" in question:
                predictions[question["question_id"]] = {c["choice_id"]: "correct" if _run(c["program"], video) else "wrong"
                                                        for c in question["choices"]}
            else:
                predictions[question["question_id"]] = answer_text(_run(question["program"], video))
        except ProgramError:
            pass
    return predictions


def answer_text(result: str | int | bool) -> str:
    """A descriptive answer as written in the questions: 'yes'/'no', a number, or an attribute word."""
    if isinstance(result, bool):
        return "yes" if result else "no"
    return str(result)


# ---------------------------------------------------------------------------------------------
# Referring to objects and events.


@dataclass(frozen=True)
class _Condition:
    """What objects do, as filter steps and as words."""

    steps: tuple[str, ...]
    singular: str  # "the cube that {singular}", "Is there a cube that {singular}"
    plural: str  # "How many cubes {plural}"


CONDITIONS = (
    _Condition(("filter_enter",), "enters the scene", "enter the scene"),
    _Condition(("filter_exit",), "exits the scene", "exit the scene"),
    _Condition(("filter_moving start",), "is moving when the video begins", "are moving when the video begins"),
    _Condition(("filter_moving end",), "is moving when the video ends", "are moving when the video ends"),
    _Condition(("filter_stationary end",), "is stationary when the video ends", "are stationary when the video ends"),
)


@dataclass(frozen=True)
class _Name:
    """How an object or an event is called, and the program that pushes it."""

    text: str  # "red sphere", "metal object"
    program: list[str]  # pushes the object


def _refer(video: _Video, object_id: int, scope: tuple[str, ...] = (), unsaid: str | None = None) -> _Name | None:
    """The fewest words that single the object out among the objects ``scope`` keeps, without the ``unsaid`` attribute."""
    obj = video.objects[object_id]
    pool = _run(["objects", *scope], video)
    for extra in ((), ("color",), ("material",), ("color", "material")):
        if unsaid in extra:
            continue
        said = [a for a in (*extra, "shape") if a != unsaid]
        if [i for i in pool if all(video.objects[i][a] == obj[a] for a in said)] == [object_id]:
            words = [obj[a] for a in said] + ([] if "shape" in said else ["object"])
            return _Name(" ".join(words), ["objects", *scope, *(f"filter_{a} {obj[a]}" for a in said), "unique"])
    return None


def _names(video: _Video) -> dict[int, _Name]:
    """How each object that can be singled out among all objects is called."""
    named = {i: _refer(video, i) for i in sorted(video.objects)}
    return {i: name for i, name in named.items() if name is not None}


# ---------------------------------------------------------------------------------------------
# Descriptive questions: every candidate, then a balanced draw.


def _descriptive(video: _Video, subtype: str, text: str, program: list[str]) -> dict | None:
    result = _try_run(program, video)
    if result is None:
        return None
    return {"question_type": "descriptive", "question_subtype": subtype, "question": text,
            "answer": answer_text(result), "program": program}


def _query_questions(video: _Video) -> list[dict | None]:
    """What color/shape/material is the X that enters/exits/is moving/...?"""
    questions = []
    for condition, attribute, object_id in itertools.product(CONDITIONS, ATTRIBUTES, sorted(video.objects)):
        name = _refer(video, object_id, condition.steps, unsaid=attribute)
        if name is not None:
            text = f"What {attribute} is the {name.text} that {condition.singular}?"
            questions.append(_descriptive(video, f"query_{attribute}", text, [*name.program, f"query_{attribute}"]))
    return questions


def _first_partner_questions(video: _Video, names: dict[int, _Name]) -> list[dict | None]:
    """What is the color/shape/material of the first object to collide with the X?"""
    return [
        _descriptive(video, f"query_{attribute}",
                     f"What is the {attribute} of the first object to collide with the {name.text}?",
                     [*name.program, "first_collision_partner", f"query_{attribute}"])
        for name, attribute in itertools.product(names.values(), ATTRIBUTES)
    ]


def _attribute_filters(max_attributes: int) -> list[dict[str, str]]:
    """Attribute combinations to filter on, shape last: {}, {"color": "red"}, ..., {"color": "red", "shape": "cube"}."""
    combos: list[dict[str, str]] = [{}]
    for n in range(1, max_attributes + 1):
        for attributes in itertools.combinations(ATTRIBUTES, n):
            combos += [dict(zip(attributes, values)) for values in itertools.product(*(ATTRIBUTES[a] for a in attributes))]
    return combos


def _filter_phrase(filters: dict[str, str], plural: bool) -> str:
    """{"color": "red", "shape": "cube"} -> "red cube(s)"; without a shape the noun is "object(s)"."""
    noun = filters.get("shape", "object")
    adjectives = [v for a, v in filters.items() if a != "shape"]
    return " ".join([*adjectives, noun + "s" if plural else noun])


def _filter_steps(filters: dict[str, str]) -> list[str]:
    return [f"filter_{a} {v}" for a, v in filters.items()]


def _count_questions(video: _Video) -> list[dict | None]:
    """How many collisions happen? How many metal objects are moving when the video ends?"""
    questions = [_descriptive(video, "count", "How many collisions happen?", ["collisions", "count"])]
    for condition, filters in itertools.product(CONDITIONS, _attribute_filters(1)):
        text = f"How many {_filter_phrase(filters, plural=True)} {condition.plural}?"
        questions.append(_descriptive(video, "count", text, ["objects", *condition.steps, *_filter_steps(filters), "count"]))
    return questions


def _exist_questions(video: _Video) -> list[dict | None]:
    """Is there a rubber cylinder that exits the scene?"""
    return [
        _descriptive(video, "exist", f"Is there a {_filter_phrase(filters, plural=False)} that {condition.singular}?",
                     ["objects", *condition.steps, *_filter_steps(filters), "exist"])
        for condition, filters in itertools.product(CONDITIONS, _attribute_filters(2))
        if filters
    ]


def _happening_once(events: list[Event]) -> list[frozenset[int]]:
    """The object sets of the events that no other event repeats, in order of time."""
    counts = Counter(e.object_ids for e in events)
    return [e.object_ids for e in events if counts[e.object_ids] == 1]


def _scene_event_names(video: _Video, names: dict[int, _Name]) -> list[_Name]:
    """The entrances and exits of named objects that enter (exit) once, as noun phrases pushing the event."""
    events = []
    for kind, noun in (("enter", "entrance"), ("exit", "exit")):
        for (i,) in _happening_once([e for e in video.scene_events if e.kind == kind]):
            if i in names:
                events.append(_Name(f"{noun} of the {names[i].text}", [*names[i].program, f"{kind}_event"]))
    return events


def _collision_names(video: _Video, names: dict[int, _Name]) -> list[_Name]:
    """The collisions between named objects that collide once, as noun phrases pushing the event."""
    events = []
    for a, b in (sorted(pair) for pair in _happening_once(video.collisions)):
        if a in names and b in names:
            text = f"collision between the {names[a].text} and the {names[b].text}"
            events.append(_Name(text, [*names[a].program, *names[b].program, "collision_event"]))
    return events


def _order_questions(video: _Video, names: dict[int, _Name]) -> list[dict | None]:
    """Does the X happen before the Y? (X and Y in both orders, so yes and no are equally many.)"""
    return [
        _descriptive(video, "order", f"Does the {first.text} happen before the {second.text}?",
                     [*first.program, *second.program, "before"])
        for first, second in itertools.permutations([*_scene_event_names(video, names), *_collision_names(video, names)], 2)
    ]


def _draw_descriptive(candidates: list[dict], n: int, rng: random.Random) -> list[dict]:
    """Draw n questions: a subtype uniformly, then an answer uniformly among its answers, then a question."""
    pools: dict[str, list[dict]] = {}
    for question in candidates:
        pools.setdefault(question["question_subtype"], []).append(question)
    drawn = []
    while pools and len(drawn) < n:
        subtype = rng.choice(sorted(pools))
        answer = rng.choice(sorted({q["answer"] for q in pools[subtype]}))
        question = rng.choice([q for q in pools[subtype] if q["answer"] == answer])
        pools[subtype].remove(question)
        if not pools[subtype]:
            del pools[subtype]
        drawn.append(question)
    return drawn


def _descriptive_questions(video: _Video, n: int, rng: random.Random) -> list[dict]:
    names = _names(video)
    candidates = [*_query_questions(video), *_first_partner_questions(video, names), *_count_questions(video),
                  *_exist_questions(video), *_order_questions(video, names)]
    return _draw_descriptive([q for q in candidates if q is not None], n, rng)


# ---------------------------------------------------------------------------------------------
# Multiple-choice questions: every candidate choice, judged by its program, then a balanced draw.


def _choice(video: _Video, text: str, program: list[str]) -> dict | None:
    result = _try_run(program, video)
    if result is None:
        return None
    return {"choice": text, "answer": "correct" if result else "wrong", "program": program}


def _draw_choices(candidates: list[dict | None], rng: random.Random) -> list[dict] | None:
    """k correct and w wrong choices, (k, w) uniform over a set symmetric in k and w; None when no such set exists."""
    correct = [c for c in candidates if c is not None and c["answer"] == "correct"]
    wrong = [c for c in candidates if c is not None and c["answer"] == "wrong"]
    most = min(len(correct), len(wrong), MAX_CHOICES_PER_LABEL)
    sizes = [(k, w) for k in range(most + 1) for w in range(most + 1) if k + w >= 2]
    if not sizes:
        return None
    k, w = rng.choice(sizes)
    choices = rng.sample(correct, k) + rng.sample(wrong, w)
    rng.shuffle(choices)
    return [{"choice_id": i, **choice} for i, choice in enumerate(choices)]


def _multiple_choice(question_type: str, text: str, choices: list[dict]) -> dict:
    return {"question_type": question_type, "question": text, "choices": choices}


def _collision_choice(video: _Video, names: dict[int, _Name], a: int, b: int, before: list[str], judge: str) -> dict | None:
    """'The A collides with the B.', judged by ``before + push A + push B + judge``."""
    text = f"The {names[a].text} collides with the {names[b].text}."
    return _choice(video, text, [*before, *names[a].program, *names[b].program, judge])


def _explanatory_questions(video: _Video, n: int, rng: random.Random) -> list[dict]:
    """Which of the following is responsible for the collision between the A and the B? (presence of other objects)"""
    names = _names(video)
    events = _collision_names(video, names)
    questions = []
    for event in rng.sample(events, len(events)):
        if len(questions) == n:
            break
        involved = _run(event.program, video).object_ids
        candidates = [_choice(video, f"The presence of the {name.text}", [*event.program, *name.program, "responsible"])
                      for i, name in names.items() if i not in involved]
        choices = _draw_choices(candidates, rng)
        if choices is not None:
            text = f"Which of the following is responsible for the {event.text}?"
            questions.append(_multiple_choice("explanatory", text, choices))
    return questions


def _predictive_questions(video: _Video, n: int, rng: random.Random) -> list[dict]:
    """What will happen next? Each question draws its choices from the pairs no earlier question used."""
    names = _names(video)
    candidates = [_collision_choice(video, names, a, b, [], "predicted_collision") for a, b in itertools.combinations(names, 2)]
    questions = []
    while len(questions) < n:
        choices = _draw_choices(candidates, rng)
        if choices is None:
            break
        used = {c["choice"] for c in choices}
        candidates = [c for c in candidates if c is not None and c["choice"] not in used]
        questions.append(_multiple_choice("predictive", "What will happen next?", choices))
    return questions


def _counterfactual_questions(video: _Video, n: int, rng: random.Random) -> list[dict]:
    """Without the X, what will happen? Choices are collisions between the other objects."""
    names = _names(video)
    removable = [i for i in names if i in video.counterfactual]
    questions = []
    for removed in rng.sample(removable, len(removable)):
        if len(questions) == n:
            break
        others = [i for i in names if i != removed]
        choices = _draw_choices([_collision_choice(video, names, a, b, names[removed].program, "counterfactual_collision")
                                 for a, b in itertools.combinations(others, 2)], rng)
        if choices is not None:
            questions.append(_multiple_choice("counterfactual", f"Without the {names[removed].text}, what will happen?", choices))
    return questions


_GENERATORS = {
    "descriptive": _descriptive_questions,
    "explanatory": _explanatory_questions,
    "predictive": _predictive_questions,
    "counterfactual": _counterfactual_questions,
}


def generate_questions(annotation: Mapping[str, Any], rng_seed: int, per_type: Mapping[str, int] = DEFAULT_PER_TYPE) -> dict:
    """Questions about one video, in CLEVRER's layout; at most ``per_type[t]`` of each question type ``t``.

    Question ids are "<scene_index>-<k>", unique across videos so that predictions can be keyed by them.
    The same annotation and seed give the same questions.
    """
    unknown = set(per_type) - _GENERATORS.keys()
    if unknown:
        raise ValueError(f"unknown question types {sorted(unknown)}; known: {sorted(_GENERATORS)}")
    video = _Video(annotation)
    rng = random.Random(rng_seed)
    questions = [q for question_type, make in _GENERATORS.items() for q in make(video, per_type.get(question_type, 0), rng)]
    scene = annotation["scene_index"]
    return {"scene_index": scene, "video_filename": annotation["video_filename"],
            "questions": [{"question_id": f"{scene}-{k}", **q} for k, q in enumerate(questions)]}
