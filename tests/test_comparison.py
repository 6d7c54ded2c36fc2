"""Paired comparisons and the bounds of the same pairs: the exact McNemar test and the paired
bootstrap by hand, `wmbench compare` and its refusals, all 200 pairs of an evaluation set, and the
random and oracle references a results file carries."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

pytest.importorskip("torch", reason="the harness needs the 'torch' extra")

import wmbench.eval.goal_reaching as goal_reaching  # noqa: E402
from wmbench.cli import main  # noqa: E402
from wmbench.eval.comparison import compare_runs, comparison_text  # noqa: E402
from wmbench.eval.goal_reaching import EvalSettings, evaluate, summary_text  # noqa: E402
from wmbench.eval.results import schema, validate  # noqa: E402
from wmbench.stats import mcnemar_exact, paired_difference_interval  # noqa: E402

ORACLE_MODEL = {"name": "oracle", "source": "oracle", "sha256": None, "parameters": 0}


# ---------------------------------------------------------------------- statistics by hand
@pytest.mark.parametrize(("only_first", "only_second", "p"), [
    (8, 2, 2 * (1 + 10 + 45) / 2**10),  # 2 P(X <= 2), X ~ Binomial(10, 1/2) = 112 / 1024
    (2, 8, 2 * (1 + 10 + 45) / 2**10),  # symmetric
    (0, 5, 2 / 2**5),  # all five discordant pairs one way: 2 * (1/2)^5
    (10, 0, 2 / 2**10),
    (1, 6, 2 * (1 + 7) / 2**7),  # 2 P(X <= 1), X ~ Binomial(7, 1/2) = 0.125
    (3, 3, 1.0),  # 2 P(X <= 3) = 84/64, capped at 1
    (1, 0, 1.0),  # one discordant pair proves nothing
    (0, 0, 1.0),  # no discordant pair: no evidence of a difference
])
def test_mcnemar_exact_matches_hand_computed_values(only_first, only_second, p):
    assert mcnemar_exact(only_first, only_second) == pytest.approx(p, rel=1e-12)


def test_mcnemar_exact_agrees_with_scipy_binomial_test():
    stats = pytest.importorskip("scipy.stats")
    for only_first, only_second in [(30, 45), (0, 17), (12, 13), (90, 60), (150, 50)]:
        expected = stats.binomtest(only_first, only_first + only_second, 0.5).pvalue
        assert mcnemar_exact(only_first, only_second) == pytest.approx(expected, rel=1e-9)


def test_paired_difference_interval_is_seeded_and_paired():
    rng = np.random.default_rng(0)
    first = rng.random(200) < 0.6
    second = first & (rng.random(200) < 0.7)  # B solves a subset of A's pairs: every difference is >= 0
    interval = paired_difference_interval(first, second, samples=2000, seed=3)
    assert interval == paired_difference_interval(first, second, samples=2000, seed=3)
    assert interval != paired_difference_interval(first, second, samples=2000, seed=4)
    low, high = interval
    assert 0 <= low < first.mean() - second.mean() < high
    assert paired_difference_interval(first, first, samples=500) == (0.0, 0.0)  # identical outcomes: no spread at all
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference_interval(first, second[:-1])


# ---------------------------------------------------------------------- wmbench compare
@pytest.fixture(scope="module")
def random_run() -> dict:
    """A real run: random actions on 8 pairs of Push-T (a second or two)."""
    results, _ = evaluate("random", "pusht", EvalSettings(episodes=8, device="cpu"), progress=False)
    return results


def with_outcomes(results: dict, solved: list[bool]) -> dict:
    edited = copy.deepcopy(results)
    for episode, success in zip(edited["episodes"], solved):
        episode["success"], episode["steps_to_success"] = success, 10 if success else None
    return edited


def test_compare_counts_the_discordant_pairs(random_run):
    first = with_outcomes(random_run, [True, True, True, True, True, False, False, False])
    second = with_outcomes(random_run, [True, False, False, False, False, True, False, False])
    comparison = compare_runs(first, second, ("a.json", "b.json"))
    assert comparison["discordant"] == {"first_only": 4, "second_only": 1, "both": 1, "neither": 2}
    assert comparison["mcnemar_p"] == pytest.approx(2 * (1 + 5) / 2**5)  # 2 P(X <= 1), X ~ Binomial(5, 1/2) = 0.375
    assert comparison["difference"]["rate"] == pytest.approx(5 / 8 - 2 / 8)
    assert [run["successes"] for run in comparison["runs"]] == [5, 2] and comparison["pairs"] == 8
    low, high = comparison["difference"]["ci95"]
    assert low <= 3 / 8 <= high
    text = comparison_text(comparison)
    assert "A only 4, B only 1" in text and "+37.5 points" in text and "p = 0.375" in text


def test_compare_pairs_outcomes_by_pair_not_by_position(random_run):
    reordered = copy.deepcopy(random_run)
    reordered["episodes"].reverse()
    comparison = compare_runs(random_run, reordered)
    assert comparison["discordant"]["first_only"] == comparison["discordant"]["second_only"] == 0
    assert comparison["mcnemar_p"] == 1.0


def refused(first: dict, second: dict) -> str:
    with pytest.raises(ValueError) as error:
        compare_runs(first, second, ("a.json", "b.json"))
    return str(error.value)


def test_runs_on_different_pairs_are_refused(random_run):
    more, _ = evaluate("random", "pusht", EvalSettings(episodes=9, device="cpu"), progress=False)
    message = refused(random_run, more)
    assert "a.json ran 8 pairs (--episodes 8 --seed 42), b.json 9 pairs (--episodes 9 --seed 42)" in message
    assert "same --episodes and --seed" in message
    moved = copy.deepcopy(random_run)
    moved["episodes"][0]["pair"] = next(p for p in range(200) if p not in {e["pair"] for e in random_run["episodes"]})
    assert "2 of them not in both" in refused(random_run, moved)


def test_runs_on_another_env_set_or_budget_are_refused(random_run):
    other_env, _ = evaluate("random", "reacher", EvalSettings(episodes=8, device="cpu"), progress=False)
    assert "a.json is on pusht, b.json on reacher: compare runs on the same env" in refused(random_run, other_env)
    other_set = copy.deepcopy(random_run)
    other_set["protocol"]["eval_set"]["sha256"] = "0" * 64
    assert "evaluation set" in refused(random_run, other_set)
    other_budget = copy.deepcopy(random_run)
    other_budget["protocol"]["budget"] = 100
    assert "same --budget" in refused(random_run, other_budget)


def test_compare_command_prints_the_comparison_and_refuses_in_one_line(random_run, tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(random_run))
    second.write_text(json.dumps(with_outcomes(random_run, [True] * 8)))
    assert main(["compare", str(first), str(second)]) == 0
    out = capsys.readouterr().out
    assert "difference A - B" in out and "McNemar exact" in out and f"B only {8 - random_run['success']['successes']}" in out
    assert main(["compare", str(first), str(second), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["discordant"]["first_only"] == 0
    shifted = copy.deepcopy(random_run)
    shifted["protocol"]["budget"] = 40
    second.write_text(json.dumps(shifted))
    assert main(["compare", str(first), str(second)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "budget" in error
    second.write_text(json.dumps({"format": 1, "agent": "random"}))  # not a goal-reaching results file
    assert main(["compare", str(first), str(second)]) == 2
    assert "not a goal-reaching results file" in capsys.readouterr().err


# ---------------------------------------------------------------------- all 200 pairs, and the references
def test_all_200_pairs_of_an_evaluation_set(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["eval", "--model", "random", "--env", "pusht", "--episodes", "200", "--budget", "10", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    validate(results)
    assert results["protocol"]["episodes"] == 200 == results["protocol"]["eval_set"]["pairs"]
    assert sorted(e["pair"] for e in results["episodes"]) == list(range(200))
    assert results["references"]["random"]["source"] == "this run"
    assert results["references"]["random"]["outcomes"] == results["episodes"]
    assert (out / "summary.png").is_file() and "random" in capsys.readouterr().out
    assert main(["eval", "--model", "random", "--env", "pusht", "--episodes", "201", "--out", str(tmp_path / "x")]) == 2
    assert "the evaluation set has 200 pairs" in capsys.readouterr().err


def oracle_run(results: dict, budget: int = 50) -> dict:
    """A committed oracle run as `wmbench eval --model oracle --episodes 200` writes it: pair p solved at step p % 50 + 1 when p is even."""
    oracle = copy.deepcopy(results)
    oracle["model"], oracle["protocol"]["budget"] = dict(ORACLE_MODEL), budget
    oracle["protocol"]["episodes"] = 200
    oracle["planner"] = {"name": "cem", "samples": 64, "iterations": 5, "elites": 8, "horizon": 5, "replan_every": 5, "action_block": 5}
    oracle["episodes"] = [{"pair": p, "success": p % 2 == 0, "steps_to_success": p % 50 + 1 if p % 2 == 0 else None} for p in range(200)]
    return oracle


def test_the_oracle_is_read_on_the_same_pairs_from_its_committed_run(random_run, tmp_path, monkeypatch):
    monkeypatch.setattr(goal_reaching, "ORACLE_RUNS", tmp_path)
    results, _ = evaluate("random", "pusht", EvalSettings(episodes=8, device="cpu"), progress=False)
    reason = "not measured on these pairs (no committed oracle run oracle-pusht.json)"
    assert results["references"]["oracle"] == {"measured": False, "reason": reason}
    assert "oracle       not measured on these pairs" in summary_text(results)

    (tmp_path / "oracle-pusht.json").write_text(json.dumps(oracle_run(random_run)))
    results, _ = evaluate("random", "pusht", EvalSettings(episodes=8, device="cpu"), progress=False)
    validate(results)
    oracle = results["references"]["oracle"]
    pairs = [e["pair"] for e in results["episodes"]]
    assert [o["pair"] for o in oracle["outcomes"]] == pairs
    assert [o["success"] for o in oracle["outcomes"]] == [p % 2 == 0 for p in pairs]
    assert oracle["successes"] == sum(p % 2 == 0 for p in pairs) and oracle["source"].startswith("oracle-pusht.json")
    assert f"oracle       {oracle['successes']}/8" in summary_text(results)

    (tmp_path / "oracle-pusht.json").write_text(json.dumps(oracle_run(random_run, budget=100)))
    results, _ = evaluate("random", "pusht", EvalSettings(episodes=8, device="cpu"), progress=False)
    assert "its budget is 100 env steps, this run's 50" in results["references"]["oracle"]["reason"]
    partial = oracle_run(random_run)
    partial["episodes"] = [e for e in partial["episodes"] if e["pair"] != pairs[0]]
    (tmp_path / "oracle-pusht.json").write_text(json.dumps(partial))
    results, _ = evaluate("random", "pusht", EvalSettings(episodes=8, device="cpu"), progress=False)
    assert "it does not cover 1 of these pairs" in results["references"]["oracle"]["reason"]


def test_random_runs_alongside_a_model_on_the_same_pairs(tmp_path, monkeypatch):
    from wmbench.checkpoint import export
    from wmbench.testing import TinyWorldModel

    monkeypatch.setattr(goal_reaching, "ORACLE_RUNS", tmp_path)
    checkpoint = export(TinyWorldModel(image_size=32, action_dim=2), tmp_path / "tiny.wmb")
    settings = EvalSettings(episodes=5, budget=20, planner_options={"samples": 16, "iterations": 2, "elites": 4}, device="cpu")
    results, _ = evaluate(str(checkpoint), "pusht", settings, progress=False)
    validate(results)
    alone, _ = evaluate("random", "pusht", EvalSettings(episodes=5, budget=20, device="cpu"), progress=False)
    random = results["references"]["random"]
    assert random["outcomes"] == alone["episodes"] and random["successes"] == alone["success"]["successes"]
    assert random["source"] == "run alongside: wmbench eval --model random --env pusht --episodes 5 --seed 42 --budget 20"


def test_the_references_block_is_checked_by_the_schema(random_run):
    validate(random_run)
    for broken in ({"random": random_run["references"]["random"]},  # the oracle is missing
                   {**random_run["references"], "oracle": {"measured": True, "source": "x"}},  # measured, but no outcomes
                   {**random_run["references"], "oracle": {"measured": False, "reason": "none", "rate": 0.5}},  # an unknown field
                   {**random_run["references"], "extra": {"measured": False, "reason": "none"}}):
        with pytest.raises(ValueError, match="references"):
            validate({**random_run, "references": broken})
    jsonschema.Draft202012Validator.check_schema(schema("results"))
    without = {key: value for key, value in random_run.items() if key != "references"}
    validate(without)  # optional: results written before it still validate


def test_summary_plot_draws_the_references(random_run, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "summary.png"
    goal_reaching.plot_summary(random_run, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(path).stat().st_size > 10_000


# ---------------------------------------------------------------------- PHYRE runs, paired by test task
def test_two_phyre_runs_are_paired_by_task(random_run, tmp_path, capsys):
    from wmbench.eval.puzzles import evaluate_agent

    random = evaluate_agent("random", "within", 0, tasks=4, progress=False)
    oracle = evaluate_agent("oracle", "within", 0, tasks=4, progress=False)
    comparison = compare_runs(oracle, random, ("oracle.json", "random.json"))
    assert comparison["tasks"] == 4 and comparison["runs"][0]["auccess"] == pytest.approx(oracle["auccess"]["value"])
    assert comparison["difference"]["auccess"] == pytest.approx(oracle["auccess"]["value"] - random["auccess"]["value"])
    assert sum(comparison["attempts"].values()) == 4
    early, late = copy.deepcopy(random), copy.deepcopy(random)
    for position, (a, b) in enumerate(zip(early["tasks"], late["tasks"])):
        a["solved_at"], b["solved_at"] = (1, None) if position < 2 else (None, 1)
    late["tasks"].reverse()  # listed in another order: paired by task, the first two are still A's and the last two B's
    assert compare_runs(early, late)["attempts"] == {"first_earlier": 2, "second_earlier": 2, "same": 0}

    first, second, fewer = tmp_path / "oracle.json", tmp_path / "random.json", tmp_path / "fewer.json"
    first.write_text(json.dumps(oracle))
    second.write_text(json.dumps(random))
    assert main(["compare", str(first), str(second)]) == 0
    out = capsys.readouterr().out
    assert "AUCCESS x100 100.0" in out and "paired t-test" in out and "solved earlier by A" in out
    fewer.write_text(json.dumps(evaluate_agent("random", "within", 0, tasks=3, progress=False)))
    assert main(["compare", str(first), str(fewer)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--tasks" in error
    goal_reaching = tmp_path / "goal.json"
    goal_reaching.write_text(json.dumps(random_run))
    assert main(["compare", str(first), str(goal_reaching)]) == 2
    assert "same kind" in capsys.readouterr().err
