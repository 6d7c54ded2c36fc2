"""Frozen evaluation sets: the committed sets are intact, no start is already solved, replaying the
stored actions reaches each goal, regeneration gives the committed arrays, damage is reported.

Push-T and Two-Room reproduce bit for bit on any machine. The MuJoCo envs do so only on the CPU
that made the set; elsewhere they differ in the last bits, so their floats are compared within
``MUJOCO_CPU_TOLERANCE`` and their replays must satisfy the success rule."""

from __future__ import annotations

import wmbench  # noqa: I001  (first: its headless defaults must be set before MuJoCo loads)

import json
import shutil

import numpy as np
import pytest

from wmbench.data.evalset import (
    ARRAY_NAMES,
    EVAL_DIR,
    GOAL_OFFSET,
    HELD_OUT,
    MUJOCO_CPU_TOLERANCE,
    PAIRS,
    EvalSet,
    checksum,
    generate_eval_set,
    load_eval_set,
    save_eval_set,
)
from wmbench.envs import ENVS, GOAL_ENVS


@pytest.fixture(scope="module", params=sorted(HELD_OUT))
def env_name(request):
    if ENVS[request.param].extra == "mujoco":
        pytest.importorskip("mujoco")
    return request.param


@pytest.fixture(scope="module")
def committed(env_name) -> EvalSet:
    return load_eval_set(env_name)


@pytest.fixture(scope="module")
def regenerated(env_name) -> EvalSet:
    return generate_eval_set(env_name, pairs=3, progress=False)


def exact_on_any_cpu(env_name) -> bool:
    return ENVS[env_name].extra != "mujoco"


@pytest.fixture(scope="module")
def env(env_name):
    # A tiny resolution: every reset draws the goal image, and the pixels play no part here.
    env = wmbench.make(env_name, obs_type="state", terminate_on_success=False, resolution=8)
    yield env
    env.close()


def test_committed_set_matches_its_checksum_and_env(committed, env_name, env):
    sim = env.unwrapped
    state_dim, action_dim = len(sim.state_names), len(sim.action_names)
    assert checksum(committed) == committed.meta["sha256"]
    assert len(committed) == PAIRS == committed.meta["pairs"]
    assert committed.start_states.shape == committed.goal_states.shape == (PAIRS, state_dim)
    assert committed.actions.shape == (PAIRS, GOAL_OFFSET, action_dim)
    assert committed.start_states.dtype == committed.goal_states.dtype == np.float64
    assert committed.actions.dtype == np.float32
    for name in ("episodes", "env_seeds", "start_steps"):
        assert getattr(committed, name).shape == (PAIRS,) and getattr(committed, name).dtype == np.int64
    policy, steps = HELD_OUT[env_name]
    meta = committed.meta
    assert (meta["env"], meta["env_id"], meta["policy"], meta["episode_steps"]) == (env_name, ENVS[env_name].id, policy, steps)
    assert meta["episodes_drawn"] == PAIRS + meta["rejected_already_solved"]
    assert meta["command"] == f"wmbench evalset --env {env_name}"
    assert np.all(np.diff(committed.episodes) > 0)
    assert np.all((committed.start_steps >= 0) & (committed.start_steps <= steps - GOAL_OFFSET))


def test_replaying_the_actions_reaches_every_goal(committed, env_name, env):
    sim = env.unwrapped
    for start, goal, actions in zip(committed.start_states, committed.goal_states, committed.actions):
        assert not sim.success_rule(start, goal), "a start already satisfies its goal"
        env.reset(options={"state": start, "goal_state": goal})
        for action in actions:
            env.step(action)
        reached = sim.get_state()
        assert sim.success_rule(reached, goal)
        if exact_on_any_cpu(env_name):
            assert np.array_equal(reached, goal)
        else:
            np.testing.assert_allclose(reached, goal, rtol=0, atol=MUJOCO_CPU_TOLERANCE)


def test_regenerating_the_first_pairs_gives_the_committed_arrays(committed, env_name, regenerated):
    for name in ARRAY_NAMES:
        ours, committed_array = getattr(regenerated, name), getattr(committed, name)[:3]
        assert ours.dtype == committed_array.dtype, name
        if exact_on_any_cpu(env_name) or ours.dtype.kind != "f":  # which episodes and steps: exact everywhere
            np.testing.assert_array_equal(ours, committed_array, err_msg=name)
        else:
            np.testing.assert_allclose(ours, committed_array, rtol=0, atol=MUJOCO_CPU_TOLERANCE, err_msg=name)


