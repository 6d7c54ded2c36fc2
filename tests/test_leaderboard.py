"""Leaderboard submissions: what is accepted, every way a submission is refused, and the atomic merge."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from wmbench.cli import main
from wmbench.evaluation import EvalSettings, evaluate
from wmbench.leaderboard import SubmissionError, load_board, make_entry, submit
from wmbench.results import schema


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

    root = Path(__file__).parents[1] / "leaderboard"
    board = load_board(root / "leaderboard.json")
    sources = {results_digest(json.loads(path.read_text())): path for path in (root / "results").glob("*.json")}
    for entry in board["entries"]:
        assert entry["results_sha256"] in sources, f"{entry['model']} on {entry['env']}: its results JSON is not in leaderboard/results/"
        results = json.loads(sources[entry["results_sha256"]].read_text())
        options = dict(name=entry["model"], authors=entry["authors"], links=entry["links"], custom=entry["table"] == "custom")
        assert make_entry(results, **options) == entry
    for bound in ("oracle", "random"):
        assert {e["env"] for e in board["entries"] if e["table"] == "reference" and e["model"] == bound} == set(GOAL_ENVS)

    # the page, the Markdown and the README's table are those of the board as committed
    assert (root / "index.html").read_text() == render_html(board)
    markdown = render_markdown(board)
    assert (root / "leaderboard.md").read_text() == markdown
    readme = (root.parent / "README.md").read_text()
    assert f"<!-- leaderboard:start -->\n{markdown}<!-- leaderboard:end -->" in readme, "run `wmbench leaderboard --readme README.md`"
