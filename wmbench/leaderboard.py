"""Leaderboard submissions: check a results JSON against its own outcomes and the standard protocol, then merge it.

Two kinds of results are accepted: goal-reaching MPC runs (``wmbench eval``) and PHYRE puzzle
runs (``wmbench phyre eval``, recognised by ``env.name == "phyre"``). A submission is accepted only
when everything it claims can be recomputed or compared:

- it matches its schema (``results`` or ``phyre_results``);
- goal-reaching: its success rate, counts and Wilson interval are those of its per-episode
  outcomes, and the outcomes are those of the standard draw of evaluation pairs (seed, episodes),
  with steps inside the budget; its evaluation set is the one shipped for its env (same sha256);
- PHYRE: its AUCCESS, bootstrap interval and solved fraction are those of its per-task outcomes,
  every task solved within its valid attempts and those within the allowed ones, and the tasks
  are the first ones of the fold's test side, in order;
- its protocol (and for MPC the planner settings) is the standard one, or the submitter asked for
  the separate, labelled custom-protocol table (``custom=True``);
- it is not on the board already (the same results, or the same model name in the same place:
  env, table, settings, and for PHYRE split and fold).

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

from wmbench.eval.results import schema, validate
from wmbench.files import write_json
from wmbench.protocol import GOAL_REACHING, PUZZLES, VERSION, standard_planners
from wmbench.stats import wilson_interval

PROTOCOL_VERSION = VERSION
STANDARD_PROTOCOL = {key: getattr(GOAL_REACHING, key) for key in ("budget", "episodes", "seed", "goal_offset")}
STANDARD_PLANNERS = standard_planners()
STANDARD_PHYRE_PROTOCOL = {"seed": PUZZLES.seed, "max_attempts": PUZZLES.max_attempts}  # and every test task of the fold
REFERENCE_AGENTS = ("oracle", "random", "largest-ball")  # largest-ball: PHYRE only


class SubmissionError(ValueError):
    """A submission refused; the message names the field and how to fix it."""


def empty_board() -> dict[str, Any]:
    return {"$schema": "../wmbench/schemas/leaderboard.schema.json", "format": 1, "protocol_version": PROTOCOL_VERSION, "entries": []}


def results_digest(results: dict[str, Any]) -> str:
    """sha256 of the results in canonical JSON (sorted keys, no spaces): the same run gives the same digest."""
    return hashlib.sha256(json.dumps(results, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def is_phyre(results: Any) -> bool:
    """PHYRE results (``wmbench phyre eval``) rather than goal-reaching ones (``wmbench eval``)."""
    return isinstance(results, dict) and isinstance(results.get("env"), dict) and results["env"].get("name") == "phyre"


def check_schema(results: dict[str, Any], name: str) -> None:
    try:
        validate(results, name)
    except ValueError as error:
        raise SubmissionError(str(error)) from None


def check_recomputed(block: str, given: dict[str, Any], recomputed: dict[str, Any], source: str) -> None:
    """Every figure the results' ``block`` (``given``) claims must be the one recomputed from ``source``: numbers and [low, high] pairs."""
    for key, value in recomputed.items():
        claimed = given[key]
        same = all(map(close, claimed, value)) if isinstance(value, list) else close(claimed, value)
        if not same:
            raise SubmissionError(f"{block}.{key} is {claimed}, but {source} give {value}; the file was edited")


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, abs_tol=1e-9)


def differences(standard: dict[str, Any], given: dict[str, Any], prefix: str = "") -> dict[str, list]:
    """Setting -> [standard, submitted] for every setting of ``given`` off ``standard``."""
    return {f"{prefix}{key}": [value, given.get(key)] for key, value in standard.items() if given.get(key) != value}


# ---------------------------------------------------------------------- goal-reaching (wmbench eval)


def check_outcomes(results: dict[str, Any]) -> None:
    """The summary must be what the per-episode outcomes give, and the outcomes must be the standard draw."""
    from wmbench.data.evalset import draw_pairs, load_eval_set

    protocol, episodes = results["protocol"], results["episodes"]
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
    recomputed = {"successes": successes, "episodes": len(episodes), "rate": successes / len(episodes), "ci95": list(wilson_interval(successes, len(episodes)))}
    check_recomputed("success", results["success"], recomputed, f"the {len(episodes)} per-episode outcomes")


def deviations(results: dict[str, Any]) -> dict[str, list]:
    """Setting -> [standard, submitted] for every protocol and planner setting off the standard."""
    kind = results["model"]["source"] if results["model"]["source"] in REFERENCE_AGENTS else "model"
    return {**differences(STANDARD_PROTOCOL, results["protocol"]), **differences(STANDARD_PLANNERS[kind], results["planner"], "planner.")}


def planner_label(planner: dict[str, Any]) -> str:
    if planner["name"] == "random":
        return "random actions"
    sizes = f" {planner['samples']}x{planner['iterations']}" if "samples" in planner and "iterations" in planner else ""
    label = f"{planner['name']}{sizes}, horizon {planner['horizon']}, replan every {planner['replan_every']}"
    return label + (", bf16" if planner.get("autocast") else "")


