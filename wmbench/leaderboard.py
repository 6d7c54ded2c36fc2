"""Leaderboard submissions: check a results JSON against its own outcomes and the standard protocol, merge it, and
reproduce it.

Two kinds of results are accepted: goal-reaching MPC runs (``wmbench eval``) and PHYRE puzzle
runs (``wmbench phyre eval``, recognised by ``env.name == "phyre"``). A submission is accepted only
when everything it claims can be recomputed or compared:

- it is strict JSON: no NaN or Infinity anywhere (the refusal names the field);
- it matches its schema (``results`` or ``phyre_results``), and was created no later than now;
- goal-reaching: its success rate, counts and Wilson interval are those of its per-episode
  outcomes, and the outcomes are those of the standard draw of evaluation pairs (seed, episodes),
  with steps inside the budget; its evaluation set is the one shipped for its env (same sha256);
- PHYRE: its AUCCESS, bootstrap interval and solved fraction are those of its per-task outcomes,
  every task solved within its valid attempts and those within the allowed ones, and the tasks
  are the first ones of the fold's test side, in order;
- its protocol (and for MPC the planner settings) is the standard one, or the submitter asked for
  the separate, labelled custom-protocol table (``custom=True``);
- a reference agent (oracle, random, largest-ball, dqn) is described exactly as wmbench's own, keeps
  its agent's name and ran on the CPU; a model never takes a reference agent's name;
- names, authors and the device are plain text, links are http(s) addresses;
- it is not on the board already: the same run (``run_digest``: what defines the run and its
  outcomes, whatever the name, date or order), the same checkpoint or the same model name in the
  same place (env, table, settings, and for PHYRE split and fold), or a second bound of one
  reference agent in one place (unless it replaces the old bound, ``replace_bound=True``).

Every refusal is a ``SubmissionError`` naming the field and the fix. The merge holds a lock on
the board and replaces it with one atomic rename, so an interrupted write leaves the old board.

An accepted entry is self-reported. ``verify`` runs the checkpoint (or reference agent) again on
the entry's protocol on this machine, compares the outcomes episode by episode (task by task on
PHYRE) and records on the entry where, when, and how many agreed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wmbench.eval.results import is_phyre, schema, validate
from wmbench.files import atomic_write
from wmbench.protocol import GOAL_REACHING, PUZZLES, VERSION, standard_planners
from wmbench.stats import wilson_interval

PROTOCOL_VERSION = VERSION
STANDARD_PROTOCOL = {key: getattr(GOAL_REACHING, key) for key in ("budget", "episodes", "seed", "goal_offset")}
STANDARD_EPISODES = (GOAL_REACHING.episodes, GOAL_REACHING.pairs)  # 50 pairs of the evaluation set, or all of them
STANDARD_PHYRE_PROTOCOL = {"seed": PUZZLES.seed, "max_attempts": PUZZLES.max_attempts}  # and every test task of the fold
REFERENCE_AGENTS = ("oracle", "expert", "random", "largest-ball", "dqn")  # expert: Two-Room and Cube; largest-ball and dqn: PHYRE only
CLOCK_SKEW = timedelta(minutes=5)  # how far a submitter's clock may run ahead of this machine's
MAX_TEXT = 100  # characters in a name, an author or a device name
MAX_LINK = 500  # characters in a link
MARKUP = "<>[]|`\\"  # HTML tags, Markdown links and code, table-cell breaks, escapes: never part of a name
HARNESS_PLANNER_FIELDS = ("name", "horizon", "replan_every", "action_block", "action_size", "seed", "device",  # set by the harness, not options
                          "policy", "noise_sd")  # the expert's description
UNPLANNED_FIELDS = ("device", "compile")  # where and how fast a plan was computed, not what was planned
PROBE_FIT = "probe"  # the world-model agent's fitted-probe statistics: measured, not set
DQN_FIT = "training"  # the dqn agent's training figures and weights digest: measured, not set
STANDARD_DQN = {"candidates": PUZZLES.candidates, "samples_per_task": PUZZLES.dqn_samples_per_task, "steps": PUZZLES.dqn_steps}


class SubmissionError(ValueError):
    """A submission refused; the message names the field and how to fix it."""


def empty_board() -> dict[str, Any]:
    return {"$schema": "../wmbench/schemas/leaderboard.schema.json", "format": 1, "protocol_version": PROTOCOL_VERSION, "entries": []}


def canonical_sha256(document: Any) -> str:
    """sha256 of ``document`` in canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()).hexdigest()


