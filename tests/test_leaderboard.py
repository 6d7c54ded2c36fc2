"""Leaderboard submissions: what is accepted, every way a submission is refused, and the atomic merge; goal-reaching and PHYRE results."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from wmbench.cli import main
from wmbench.eval.goal_reaching import EvalSettings, evaluate
from wmbench.eval.puzzles import evaluate_agent
from wmbench.leaderboard import SubmissionError, load_board, make_entry, submit
from wmbench.eval.results import schema, validate

LEADERBOARD = Path(__file__).parents[1] / "leaderboard"


@pytest.fixture(scope="module")
def random_results() -> dict:
    """A real standard-protocol run (random actions on Two-Room: no model, a few seconds)."""
    results, _ = evaluate("random", "tworoom", EvalSettings(device="cpu"), progress=False)
    return results


@pytest.fixture(scope="module")
def model_results(tmp_path_factory) -> dict:
    """A real standard-protocol run of a tiny world model (CEM 300 x 30, 50 episodes)."""
    from wmbench.checkpoint import export
    from wmbench.testing import TinyWorldModel

    checkpoint = export(TinyWorldModel(image_size=32, action_dim=2), tmp_path_factory.mktemp("model") / "tiny.wmb")
    results, _ = evaluate(str(checkpoint), "tworoom", EvalSettings(device="cpu"), progress=False)
    return results


@pytest.fixture(scope="module")
def phyre_results() -> dict:
    """A real PHYRE run on the first 3 test tasks of within fold 0 (random placements: a fraction of a second)."""
    return evaluate_agent("random", "within", 0, tasks=3, progress=False)


@pytest.fixture(scope="module")
def phyre_reference() -> dict:
    """The committed standard-protocol random run on within fold 0: all 200 test tasks."""
    return json.loads((LEADERBOARD / "results" / "random-phyre-within-fold0.json").read_text())


def write(tmp_path: Path, results: dict, name: str = "results.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(results))
    return path


def refused(results: dict, match: str, **options) -> None:
    with pytest.raises(SubmissionError, match=match):
        make_entry(results, **options)


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


def test_duplicates_are_refused(tmp_path, random_results):
    board = tmp_path / "leaderboard.json"
    submit(write(tmp_path, random_results), board)
    with pytest.raises(SubmissionError, match="on the leaderboard already"):
        submit(write(tmp_path, random_results, "again.json"), board)
    rerun = copy.deepcopy(random_results)
    rerun["created"] = "2030-01-01T00:00:00Z"  # another run of the same model: same name, env and table
    with pytest.raises(SubmissionError, match="'random' already has a reference entry on tworoom"):
        submit(write(tmp_path, rerun, "rerun.json"), board)
    assert len(load_board(board)["entries"]) == 1


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
    from wmbench.leaderboard import results_digest
    from wmbench.leaderboard_page import render_html, render_markdown

    root = LEADERBOARD
    board = load_board(root / "leaderboard.json")
    sources = {results_digest(json.loads(path.read_text())): path for path in (root / "results").glob("*.json")}
    for entry in board["entries"]:
        assert entry["results_sha256"] in sources, f"{entry['model']} on {entry['env']}: its results JSON is not in leaderboard/results/"
        results = json.loads(sources[entry["results_sha256"]].read_text())
        options = dict(name=entry["model"], authors=entry["authors"], links=entry["links"], custom=entry["table"] == "custom")
        assert make_entry(results, **options) == entry
    for bound in ("oracle", "random"):
        assert {e["env"] for e in board["entries"] if e["table"] == "reference" and e["model"] == bound} == {*GOAL_ENVS, "phyre"}
        phyre = {(e["split"], e["fold"]) for e in board["entries"] if e["env"] == "phyre" and e["model"] == bound}
        assert phyre == {("within", 0), ("cross", 0)}

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
    assert entry["auccess"] == {**{key: phyre_reference["auccess"][key] for key in ("value", "ci95", "solved_within_100")}, "tasks": 200}
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
    refused(phyre_results, "not the standard protocol \\(tasks: 200 -> 3\\); evaluate with `wmbench phyre eval`'s defaults.*--custom")
    entry = submit(write(tmp_path, phyre_results), tmp_path / "leaderboard.json", custom=True)
    assert entry["table"] == "custom" and entry["deviations"] == {"tasks": [200, 3]} and entry["auccess"]["tasks"] == 3

    other_seed = evaluate_agent("random", "within", 0, seed=1, tasks=3, progress=False)  # another split of the tasks
    refused(other_seed, "seed: 0 -> 1; tasks: 200 -> 3")
    assert make_entry(other_seed, custom=True)["deviations"] == {"seed": [0, 1], "tasks": [200, 3]}


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
    rerun = copy.deepcopy(phyre_results)
    rerun["created"] = "2030-01-01T00:00:00Z"
    with pytest.raises(SubmissionError, match="'random' already has a custom entry on phyre within fold 0"):
        submit(write(tmp_path, rerun, "rerun.json"), board, custom=True)
    submit(write(tmp_path, evaluate_agent("random", "within", 1, tasks=3, progress=False), "fold1.json"), board, custom=True)
    assert [(e["split"], e["fold"]) for e in load_board(board)["entries"]] == [("within", 0), ("within", 1)]
