"""Frozen evaluation sets: (start state, goal state) pairs the evaluation harness resets envs to.

A pair comes from a held-out trajectory of the env's standard training policy (seeds
``EVAL_SEED`` and up; the training recipes use 0..999): a start step drawn uniformly, the goal
``GOAL_OFFSET`` env steps later, as in the published protocol. Starts that already satisfy
the goal are excluded. The sets are committed in ``wmbench/data/eval_sets/`` (``<env>.npz`` with the
arrays, ``<env>.json`` with how they were made and their sha256), so evaluating needs no
training data::

    evalset = load_eval_set("pusht")
    obs, info = env.reset(options={"state": evalset.start_states[i], "goal_state": evalset.goal_states[i]})

The committed arrays are the data: their checksum is checked on load. Replaying ``actions[i]``
from ``start_states[i]`` reaches a state that satisfies the env's success rule for
``goal_states[i]``. On the machine that made a set, the replay reaches the goal and
``wmbench evalset`` regenerates the set bit for bit. On another CPU, the pure-Python envs (Push-T,
Two-Room) still do. The MuJoCo envs differ in the last bits there, which contacts amplify: their
replays end within ``MUJOCO_CPU_TOLERANCE`` of the goals, but a whole regenerated set may not
match, which is why evaluations use the committed arrays (figures in ``datasets/README.md``).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import wmbench
from wmbench.data.recipe import episode_seeds
from wmbench.envs import ENVS, goal_env, short_name
from wmbench.files import atomic_write, write_json
from wmbench.policies import make_policy
from wmbench.progress import progress_bar
from wmbench.protocol import GOAL_REACHING

PAIRS = GOAL_REACHING.pairs
GOAL_OFFSET = GOAL_REACHING.goal_offset  # env steps from start to goal
EVAL_SEED = 1_000_000  # held out: the training recipes use seeds 0..999
EVAL_DIR = Path(__file__).parent / "eval_sets"  # package data: a wheel install evaluates from the same files
MUJOCO_CPU_TOLERANCE = 1e-4  # another CPU rounds differently and contacts amplify it: replays measured within 1.3e-7


class HeldOut(NamedTuple):
    policy: str
    steps: int


# The held-out trajectories: the policy and episode length of each env's standard training set.
HELD_OUT: dict[str, HeldOut] = {
    "pusht": HeldOut("weak", 160),
    "tworoom": HeldOut("expert", 92),
    "reacher": HeldOut("random", 200),
    "cube": HeldOut("oracle", 200),
}


@dataclass
class EvalSet:
    start_states: np.ndarray  # [N, S] float64
    goal_states: np.ndarray  # [N, S] float64
    actions: np.ndarray  # [N, GOAL_OFFSET, A] float32: start -> goal
    episodes: np.ndarray  # [N] int64: the held-out episode index j
    env_seeds: np.ndarray  # [N] int64: its env reset seed
    start_steps: np.ndarray  # [N] int64: the start's step in that episode
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.start_states)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAY_NAMES}


ARRAY_NAMES = tuple(f.name for f in fields(EvalSet) if f.name != "meta")


def command(env_name: str) -> str:
    """The command that regenerates an env's committed set."""
    return f"wmbench evalset --env {short_name(env_name)}"


