"""Dataset recipes: the few numbers that define a dataset, read from a small TOML file.

A recipe reproduces its dataset bit for bit: episode ``i`` is seeded from ``(seed, i)`` alone,
whatever the number of workers or the order they finish in::

    name = "wmbench/pusht-weak-v0"   # the Minari dataset id it is written under
    env = "pusht"
    policy = "weak"
    episodes = 18500
    steps = 160                      # env steps per episode (every episode has exactly this many)
    seed = 0
    resolution = 224
    variation = "standard"           # optional: a preset name or a table of factors
"""

from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from wmbench.envs import ENVS, short_name

# Minari's dataset id: (namespace/)name-vN
DATASET_ID = re.compile(r"^(?:[-_\w][-_\w/]*[-_\w]/)?[-_\w]+?-v\d+$")


def check_dataset_id(name: str) -> str:
    if not isinstance(name, str) or not DATASET_ID.fullmatch(name):
        raise ValueError(
            f"dataset name {name!r} is not a Minari dataset id; use (namespace/)name-vN, e.g. 'pusht-weak-mini-v0'"
        )
    return name


@dataclass(frozen=True)
class Recipe:
    name: str
    env: str
    policy: str
    episodes: int
    steps: int
    seed: int = 0
    resolution: int = 224
    variation: str | dict[str, Any] | None = None

    def __post_init__(self):
        from wmbench.policies import policy_names

        check_dataset_id(self.name)
        object.__setattr__(self, "env", short_name(self.env))
        if self.policy not in policy_names(self.env):
            raise ValueError(f"unknown policy {self.policy!r} for {self.env}; choose one of {policy_names(self.env)}")
        for key, low in (("episodes", 1), ("steps", 1), ("seed", 0), ("resolution", 8)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{key} = {value!r}: must be an integer >= {low}")
        if self.variation == "standard":
            object.__setattr__(self, "variation", None)

    @property
    def env_id(self) -> str:
        return ENVS[self.env].id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, fields: dict[str, Any], source: str = "recipe") -> Recipe:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {unknown}; a recipe has {sorted(known)}")
        missing = sorted(k for k in ("name", "env", "policy", "episodes", "steps") if k not in fields)
        if missing:
            raise ValueError(f"{source}: missing key(s) {missing}")
        try:
            return cls(**fields)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        path = Path(path)
        try:
            fields = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"recipe {path} not found") from None
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"recipe {path} is not valid TOML: {error}") from None
        return cls.from_dict(fields, source=f"recipe {path}")


def episode_seeds(seed: int, index: int) -> tuple[int, int]:
    """(env reset seed, policy seed) of episode ``index``: independent streams for every (seed, index)."""
    env_seed, policy_seed = np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(2)
    return int(env_seed), int(policy_seed)
