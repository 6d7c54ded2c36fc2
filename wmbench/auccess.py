"""AUCCESS, PHYRE's score of an agent that may try each task up to 100 times, and PHYRE's splits.

==================  ==========================================================================
AUCCESS             ``sum_k w_k s_k / sum_k w_k`` over k = 1..100, with ``w_k = log(k + 1) -
                    log(k)`` and ``s_k`` the fraction of tasks solved within k valid attempts
                    (REFERENCE.md section 10). Early solutions weigh most: solving every task at
                    attempt k scores ``(log 101 - log k) / log 101``
interval            a percentile bootstrap over tasks (resampled with replacement), seeded
splits              ``within``: each template's tasks are divided 80/20 into train and test;
                    ``cross``: the templates are. Fold f of a seed is a seeded permutation cut
                    at the f-th fifth, so folds 0-4 of one seed test every item exactly once
==================  ==========================================================================
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

MAX_ATTEMPTS = 100
WEIGHTS = np.log(np.arange(2, MAX_ATTEMPTS + 2)) - np.log(np.arange(1, MAX_ATTEMPTS + 1))  # w_1 .. w_100
FOLDS = 5  # 80/20


def auccess(solved_at: Sequence[int | None]) -> float:
    """AUCCESS of tasks solved at the given valid attempt (1-based), ``None`` for never (within 100)."""
    if len(solved_at) == 0:
        raise ValueError("AUCCESS of no tasks is undefined; evaluate at least one task")
    attempts = np.array([MAX_ATTEMPTS + 1 if k is None else k for k in solved_at])
    if np.any(attempts < 1):
        raise ValueError(f"attempts are counted from 1; got {attempts.min()}")
    solved_within = (attempts[:, None] <= np.arange(1, MAX_ATTEMPTS + 1)).mean(0)  # s_1 .. s_100
    return float(WEIGHTS @ solved_within / WEIGHTS.sum())


def auccess_interval(solved_at: Sequence[int | None], samples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of AUCCESS over tasks."""
    rng = np.random.default_rng(seed)
    solved_at = list(solved_at)
    draws = [auccess([solved_at[i] for i in rng.integers(0, len(solved_at), len(solved_at))]) for _ in range(samples)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def split(items: Sequence, fold: int, seed: int = 0) -> tuple[list, list]:
    """(train, test): fold ``fold`` (0-4) of a seeded 80/20 division of ``items``."""
    if not 0 <= fold < FOLDS:
        raise ValueError(f"--fold {fold}: folds are 0 to {FOLDS - 1}")
    order = np.random.default_rng(seed).permutation(len(items))
    cut = [math.floor(len(items) * f / FOLDS) for f in range(FOLDS + 1)]
    test = set(order[cut[fold] : cut[fold + 1]].tolist())
    return [item for i, item in enumerate(items) if i not in test], [item for i, item in enumerate(items) if i in test]


def task_split(tasks: dict[str, Sequence[str]], kind: str, fold: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train, test) task ids of ``tasks`` (template -> its task ids) for a ``within`` or ``cross`` template split."""
    if kind == "within":
        parts = [split(list(ids), fold, seed=seed + index) for index, ids in enumerate(tasks.values())]
        return [t for train, _ in parts for t in train], [t for _, test in parts for t in test]
    if kind == "cross":
        train, test = split(list(tasks), fold, seed)
        return [t for template in train for t in tasks[template]], [t for template in test for t in tasks[template]]
    raise ValueError(f"--split {kind!r}: choose within (tasks of every template) or cross (whole templates)")
