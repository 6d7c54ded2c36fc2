"""AUCCESS exactly as PHYRE defines it, its bootstrap interval, and the 80/20 folds."""

from __future__ import annotations

import math

import numpy as np

import pytest

from wmbench.envs.phyre.splits import split, task_split
from wmbench.eval.puzzles import WEIGHTS, auccess, auccess_interval


def test_solved_at_the_first_attempt_is_one_and_never_is_zero():
    assert auccess([1] * 10) == pytest.approx(1.0)
    assert auccess([None] * 10) == 0.0
    assert auccess([101, None]) == 0.0  # beyond the 100 attempts counts as never


@pytest.mark.parametrize("k", [1, 2, 5, 10, 50, 100])
def test_solved_at_attempt_k_for_every_task_has_the_closed_form(k):
    # s_j = 1 for j >= k: the weights from k on telescope to log(101) - log(k)
    assert auccess([k] * 7) == pytest.approx((math.log(101) - math.log(k)) / math.log(101))


def test_auccess_averages_tasks_and_weights_early_attempts_most():
    assert auccess([1, None]) == pytest.approx(0.5)
    assert auccess([1, 3, None, 10]) == pytest.approx(sum(auccess([k]) for k in (1, 3, None, 10)) / 4)
    assert WEIGHTS[0] > WEIGHTS[9] > WEIGHTS[99] and WEIGHTS.sum() == pytest.approx(math.log(101))
    with pytest.raises(ValueError, match="counted from 1"):
        auccess([0])
    with pytest.raises(ValueError, match="no tasks"):
        auccess([])


def test_bootstrap_interval_brackets_the_score_and_is_seeded():
    solved = [1, 2, None, 5, 1, None, 30, 1, 4, None] * 5
    low, high = auccess_interval(solved)
    assert low < auccess(solved) < high and (low, high) == auccess_interval(solved)
    assert auccess_interval([1] * 20) == (pytest.approx(1.0), pytest.approx(1.0))


def test_five_folds_test_every_item_once_and_split_80_20():
    items = list(range(100))
    tests = [split(items, fold)[1] for fold in range(5)]
    assert sorted(t for test in tests for t in test) == items and all(len(test) == 20 for test in tests)
    train, test = split(items, 0)
    assert set(train).isdisjoint(test) and len(train) == 80 and split(items, 0) == (train, test)
    assert split(items, 0, seed=1) != (train, test)
    with pytest.raises(ValueError, match="folds are 0 to 4"):
        split(items, 5)


def test_within_and_cross_template_splits():
    tasks = {f"t{i}": [f"t{i}:{j:03d}" for j in range(100)] for i in range(10)}
    train, test = task_split(tasks, "within", fold=0)
    assert len(test) == 200 and all(sum(t.startswith(f"t{i}:") for t in test) == 20 for i in range(10))
    train, test = task_split(tasks, "cross", fold=0)
    test_templates = {t.split(":")[0] for t in test}
    assert len(test_templates) == 2 and not test_templates & {t.split(":")[0] for t in train}
    with pytest.raises(ValueError, match="within"):
        task_split(tasks, "diagonal", 0)