def device_label(device: dict[str, Any]) -> str:
    """The GPU's name, or the CPU's with its thread count (a CPU name alone says little about speed)."""
    return device["name"] if device["type"] == "cuda" else f"{device['name']} (CPU, {device.get('threads', '?')} threads)"


def goal_reaching_entry(results: dict[str, Any]) -> dict[str, Any]:
    """The entry of a checked goal-reaching run, as the results give it (``make_entry`` adds the submitter's part)."""
    from wmbench.envs import GOAL_ENVS

    check_schema(results, "results")
    if results["env"]["name"] not in GOAL_ENVS:
        raise SubmissionError(f"env.name {results['env']['name']!r} is not a goal-reaching wmbench env; known: {', '.join(sorted(GOAL_ENVS))}, phyre")
    check_outcomes(results)
    model = results["model"]
    return {
        "model": model["name"],
        "env": results["env"]["name"],
        "protocol_version": PROTOCOL_VERSION,
        "table": agent_table(model["source"]),
        "success": {key: results["success"][key] for key in ("rate", "successes", "episodes", "ci95")},
        "planning": {"episode_plan_s": results["timing"]["episode_plan_mean_s"], "device": device_label(results["device"])},
        "parameters": model.get("parameters"),
        "checkpoint_sha256": model.get("sha256"),
        "eval_set_sha256": results["protocol"]["eval_set"]["sha256"],
        **run_fields(results),
        "planner": planner_label(results["planner"]),
        "deviations": deviations(results),
    }


# ---------------------------------------------------------------------- PHYRE (wmbench phyre eval)


def check_phyre_outcomes(results: dict[str, Any]) -> None:
    """The AUCCESS block must be what the per-task outcomes give, on the fold's first test tasks in order."""
    from wmbench.envs.phyre.splits import split_tasks
    from wmbench.eval.puzzles import auccess, auccess_interval, env_description

    env = env_description()
    if results["env"] != env:
        raise SubmissionError(f"env is {results['env']}, but this wmbench's PHYRE is {env}; evaluate again with this wmbench's `wmbench phyre eval`")
    protocol, tasks = results["protocol"], results["tasks"]
    fold = f"fold {protocol['fold']} of the {protocol['split']} split (seed {protocol['seed']})"
    _, test = split_tasks(protocol["split"], protocol["fold"], protocol["seed"])
    if protocol["test_tasks"] != len(test):
        raise SubmissionError(f"protocol.test_tasks is {protocol['test_tasks']}, but {fold} has {len(test)} test tasks; the file was edited")
    if not len(tasks) == protocol["tasks"] <= len(test):
        raise SubmissionError(f"tasks: {len(tasks)} outcomes, but protocol.tasks says {protocol['tasks']} of the fold's {len(test)} test tasks; "
                              "the file is incomplete or was edited")
    for index, (outcome, expected) in enumerate(zip(tasks, test)):
        if outcome["task"] != expected:
            raise SubmissionError(
                f"tasks[{index}].task is {outcome['task']!r}, but test task {index + 1} of {fold} is {expected!r}; "
                "the tasks evaluated must be the fold's first test tasks in order"
            )
        solved_at, attempts = outcome["solved_at"], outcome["attempts"]
        if (solved_at is not None and solved_at != attempts) or attempts > protocol["max_attempts"]:
            raise SubmissionError(
                f"tasks[{index}]: solved_at {solved_at} with {attempts} attempts is impossible: a solved task stops at its "
                f"solving attempt, and no task gets more than {protocol['max_attempts']}; the file was edited"
            )
    solved_at = [outcome["solved_at"] for outcome in tasks]
    recomputed = {"value": auccess(solved_at), "ci95": list(auccess_interval(solved_at, seed=protocol["seed"])),
                  "solved_within_100": sum(s is not None for s in solved_at) / len(solved_at)}
    check_recomputed("auccess", results["auccess"], recomputed, f"the {len(tasks)} per-task outcomes")


def phyre_deviations(results: dict[str, Any]) -> dict[str, list]:
    """Setting -> [standard, submitted] off the standard protocol: seed 0, 100 attempts, every test task of the fold,
    and for the world-model agent its standard candidates, probe samples and horizon."""
    protocol, agent = results["protocol"], results["agent"]
    found = differences({**STANDARD_PHYRE_PROTOCOL, "tasks": protocol["test_tasks"]}, protocol)
    if agent["name"] == "world-model":
        standard = {key: getattr(PUZZLES, key) for key in ("candidates", "probe_samples", "horizon_seconds")}
        found |= differences(standard, agent["settings"], prefix="agent.settings.")
    return found


