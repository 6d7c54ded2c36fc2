"""Bad input to every environment: a generated table of bad arguments, each refused in one line.

For each env: every variation factor with values of the wrong kind, non-finite or outside its
declared range, given to ``make`` and to ``reset``, and factors that do not go together; actions of
the wrong kind, shape or value; resolutions, ``obs_type`` and the other constructor arguments;
seeds and reset options; states given to ``set_state``, ``reset``, ``render_state`` and
``success_rule``; perturbations with unknown kinds, unknown arguments and bad values. Every case
must raise ``ValueError`` whose message is one line naming the env and the bad argument.

The cases run in a child process (this file run as a script), each under a time limit, with one
env of each kind shared by its cases: a case that hangs, or aborts the process (a physics
engine's SIGABRT), fails on its own and a new child goes on after it.
"""

from __future__ import annotations

import json
import math
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from gymnasium.envs.registration import load_env_creator

import wmbench
from wmbench.envs import ENVS
from wmbench.envs.base import Color, Flag, Number, OneOf, OrNone
from wmbench.envs.cube import CameraOffset
from wmbench.envs.phyre.env import Template
from wmbench.envs.tworoom import DoorCenters

ROOT = Path(__file__).resolve().parents[1]
CASE_SECONDS = 10  # a refusal takes milliseconds: this only catches hangs
START_SECONDS = 600  # importing wmbench or making an env in the child: seconds, but minutes on an overloaded machine
ENV_CLASSES = {name: load_env_creator(entry.entry_point) for name, entry in ENVS.items()}


@dataclass(frozen=True)
class Case:
    id: str
    env: str  # short name
    run: Callable[[Any], Any]  # called with the env's shared instance (made, reset, unwrapped)
    names: tuple[str, ...]  # what the message must name besides the env


def make(env: str, **kwargs):
    return wmbench.make(env, **{"resolution": 16, "obs_type": "state", **kwargs})


# ---------------------------------------------------------------------- bad values by kind
NOT_NUMBERS = {"text": "abc", "numeric_text": "1", "none": None, "bool": True, "complex": 1 + 0j, "list": [1.0], "dict": {}}
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "numpy_nan": np.float64("nan")}
BAD_COLORS = {
    "float_scalar": 0.9, "int_scalar": 7, "none": None, "bool": True, "unknown_name": "no-such-color", "short_hex": "#12345",
    "empty_text": "", "css_out_of_range": "rgb(300, 0, 0)", "int_above_255": (256, 0, 0), "negative": (-1, 0, 0),
    "float_above_1": (0.5, 2.0, 0.0), "floats_as_bytes": (255.0, 0.0, 0.0), "two": (1, 2), "four": (1, 2, 3, 4),
    "nan": (math.nan, 0.0, 0.0), "inf": (math.inf, 0.5, 0.0), "bools": (True, False, True), "texts": ("1", "2", "3"),
    "complex": (1 + 0j, 0, 0), "nested": ((1, 2, 3),), "matrix": np.zeros((3, 3)), "huge_int": (10**30, 0, 0),
}
BAD_FLAGS = {"one": 1, "zero": 0, "text": "true", "none": None, "float": 1.0, "list": [True], "nan": math.nan}
BAD_BY_VALIDATOR = {
    Color: BAD_COLORS,
    Flag: BAD_FLAGS,
    DoorCenters: {
        "none": None, "text": "49", "empty": (), "four": (40.0, 90.0, 140.0, 190.0), "nan": (math.nan,), "inf": (math.inf,),
        "in_border": (5.0,), "outside": (300.0,), "bool": (True,), "nested": ((49.0,),), "1e308": 1e308, "complex": (49 + 0j,),
    },
    CameraOffset: {
        "text": "left", "two": (0.0, 0.0), "too_long": (0.08, 0.08, 0.0), "far": (0.5, 0.0, 0.0), "nan": (math.nan, 0.0, 0.0),
        "inf": (0.0, math.inf, 0.0), "none": None, "bools": (True, False, False), "1e308": (1e308, 0.0, 0.0), "number": 0.05,
    },
    Template: {
        "unknown": "no_such_template", "above": 25, "negative": -1, "float": 1.5, "bool": True, "list": ["ball_off_shelf"],
        "nan": math.nan, "numeric_text": "1",
    },
}