def test_phyre_agents_through_the_evaluator(tmp_path, capsys):
    import json

    from wmbench.cli import main
    from wmbench.eval.puzzles import attempt_task, evaluate_agent
    from wmbench.envs.phyre.templates import task

    oracle = evaluate_agent("oracle", "within", fold=0, tasks=4, progress=False)
    assert oracle["auccess"]["value"] == pytest.approx(1.0) and all(t["solved_at"] == 1 for t in oracle["tasks"])
    random = evaluate_agent("random", "cross", fold=1, tasks=3, progress=False)
    again = evaluate_agent("random", "cross", fold=1, tasks=3, progress=False)
    assert {**again, "created": random["created"], "timing": random["timing"]} == random  # seeded
    assert all(t["attempts"] <= 100 and (t["solved_at"] is None or t["solved_at"] <= t["attempts"]) for t in random["tasks"])
    assert random["auccess"]["value"] == pytest.approx(auccess([t["solved_at"] for t in random["tasks"]]))

    # invalid proposals are skipped, not counted: a ball far outside the scene, then the solution
    scene = task(0, 0)
    from wmbench.envs.phyre.templates import solve

    outcome = attempt_task(scene, iter([np.array([5.0, 5.0, 0.5]), np.array([5.0, 5.0, 0.5]), np.asarray(solve(scene))]))
    assert outcome == {"solved_at": 1, "attempts": 1, "invalid": 2}

    out = tmp_path / "oracle.json"
    assert main(["phyre", "eval", "--agent", "oracle", "--tasks", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert json.loads(out.read_text())["protocol"]["tasks"] == 2 and "AUCCESS 1.000" in printed
    assert "ball_off_shelf           AUCCESS 1.000  (2 tasks)" in printed  # and each template's
    assert main(["phyre", "eval", "--agent", "psychic", "--tasks", "1"]) == 2


def test_the_largest_ball_agent_proposes_valid_balls_largest_first():
    from wmbench.eval.puzzles import largest_ball_agent
    from wmbench.envs.phyre.simulation import is_valid
    from wmbench.envs.phyre.templates import task

    scene = task("stick_onto_ball", 8)
    proposals = np.array(list(largest_ball_agent(scene, np.random.default_rng(0))))
    assert proposals.shape == (1000, 3) and np.all(np.diff(proposals[:, 2]) <= 0)
    assert all(is_valid(scene, action) for action in proposals[::50])


def test_several_folds_report_the_mean_and_spread_of_the_folds(tmp_path, capsys):
    """`--folds`: each fold evaluated on its own test tasks, the document's AUCCESS the mean over folds (PHYRE's figure)
    with their standard deviation, each fold's figures and every task's fold; `--fold` still evaluates one."""
    import json

    from wmbench.cli import main
    from wmbench.envs.phyre.splits import split_tasks
    from wmbench.eval.puzzles import evaluate_agent
    from wmbench.eval.results import validate

    out = tmp_path / "folds.json"
    assert main(["phyre", "eval", "--agent", "random", "--split", "cross", "--folds", "0-2", "--tasks", "2", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    validate(results, "phyre_results")
    protocol, score = results["protocol"], results["auccess"]
    assert protocol["folds"] == [0, 1, 2] and protocol["fold"] is None and protocol["tasks"] == 6
    assert [t["task"] for t in results["tasks"]] == [tid for fold in range(3) for tid in split_tasks("cross", fold, 0)[1][:2]]
    assert [t["fold"] for t in results["tasks"]] == [0, 0, 1, 1, 2, 2]
    per_fold = [auccess([t["solved_at"] for t in results["tasks"] if t["fold"] == fold]) for fold in range(3)]
    assert [entry["value"] for entry in score["per_fold"]] == pytest.approx(per_fold)
    assert score["value"] == pytest.approx(np.mean(per_fold)) and score["spread"] == pytest.approx(np.std(per_fold, ddof=1))
    single = evaluate_agent("random", "cross", 1, tasks=2, progress=False)
    assert score["per_fold"][1]["value"] == pytest.approx(single["auccess"]["value"])  # fold 1 alone gives the same figure
    assert "mean +- standard deviation over 3 folds" in capsys.readouterr().out

    for bad in ("5", "0-7", "two", "1,1", "3-1", ""):
        assert main(["phyre", "eval", "--agent", "random", "--folds", bad, "--tasks", "1"]) == 2
        error = capsys.readouterr().err.strip()
        assert "--folds" in error and "0-4" in error and len(error.splitlines()) == 1


def test_a_several_fold_run_has_its_own_leaderboard_table(tmp_path):
    """On the board, an entry over several folds shows the mean ± spread in a table apart from the single-fold ones,
    and its outcomes are checked fold by fold."""
    import json

    from wmbench.eval.puzzles import evaluate_agent, evaluate_folds
    from wmbench.leaderboard import SubmissionError, load_board, make_entry, submit
    from wmbench.leaderboard_page import render_markdown

    folds = evaluate_folds("random", "cross", [0, 1], tasks=1, progress=False)
    one = evaluate_agent("random", "cross", 0, tasks=1, progress=False)
    board = tmp_path / "leaderboard.json"
    for name, results in (("folds.json", folds), ("one.json", one)):
        (tmp_path / name).write_text(json.dumps(results))
        submit(tmp_path / name, board, custom=True)
    entries = load_board(board)["entries"]
    several = next(e for e in entries if e.get("folds"))
    assert several["folds"] == [0, 1] and several["fold"] is None and several["auccess"]["spread"] == folds["auccess"]["spread"]
    markdown = render_markdown(load_board(board))
    assert "#### Cross-template, fold 0" in markdown and "#### Cross-template, mean over folds 0, 1" in markdown
    assert f"± {100 * folds['auccess']['spread']:.1f}" in markdown.split("mean over folds")[1]

    edited = json.loads(json.dumps(folds))
    edited["tasks"][0]["fold"], edited["tasks"][1]["fold"] = 1, 0  # each outcome claimed for the other fold
    with pytest.raises(SubmissionError):
        make_entry(edited, custom=True)