def phyre_entry(results: dict[str, Any]) -> dict[str, Any]:
    """The entry of a checked PHYRE run, as the results give it (``make_entry`` adds the submitter's part)."""
    check_schema(results, "phyre_results")
    check_phyre_outcomes(results)
    agent, protocol, device = results["agent"], results["protocol"], results["device"]
    model = agent["model"] or {"name": agent["name"]}  # random and oracle have no model
    return {
        "model": model["name"],
        "env": "phyre",
        "protocol_version": PROTOCOL_VERSION,
        "table": agent_table(agent["name"]),
        "split": protocol["split"],
        "fold": protocol["fold"],
        "agent": agent["name"],
        "auccess": {key: results["auccess"][key] for key in ("value", "ci95", "solved_within_100")} | {"tasks": protocol["tasks"]},
        "parameters": model.get("parameters"),
        "checkpoint_sha256": model.get("sha256"),
        "device": device_label(device) if device else None,
        **run_fields(results),
        "deviations": phyre_deviations(results),
    }


# ---------------------------------------------------------------------- entries and the board


def agent_table(agent: str) -> str:
    """The table a standard-protocol run goes to: the agents without a model (oracle, random, and PHYRE's
    largest-ball) are the reference bounds."""
    return "reference" if agent in REFERENCE_AGENTS else "standard"


def run_fields(results: dict[str, Any]) -> dict[str, Any]:
    """The fields every entry takes from its results; authors and links are left to the submitter."""
    return {"results_sha256": results_digest(results), "wmbench_version": results["wmbench_version"], "date": results["created"][:10],
            "authors": [], "links": []}


def check_links(links: list[str]) -> None:
    for link in links:
        if not link.startswith(("http://", "https://")):
            raise SubmissionError(f"--url {link!r}: a link must start with http:// or https://")


def make_entry(results: dict[str, Any], *, name: str | None = None, authors: list[str] = (), links: list[str] = (), custom: bool = False) -> dict[str, Any]:
    """Check a results document (goal-reaching or PHYRE) and turn it into a leaderboard entry (raises ``SubmissionError``)."""
    entry = phyre_entry(results) if is_phyre(results) else goal_reaching_entry(results)
    if entry["deviations"] and not custom:
        listed = "; ".join(f"{key}: {standard} -> {given}" for key, (standard, given) in entry["deviations"].items())
        defaults = "`wmbench phyre eval`'s defaults (seed 0, every test task)" if entry["env"] == "phyre" else "`wmbench eval`'s defaults"
        raise SubmissionError(f"not the standard protocol ({listed}); evaluate with {defaults}, or resubmit with --custom "
                              "to list it in the separate custom-protocol table")
    check_links(links)
    return entry | {"model": name or entry["model"], "table": "custom" if entry["deviations"] else entry["table"],
                    "authors": list(authors), "links": list(links)}


def place(entry: dict[str, Any]) -> str:
    """Where an entry stands: ``tworoom``, or ``phyre within fold 0``."""
    return f"{entry['env']} {entry['split']} fold {entry['fold']}" if entry["env"] == "phyre" else entry["env"]


def score(entry: dict[str, Any]) -> float:
    """The figure an entry is ranked by: AUCCESS on PHYRE, the success rate elsewhere."""
    return entry["auccess"]["value"] if entry["env"] == "phyre" else entry["success"]["rate"]


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
            raise SubmissionError(f"these results are on the leaderboard already, as {existing['model']!r} on {place(existing)}")
        same_slot = all(existing.get(key) == entry.get(key) for key in ("model", "env", "split", "fold", "protocol_version", "table", "deviations"))
        if same_slot:
            raise SubmissionError(
                f"model: {entry['model']!r} already has a {entry['table']} entry on {place(entry)} (protocol {entry['protocol_version']}); "
                "submit under another --name, or remove the old entry first"
            )


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock beside the board, held across read-check-write, so concurrent submissions cannot lose one another."""
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def board_order(entry: dict[str, Any]) -> tuple:
    """By env (and PHYRE split and fold), then table, best first, then name."""
    return entry["env"], entry.get("split", ""), entry.get("fold", 0), entry["table"], -score(entry), entry["model"]


def submit(results_path: str | Path, board_path: str | Path, **entry_options) -> dict[str, Any]:
    """Check ``results_path`` and merge it into the board at ``board_path``; returns the new entry."""
    results_path, board_path = Path(results_path), Path(board_path)
    if not board_path.parent.is_dir():
        raise SubmissionError(f"no leaderboard folder {board_path.parent}; run from the wmbench repository or pass --leaderboard PATH")
    try:
        results = json.loads(results_path.read_text())
    except FileNotFoundError:
        raise SubmissionError(f"{results_path}: no such file; pass the results JSON that `wmbench eval` or `wmbench phyre eval` wrote") from None
    except json.JSONDecodeError as error:
        raise SubmissionError(f"{results_path} is not valid JSON ({error}); it is truncated or is not a results file") from None
    entry = make_entry(results, **entry_options)
    with locked(board_path):
        board = load_board(board_path)
        check_duplicate(board, entry)
        board["entries"].append(entry)
        board["entries"].sort(key=board_order)
        write_json(board_path, board)
    return entry
