"""Data policies: the correlated random walk travels; the Cube oracle keeps moving the cube."""

from __future__ import annotations

import numpy as np
import pytest

import wmbench
from wmbench.envs import ENVS
from wmbench.policies import POLICIES, POLICY_DOCS, make_policy


def actions(env, name, steps=400, seed=0):
    policy = make_policy(env, name, seed=seed)
    env.reset(seed=seed)
    policy.reset()
    return np.array([policy.act() for _ in range(steps)])


def lag1_correlation(a: np.ndarray) -> float:
    return float(np.mean([np.corrcoef(a[:-1, i], a[1:, i])[0, 1] for i in range(a.shape[1])]))


def test_every_policy_is_documented_and_every_env_has_both_random_policies():
    assert set(POLICIES) == set(ENVS)
    for env, policies in POLICIES.items():
        assert {"random", "correlated", ENVS[env].default_policy} <= set(policies)
        assert set(policies) <= set(POLICY_DOCS)


def test_correlated_random_is_correlated_bounded_and_travels():
    env = wmbench.make("tworoom", obs_type="state", terminate_on_success=False)
    uniform, correlated = actions(env, "random"), actions(env, "correlated")
    assert abs(lag1_correlation(uniform)) < 0.15 and lag1_correlation(correlated) > 0.8
    assert np.all(np.abs(correlated) <= 1) and correlated.std() > 0.4  # not stuck near zero

    def travel(name):  # mean distance from the start after 30 steps, over 20 episodes
        distances = []
        for seed in range(20):
            policy = make_policy(env, name, seed=seed)
            obs, _ = env.reset(seed=seed)
            policy.reset()
            start = obs["state"].copy()
            for _ in range(30):
                obs, *_ = env.step(policy.act())
            distances.append(np.linalg.norm(obs["state"] - start))
        return np.mean(distances)

    assert travel("correlated") > 2 * travel("random")


def test_correlated_random_is_seeded():
    env = wmbench.make("pusht", obs_type="state")
    assert np.array_equal(actions(env, "correlated", 50, seed=3), actions(env, "correlated", 50, seed=3))
    assert not np.array_equal(actions(env, "correlated", 50, seed=3), actions(env, "correlated", 50, seed=4))


def test_cube_oracle_carries_the_cube_on_after_placing_it():
    pytest.importorskip("mujoco", reason="needs the 'mujoco' extra")
    from wmbench.envs.cube import CUBE_POS

    env = wmbench.make("cube", obs_type="state", terminate_on_success=False)
    moved_after_success = []
    for seed in range(3):
        policy = make_policy(env, "oracle", seed=seed)
        env.reset(seed=seed)
        policy.reset()
        first_success, positions = None, []
        for t in range(200):
            _, _, _, _, info = env.step(policy.act())
            positions.append(env.unwrapped.get_state()[CUBE_POS])
            if info["success"] and first_success is None:
                first_success = t
        assert first_success is not None
        moved_after_success.append(np.linalg.norm(positions[-1] - positions[first_success]))
    assert min(moved_after_success) > 0.05  # it did not hover over the first target