def bad_numbers(valid: Number) -> dict[str, Any]:
    if valid.integer:
        out_of_range = {"below": valid.low - 1, "above": valid.high + 1, "huge_int": 10**30, "fraction": valid.low + 0.5,
                        "float_integer": float(valid.low)}
    else:
        span = valid.high - valid.low
        out_of_range = {"below": valid.low - span / 2, "above": valid.high + span / 2, "just_below": np.nextafter(valid.low, -math.inf),
                        "just_above": np.nextafter(valid.high, math.inf), "1e-300": 1e-300 if valid.low > 0 else -1e-300}
    return {**NOT_NUMBERS, **NON_FINITE, **out_of_range, "1e308": 1e308, "-1e308": -1e308}


def bad_choices(valid: OneOf) -> dict[str, Any]:
    return {"unknown": "nope", "number": 1, "none": None, "list": [valid.choices[0]], "upper": valid.choices[0].upper()}


def bad_values(valid) -> dict[str, Any]:
    """Values ``valid`` must refuse: of the wrong kind, non-finite, out of its range."""
    if isinstance(valid, OrNone):
        return {label: value for label, value in bad_values(valid.valid).items() if value is not None}
    if isinstance(valid, Number):
        return bad_numbers(valid)
    if isinstance(valid, OneOf):
        return bad_choices(valid)
    return BAD_BY_VALIDATOR[type(valid)]


# ---------------------------------------------------------------------- the table
def variation_cases(env: str):
    for factor_name, factor in ENV_CLASSES[env].VARIATIONS.items():
        for label, value in bad_values(factor.valid).items():
            variation = {factor_name: value}
            yield Case(f"{env}-make-{factor_name}-{label}", env, lambda shared, v=variation, e=env: make(e, variation=v), (factor_name,))
            yield Case(f"{env}-reset-{factor_name}-{label}", env, lambda shared, v=variation: shared.reset(seed=0, options={"variation": v}),
                       (factor_name,))
    for label, variation in {"number": 3, "float": 1.5, "list": ["recolored"], "unknown_preset": "no_such_preset",
                             "unknown_factor": {"no_such_factor": 1}, "non_text_factor": {1: 2}}.items():
        yield Case(f"{env}-make-variation-{label}", env, lambda shared, v=variation, e=env: make(e, variation=v), ("variation",))
        yield Case(f"{env}-reset-variation-{label}", env, lambda shared, v=variation: shared.reset(options={"variation": v}), ("variation",))


# Factors each valid on its own that do not go together, and the factor the message must name.
COMBINATIONS = {
    "pusht": [({"kp": 400.0}, "kv"), ({"kp": 200.0, "kv": 20.0}, "kv"), ({"kv": 10.0}, "kv")],
    "tworoom": [({"door_half_size": 6.0}, "door_half_size"), ({"agent_radius": 14.0}, "door_half_size"),
                ({"door_centers": (20.0,)}, "door_centers"), ({"door_centers": (49.0, 200.0)}, "door_centers")],
    "phyre": [({"split": "within", "task": 3}, "split"), ({"split": "cross", "template": 0}, "split")],
}


def combination_cases(env: str):
    for i, (variation, name) in enumerate(COMBINATIONS.get(env, [])):
        yield Case(f"{env}-make-combination-{i}", env, lambda shared, v=variation, e=env: make(e, variation=v), (name,))
        yield Case(f"{env}-reset-combination-{i}", env, lambda shared, v=variation: shared.reset(options={"variation": v}), (name,))


def bad_actions(dim: int) -> dict[str, Any]:
    zeros = np.zeros(dim)
    return {
        "complex_array": zeros + 1j, "complex_list": [1 + 0j] * dim, "complex_zero_imaginary": zeros.astype(complex),
        "text": "left", "numeric_texts": ["0.5"] * dim, "text_array": np.array(["0.5"] * dim), "bytes": b"\x00" * dim,
        "object": object(), "object_array": np.array([object()] * dim), "nones": [None] * dim, "none": None, "dict": {},
        "set": {0.0}, "bools": [True] * dim, "bool_array": np.ones(dim, bool), "ragged": [[0.1], [0.2, 0.3]],
        "nested": [zeros.tolist()], "scalar": 0.0, "empty": [], "too_long": np.zeros(dim + 1), "too_short": np.zeros(dim - 1),
        "batched": np.zeros((1, dim)), "column": np.zeros((dim, 1)), "nan": np.r_[np.nan, zeros[1:]],
        "inf": np.r_[np.inf, zeros[1:]], "-inf": np.r_[-np.inf, zeros[1:]], "all_nan": np.full(dim, np.nan),
        "float32_inf": np.full(dim, np.inf, np.float32),
    }


