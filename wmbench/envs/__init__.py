"""The registry of wmbench environments: short names, gymnasium ids and registration.

gymnasium 1.x has no plugin hook, so ``gym.make("wmbench/PushT-v0")`` needs ``import wmbench``
first; ``gym.make("wmbench:wmbench/PushT-v0")`` imports it for you.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym

from wmbench.envs.base import Number, checked, shown


@dataclass(frozen=True)
class EnvEntry:
    short_name: str  # what the CLI takes: `--env pusht`
    id: str  # the gymnasium id
    entry_point: str
    max_episode_steps: int
    default_policy: str  # the data policy `wmbench rollout` uses when none is named
    extra: str | None = None  # the pip extra its dependencies come with: `pip install 'wmbench[mujoco]'`
    # goal: reach a goal image by MPC (evaluation sets, `wmbench eval`, the leaderboard);
    # video: passive videos with events and questions (no goal to reach); puzzle: one action, then
    # passive physics, scored by AUCCESS
    task: str = "goal"
    # gymnasium's "solved" episode return: 1.0 where the reward is 1 on success and 0 before it, so
    # a return reaches it exactly when the episode reaches its goal; None where no return means solved
    reward_threshold: float | None = None


ENVS: dict[str, EnvEntry] = {
    entry.short_name: entry
    for entry in (
        EnvEntry("pusht", "wmbench/PushT-v0", "wmbench.envs.pusht:PushTEnv", 300, "weak", reward_threshold=1.0),
        EnvEntry("tworoom", "wmbench/TwoRoom-v0", "wmbench.envs.tworoom:TwoRoomEnv", 200, "expert", reward_threshold=1.0),
        EnvEntry("reacher", "wmbench/Reacher-v0", "wmbench.envs.reacher:ReacherEnv", 200, "random", extra="mujoco", reward_threshold=1.0),
        EnvEntry("cube", "wmbench/Cube-v0", "wmbench.envs.cube:CubeEnv", 200, "oracle", extra="mujoco", reward_threshold=1.0),
        EnvEntry("clevrer", "wmbench/CLEVRER-v0", "wmbench.envs.clevrer:ClevrerEnv", 127, "passive", extra="clevrer", task="video"),
        EnvEntry("phyre", "wmbench/PHYRE-v0", "wmbench.envs.phyre:PhyreEnv", 18, "random_valid", task="puzzle", reward_threshold=1.0),
    )
}
GOAL_ENVS: dict[str, EnvEntry] = {name: entry for name, entry in ENVS.items() if entry.task == "goal"}


def register_envs() -> None:
    """Register every wmbench environment with gymnasium (idempotent)."""
    for entry in ENVS.values():
        if entry.id not in gym.registry:
            gym.register(
                id=entry.id,
                entry_point=entry.entry_point,
                max_episode_steps=entry.max_episode_steps,
                reward_threshold=entry.reward_threshold,
            )


def env_id(name: str) -> str:
    """The gymnasium id for a short name (``pusht``), a bare name (``PushT``) or a full id."""
    key = name.lower().removeprefix("wmbench:").removeprefix("wmbench/").removesuffix("-v0") if isinstance(name, str) else None
    for entry in ENVS.values():
        if key in (entry.short_name, entry.id.lower().removeprefix("wmbench/").removesuffix("-v0")):
            return entry.id
    known = ", ".join(f"{e.short_name} ({e.id})" for e in ENVS.values())
    raise ValueError(f"unknown environment {shown(name)}; wmbench has: {known}")


def goal_env(name: str) -> str:
    """The short name of a goal-reaching env; a clear error for an env with no goal to reach."""
    short = short_name(name)
    if short not in GOAL_ENVS:
        raise ValueError(
            f"{short} is a {ENVS[short].task} environment: it has no goal to reach, so no evaluation set or MPC "
            f"evaluation; goal-reaching envs: {', '.join(GOAL_ENVS)}"
        )
    return short


def short_name(name: str) -> str:
    """The CLI name (``pusht``) of any accepted spelling."""
    full = env_id(name)
    return next(e.short_name for e in ENVS.values() if e.id == full)


def make(name: str, **kwargs) -> gym.Env:
    """``gym.make`` by short name: ``wmbench.make("pusht", resolution=96)``.

    The arguments gymnasium reads itself are checked here, so that a bad one is a ``ValueError``
    like every other bad argument: ``max_episode_steps`` (its time limit; -1 for none) and the type
    of ``render_mode`` (its wrappers take "human" and "rgb_array_list"; the env takes "rgb_array").
    """
    register_envs()
    full_id = env_id(name)
    steps = kwargs.get("max_episode_steps")
    if steps is not None and not (type(steps) is int and steps == -1):
        checked(Number(1, math.inf, integer=True), f"{full_id}: max_episode_steps", steps)
    render_mode = kwargs.get("render_mode")
    if render_mode is not None and not isinstance(render_mode, str):
        raise ValueError(f"{full_id}: render_mode={shown(render_mode)} is not a string; give 'rgb_array' (the default) or None")
    return gym.make(full_id, **kwargs)