def test_regeneration_is_bit_exact_on_one_machine(env_name, regenerated):
    """What lets the machine that made a set regenerate it bit for bit: nothing but the seeds matters."""
    assert checksum(generate_eval_set(env_name, pairs=3, progress=False)) == checksum(regenerated)


@pytest.fixture
def pusht_copy(tmp_path):
    for suffix in ("npz", "json"):
        shutil.copy(EVAL_DIR / f"pusht.{suffix}", tmp_path / f"pusht.{suffix}")
    return tmp_path


def test_save_and_load_round_trip_leaves_no_temporary_file(tmp_path):
    evalset = load_eval_set("pusht")
    save_eval_set(evalset, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pusht.json", "pusht.npz"]
    loaded = load_eval_set("pusht", tmp_path)
    for name in ARRAY_NAMES:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(evalset, name))
    assert loaded.meta == evalset.meta


def test_checksum_ignores_the_meta_but_not_the_arrays():
    evalset = load_eval_set("pusht")
    other = EvalSet(**evalset.arrays(), meta={})
    assert checksum(other) == checksum(evalset)
    other.start_steps = other.start_steps.astype(np.int32)
    assert checksum(other) != checksum(evalset)


@pytest.mark.parametrize("missing", ["pusht.npz", "pusht.json"])
def test_a_missing_file_names_it_and_the_fix(pusht_copy, missing):
    (pusht_copy / missing).unlink()
    with pytest.raises(ValueError, match=rf"{missing} is missing.*wmbench evalset --env pusht"):
        load_eval_set("pusht", pusht_copy)


def test_an_edited_array_fails_the_checksum(pusht_copy):
    evalset = load_eval_set("pusht", pusht_copy)
    evalset.goal_states[0, 0] += 1e-9
    np.savez_compressed(pusht_copy / "pusht.npz", **evalset.arrays())
    with pytest.raises(ValueError, match=r"pusht\.npz does not match its checksum in .*pusht\.json.*wmbench evalset --env pusht"):
        load_eval_set("pusht", pusht_copy)


def test_a_stale_checksum_in_the_json_is_reported(pusht_copy):
    meta = json.loads((pusht_copy / "pusht.json").read_text())
    meta["sha256"] = "0" * 64
    (pusht_copy / "pusht.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match its checksum"):
        load_eval_set("pusht", pusht_copy)


@pytest.mark.parametrize("damaged", ["pusht.npz", "pusht.json"])
def test_a_damaged_file_is_unreadable_with_the_fix(pusht_copy, damaged):
    path = pusht_copy / damaged
    data = bytearray(path.read_bytes())
    data[len(data) // 2 :] = b"\0" * (len(data) - len(data) // 2)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"unreadable.*wmbench evalset --env pusht"):
        load_eval_set("pusht", pusht_copy)


def test_the_recorded_command_regenerates_the_committed_set(tmp_path, capsys):
    from wmbench.cli import main

    committed = load_eval_set("tworoom")
    assert committed.meta["command"] == "wmbench evalset --env tworoom"
    assert main(["evalset", "--env", "tworoom", "--out", str(tmp_path)]) == 0
    assert load_eval_set("tworoom", tmp_path).meta["sha256"] == committed.meta["sha256"]
    assert committed.meta["sha256"] in capsys.readouterr().out


def test_every_registered_env_has_a_committed_set_from_its_standard_recipe():
    from pathlib import Path

    from wmbench.data.recipe import Recipe

    assert set(HELD_OUT) == set(GOAL_ENVS)
    recipes = [Recipe.load(p) for p in (Path(__file__).parents[1] / "datasets").glob("*.toml") if not p.stem.endswith("-mini")]
    goal_reaching = [r for r in recipes if r.env in GOAL_ENVS]  # PHYRE is scored by AUCCESS on its test tasks, not an evaluation set
    assert {r.env: (r.policy, r.steps) for r in goal_reaching} == {env: tuple(h) for env, h in HELD_OUT.items()}
    assert all((EVAL_DIR / f"{env}.npz").is_file() and (EVAL_DIR / f"{env}.json").is_file() for env in GOAL_ENVS)