def action_cases(env: str):
    for label, action in bad_actions(len(ENV_CLASSES[env].action_names)).items():
        yield Case(f"{env}-step-{label}", env, lambda shared, a=action: shared.step(a), ("action",))
        if env == "phyre":
            yield Case(f"{env}-is_valid_action-{label}", env, lambda shared, a=action: shared.is_valid_action(a), ("action",))


RESOLUTIONS = {
    "0": 0, "-1": -1, "7": 7, "4097": 4097, "1e9": 10**9, "one": (64,), "three": (64, 64, 3), "float": 64.0, "text": "64",
    "none": None, "bool": True, "bool_pair": (True, 64), "text_pair": (64, "a"), "nan": math.nan, "huge_width": (16, 5000),
    "complex": 64 + 0j, "empty": (), "nested": ((16, 16),), "dict": {"height": 16},
}
OBS_TYPES = {"unknown": "depth", "none": None, "number": 3, "empty": [], "one_unknown": ["state", "depth"], "nested": [["state"]],
             "dict": {"state": 1}, "bytes": b"state", "upper": "STATE"}
CONSTRUCTOR_ARGUMENTS = {  # argument -> bad values, for every env
    "terminate_on_success": {"text": "no", "one": 1, "none": None, "float": 0.0},
    "render_mode": {"depth": "depth_array", "number": 1, "empty": ""},
    "max_episode_steps": {"0": 0, "-2": -2, "float": 1.5, "text": "10", "bool": True, "nan": math.nan},
}
ENV_ARGUMENTS = {  # env -> argument -> bad values
    "pusht": {"task": {"unknown": "cover", "number": 1, "none": None}},
    "phyre": {"stride": {"0": 0, "float": 1.5, "bool": True, "huge": 10**6, "text": "60", "-1": -1}},
    **{env: {"shadows": {"text": "yes"}, "multisample": {"one": 1}, "reflection": {"none": None}, "full_meshes": {"zero": 0}}
       for env in ("reacher", "cube", "clevrer")},
}


def constructor_cases(env: str):
    arguments = {"resolution": RESOLUTIONS, "obs_type": OBS_TYPES, **CONSTRUCTOR_ARGUMENTS, **ENV_ARGUMENTS.get(env, {})}
    for argument, values in arguments.items():
        for label, value in values.items():
            yield Case(f"{env}-make-{argument}-{label}", env, lambda shared, k=argument, v=value, e=env: make(e, **{k: v}), (argument,))


SEEDS = {"-1": -1, "text": "0", "float": 1.5, "bool": True, "list": [0], "nan": math.nan, "complex": 1j}
OPTIONS = {"list": ([("state", 1)], "options"), "text": ("state", "options"), "number": (3, "options"),
           "unknown_key": ({"start": [0.0]}, "start"), "non_text_key": ({1: 2}, "option")}


def reset_cases(env: str):
    for label, seed in SEEDS.items():
        yield Case(f"{env}-reset-seed-{label}", env, lambda shared, s=seed: shared.reset(seed=s), ("seed",))
    for label, (options, name) in OPTIONS.items():
        yield Case(f"{env}-reset-options-{label}", env, lambda shared, o=options: shared.reset(options=o), (name,))


def bad_states(size: int) -> dict[str, Any]:
    zeros = np.zeros(size)
    return {
        "short": zeros[:-1], "long": np.zeros(size + 1), "empty": [], "scalar": 0.0, "batched": zeros[None],
        "nan": np.r_[np.nan, zeros[1:]], "inf": np.r_[zeros[:-1], np.inf], "-inf": np.r_[-np.inf, zeros[1:]],
        "texts": ["0"] * size, "complex": zeros + 1j, "bools": np.zeros(size, bool), "none": None, "objects": [object()] * size,
        "ragged": [[0.0], [0.0, 0.0]], "dict": {},
    }


