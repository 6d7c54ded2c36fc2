"""PHYRE's train/test splits of the tasks: within-template and cross-template, five 80/20 folds.

``within``: each template's tasks are divided 80/20 into train and test; ``cross``: the templates
are. Fold f of a seed is a seeded permutation cut at the f-th fifth, so folds 0-4 of one seed
test every item exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from wmbench.envs.phyre.templates import TASKS_PER_TEMPLATE, TEMPLATES, task_id

FOLDS = 5  # 80/20


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


def split_tasks(split: str, fold: int, seed: int) -> tuple[list[str], list[str]]:
    """(train, test) task ids ``"<template>:<index>"`` of fold ``fold`` of a ``within`` or ``cross`` split."""
    every_task = {name: [task_id(name, index) for index in range(TASKS_PER_TEMPLATE)] for name in TEMPLATES}
    return task_split(every_task, split, fold, seed)