def generate_eval_set(env_name: str, pairs: int = PAIRS, progress: bool = True) -> EvalSet:
    """The first ``pairs`` pairs from held-out episodes 0, 1, 2, ... (deterministic)."""
    name = goal_env(env_name)
    policy_name, steps = HELD_OUT[name]
    env = wmbench.make(name, obs_type="state", terminate_on_success=False)
    sim = env.unwrapped
    rows: list[tuple] = []
    episode = rejected = 0
    with progress_bar(total=pairs, desc=f"eval set {name}", unit="pair", disable=not progress) as bar:
        while len(rows) < pairs:
            env_seed, policy_seed = episode_seeds(EVAL_SEED, episode)
            start_step = int(np.random.default_rng([EVAL_SEED, episode]).integers(0, steps - GOAL_OFFSET + 1))
            policy = make_policy(env, policy_name, seed=policy_seed)
            env.reset(seed=env_seed)
            policy.reset()
            # Steps after the goal change nothing in the pair, so the rollout stops there.
            for _ in range(start_step):
                env.step(policy.act())
            start = sim.get_state()
            actions = np.empty((GOAL_OFFSET, *env.action_space.shape), np.float32)
            for t in range(GOAL_OFFSET):
                actions[t] = policy.act()
                env.step(actions[t])
            # The goal is replayed from the loaded start, not read off the rollout: some envs
            # round-trip exactly only from a loaded state, and the harness starts from one.
            env.reset(options={"state": start, "goal_state": start})
            for action in actions:
                env.step(action)
            goal = sim.get_state()
            if sim.success_rule(start, goal):
                rejected += 1
            else:
                rows.append((start, goal, actions, episode, env_seed, start_step))
                bar.update()
            episode += 1
    env.close()

    starts, goals, actions, episodes, env_seeds, start_steps = zip(*rows)
    evalset = EvalSet(
        start_states=np.stack(starts).astype(np.float64),
        goal_states=np.stack(goals).astype(np.float64),
        actions=np.stack(actions).astype(np.float32),
        episodes=np.array(episodes, np.int64),
        env_seeds=np.array(env_seeds, np.int64),
        start_steps=np.array(start_steps, np.int64),
    )
    evalset.meta = {
        "env": name,
        "env_id": ENVS[name].id,
        "variation": "standard",
        "policy": policy_name,
        "episode_steps": steps,
        "goal_offset": GOAL_OFFSET,
        "seed": EVAL_SEED,
        "pairs": pairs,
        "episodes_drawn": episode,
        "rejected_already_solved": rejected,
        "wmbench_version": wmbench.__version__,
        "command": command(name),
        "sha256": checksum(evalset),
    }
    return evalset


def checksum(evalset: EvalSet) -> str:
    """sha256 of the arrays (names, dtypes, shapes, bytes): independent of the file format and the meta."""
    digest = hashlib.sha256()
    for name in ARRAY_NAMES:
        array = np.ascontiguousarray(getattr(evalset, name))
        digest.update(f"{name} {array.dtype.str} {array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_eval_set(evalset: EvalSet, directory: str | Path = EVAL_DIR) -> Path:
    """Write ``<directory>/<env>.npz`` and ``<env>.json``; returns the npz path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = evalset.meta["env"]
    meta = {**evalset.meta, "sha256": checksum(evalset)}

    def write_arrays(tmp: Path) -> None:
        with open(tmp, "wb") as file:  # a file object: given a path, numpy would append ".npz"
            np.savez_compressed(file, **evalset.arrays())

    atomic_write(directory / f"{name}.npz", write_arrays)
    write_json(directory / f"{name}.json", meta)
    return directory / f"{name}.npz"


def load_eval_set(env_name: str, directory: str | Path | None = None) -> EvalSet:
    """The committed set of an env, its arrays checked against the sha256 in its JSON."""
    name = goal_env(env_name)
    directory = Path(directory) if directory is not None else EVAL_DIR
    arrays_path, meta_path = directory / f"{name}.npz", directory / f"{name}.json"
    fix = f"regenerate it with `{command(name)}`"
    try:
        meta = json.loads(meta_path.read_text())
        with np.load(arrays_path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in ARRAY_NAMES}
    except FileNotFoundError as error:
        raise ValueError(f"evaluation set file {error.filename} is missing; {fix}") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(f"evaluation set {arrays_path} / {meta_path} is unreadable ({error}); {fix}") from None
    evalset = EvalSet(**arrays, meta=meta)
    expected, actual = meta.get("sha256"), checksum(evalset)
    if actual != expected:
        raise ValueError(
            f"evaluation set {arrays_path} does not match its checksum in {meta_path} "
            f"(sha256 {actual}, expected {expected}): the file is corrupted or was edited; {fix}"
        )
    return evalset


def draw_pairs(evalset: EvalSet, episodes: int, seed: int) -> np.ndarray:
    """Which pairs of the set an evaluation uses: ``episodes`` distinct ones drawn with ``seed``, in order."""
    if episodes > len(evalset):
        raise ValueError(f"--episodes {episodes}: the evaluation set has {len(evalset)} pairs")
    return np.sort(np.random.default_rng(seed).choice(len(evalset), size=episodes, replace=False))