def state_cases(env: str):
    entry_points = {
        "set_state": lambda shared, s: shared.set_state(s),
        "reset_state": lambda shared, s: shared.reset(options={"state": s}),
        "reset_goal_state": lambda shared, s: shared.reset(options={"goal_state": s}),
        "render_state": lambda shared, s: shared.render_state(s),
        "success_rule": lambda shared, s: shared.success_rule(s, shared.goal_state),
    }
    for label, state in bad_states(len(ENV_CLASSES[env].state_names)).items():
        for entry, call in entry_points.items():
            if state is None and entry.startswith("reset"):
                continue  # None there means "sample one"
            yield Case(f"{env}-{entry}-{label}", env, lambda shared, c=call, s=state: c(shared, s), ("state",))


BAD_POINTS = {
    "nan": (math.nan, 0.0), "inf": (math.inf, 0.0), "text": "here", "three": (1.0, 2.0, 3.0), "one": (1.0,),
    "huge": (1e308, 1e308), "texts": ("1", "2"), "bools": (True, False), "complex": (1 + 0j, 0.0), "scalar": 0.5,
    "nested": ((0.1, 0.2),), "far": (1e6, -1e6),
}
BAD_INDICES = {"absent": 99, "negative": -1, "text": "a", "float": 1.5, "bool": True, "list": [0]}
TELEPORT_POINT = {"pusht": "position", "tworoom": "position", "reacher": "joints", "cube": "position", "clevrer": "position",
                  "phyre": "position"}
TELEPORT_TARGETS = {"pusht", "tworoom", "reacher", "cube"}  # the envs whose teleport takes a target


def perturb_cases(env: str):
    def perturb(label, names, kind, **kwargs):
        return Case(f"{env}-perturb-{label}", env, lambda shared: shared.perturb(kind, **kwargs), names)

    for label, kind in {"unknown": "explode", "number": 3, "none": None, "list": ["teleport"], "empty": "", "upper": "TELEPORT"}.items():
        yield perturb(f"kind-{label}", ("perturbation",), kind)
    yield perturb("teleport-unknown_argument", ("speed",), "teleport", speed=3.0)
    yield perturb("recolor-unknown_argument", ("colour",), "recolor", colour="red")
    for label, target in {"unknown": "nope", "number": 3, "list": ["floor"]}.items():
        yield perturb(f"recolor-target-{label}", ("target",), "recolor", target=target)
        if env in TELEPORT_TARGETS:
            yield perturb(f"teleport-target-{label}", ("target",), "teleport", target=target)
    for label, color in BAD_COLORS.items():
        if color is not None:  # None: a random color
            yield perturb(f"recolor-color-{label}", ("color",), "recolor", color=color)
    point = TELEPORT_POINT[env]
    for label, value in BAD_POINTS.items():
        yield perturb(f"teleport-{point}-{label}", (point,), "teleport", **{point: value})
    if env in ("pusht", "phyre"):
        for label, angle in {"nan": math.nan, "inf": math.inf, "text": "0", "big": 10.0, "complex": 1j}.items():
            yield perturb(f"teleport-angle-{label}", ("angle",), "teleport", angle=angle)
    if env == "pusht":
        yield perturb("teleport-agent_with_angle", ("angle",), "teleport", target="agent", angle=0.5)
    if env == "tworoom":
        yield perturb("teleport-into_wall", ("position",), "teleport", position=(112.0, 150.0))
    if env == "cube":
        yield perturb("teleport-arm_with_position", ("position",), "teleport", target="arm", position=(0.4, 0.1))
    if env == "clevrer":
        for label, index in BAD_INDICES.items():
            for kind in ("teleport", "recolor", "vanish"):
                yield perturb(f"{kind}-object-{label}", ("object",), kind, object=index)
        yield perturb("recolor-floor_with_object", ("object",), "recolor", target="floor", object=0)
    if env == "phyre":
        for label, index in BAD_INDICES.items():
            yield perturb(f"teleport-index-{label}", ("index",), "teleport", index=index)
            yield perturb(f"pass_through-index-{label}", ("index",), "pass_through", index=index)
        for label, steps in {"zero": 0, "negative": -1, "text": "a", "float": 2.5, "huge": 10**9, "nan": math.nan, "none": None}.items():
            yield perturb(f"pass_through-steps-{label}", ("steps",), "pass_through", steps=steps)


