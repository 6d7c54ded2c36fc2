"""Leaderboard submissions: what is accepted, every way a submission is refused, the atomic merge, and reproduction by
`wmbench verify`; goal-reaching and PHYRE results."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from wmbench.cli import main
from wmbench.eval.goal_reaching import EvalSettings, evaluate
from wmbench.eval.puzzles import evaluate_agent, results_document
from wmbench.leaderboard import SubmissionError, load_board, make_entry, submit, verify
from wmbench.eval.results import schema, validate
from wmbench.protocol import standard_planners
from wmbench.stats import wilson_interval

LEADERBOARD = Path(__file__).parents[1] / "leaderboard"


@pytest.fixture(scope="module")
def random_results() -> dict:
    """A real standard-protocol run (random actions on Two-Room: no model, a few seconds)."""
    results, _ = evaluate("random", "tworoom", EvalSettings(device="cpu"), progress=False)
    return results


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny self-contained world model for Two-Room."""
    from wmbench.checkpoint import export
    from wmbench.testing import TinyWorldModel

    return export(TinyWorldModel(image_size=32, action_dim=2), tmp_path_factory.mktemp("model") / "tiny.wmb")


@pytest.fixture(scope="module")
def model_results(tiny_checkpoint) -> dict:
    """A real standard-protocol run of a tiny world model (CEM 300 x 30, 50 episodes)."""
    results, _ = evaluate(str(tiny_checkpoint), "tworoom", EvalSettings(device="cpu"), progress=False)
    return results


@pytest.fixture(scope="module")
def phyre_results() -> dict:
    """A real PHYRE run on the first 3 test tasks of within fold 0 (random placements: a fraction of a second)."""
    return evaluate_agent("random", "within", 0, tasks=3, progress=False)


@pytest.fixture(scope="module")
def phyre_reference() -> dict:
    """The committed standard-protocol random run on within fold 0: all its test tasks."""
    return json.loads((LEADERBOARD / "results" / "random-phyre-within-fold0.json").read_text())