def results_digest(results: dict[str, Any]) -> str:
    """sha256 of the whole results document: names the file behind an entry."""
    return canonical_sha256(results)


def run_digest(results: dict[str, Any]) -> str:
    """sha256 of what defines a run and what it gave, and nothing else: the checkpoint (or reference agent), the env and
    evaluation set (PHYRE: split, fold), the protocol, the planner or agent settings, and the outcomes keyed by pair
    (or task). The name, the date, the device, the timings and the order of the outcomes do not change it."""
    if is_phyre(results):
        agent = results["agent"]
        defined = {"kind": "phyre", "agent": agent["name"], "checkpoint": (agent["model"] or {}).get("sha256"),
                   "settings": {key: value for key, value in agent["settings"].items() if key not in (PROBE_FIT, DQN_FIT)},
                   "protocol": results["protocol"],
                   "outcomes": sorted([task["task"], task["solved_at"], task["attempts"]] for task in results["tasks"])}
    else:
        model = results["model"]
        defined = {"kind": "goal-reaching", "agent": model["sha256"] or model["source"], "env": results["env"]["name"],
                   "protocol": results["protocol"],
                   "planner": {key: value for key, value in results["planner"].items() if key not in UNPLANNED_FIELDS},
                   "outcomes": sorted([episode["pair"], episode["steps_to_success"]] for episode in results["episodes"])}
    return canonical_sha256(defined)


# ---------------------------------------------------------------------- strict JSON, dates, plain text


