"""Leaderboard submissions: check a results JSON against its own outcomes and the standard protocol, then merge it.

A submission is accepted only when everything it claims can be recomputed or compared:

- it matches the results schema;
- its success rate, counts and Wilson interval are those of its per-episode outcomes, and the
  outcomes are those of the standard draw of evaluation pairs (seed, episodes), with steps
  inside the budget;
- its evaluation set is the one shipped for its env (same sha256);
- its protocol (budget, episodes, seed, goal offset) and planner settings are the standard ones,
  or the submitter asked for the separate, labelled custom-protocol table (``custom=True``);
- it is not on the board already (the same results, or the same model name on the same env,
  table and settings).

Every refusal is a ``SubmissionError`` naming the field and the fix. The merge holds a lock on
the board and replaces it with one atomic rename, so an interrupted write leaves the old board.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from wmbench.files import write_json
from wmbench.results import schema, validate, wilson_interval

PROTOCOL_VERSION = 1
STANDARD_PROTOCOL = {"budget": 50, "episodes": 50, "seed": 42, "goal_offset": 25}  # REFERENCE.md section 1
STANDARD_PLANNERS = {
    "model": {"name": "cem", "samples": 300, "iterations": 30, "elites": 30, "init_std": 1.0, "horizon": 5, "replan_every": 5, "result": "mean"},
    "oracle": {"name": "cem", "samples": 64, "iterations": 5, "elites": 8, "horizon": 5, "replan_every": 5},  # evaluation.ORACLE_CEM
    "random": {"name": "random", "horizon": 5},
}


class SubmissionError(ValueError):
    """A submission refused; the message names the field and how to fix it."""


def empty_board() -> dict[str, Any]:
    return {"$schema": "../wmbench/schemas/leaderboard.schema.json", "format": 1, "protocol_version": PROTOCOL_VERSION, "entries": []}


def results_digest(results: dict[str, Any]) -> str:
    """sha256 of the results in canonical JSON (sorted keys, no spaces): the same run gives the same digest."""
    return hashlib.sha256(json.dumps(results, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_outcomes(results: dict[str, Any]) -> None:
    """The summary must be what the per-episode outcomes give, and the outcomes must be the standard draw."""
    from wmbench.data.evalset import load_eval_set
    from wmbench.evaluation import draw_pairs

    protocol, success, episodes = results["protocol"], results["success"], results["episodes"]
    if len(episodes) != protocol["episodes"]:
        raise SubmissionError(f"episodes: {len(episodes)} outcomes, but protocol.episodes says {protocol['episodes']}; the file is incomplete or was edited")
    for index, episode in enumerate(episodes):
        steps = episode["steps_to_success"]
        if episode["success"] != (steps is not None) or (steps is not None and not 1 <= steps <= protocol["budget"]):
            raise SubmissionError(
                f"episodes[{index}]: success {episode['success']} with steps_to_success {steps} is impossible with a budget of "
                f"{protocol['budget']} env steps; the file was edited"
            )
    evalset = load_eval_set(results["env"]["name"])
    if protocol["eval_set"]["sha256"] != evalset.meta["sha256"]:
        raise SubmissionError(
            f"protocol.eval_set.sha256 is {protocol['eval_set']['sha256']}, but the evaluation set shipped for "
            f"{results['env']['name']} is {evalset.meta['sha256']}; evaluate again with this wmbench's `wmbench eval`"
        )
    expected_pairs = draw_pairs(evalset, protocol["episodes"], protocol["seed"]).tolist()
    pairs = [episode["pair"] for episode in episodes]
    if sorted(pairs) != expected_pairs:
        raise SubmissionError(
            f"episodes[*].pair: the pairs evaluated are not the {protocol['episodes']} drawn with seed {protocol['seed']} "
            "from the evaluation set; the outcome list was altered"
        )
    successes = sum(episode["success"] for episode in episodes)
    claimed = {"successes": successes, "episodes": len(episodes), "rate": successes / len(episodes), "ci95": list(wilson_interval(successes, len(episodes)))}
    for key, value in claimed.items():
        given = success[key]
        same = all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(given, value)) if key == "ci95" else math.isclose(given, value, abs_tol=1e-9)
        if not same:
            raise SubmissionError(f"success.{key} is {given}, but the {len(episodes)} per-episode outcomes give {value}; the file was edited")


def deviations(results: dict[str, Any]) -> dict[str, list]:
    """Setting -> [standard, submitted] for every protocol and planner setting off the standard."""
    kind = results["model"]["source"] if results["model"]["source"] in ("oracle", "random") else "model"
    found = {key: [value, results["protocol"][key]] for key, value in STANDARD_PROTOCOL.items() if results["protocol"][key] != value}
    for key, value in STANDARD_PLANNERS[kind].items():
        if results["planner"].get(key) != value:
            found[f"planner.{key}"] = [value, results["planner"].get(key)]
    return found


def planner_label(planner: dict[str, Any]) -> str:
    if planner["name"] == "random":
        return "random actions"
    sizes = f" {planner['samples']}x{planner['iterations']}" if "samples" in planner and "iterations" in planner else ""
    label = f"{planner['name']}{sizes}, horizon {planner['horizon']}, replan every {planner['replan_every']}"
    return label + (", bf16" if planner.get("autocast") else "")


def device_label(device: dict[str, Any]) -> str:
    """The GPU's name, or the CPU's with its thread count (a CPU name alone says little about speed)."""
    return device["name"] if device["type"] == "cuda" else f"{device['name']} (CPU, {device.get('threads', '?')} threads)"


def make_entry(results: dict[str, Any], *, name: str | None = None, authors: list[str] = (), links: list[str] = (), custom: bool = False) -> dict[str, Any]:
    """Check a results document and turn it into a leaderboard entry (raises ``SubmissionError``)."""
    try:
        validate(results)
    except ValueError as error:
        raise SubmissionError(str(error)) from None
    from wmbench.envs import GOAL_ENVS

    if results["env"]["name"] not in GOAL_ENVS:
        raise SubmissionError(f"env.name {results['env']['name']!r} is not a goal-reaching wmbench env; known: {', '.join(sorted(GOAL_ENVS))}")
    check_outcomes(results)
    off_standard = deviations(results)
    reference = results["model"]["source"] in ("oracle", "random")
    if off_standard and not custom:
        listed = "; ".join(f"{key}: {standard} -> {given}" for key, (standard, given) in off_standard.items())
        raise SubmissionError(
            f"not the standard protocol ({listed}); evaluate with `wmbench eval`'s defaults, or resubmit with --custom "
            "to list it in the separate custom-protocol table"
        )
    for link in links:
        if not link.startswith(("http://", "https://")):
            raise SubmissionError(f"--url {link!r}: a link must start with http:// or https://")
    return {
        "model": name or results["model"]["name"],
        "env": results["env"]["name"],
        "protocol_version": PROTOCOL_VERSION,
        "table": "custom" if off_standard else "reference" if reference else "standard",
        "success": {key: results["success"][key] for key in ("rate", "successes", "episodes", "ci95")},
        "planning": {"episode_plan_s": results["timing"]["episode_plan_mean_s"], "device": device_label(results["device"])},
        "parameters": results["model"].get("parameters"),
        "checkpoint_sha256": results["model"].get("sha256"),
        "eval_set_sha256": results["protocol"]["eval_set"]["sha256"],
        "results_sha256": results_digest(results),
        "wmbench_version": results["wmbench_version"],
        "date": results["created"][:10],
        "authors": list(authors),
        "links": list(links),
        "planner": planner_label(results["planner"]),
        "deviations": off_standard,
    }


def load_board(path: Path) -> dict[str, Any]:
    """The board at ``path`` (an empty one when the file does not exist yet), checked against its schema."""
    if not path.exists():
        return empty_board()
    try:
        board = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise SubmissionError(f"{path} is not valid JSON ({error}); restore it with `git checkout {path}`") from None
    try:
        import jsonschema

        jsonschema.validate(board, schema("leaderboard"))
    except jsonschema.ValidationError as error:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise SubmissionError(f"{path} does not match the leaderboard schema at {where}: {error.message}") from None
    return board


def check_duplicate(board: dict[str, Any], entry: dict[str, Any]) -> None:
    for existing in board["entries"]:
        if existing["results_sha256"] == entry["results_sha256"]:
            raise SubmissionError(f"these results are on the leaderboard already, as {existing['model']!r} on {existing['env']}")
        same_slot = all(existing[key] == entry[key] for key in ("model", "env", "protocol_version", "table", "deviations"))
        if same_slot:
            raise SubmissionError(
                f"model: {entry['model']!r} already has a {entry['table']} entry on {entry['env']} (protocol {entry['protocol_version']}); "
                "submit under another --name, or remove the old entry first"
            )


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock beside the board, held across read-check-write, so concurrent submissions cannot lose one another."""
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def submit(results_path: str | Path, board_path: str | Path, **entry_options) -> dict[str, Any]:
    """Check ``results_path`` and merge it into the board at ``board_path``; returns the new entry."""
    results_path, board_path = Path(results_path), Path(board_path)
    if not board_path.parent.is_dir():
        raise SubmissionError(f"no leaderboard folder {board_path.parent}; run from the wmbench repository or pass --leaderboard PATH")
    try:
        results = json.loads(results_path.read_text())
    except FileNotFoundError:
        raise SubmissionError(f"{results_path}: no such file; pass the results.json that `wmbench eval` wrote") from None
    except json.JSONDecodeError as error:
        raise SubmissionError(f"{results_path} is not valid JSON ({error}); it is truncated or is not a results file") from None
    entry = make_entry(results, **entry_options)
    with locked(board_path):
        board = load_board(board_path)
        check_duplicate(board, entry)
        board["entries"].append(entry)
        board["entries"].sort(key=lambda e: (e["env"], e["table"], -e["success"]["rate"], e["model"]))
        write_json(board_path, board)
    return entry