def write(tmp_path: Path, results: dict, name: str = "results.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(results))
    return path


def refused(results: dict, match: str, **options) -> None:
    with pytest.raises(SubmissionError, match=match):
        make_entry(results, **options)


def one_more_success(results: dict) -> dict:
    """The results with their first failed episode turned into a success at step 10, and the summary made to match:
    a file that is consistent in itself, but not what the run gave."""
    edited = copy.deepcopy(results)
    next(e for e in edited["episodes"] if not e["success"]).update(success=True, steps_to_success=10)
    successes, episodes = sum(e["success"] for e in edited["episodes"]), len(edited["episodes"])
    edited["success"].update(successes=successes, rate=successes / episodes, ci95=list(wilson_interval(successes, episodes)))
    return edited


def created_moved(results: dict, seconds: float) -> dict:
    moved = copy.deepcopy(results)
    when = datetime.strptime(results["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) + timedelta(seconds=seconds)
    moved["created"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moved


def test_a_standard_run_is_accepted_with_its_figures(tmp_path, model_results, random_results):
    board = tmp_path / "leaderboard.json"
    entry = submit(write(tmp_path, model_results), board, name="tiny", authors=["A. Author"], links=["https://example.org/tiny"])
    assert entry["table"] == "standard" and entry["deviations"] == {} and entry["model"] == "tiny"
    assert entry["success"] == {key: model_results["success"][key] for key in ("rate", "successes", "episodes", "ci95")}
    assert entry["checkpoint_sha256"] == model_results["model"]["sha256"]
    assert entry["eval_set_sha256"] == model_results["protocol"]["eval_set"]["sha256"]
    assert entry["planning"]["episode_plan_s"] == model_results["timing"]["episode_plan_mean_s"]
    assert entry["planner"].startswith("cem 300x30")

    reference = submit(write(tmp_path, random_results, "random.json"), board)
    assert reference["table"] == "reference" and reference["model"] == "random"
    stored = load_board(board)
    jsonschema.validate(stored, schema("leaderboard"))
    assert [e["model"] for e in stored["entries"]] == ["random", "tiny"]  # sorted by env, table, success


def test_the_cli_submits_and_names_the_refused_field(tmp_path, random_results, capsys):
    board = tmp_path / "leaderboard.json"
    path = write(tmp_path, random_results)
    assert main(["submit", str(path), "--leaderboard", str(board), "--authors", "A, B"]) == 0
    assert load_board(board)["entries"][0]["authors"] == ["A", "B"]
    assert main(["submit", str(path), "--leaderboard", str(board)]) == 2
    assert "already" in capsys.readouterr().err
    assert main(["submit", str(tmp_path / "missing.json"), "--leaderboard", str(board)]) == 2
    assert "no such file" in capsys.readouterr().err
    path.write_text(path.read_text()[:200])
    assert main(["submit", str(path), "--leaderboard", str(board)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_a_document_off_the_schema_is_refused(random_results):
    broken = copy.deepcopy(random_results)
    del broken["timing"]
    refused(broken, "schema at \\(top level\\): 'timing' is a required property")
    broken = copy.deepcopy(random_results)
    broken["success"]["rate"] = "high"
    refused(broken, "schema at success/rate")


def test_an_altered_outcome_list_is_refused(random_results):
    flipped = copy.deepcopy(random_results)
    failure = next(e for e in flipped["episodes"] if not e["success"])
    failure.update(success=True, steps_to_success=10)
    refused(flipped, "success.successes is .* but the 50 per-episode outcomes give")

    # raising the summary along with the outcome: the interval no longer matches
    flipped["success"].update(successes=flipped["success"]["successes"] + 1, rate=(flipped["success"]["successes"] + 1) / 50)
    refused(flipped, "success.ci95")

    swapped = copy.deepcopy(random_results)
    swapped["episodes"][0]["pair"] = max(e["pair"] for e in swapped["episodes"]) + 1
    refused(swapped, "episodes\\[\\*\\].pair")

    dropped = copy.deepcopy(random_results)
    dropped["episodes"].pop()
    refused(dropped, "episodes: 49 outcomes")

    late = copy.deepcopy(random_results)
    late["episodes"][0].update(success=True, steps_to_success=51)
    refused(late, "episodes\\[0\\]")


def test_a_different_evaluation_set_is_refused(random_results):
    other = copy.deepcopy(random_results)
    other["protocol"]["eval_set"]["sha256"] = "0" * 64
    refused(other, "protocol.eval_set.sha256")
    refused(other, "protocol.eval_set.sha256", custom=True)  # not even into the custom table


def test_a_non_standard_protocol_goes_only_into_the_labelled_custom_table(model_results, random_results):
    longer = copy.deepcopy(random_results)
    longer["protocol"]["budget"] = 100
    refused(longer, "not the standard protocol \\(budget: 50 -> 100\\).*--custom")
    entry = make_entry(longer, custom=True)
    assert entry["table"] == "custom" and entry["deviations"] == {"budget": [50, 100]}

    fewer_samples = copy.deepcopy(model_results)
    fewer_samples["planner"]["samples"] = 100
    refused(fewer_samples, "planner.samples: 300 -> 100")


def test_all_200_pairs_are_standard_and_every_row_and_bound_says_how_many(tmp_path):
    from wmbench.leaderboard_page import render_markdown

    board = tmp_path / "leaderboard.json"
    every_pair, _ = evaluate("random", "tworoom", EvalSettings(episodes=200, device="cpu"), progress=False)
    assert sorted(episode["pair"] for episode in every_pair["episodes"]) == list(range(200))
    entry = submit(write(tmp_path, every_pair), board)
    assert entry["table"] == "reference" and entry["deviations"] == {} and entry["success"]["episodes"] == 200
    assert "random actions, 200 of 200 pairs" in render_markdown(load_board(board))

    some, _ = evaluate("random", "tworoom", EvalSettings(episodes=100, device="cpu"), progress=False)
    refused(some, "not the standard protocol \\(episodes: 50 -> 100\\)")  # 50 or all 200: nothing between


def test_the_expert_is_a_bound_that_says_how_it_planned(tmp_path, random_results, model_results):
    from wmbench.leaderboard_page import render_markdown

    board = tmp_path / "leaderboard.json"
    expert, _ = evaluate("expert", "tworoom", EvalSettings(device="cpu"), progress=False)
    assert make_entry(expert)["table"] == "reference"
    submit(write(tmp_path, expert, "expert.json"), board)
    submit(write(tmp_path, random_results, "random.json"), board)
    bounds = next(line for line in render_markdown(load_board(board)).splitlines() if line.startswith("Bounds:"))
    assert bounds.startswith(f"Bounds: expert {100 * expert['success']['rate']:.1f}%")
    assert "the expert data policy without noise, 50 of 200 pairs; random" in bounds
    refused(model_results, "--name 'Expert': oracle, expert, random, largest-ball, dqn are the reference agents' names", name="Expert")


def test_duplicates_are_refused(tmp_path, random_results, model_results):
    board = tmp_path / "leaderboard.json"
    submit(write(tmp_path, random_results), board)
    with pytest.raises(SubmissionError, match="on the leaderboard already"):
        submit(write(tmp_path, random_results, "again.json"), board)
    with pytest.raises(SubmissionError, match="this run is on the leaderboard already, as 'random' on tworoom"):
        submit(write(tmp_path, created_moved(random_results, -86400), "yesterday.json"), board)

    submit(write(tmp_path, model_results, "tiny.json"), board, name="tiny")
    other = one_more_success(model_results)  # another run of the same checkpoint, same settings
    with pytest.raises(SubmissionError, match="checkpoint_sha256: this checkpoint already has a standard entry on tworoom, as 'tiny'"):
        submit(write(tmp_path, other, "other.json"), board, name="tiny 2")
    other["model"]["sha256"] = "c" * 64  # another model under the same name
    with pytest.raises(SubmissionError, match="model: 'tiny' already has a standard entry on tworoom"):
        submit(write(tmp_path, other, "other.json"), board, name="tiny")
    assert len(load_board(board)["entries"]) == 2


def test_the_same_run_is_refused_whatever_its_name_date_or_order(tmp_path, model_results, capsys):
    board = tmp_path / "leaderboard.json"
    submit(write(tmp_path, model_results), board, name="tiny")
    before = board.read_bytes()
    reordered = copy.deepcopy(model_results)
    reordered["episodes"].reverse()
    retimed = copy.deepcopy(model_results)
    retimed["timing"]["episode_plan_mean_s"] /= 10  # a faster-looking copy
    for name, copied in (("tiny v2", model_results), ("tiny", created_moved(model_results, 1)), ("tiny", created_moved(model_results, -1)),
                         ("other", reordered), ("faster", retimed)):
        with pytest.raises(SubmissionError, match="this run is on the leaderboard already, as 'tiny' on tworoom"):
            submit(write(tmp_path, copied, "copy.json"), board, name=name)
    assert main(["submit", str(write(tmp_path, reordered, "copy.json")), "--leaderboard", str(board), "--name", "Tiny (copy)"]) == 2
    assert capsys.readouterr().err.startswith("error: this run is on the leaderboard already")
    assert board.read_bytes() == before


def test_non_finite_numbers_are_refused_naming_the_field(tmp_path, random_results, capsys):
    board = tmp_path / "leaderboard.json"
    submit(write(tmp_path, random_results), board)
    before = board.read_bytes()
    cases = {
        "timing.episode_plan_mean_s is NaN": lambda r: r["timing"].update(episode_plan_mean_s=float("nan")),
        "timing.episode_plan_mean_s is Infinity": lambda r: r["timing"].update(episode_plan_mean_s=float("inf")),
        "success.ci95\\[1\\] is -Infinity": lambda r: r["success"]["ci95"].__setitem__(1, float("-inf")),
        "timing.planning_call_s\\[0\\] is NaN": lambda r: r["timing"]["planning_call_s"].__setitem__(0, float("nan")),
    }
    for message, change in cases.items():
        edited = copy.deepcopy(random_results)
        change(edited)
        path = tmp_path / "edited.json"
        path.write_text(json.dumps(edited))  # Python writes NaN and Infinity, as a careless evaluation script would
        assert main(["submit", str(path), "--leaderboard", str(board), "--custom"]) == 2
        assert re.search(f"edited.json: {message}; strict JSON has no NaN or Infinity", capsys.readouterr().err)
        refused(edited, message, custom=True)  # a document handed over in memory too
    path.write_text(json.dumps(random_results).replace('"wall_s": ', '"wall_s": 1e999, "was": '))  # too large for a float
    with pytest.raises(SubmissionError, match="timing.wall_s is Infinity"):
        submit(path, board)
    assert board.read_bytes() == before

    # a board that holds a NaN (edited by hand) is refused where it is read, naming the entry, and never rendered
    poisoned = json.loads(before)
    poisoned["entries"][0]["planning"]["episode_plan_s"] = float("nan")
    board.write_text(json.dumps(poisoned))
    with pytest.raises(SubmissionError, match="entries\\[0\\].planning.episode_plan_s is NaN"):
        load_board(board)
    assert main(["leaderboard", "--leaderboard", str(board)]) == 2
    assert "entries[0].planning.episode_plan_s is NaN" in capsys.readouterr().err and not (tmp_path / "index.html").exists()


def test_a_date_in_the_future_is_refused(tmp_path, random_results):
    now = datetime.now(timezone.utc)
    ahead = copy.deepcopy(random_results)
    ahead["created"] = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    refused(ahead, "created .* is in the future")
    ahead["created"] = (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # within the clock skew allowed
    assert make_entry(ahead)["date"] == ahead["created"][:10]
    for created in ("next week", "2026-11-24T02:05:37"):  # no zone: not UTC
        ahead["created"] = created
        refused(ahead, "is not an ISO 8601 UTC time")


def test_bounds_come_only_from_the_suites_own_reference_agents(tmp_path, random_results, model_results):
    board = tmp_path / "leaderboard.json"
    # the oracle's model and planner blocks on the random run's outcomes: a bound as wmbench's oracle describes itself
    as_oracle = {"model": {"name": "oracle", "source": "oracle", "sha256": None, "parameters": 0},
                 "planner": {**standard_planners("tworoom")["oracle"], "action_block": 5, "device": "cpu"}}
    oracle = random_results | as_oracle
    submit(write(tmp_path, oracle, "oracle.json"), board)
    before = board.read_bytes()
    with pytest.raises(SubmissionError, match="the oracle bound of tworoom is on the leaderboard already"):
        submit(write(tmp_path, one_more_success(random_results) | as_oracle, "second.json"), board)
    with pytest.raises(SubmissionError, match="a reference bound is listed under its agent's name \\(oracle\\)"):
        submit(write(tmp_path, oracle, "renamed.json"), board, name="oracle (better)")
    with pytest.raises(SubmissionError, match="--replace-bound: these results go to the standard table"):
        submit(write(tmp_path, model_results, "model.json"), board, replace_bound=True)
    assert board.read_bytes() == before
    measured_again = submit(write(tmp_path, one_more_success(random_results) | as_oracle, "second.json"), board, replace_bound=True)
    assert [e["run_sha256"] for e in load_board(board)["entries"]] == [measured_again["run_sha256"]]

    claimed = copy.deepcopy(model_results)  # a model's run passed off as the oracle's
    claimed["model"]["source"] = "oracle"
    refused(claimed, "but wmbench's oracle agent is described as")
    on_gpu = copy.deepcopy(random_results)
    on_gpu["device"] = {"type": "cuda", "name": "NVIDIA H100", "torch": "2.5.1", "threads": None}
    refused(on_gpu, "device.type is 'cuda', but the random agent runs on the CPU")
    refused(model_results, "'Oracle': oracle, expert, random, largest-ball, dqn are the reference agents' names", name="Oracle")
    phyre = json.loads((LEADERBOARD / "results" / "largest-ball-phyre-within-fold0.json").read_text())
    phyre["agent"]["settings"] = {"candidates": 10}
    refused(phyre, "wmbench's largest-ball agent has no model, settings or device")


def test_a_faked_device_is_refused_where_it_contradicts_itself(model_results):
    cases = {
        "planner.device is 'cpu', but device.type is 'cuda'": {"type": "cuda", "name": "NVIDIA H100", "torch": "2.5.1", "threads": None},
        "device.threads is None, which a cpu device does not have": {"type": "cpu", "name": "AMD EPYC", "torch": "2.5.1", "threads": None},
        "device.name .* contains '<>'": {"type": "cpu", "name": "<b>H100</b>", "torch": "2.5.1", "threads": 2},
    }
    for message, device in cases.items():
        refused(model_results | {"device": device}, message)


def test_names_authors_and_links_are_plain_text(model_results):
    for name in ("**LeWM** [paper](https://evil.example)", "LeWM\n| 1 | fake row |", "<img src=x onerror=alert(1)>", "x" * 101,
                 " LeWM", "LeWM\u202e", ""):
        refused(model_results, "--name", name=name)
    refused(model_results, "--authors 'A. <b>Author</b>'", authors=["A. <b>Author</b>"])
    refused(model_results, re.escape("--authors 'A\\nB' contains '\\n'"), authors=["A\nB"])
    for link in ("javascript:alert(1)", "https://", "http://[", "https://x.org/a b", 'https://x.org/"onmouseover=1', "https://x.org/" + "a" * 500):
        refused(model_results, "--url", links=[link])
    hostile = copy.deepcopy(model_results)
    hostile["model"]["name"] = "tiny [click](https://evil.example)"  # a name from the results, not --name
    refused(hostile, "model.name")
    assert make_entry(model_results, name="LeWM (cpu config, 1.85M) — v2, Müller & Söhne", authors=["José Ñ. O'Brien"])["model"].startswith("LeWM")


# ---------------------------------------------------------------------- reproduction


def test_verify_reproduces_a_real_run_and_records_it(tmp_path, tiny_checkpoint, random_results, capsys):
    board = tmp_path / "leaderboard.json"
    few, _ = evaluate(str(tiny_checkpoint), "tworoom", EvalSettings(episodes=5, device="cpu"), progress=False)  # CEM 300 x 30, quick
    results = write(tmp_path, few, "tiny.json")
    submit(results, board, name="tiny", custom=True)
    assert load_board(board)["entries"][0]["reproduction"] == {"status": "self-reported"}
    with pytest.raises(SubmissionError, match="--model: pass the checkpoint these results were measured with"):
        verify(results, board)
    with pytest.raises(SubmissionError, match="but the results were measured with"):
        verify(results, board, model=LEADERBOARD.parent / "README.md")
    with pytest.raises(SubmissionError, match="is not on .*; submit it first"):
        verify(write(tmp_path, random_results, "random.json"), board)

    assert main(["verify", str(results), "--model", str(tiny_checkpoint), "--device", "cpu", "--leaderboard", str(board)]) == 0
    assert "tiny on tworoom: reproduced on " in capsys.readouterr().out
    [entry] = load_board(board)["entries"]
    reproduction = entry["reproduction"]
    assert reproduction["status"] == "reproduced" and reproduction["agreement"] == 1.0 and reproduction["episodes"] == 5
    assert reproduction["date"] == datetime.now(timezone.utc).date().isoformat() and "(CPU, " in reproduction["device"]
    jsonschema.validate(load_board(board), schema("leaderboard"))

    phyre = write(tmp_path, evaluate_agent("random", "within", 0, tasks=3, progress=False), "phyre.json")
    submit(phyre, board, custom=True)
    with pytest.raises(SubmissionError, match="a reference agent's, which needs no checkpoint"):
        verify(phyre, board, model=tiny_checkpoint)
    entry, differing = verify(phyre, board, progress=False)
    assert differing == [] and entry["reproduction"]["status"] == "reproduced" and entry["reproduction"]["episodes"] == 3


def test_a_tampered_outcome_fails_reproduction(tmp_path, random_results, phyre_results, capsys):
    board = tmp_path / "leaderboard.json"
    tampered = one_more_success(random_results)
    pair = next(e["pair"] for e, original in zip(tampered["episodes"], random_results["episodes"]) if e != original)
    results = write(tmp_path, tampered)
    submit(results, board)  # consistent in itself: accepted, as self-reported
    assert main(["verify", str(results), "--leaderboard", str(board)]) == 2
    assert f"error: not reproduced: the outcomes of pairs {pair} differ" in capsys.readouterr().err
    reproduction = load_board(board)["entries"][0]["reproduction"]
    assert reproduction["status"] == "not-reproduced" and reproduction["agreement"] == 49 / 50

    late = next(task for task in phyre_results["tasks"] if task["solved_at"] is not None and task["solved_at"] > 1)
    earlier = [task | {"solved_at": 1, "attempts": 1} if task is late else task for task in phyre_results["tasks"]]
    protocol = phyre_results["protocol"]
    edited = results_document(phyre_results["agent"], protocol["split"], protocol["fold"], protocol["seed"], protocol["test_tasks"],
                              earlier, phyre_results["timing"]) | {"created": phyre_results["created"]}
    path = write(tmp_path, edited, "phyre.json")
    submit(path, board, custom=True)
    entry, differing = verify(path, board, progress=False)
    assert differing == [late["task"]] and entry["reproduction"]["status"] == "not-reproduced"


def test_an_interrupted_merge_leaves_the_board_as_it_was(tmp_path, random_results, model_results, monkeypatch):
    board = tmp_path / "leaderboard.json"
    submit(write(tmp_path, random_results), board)
    before, model = board.read_bytes(), write(tmp_path, model_results, "model.json")

    def write_half_then_fail(self, text, *args, **kwargs):
        with open(self, "w") as file:
            file.write(text[: len(text) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        submit(model, board)
    monkeypatch.undo()
    assert board.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leaderboard.json", "leaderboard.json.lock", "model.json", "results.json"]
    submit(model, board)  # and the next submission goes through
    assert len(load_board(board)["entries"]) == 2


def test_a_corrupted_board_is_reported_not_overwritten(tmp_path, random_results):
    board = tmp_path / "leaderboard.json"
    board.write_text('{"format": 1, "entries": [')
    with pytest.raises(SubmissionError, match="not valid JSON"):
        submit(write(tmp_path, random_results), board)
    assert board.read_text() == '{"format": 1, "entries": ['
    board.write_text('{"format": 1, "protocol_version": 1, "entries": [{"model": "x"}]}')
    with pytest.raises(SubmissionError, match="schema at entries/0"):
        submit(write(tmp_path, random_results), board)


def test_the_committed_leaderboard_checks_out_against_its_results_and_is_rendered():
    from wmbench.envs import GOAL_ENVS
    from wmbench.leaderboard import place, results_digest
    from wmbench.leaderboard_page import render_html, render_markdown

    root = LEADERBOARD
    board = load_board(root / "leaderboard.json")
    sources = {results_digest(json.loads(path.read_text())): path for path in (root / "results").glob("*.json")}
    shipped_checkpoints = {hashlib.sha256(path.read_bytes()).hexdigest() for path in root.parent.glob("baselines/*/checkpoints/*.wmb")}
    for entry in board["entries"]:
        assert entry["results_sha256"] in sources, f"{entry['model']} on {entry['env']}: its results JSON is not in leaderboard/results/"
        results = json.loads(sources[entry["results_sha256"]].read_text())
        options = dict(name=entry["model"], custom=entry["table"] == "custom", authors=entry["authors"], links=entry["links"])
        assert make_entry(results, **options) == entry | {"reproduction": {"status": "self-reported"}}
        # every reference agent (it needs no checkpoint, on either table) and every baseline whose checkpoint ships
        # were run again on a CPU, and every outcome agreed
        reproducible = entry["checkpoint_sha256"] is None or entry["checkpoint_sha256"] in shipped_checkpoints
        reproducible &= (entry["model"], entry["env"]) != ("oracle", "cube")  # needs more memory than this machine has (leaderboard/README.md)
        if entry.get("folds"):  # a five-fold PHYRE bound (2,500 tasks) is not run again; its fold 0 is the verified fold-0 run's
            reproducible = False
            fold0 = json.loads((root / "results" / f"{entry['model']}-phyre-{entry['split']}-fold0.json").read_text())
            assert [task for task in results["tasks"] if task["fold"] == 0] == [{**task, "fold": 0} for task in fold0["tasks"]]
        expected = {"status": "reproduced", "agreement": 1.0} if reproducible else {"status": "self-reported"}
        assert {key: entry["reproduction"][key] for key in expected} == expected, f"{entry['model']} on {place(entry)}"
    for bound in ("oracle", "random"):
        assert {e["env"] for e in board["entries"] if e["table"] == "reference" and e["model"] == bound} == {*GOAL_ENVS, "phyre"}
        phyre = {(e["split"], e["fold"], tuple(e.get("folds", ()))) for e in board["entries"] if e["env"] == "phyre" and e["model"] == bound}
        assert phyre == {(split, *fold) for split in ("within", "cross") for fold in ((0, ()), (None, (0, 1, 2, 3, 4)))}

    # the page, the Markdown and the README's table are those of the board as committed
    assert (root / "index.html").read_text() == render_html(board)
    markdown = render_markdown(board)
    assert (root / "leaderboard.md").read_text() == markdown
    readme = (root.parent / "README.md").read_text()
    assert f"<!-- leaderboard:start -->\n{markdown}<!-- leaderboard:end -->" in readme, "run `wmbench leaderboard --readme README.md`"


# ---------------------------------------------------------------------- PHYRE


def test_phyre_eval_writes_what_the_phyre_schema_describes(phyre_results):
    validate(phyre_results, "phyre_results")
    validate(evaluate_agent("oracle", "cross", 0, tasks=2, progress=False), "phyre_results")
    checkpoint = {"name": "lewm", "source": "export", "sha256": "c" * 64, "parameters": 1_850_000, "meta": {"horizon": 5}}
    world_model = copy.deepcopy(phyre_results)
    world_model["agent"] = {"name": "world-model", "model": checkpoint, "settings": {"candidates": 1000, "probe": {"accuracy": 0.9}}}
    world_model["device"] = {"type": "cpu", "name": "AMD EPYC", "torch": "2.5.1", "threads": 2}
    world_model["timing"]["probe_s"] = 12.5
    validate(world_model, "phyre_results")
    world_model["agent"]["model"] = None
    with pytest.raises(ValueError, match="at agent/model: None is not of type 'object'"):
        validate(world_model, "phyre_results")


def test_a_phyre_run_goes_to_its_split_and_fold(tmp_path, phyre_reference, capsys):
    board = tmp_path / "leaderboard.json"
    assert main(["submit", str(write(tmp_path, phyre_reference)), "--leaderboard", str(board)]) == 0
    assert "reference table" in capsys.readouterr().out
    [entry] = load_board(board)["entries"]
    assert entry["table"] == "reference" and (entry["env"], entry["split"], entry["fold"], entry["agent"]) == ("phyre", "within", 0, "random")
    assert entry["auccess"] == {**{key: phyre_reference["auccess"][key] for key in ("value", "ci95", "solved_within_100")},
                              "tasks": phyre_reference["protocol"]["test_tasks"]}
    assert entry["deviations"] == {} and entry["device"] is None

    # a world model's run of the standard protocol is ranked in the standard table, under its checkpoint's name
    world_model = copy.deepcopy(phyre_reference)
    world_model["agent"] = {"name": "world-model", "model": {"name": "lewm", "source": "export", "sha256": "c" * 64, "parameters": 1_850_000},
                            "settings": {"candidates": 1000, "probe_samples": 2000, "horizon_seconds": 10.0}}
    world_model["device"] = {"type": "cuda", "name": "NVIDIA H100", "torch": "2.5.1", "threads": None}
    entry = submit(write(tmp_path, world_model, "lewm.json"), board, links=["https://example.org/lewm"])
    assert (entry["table"], entry["model"], entry["parameters"], entry["checkpoint_sha256"], entry["device"]) == (
        "standard", "lewm", 1_850_000, "c" * 64, "NVIDIA H100")
    assert [e["model"] for e in load_board(board)["entries"]] == ["random", "lewm"]


def test_a_phyre_run_off_the_standard_protocol_needs_custom(tmp_path, phyre_results):
    every = phyre_results["protocol"]["test_tasks"]  # the fold's test tasks, the standard number
    refused(phyre_results, f"not the standard protocol \\(tasks: {every} -> 3\\); evaluate with `wmbench phyre eval`'s defaults.*--custom")
    entry = submit(write(tmp_path, phyre_results), tmp_path / "leaderboard.json", custom=True)
    assert entry["table"] == "custom" and entry["deviations"] == {"tasks": [every, 3]} and entry["auccess"]["tasks"] == 3

    other_seed = evaluate_agent("random", "within", 0, seed=1, tasks=3, progress=False)  # another split of the tasks
    refused(other_seed, f"seed: 0 -> 1; tasks: {every} -> 3")
    assert make_entry(other_seed, custom=True)["deviations"] == {"seed": [0, 1], "tasks": [every, 3]}


def test_an_edited_phyre_file_is_refused_naming_the_field(phyre_results):
    def edited(change) -> dict:
        results = copy.deepcopy(phyre_results)
        change(results)
        return results

    late = next(index for index, task in enumerate(phyre_results["tasks"]) if task["solved_at"] is not None and task["solved_at"] > 1)
    cases = {
        "auccess.value is 0.99, but the 3 per-task outcomes give": lambda r: r["auccess"].update(value=0.99),
        "auccess.ci95": lambda r: r["auccess"].update(ci95=[r["auccess"]["value"] - 0.01, r["auccess"]["value"] + 0.01]),
        "auccess.solved_within_100": lambda r: r["auccess"].update(solved_within_100=0.5),
        "auccess.value": lambda r: r["tasks"][late].update(solved_at=1, attempts=1),  # a better outcome, summary left as it was
        f"tasks\\[{late}\\]: solved_at 100 with": lambda r: r["tasks"][late].update(solved_at=100),
        f"tasks\\[{late}\\]: solved_at 1 with": lambda r: r["tasks"][late].update(solved_at=1),  # attempts after the solution
        "tasks\\[0\\].task is 'ball_off_shelf:000', but test task 1 of fold 0 of the within split \\(seed 0\\) is": (
            lambda r: r["tasks"][0].update(task="ball_off_shelf:000")),
        "tasks\\[0\\].task": lambda r: r["tasks"].reverse(),
        "tasks: 2 outcomes, but protocol.tasks says 3": lambda r: r["tasks"].pop(),
        "protocol.test_tasks is 100, but fold 0 of the within split": lambda r: r["protocol"].update(test_tasks=100),
        "schema at tasks/0/attempts: 101 is greater than the maximum of 100": lambda r: r["tasks"][0].update(attempts=101),
        "schema at auccess: Additional properties are not allowed": lambda r: r["auccess"].update(rank=1),
    }
    for message, change in cases.items():
        refused(edited(change), message, custom=True)


def test_phyre_duplicates_are_refused_per_split_and_fold(tmp_path, phyre_results):
    board = tmp_path / "leaderboard.json"
    submit(write(tmp_path, phyre_results), board, custom=True)
    with pytest.raises(SubmissionError, match="on the leaderboard already, as 'random' on phyre within fold 0"):
        submit(write(tmp_path, phyre_results, "again.json"), board, custom=True)
    with pytest.raises(SubmissionError, match="this run is on the leaderboard already, as 'random' on phyre within fold 0"):
        submit(write(tmp_path, created_moved(phyre_results, -1), "earlier.json"), board, custom=True)
    protocol, tasks = phyre_results["protocol"], phyre_results["tasks"]
    rerun = results_document(phyre_results["agent"], "within", 0, protocol["seed"], protocol["test_tasks"],  # another run: other outcomes
                             [task | {"solved_at": None, "attempts": 100} for task in tasks], phyre_results["timing"])
    with pytest.raises(SubmissionError, match="'random' already has a custom entry on phyre within fold 0"):
        submit(write(tmp_path, rerun, "rerun.json"), board, custom=True)
    submit(write(tmp_path, evaluate_agent("random", "within", 1, tasks=3, progress=False), "fold1.json"), board, custom=True)
    assert [(e["split"], e["fold"]) for e in load_board(board)["entries"]] == [("within", 0), ("within", 1)]