def non_finite_field(document: Any, path: str = "") -> tuple[str, float] | None:
    """The first NaN or infinite number in ``document`` and where: (``timing.wall_s``, nan), (``entries[2].success.rate``, inf)."""
    if isinstance(document, float) and not math.isfinite(document):
        return path or "(top level)", document
    children = document.items() if isinstance(document, dict) else enumerate(document) if isinstance(document, list) else ()
    for key, value in children:
        found = non_finite_field(value, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def check_finite(document: Any, source: str, fix: str) -> None:
    """Refuse NaN and Infinity (and numbers too large for a float): JSON has none, and no score or time can be one."""
    found = non_finite_field(document)
    if found:
        field, value = found
        token = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
        raise SubmissionError(f"{source}: {field} is {token}; strict JSON has no NaN or Infinity and every figure must be finite; {fix}")


def read_json(path: Path, what: str, fix: str) -> Any:
    """The strict JSON document at ``path`` (``what`` says what it should be, ``fix`` how to get a good one)."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise SubmissionError(f"{path}: no such file; pass {what}") from None
    except IsADirectoryError:
        raise SubmissionError(f"{path} is a folder; pass {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SubmissionError(f"{path} is not valid JSON ({error}); {fix}") from None
    check_finite(document, str(path), fix)
    return document


def check_created(created: str) -> str:
    """The UTC day of ``created``; refused when it is not an ISO 8601 time with its zone, or is later than now."""
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise SubmissionError(f"created {created!r} is not an ISO 8601 UTC time like 2026-11-24T02:05:37Z; the file was edited")
    now = datetime.now(timezone.utc)
    if when > now + CLOCK_SKEW:
        raise SubmissionError(f"created {created} is in the future (it is {now:%Y-%m-%dT%H:%M:%SZ} now); "
                              "submit the file the evaluation wrote, on a machine with a correct clock")
    return when.astimezone(timezone.utc).date().isoformat()


def check_plain_text(field: str, text: str) -> None:
    """A name, an author or a device: one line of plain text, at most ``MAX_TEXT`` characters, no markup."""
    if not text.strip() or text != text.strip():
        raise SubmissionError(f"{field} {text!r}: give a non-empty name without leading or trailing spaces")
    if len(text) > MAX_TEXT:
        raise SubmissionError(f"{field} has {len(text)} characters; at most {MAX_TEXT}")
    # Cc: control characters such as newlines; Cf: invisible format characters such as right-to-left overrides
    forbidden = sorted({char for char in text if char in MARKUP or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")})
    if forbidden:
        raise SubmissionError(f"{field} {text!r} contains {''.join(forbidden)!r}: names are plain text, one line, "
                              f"without control characters or any of {MARKUP}")


def is_web_address(link: str) -> bool:
    try:
        parts = urlsplit(link)
    except ValueError:  # e.g. an unclosed [ of an IPv6 host
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def check_links(links: list[str]) -> None:
    for link in links:
        if not is_web_address(link) or len(link) > MAX_LINK or any(
                char.isspace() or char in "<>\"'`" or unicodedata.category(char) == "Cc" for char in link):
            raise SubmissionError(f"--url {link!r}: a link must start with http:// or https://, name a host, and hold no spaces, "
                                  f"quotes or angle brackets (at most {MAX_LINK} characters)")


# ---------------------------------------------------------------------- checks shared by both kinds


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


def check_device(device: dict[str, Any] | None, agent: str, planner_device: str | None = None) -> None:
    """The device block must be one the harness writes: a reference agent runs on the CPU, a CPU has a thread count and
    an accelerator none, the planner ran where the model did, and the name is plain text."""
    if device is None:
        if agent not in REFERENCE_AGENTS:
            raise SubmissionError(f"device is null, but the {agent} agent ran a model on one; the file was edited")
        return
    check_plain_text("device.name", device["name"])
    if agent in REFERENCE_AGENTS and device["type"] != "cpu":
        raise SubmissionError(f"device.type is {device['type']!r}, but the {agent} agent runs on the CPU; the file was edited")
    if (device["type"] == "cpu") != isinstance(device.get("threads"), int):
        raise SubmissionError(f"device.threads is {device.get('threads')}, which a {device['type']} device does not have; the file was edited")
    if planner_device is not None and planner_device.split(":")[0] != device["type"]:
        raise SubmissionError(f"planner.device is {planner_device!r}, but device.type is {device['type']!r}; the file was edited")


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


def check_goal_reaching_agent(results: dict[str, Any]) -> None:
    """A reference agent's model block is exactly the one wmbench's oracle and random write; any agent's device is plausible."""
    model = results["model"]
    if model["source"] in REFERENCE_AGENTS:
        own = {"name": model["source"], "source": model["source"], "sha256": None, "parameters": 0}
        if model != own:
            raise SubmissionError(f"model is {model}, but wmbench's {model['source']} agent is described as {own}; the file was edited")
    check_device(results["device"], model["source"], results["planner"].get("device"))


def deviations(results: dict[str, Any]) -> dict[str, list]:
    """Setting -> [standard, submitted] for every protocol and planner setting off the standard."""
    kind = results["model"]["source"] if results["model"]["source"] in REFERENCE_AGENTS else "model"
    standard_planner = standard_planners(results["env"]["name"])[kind]
    protocol = results["protocol"]
    standard_protocol = STANDARD_PROTOCOL | ({"episodes": protocol["episodes"]} if protocol["episodes"] in STANDARD_EPISODES else {})
    return {**differences(standard_protocol, protocol), **differences(standard_planner, results["planner"], "planner.")}


def planner_label(planner: dict[str, Any]) -> str:
    if planner["name"] == "random":
        return "random actions"
    if planner["name"] == "expert":
        return f"the {planner['policy']} data policy without noise"
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
    check_goal_reaching_agent(results)
    check_outcomes(results)
    model = results["model"]
    return {
        "model": model["name"],
        "env": results["env"]["name"],
        "protocol_version": PROTOCOL_VERSION,
        "table": agent_table(model["source"]),
        "success": {key: results["success"][key] for key in ("rate", "successes", "episodes", "ci95")},
        "planning": {"episode_plan_s": results["timing"]["episode_plan_mean_s"], "device": device_label(results["device"]),
                     "precision": "bf16" if results["planner"].get("autocast") else "float32"},  # bf16 is declared, not a deviation
        "parameters": model.get("parameters"),
        "checkpoint_sha256": model.get("sha256"),
        "eval_set_sha256": results["protocol"]["eval_set"]["sha256"],
        **run_fields(results),
        "planner": planner_label(results["planner"]),
        "deviations": deviations(results),
    }


# ---------------------------------------------------------------------- PHYRE (wmbench phyre eval)


def check_phyre_outcomes(results: dict[str, Any]) -> None:
    """The AUCCESS block must be what the per-task outcomes give, on the fold's first test tasks in order (on several
    folds: each fold's first test tasks, fold after fold, with the mean over folds and its spread)."""
    from wmbench.envs.phyre.splits import split_tasks
    from wmbench.eval.puzzles import auccess_figures, env_description, fold_auccess, fold_text

    env = env_description()
    if results["env"] != env:
        raise SubmissionError(f"env is {results['env']}, but this wmbench's PHYRE is {env}; evaluate again with this wmbench's `wmbench phyre eval`")
    protocol, tasks = results["protocol"], results["tasks"]
    folds = protocol.get("folds")
    if (folds is None) == (protocol["fold"] is None):
        raise SubmissionError(f"protocol gives fold {protocol['fold']} and folds {folds}: one fold, or several with fold null; the file was edited")
    if folds:
        per_fold = protocol["tasks"] // len(folds)
        if per_fold * len(folds) != protocol["tasks"] or any(outcome.get("fold") is None for outcome in tasks):
            raise SubmissionError(f"protocol.tasks is {protocol['tasks']} over {len(folds)} folds, or a task names no fold; the file was edited")
        fold = f"folds {fold_text(folds)} of the {protocol['split']} split (seed {protocol['seed']})"
        tests = [split_tasks(protocol["split"], f, protocol["seed"])[1] for f in folds]
        test = [tid for fold_test in tests for tid in fold_test]
        expected_tasks = [tid for fold_test in tests for tid in fold_test[:per_fold]]
        expected_folds = [f for f, fold_test in zip(folds, tests) for _ in fold_test[:per_fold]]
    else:
        fold = f"fold {protocol['fold']} of the {protocol['split']} split (seed {protocol['seed']})"
        _, test = split_tasks(protocol["split"], protocol["fold"], protocol["seed"])
        expected_tasks, expected_folds = test, [None] * len(test)
    if protocol["test_tasks"] != len(test):
        raise SubmissionError(f"protocol.test_tasks is {protocol['test_tasks']}, but {fold} has {len(test)} test tasks; the file was edited")
    if not len(tasks) == protocol["tasks"] <= len(test):
        raise SubmissionError(f"tasks: {len(tasks)} outcomes, but protocol.tasks says {protocol['tasks']} of the fold's {len(test)} test tasks; "
                              "the file is incomplete or was edited")
    for index, (outcome, expected, expected_fold) in enumerate(zip(tasks, expected_tasks, expected_folds)):
        if outcome.get("fold") != expected_fold:
            raise SubmissionError(f"tasks[{index}].fold is {outcome.get('fold')}, but {outcome['task']} is a test task of fold {expected_fold}; "
                                  "the file was edited")
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
    if folds:
        recomputed = {key: value for key, value in fold_auccess(tasks, folds, protocol["seed"]).items() if key != "interval"}
        per_fold = recomputed.pop("per_fold")
        if len(results["auccess"].get("per_fold", [])) != len(per_fold):
            raise SubmissionError(f"auccess.per_fold lists {len(results['auccess'].get('per_fold', []))} folds, not {len(per_fold)}; the file was edited")
        for index, (claimed, expected) in enumerate(zip(results["auccess"]["per_fold"], per_fold)):
            check_recomputed(f"auccess.per_fold[{index}]", claimed, expected, f"fold {expected['fold']}'s per-task outcomes")
    else:
        recomputed = auccess_figures([outcome["solved_at"] for outcome in tasks], protocol["seed"])
    check_recomputed("auccess", results["auccess"], recomputed, f"the {len(tasks)} per-task outcomes")


def check_phyre_agent(results: dict[str, Any]) -> None:
    """A reference agent has no model, settings or device, as wmbench's own (dqn: no model, its settings, the CPU); a world
    model names its checkpoint."""
    agent = results["agent"]
    if agent["name"] == "dqn":
        if agent["model"] is not None or results["device"] is None or set(agent["settings"]) != {*STANDARD_DQN, DQN_FIT}:
            raise SubmissionError(f"agent is {agent} on device {results['device']}, but wmbench's dqn agent has no model, the settings "
                                  f"{', '.join([*STANDARD_DQN, DQN_FIT])} and a CPU device; the file was edited")
    elif agent["name"] in REFERENCE_AGENTS and (agent["model"] is not None or agent["settings"] != {} or results["device"] is not None):
        raise SubmissionError(f"agent is {agent} on device {results['device']}, but wmbench's {agent['name']} agent has no model, "
                              "settings or device; the file was edited")
    if agent["name"] not in REFERENCE_AGENTS and agent["model"] is None:
        raise SubmissionError(f"agent.model is null, but the {agent['name']} agent ranks with a checkpoint; the file was edited")
    check_device(results["device"], agent["name"])


def phyre_deviations(results: dict[str, Any]) -> dict[str, list]:
    """Setting -> [standard, submitted] off the standard protocol: seed 0, 100 attempts, every test task of the fold,
    and for the world-model agent its standard candidates, probe samples and horizon."""
    protocol, agent = results["protocol"], results["agent"]
    found = differences({**STANDARD_PHYRE_PROTOCOL, "tasks": protocol["test_tasks"]}, protocol)
    if agent["name"] == "world-model":
        standard = {key: getattr(PUZZLES, key) for key in ("candidates", "probe_samples", "horizon_seconds")}
        found |= differences(standard, agent["settings"], prefix="agent.settings.")
    if agent["name"] == "dqn":
        found |= differences(STANDARD_DQN, agent["settings"], prefix="agent.settings.")
    return found


def phyre_entry(results: dict[str, Any]) -> dict[str, Any]:
    """The entry of a checked PHYRE run, as the results give it (``make_entry`` adds the submitter's part)."""
    check_schema(results, "phyre_results")
    check_phyre_agent(results)
    check_phyre_outcomes(results)
    agent, protocol, device = results["agent"], results["protocol"], results["device"]
    model = agent["model"] or {"name": agent["name"]}  # random, oracle, largest-ball and dqn have no checkpoint
    return {
        "model": model["name"],
        "env": "phyre",
        "protocol_version": PROTOCOL_VERSION,
        "table": agent_table(agent["name"]),
        "split": protocol["split"],
        "fold": protocol["fold"],
        **({"folds": protocol["folds"]} if "folds" in protocol else {}),  # several folds: the mean over them, a place of its own
        "agent": agent["name"],
        "auccess": {key: results["auccess"][key] for key in ("value", "ci95", "solved_within_100", "spread") if key in results["auccess"]}
                   | {"tasks": protocol["tasks"]},
        "parameters": model.get("parameters"),
        "checkpoint_sha256": model.get("sha256"),
        "device": device_label(device) if device else None,
        **run_fields(results),
        "deviations": phyre_deviations(results),
    }


# ---------------------------------------------------------------------- entries and the board


def agent_table(agent: str) -> str:
    """The table a standard-protocol run goes to: the agents without a checkpoint (oracle, random, and PHYRE's
    largest-ball and dqn) are the reference bounds."""
    return "reference" if agent in REFERENCE_AGENTS else "standard"


def run_fields(results: dict[str, Any]) -> dict[str, Any]:
    """The fields every entry takes from its results; authors and links are left to the submitter, and every
    entry starts self-reported (``verify`` records a reproduction)."""
    return {"results_sha256": results_digest(results), "run_sha256": run_digest(results), "wmbench_version": results["wmbench_version"],
            "date": check_created(results["created"]), "authors": [], "links": [], "reproduction": {"status": "self-reported"}}


def check_name(entry: dict[str, Any], name: str | None) -> str:
    """The name the entry is listed under: a reference agent's own, or ``name`` (default: the checkpoint's), plain text."""
    agent = entry.get("agent", entry["model"]) if entry["table"] == "reference" else None  # the agent's table, before --custom
    if agent is not None:
        if name not in (None, agent):
            raise SubmissionError(f"--name {name!r}: a reference bound is listed under its agent's name ({agent}); leave --name out")
        return agent
    chosen = name if name is not None else entry["model"]
    check_plain_text("--name" if name is not None else "model.name", chosen)
    if chosen.casefold() in REFERENCE_AGENTS:
        raise SubmissionError(f"--name {chosen!r}: {', '.join(REFERENCE_AGENTS)} are the reference agents' names; choose your model's own")
    return chosen


def make_entry(results: dict[str, Any], *, name: str | None = None, authors: list[str] = (), links: list[str] = (), custom: bool = False) -> dict[str, Any]:
    """Check a results document (goal-reaching or PHYRE) and turn it into a leaderboard entry (raises ``SubmissionError``)."""
    check_finite(results, "results", "evaluate again: the run produced a non-finite number, or the file was edited")
    entry = phyre_entry(results) if is_phyre(results) else goal_reaching_entry(results)
    if entry["deviations"] and not custom:
        listed = "; ".join(f"{key}: {standard} -> {given}" for key, (standard, given) in entry["deviations"].items())
        defaults = "`wmbench phyre eval`'s defaults (seed 0, every test task)" if entry["env"] == "phyre" else "`wmbench eval`'s defaults"
        raise SubmissionError(f"not the standard protocol ({listed}); evaluate with {defaults}, or resubmit with --custom "
                              "to list it in the separate custom-protocol table")
    for author in authors:
        check_plain_text("--authors", author)
    check_links(links)
    return entry | {"model": check_name(entry, name), "table": "custom" if entry["deviations"] else entry["table"],
                    "authors": list(authors), "links": list(links)}


def place(entry: dict[str, Any]) -> str:
    """Where an entry stands: ``tworoom``, or ``phyre within fold 0``."""
    if entry["env"] != "phyre":
        return entry["env"]
    if folds := entry.get("folds"):
        from wmbench.eval.puzzles import fold_text

        return f"phyre {entry['split']} folds {fold_text(folds)}"
    return f"phyre {entry['split']} fold {entry['fold']}"


def score(entry: dict[str, Any]) -> float:
    """The figure an entry is ranked by: AUCCESS on PHYRE, the success rate elsewhere."""
    return entry["auccess"]["value"] if entry["env"] == "phyre" else entry["success"]["rate"]


def load_board(path: Path) -> dict[str, Any]:
    """The board at ``path`` (an empty one when the file does not exist yet), strict JSON checked against its schema."""
    if not path.exists():
        return empty_board()
    board = read_json(path, "the leaderboard JSON", f"restore it with `git checkout {path}`")
    try:
        import jsonschema

        jsonschema.validate(board, schema("leaderboard"))
    except jsonschema.ValidationError as error:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise SubmissionError(f"{path} does not match the leaderboard schema at {where}: {error.message}") from None
    return board


def write_board(path: Path, board: dict[str, Any]) -> None:
    """The board as strict JSON (a NaN raises rather than being written), replacing the old one atomically."""
    text = json.dumps(board, indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def same_place(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Both in one table of one place, under one protocol version and the same deviations."""
    return all(a.get(key) == b.get(key) for key in ("env", "split", "fold", "folds", "protocol_version", "table", "deviations"))


def same_bound(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Both the bound of one reference agent in one place."""
    return a["table"] == b["table"] == "reference" and a["model"] == b["model"] and same_place(a, b)


def check_duplicate(board: dict[str, Any], entry: dict[str, Any]) -> None:
    for existing in board["entries"]:
        if existing["run_sha256"] == entry["run_sha256"]:
            raise SubmissionError(f"this run is on the leaderboard already, as {existing['model']!r} on {place(existing)} "
                                  "(the same checkpoint, settings and outcomes, whatever the name, date or order)")
        if not same_place(existing, entry):
            continue
        if same_bound(existing, entry):
            raise SubmissionError(f"the {entry['model']} bound of {place(entry)} is on the leaderboard already (run {existing['date']}); "
                                  "a place has one bound per reference agent: to measure it again, submit with --replace-bound")
        if entry["checkpoint_sha256"] is not None and existing["checkpoint_sha256"] == entry["checkpoint_sha256"]:
            raise SubmissionError(f"checkpoint_sha256: this checkpoint already has a {entry['table']} entry on {place(entry)}, as "
                                  f"{existing['model']!r}; a checkpoint is listed once per place and settings")
        if existing["model"] == entry["model"]:
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
    folds = entry.get("folds") or [entry.get("fold", 0)]
    return entry["env"], entry.get("split", ""), len(folds), folds, entry["table"], -score(entry), entry["model"]


def read_results(results_path: Path) -> dict[str, Any]:
    return read_json(results_path, "the results JSON that `wmbench eval` or `wmbench phyre eval` wrote",
                     "it is truncated or is not a results file")


def submit(results_path: str | Path, board_path: str | Path, *, replace_bound: bool = False, **entry_options) -> dict[str, Any]:
    """Check ``results_path`` and merge it into the board at ``board_path``; returns the new entry.

    ``replace_bound``: the results are a reference bound measured again, and take the place of the old one.
    """
    results_path, board_path = Path(results_path), Path(board_path)
    if not board_path.parent.is_dir():
        raise SubmissionError(f"no leaderboard folder {board_path.parent}; run from the wmbench repository or pass --leaderboard PATH")
    entry = make_entry(read_results(results_path), **entry_options)
    if replace_bound and entry["table"] != "reference":
        raise SubmissionError(f"--replace-bound: these results go to the {entry['table']} table; only a reference bound replaces one")
    with locked(board_path):
        board = load_board(board_path)
        if replace_bound:
            board["entries"] = [existing for existing in board["entries"] if not same_bound(existing, entry)]
        check_duplicate(board, entry)
        board["entries"].append(entry)
        board["entries"].sort(key=board_order)
        write_board(board_path, board)
    return entry


# ---------------------------------------------------------------------- reproduction (wmbench verify)

# Measured (leaderboard/README.md): the shipped entries run again on the same CPU agreed on all 400 episodes and
# 1,200 PHYRE tasks, and the LeWM on Push-T flipped none of 50 with one thread instead of two or with every latent
# one float32 step off; so the same kind of device must agree on every outcome.
SAME_DEVICE_AGREEMENT = 1.0
# With every latent off by TF32's rounding (GPUs' default for convolutions) the LeWM flipped 5 of 50 Push-T episodes,
# a rate whose 95% Wilson bound is 21%: another kind of device must agree on at least 80%.
OTHER_DEVICE_AGREEMENT = 0.8


def outcomes(results: dict[str, Any]) -> dict[Any, Any]:
    """Each episode's outcome keyed by its pair (success), or each PHYRE task's (the valid attempt that solved it)."""
    if is_phyre(results):
        return {task["task"]: task["solved_at"] for task in results["tasks"]}
    return {episode["pair"]: episode["success"] for episode in results["episodes"]}


def device_kind(results: dict[str, Any]) -> str:
    """``cpu``, ``cuda`` or ``mps``; PHYRE's reference agents compute on the CPU without a device block."""
    return (results["device"] or {"type": "cpu"})["type"]


def required_agreement(claimed: dict[str, Any], reproduced: dict[str, Any]) -> float:
    return SAME_DEVICE_AGREEMENT if device_kind(claimed) == device_kind(reproduced) else OTHER_DEVICE_AGREEMENT


def checkpoint_of(results: dict[str, Any]) -> dict[str, Any] | None:
    """The model block of the checkpoint the results name; None for a reference agent."""
    return results["agent"]["model"] if is_phyre(results) else None if results["model"]["source"] in REFERENCE_AGENTS else results["model"]


def check_model_file(results: dict[str, Any], model: str | Path | None) -> None:
    """The checkpoint given to reproduce the results must be the very file they were measured with."""
    checkpoint = checkpoint_of(results)
    if checkpoint is None:
        if model is not None:
            raise SubmissionError("--model: these results are a reference agent's, which needs no checkpoint; leave --model out")
        return
    if checkpoint["source"] != "export":
        raise SubmissionError(f"model.source is {checkpoint['source']!r}: only self-contained checkpoints are reproduced (no author code "
                              "runs here); export it with `wmbench export`, evaluate and submit that")
    if model is None:
        raise SubmissionError(f"--model: pass the checkpoint these results were measured with (sha256 {checkpoint['sha256']})")
    try:
        digest = hashlib.sha256(Path(model).read_bytes()).hexdigest()
    except OSError as error:
        raise SubmissionError(f"--model {model}: {error.strerror}") from None
    if digest != checkpoint["sha256"]:
        raise SubmissionError(f"--model {model} has sha256 {digest}, but the results were measured with {checkpoint['sha256']}; "
                              "pass that checkpoint")


def rerun(results: dict[str, Any], model: str | Path | None, device: str, progress: bool) -> dict[str, Any]:
    """The results of running the same agent with the same protocol and settings again, here, on ``device``."""
    if is_phyre(results):
        from wmbench.eval.puzzles import evaluate_agent, evaluate_folds

        agent, protocol = results["agent"], results["protocol"]

        def evaluate_again(name: str, **options):
            if protocol.get("folds"):
                return evaluate_folds(name, protocol["split"], protocol["folds"], protocol["seed"],
                                      tasks=protocol["tasks"] // len(protocol["folds"]), progress=progress, **options)
            return evaluate_agent(name, protocol["split"], protocol["fold"], protocol["seed"], tasks=protocol["tasks"], progress=progress,
                                  **options)

        if agent["name"] == "dqn":  # trained again here from its seed, not loaded from a cache
            return evaluate_again("dqn", dqn_options={key: agent["settings"][key] for key in STANDARD_DQN} | {"cache_dir": None})
        options = {key: agent["settings"][key] for key in ("candidates", "probe_samples", "horizon") if key in agent["settings"]}
        return evaluate_again(agent["name"], model=None if model is None else str(model), device=device, **options)
    from wmbench.eval.goal_reaching import EvalSettings, evaluate

    protocol, planner = results["protocol"], results["planner"]
    settings = EvalSettings(episodes=protocol["episodes"], budget=protocol["budget"], seed=protocol["seed"], planner=planner["name"],
                            horizon=planner["horizon"], replan_every=planner["replan_every"], device=device,
                            planner_options={key: value for key, value in planner.items() if key not in HARNESS_PLANNER_FIELDS})
    reproduced, _ = evaluate(str(model) if model is not None else results["model"]["source"], results["env"]["name"], settings,
                             progress=progress)
    return reproduced


def reproduction_record(claimed: dict[str, Any], reproduced: dict[str, Any]) -> tuple[dict[str, Any], list]:
    """The entry's ``reproduction`` block and the pairs (or tasks) whose outcome differs."""
    from wmbench.devices import device_info, resolve_device

    before, after = outcomes(claimed), outcomes(reproduced)
    differing = sorted(key for key in before if key not in after or after[key] != before[key])
    agreement = 1 - len(differing) / len(before)
    device = reproduced["device"] or device_info(resolve_device("cpu"))
    status = "reproduced" if agreement >= required_agreement(claimed, reproduced) else "not-reproduced"
    return {"status": status, "device": device_label(device), "date": datetime.now(timezone.utc).date().isoformat(),
            "agreement": agreement, "episodes": len(before)}, differing


def verify(results_path: str | Path, board_path: str | Path, *, model: str | Path | None = None, device: str = "auto",
           progress: bool = True) -> tuple[dict[str, Any], list]:
    """Run the entry of ``results_path`` again here and record on the board whether its outcomes reproduce.

    Returns the updated entry and the pairs (PHYRE: tasks) whose outcome differs. The entry must be on the board
    already; ``model`` is the checkpoint the results name (its sha256 must match), None for a reference agent.
    """
    results_path, board_path = Path(results_path), Path(board_path)
    results = read_results(results_path)
    make_entry(results, custom=True)  # the same checks as at submission, before minutes of running
    digest = run_digest(results)
    if not any(entry["run_sha256"] == digest for entry in load_board(board_path)["entries"]):
        raise SubmissionError(f"{results_path} is not on {board_path}; submit it first with `wmbench submit`")
    check_model_file(results, model)
    record, differing = reproduction_record(results, rerun(results, model, device, progress))
    with locked(board_path):
        board = load_board(board_path)
        entry = next(entry for entry in board["entries"] if entry["run_sha256"] == digest)
        entry["reproduction"] = record
        write_board(board_path, board)
    return entry, differing