CASE_KINDS = (variation_cases, combination_cases, action_cases, constructor_cases, reset_cases, state_cases, perturb_cases)
CASES_BY_ENV = {env: [case for kind in CASE_KINDS for case in kind(env)] for env in ENVS}
CASES = [case for cases in CASES_BY_ENV.values() for case in cases]


# ---------------------------------------------------------------------- running the cases
class CaseTimedOut(BaseException):
    """Raised in the child by the per-case alarm (not an Exception, so that no env code swallows it)."""


def _time_out(signum, frame):
    raise CaseTimedOut


def run_cases(first: int) -> None:
    """In a child process: run the cases from index ``first`` on, printing one JSON line per case."""
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, _time_out)
    shared = {}
    for case in CASES[first:]:
        if case.env not in shared:
            print(json.dumps({"making": case.env}), flush=True)
            shared[case.env] = make(case.env).unwrapped
            shared[case.env].reset(seed=0)
        signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
        try:
            case.run(shared[case.env])
            result = {"raised": None, "message": "accepted"}
        except CaseTimedOut:
            result = {"raised": "hang", "message": f"still running after {CASE_SECONDS} s"}
        except Exception as error:
            result = {"raised": "ValueError" if isinstance(error, ValueError) else type(error).__name__, "message": str(error)}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        print(json.dumps({"id": case.id, **result}), flush=True)


def run_all_cases() -> dict[str, dict]:
    """Every case's outcome, run in a child; a case that hangs or kills it is recorded, and a new child goes on after it."""
    results = {}
    while len(results) < len(CASES):
        with tempfile.TemporaryFile("w+") as stderr:
            child = subprocess.Popen([sys.executable, __file__, str(len(results))], stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT)
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=lambda: [lines.put(line) for line in child.stdout] + [lines.put("")], daemon=True).start()
            limit, hung = START_SECONDS, False
            while True:
                try:
                    line = lines.get(timeout=limit)
                except queue.Empty:
                    child.kill()
                    hung = True
                    break
                if not line:
                    break
                record = json.loads(line)
                if "id" in record:
                    results[record["id"]] = record
                limit = START_SECONDS if "making" in record else CASE_SECONDS + 10
            code = child.wait()
            if len(results) < len(CASES):  # the case after the last one reported hung, or killed the process
                stderr.seek(0)
                how = "hang" if hung else f"process died ({signal.Signals(-code).name if code < 0 else f'exit {code}'})"
                results[CASES[len(results)].id] = {"raised": how, "message": " ".join(stderr.read().split())[-600:]}
    return results


RESULTS: dict[str, dict] = {}  # case id -> outcome, filled by the first case


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_with_one_line_naming_it(case):
    if not RESULTS:
        RESULTS.update(run_all_cases())
    outcome = RESULTS[case.id]
    message = outcome["message"]
    assert outcome["raised"] == "ValueError", f"{outcome['raised']}: {message}"
    assert "\n" not in message, message
    assert ENV_CLASSES[case.env].env_name.lower() in message.lower(), message
    for name in case.names:
        assert name in message, message


def test_the_table_covers_every_env_and_the_reported_crashes():
    assert len(CASES) >= 500 and len({case.id for case in CASES}) == len(CASES)
    for env, cases in CASES_BY_ENV.items():
        kinds = {case.id.split("-")[1] for case in cases}
        assert {"make", "reset", "step", "set_state", "perturb"} <= kinds, env
    ids = {case.id for case in CASES}
    # the reports: a SIGABRT in pymunk and two hangs
    assert {"pusht-make-block_scale-1e308", "tworoom-make-speed-1e308", "tworoom-make-agent_radius-1e-300"} <= ids


@pytest.mark.parametrize("env", list(ENVS))
def test_the_card_states_every_factor_range(env):
    card = (ROOT / "envs" / f"{env}.md").read_text()
    for name, factor in ENV_CLASSES[env].VARIATIONS.items():
        valid = str(factor.valid)
        if isinstance(factor.valid, Color):  # one sentence covers every color
            assert valid in card, (env, name)
        else:
            assert any(f"`{name}`" in line and valid in line for line in card.splitlines()), (env, name, valid)


if __name__ == "__main__":
    run_cases(int(sys.argv[1]))
