"""Batched true-simulator rollouts: the engine of the oracle.

``goal_costs(env_name, start_states [B, S], actions [B, N, T, A], goal_states [B, S]) -> [B, N]``
rolls every candidate action sequence ``actions[b, n]`` (``T`` env actions in [-1, 1]) out from
``start_states[b]`` in the env's own physics and returns, for each, the smallest ``goal_cost``
against ``goal_states[b]`` along its ``T`` states: the cost the oracle's planner minimizes.
``rollout(env_name, start_states [M, S], actions [M, T, A]) -> states [M, T, S]`` gives the states
themselves. Each env's simulator gives the states the env gives when stepped one action at a
time from ``set_state(start)``:

==========  ==========================================================================================
Two-Room    the env's step (substeps, push-out of walls, slide) vectorized in numpy over all
            candidates; exact (where numpy's ``hypot`` may round otherwise than ``math.hypot`` in a value
            that decides a contact or a substep count, the env's own ``math.hypot`` is used)
Push-T      pymunk spaces are independent: worker processes, started once and reused, split the
            candidates. In each, the pusher's PD control is computed in numpy for its whole chunk (the
            pusher is kinematic, so its path does not depend on the block), and pymunk, in the env's own
            space, moves the block with the pusher's velocity set before each substep as the env sets
            it. Exact
Reacher     MuJoCo's native multi-threaded rollout (``mujoco.rollout``) of the open-loop motor
            commands, from the full physics state; to rounding (the env wraps the shoulder angle
            between steps, which changes no physics beyond the last bit)
Cube        ogbench's end-effector controller solves inverse kinematics from the current state at
            every step, so its controls are not open-loop: ``mujoco.rollout`` cannot take them. The
            env's own physics (controller, then 25 MuJoCo steps) runs in worker processes instead.
            Exact
==========  ==========================================================================================

Simulators read the standard env (no variation). The harness imports this module; envs never do.
"""

from __future__ import annotations

import atexit
import gc
import math
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np

import wmbench
from wmbench import cluster

CHUNKS_PER_WORKER = 4  # candidates differ in cost (contacts), so each worker takes several chunks
NEAR_DECISION = 1e-9  # relative: how close to a contact or substep threshold numpy's hypot is not trusted


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def state_env(env_name: str):
    """A standard env of ``env_name`` returning states only, reset once (its physics built)."""
    env = wmbench.make(env_name, obs_type="state", resolution=8, terminate_on_success=False).unwrapped
    env.reset(seed=0)
    return env


# ---------------------------------------------------------------------- the entry points
def goal_costs(env_name: str, start_states: np.ndarray, actions: np.ndarray, goal_states: np.ndarray) -> np.ndarray:
    """The smallest ``goal_cost`` along each candidate's rollout: ``[B, S], [B, N, T, A], [B, S] -> [B, N]``."""
    batch, samples = actions.shape[:2]
    simulator = simulator_for(env_name)
    flat = lambda rows: np.repeat(np.asarray(rows, np.float64), samples, axis=0)
    states = simulator.rollout(flat(start_states), np.asarray(actions, np.float64).reshape(batch * samples, *actions.shape[2:]))
    return simulator.costs(states, flat(goal_states)).min(axis=1).reshape(batch, samples)


def rollout(env_name: str, start_states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The states after each action: ``[M, S], [M, T, A] -> [M, T, S]``."""
    return simulator_for(env_name).rollout(np.asarray(start_states, np.float64), np.asarray(actions, np.float64))


def step_costs(env_name: str, states: np.ndarray, goal_states: np.ndarray) -> np.ndarray:
    """``goal_cost`` of every state of rollouts against their goals: ``[M, T, S], [M, S] -> [M, T]``."""
    return simulator_for(env_name).costs(np.asarray(states, np.float64), np.asarray(goal_states, np.float64))


@cache
def simulator_for(env_name: str):
    """The simulator of ``env_name``, made once per process (worker pools included)."""
    simulators = {"tworoom": TwoRoomSimulator, "pusht": PushTSimulator, "reacher": ReacherSimulator, "cube": CubeSimulator}
    if env_name not in simulators:
        raise ValueError(f"no batched simulator for {env_name}; goal-reaching envs: {', '.join(simulators)}")
    return simulators[env_name]()


# ---------------------------------------------------------------------- worker processes
@cache
def worker_env(env_name: str):
    """In a worker process (of the local pool or of Ray): its env of ``env_name``, stepped by the functions below."""
    return state_env(env_name)


def start_worker(env_name: str, parent: int) -> None:
    threading.Thread(target=exit_with_parent, args=(parent,), daemon=True).start()
    worker_env(env_name)


def exit_with_parent(parent: int) -> None:
    """End a worker whose evaluation died (killed for memory, say): it would block on a pipe nobody reads."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


@atexit.register
def release_simulations() -> None:
    """Free the simulations while their packages are still loaded (pymunk's finalizers need its module)."""
    worker_env.cache_clear()
    simulator_for.cache_clear()
    gc.collect()


@cache
def worker_pool(env_name: str) -> ProcessPoolExecutor:
    """One worker per core, each holding an env of ``env_name``; started on first use and kept for the process."""
    # spawn, not fork: MuJoCo's GL context and the caller's threads do not survive a fork
    return ProcessPoolExecutor(cores(), mp_context=multiprocessing.get_context("spawn"), initializer=start_worker,
                               initargs=(env_name, os.getpid()))


RAY: dict[str, Any] = {"on": False}  # whether the chunks go to a Ray cluster instead of the local pool (``on_ray``)


@contextmanager
def on_ray(address: str | None = None) -> Iterator[None]:
    """While the block runs, ``in_workers`` sends its chunks as tasks to the Ray cluster at ``address``
    (``wmbench.cluster.connect``), joined at the first chunk: settings are checked before a cluster is."""
    RAY.update(on=True, address=address)
    try:
        yield
    finally:
        RAY["on"] = False


def in_workers(env_name: str, function, *row_arrays: np.ndarray) -> list:
    """``function(env_name, *chunk)`` over chunks of the rows of ``row_arrays`` in the env's workers, results in order."""
    if RAY["on"]:
        cluster.connect(RAY["address"])
    workers = cluster.cluster_cpus() if RAY["on"] else cores()
    rows = len(row_arrays[0])
    chunks = min(rows, workers * CHUNKS_PER_WORKER)
    if chunks == 0:
        return []
    bounds = np.linspace(0, rows, chunks + 1).astype(int)
    pieces = [(env_name, *[array[lo:hi] for array in row_arrays]) for lo, hi in zip(bounds[:-1], bounds[1:])]
    if RAY["on"]:
        return cluster.run_ordered(function, pieces)
    return list(worker_pool(env_name).map(function, *zip(*pieces)))


# ---------------------------------------------------------------------- Two-Room
def python_hypot(x: np.ndarray, y: np.ndarray, trusted: np.ndarray) -> np.ndarray:
    """``math.hypot`` elementwise: numpy's where ``trusted``, the env's own ``math.hypot`` elsewhere."""
    result = np.hypot(x, y)
    redo = ~trusted
    if redo.any():
        result[redo] = [math.hypot(a, b) for a, b in zip(x[redo].tolist(), y[redo].tolist())]
    return result


class TwoRoomSimulator:
    """The env's ``_simulate`` for all candidates at once (see ``wmbench/envs/tworoom.py``)."""

    def __init__(self):
        from wmbench.envs.tworoom import BORDER, SUCCESS_DISTANCE, WALL_X, WORLD

        env = state_env("tworoom")
        self.radius, self.speed, self.pieces = env._radius, env._speed, env._pieces
        self.low, self.high = BORDER + self.radius, WORLD - BORDER - self.radius
        self.wall_x, self.success_distance = WALL_X, SUCCESS_DISTANCE
        self.doors = np.array(env.variation["door_centers"])

    def rollout(self, starts: np.ndarray, actions: np.ndarray) -> np.ndarray:
        x, y = starts[:, 0].copy(), starts[:, 1].copy()
        states = np.empty((len(starts), actions.shape[1], 2))
        actions = np.clip(actions, -1.0, 1.0)
        for t in range(actions.shape[1]):
            x, y = self.step(x, y, self.speed * actions[:, t, 0], self.speed * actions[:, t, 1])
            states[:, t, 0], states[:, t, 1] = x, y
        return states

    def step(self, x: np.ndarray, y: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        half_radius = 0.5 * self.radius
        ratio = np.hypot(dx, dy) / half_radius
        near_whole = np.abs(ratio - np.round(ratio)) <= NEAR_DECISION * np.maximum(ratio, 1.0)
        substeps = np.maximum(1.0, np.ceil(python_hypot(dx, dy, ~near_whole) / half_radius))
        moved_x, moved_y, touched = x.copy(), y.copy(), np.zeros(len(x), bool)
        for k in range(int(substeps.max())):
            active = k < substeps
            new_x, new_y, hit = self.push_out(moved_x + dx / substeps, moved_y + dy / substeps)
            moved_x, moved_y = np.where(active, new_x, moved_x), np.where(active, new_y, moved_y)
            touched |= active & hit
        return np.where(touched, moved_x, x + dx), np.where(touched, moved_y, y + dy)

    def push_out(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The env's ``_push_out`` elementwise: out of each wall piece in turn, then inside the border."""
        r, hit = self.radius, np.zeros(len(x), bool)
        for x0, x1, y0, y1 in self.pieces:
            near_x, near_y = np.minimum(np.maximum(x, x0), x1), np.minimum(np.maximum(y, y0), y1)
            rough = np.hypot(x - near_x, y - near_y)
            distance = python_hypot(x - near_x, y - near_y, rough >= r * (1 + NEAR_DECISION))
            inside = distance < r
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.where(inside, near_x + (x - near_x) * r / distance, x)
                y = np.where(inside, near_y + (y - near_y) * r / distance, y)
            hit |= inside
        outside = (x < self.low) | (x > self.high) | (y < self.low) | (y > self.high)
        return np.clip(x, self.low, self.high), np.clip(y, self.low, self.high), hit | outside

    def costs(self, states: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """The env's ``goal_cost``: the walking distance, through the best door when the goal is across the wall."""
        position, goal = states[..., :2], goals[:, None, :2]
        direct = np.hypot(*np.moveaxis(position - goal, -1, 0))
        doors = np.stack([np.full_like(self.doors, self.wall_x), self.doors], axis=-1)  # [doors, 2]
        via = (np.linalg.norm(position[..., None, :] - doors, axis=-1) + np.linalg.norm(doors - goal[..., None, :], axis=-1)).min(axis=-1)
        same_room = (position[..., 0] < self.wall_x) == (goal[..., 0] < self.wall_x)
        return np.where(same_room, direct, via) / self.success_distance


# ---------------------------------------------------------------------- Push-T
def pusher_paths(env, starts: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pusher's positions and velocities ``[M, T, substeps, 2]`` after each substep, by the env's float
    operations: it is kinematic, so its path does not depend on the block."""
    from wmbench.envs.pusht import ACTION_SCALE, ARENA, DT, SUBSTEPS

    kp, kv = env.variation["kp"], env.variation["kv"]
    position, velocity = starts[:, 0:2].copy(), starts[:, 5:7].copy()
    shape = (*actions.shape[:2], SUBSTEPS, 2)
    positions, velocities = np.empty(shape), np.empty(shape)
    for t in range(actions.shape[1]):
        target = np.minimum(np.maximum(position + ACTION_SCALE * actions[:, t], 0.0), ARENA)
        for k in range(SUBSTEPS):
            acceleration = kp * (target - position) + kv * (0.0 - velocity)
            velocity = velocity + acceleration * DT
            position = position + velocity * DT  # pymunk moves a kinematic body by exactly v dt
            positions[:, t, k], velocities[:, t, k] = position, velocity
    return positions, velocities


def pusht_states(env_name: str, starts: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """In a worker: the env's states after each action, ``[M, S], [M, T, A] -> [M, T, S]``: the pusher's path
    from ``pusher_paths``, the block from pymunk (the env's own space, the pusher's velocity set before each
    substep as the env sets it)."""
    from wmbench.envs.pusht import DT

    env = worker_env(env_name)
    positions, velocities = pusher_paths(env, starts, actions)
    states = np.empty((*actions.shape[:2], len(starts[0])))
    states[..., 0:2], states[..., 5:7] = positions[:, :, -1], velocities[:, :, -1]
    for i, start in enumerate(starts):
        env._load_state(start)
        space, agent, block = env._space, env._agent, env._block
        for t, step in enumerate(velocities[i].tolist()):
            for velocity in step:
                agent.velocity = velocity
                space.step(DT)
            position = block.position
            states[i, t, 2:5] = position.x, position.y, block.angle
    states[..., 4] = wrap_angles(states[..., 4])
    return states


def wrap_angles(angle: np.ndarray) -> np.ndarray:
    """The env's ``wrap_angle`` elementwise (to [-pi, pi), angles already there untouched)."""
    wrapped = np.remainder(angle + math.pi, 2 * math.pi) - math.pi
    wrapped = np.where(wrapped >= math.pi, wrapped - 2 * math.pi, wrapped)
    return np.where((angle >= -math.pi) & (angle < math.pi), angle, wrapped)


class PushTSimulator:
    """pymunk in worker processes, the pusher's PD control in numpy."""

    def __init__(self):
        from wmbench.envs.pusht import GOAL_ANGLE_TOLERANCE, GOAL_POS_TOLERANCE

        self.goal_pos_tolerance, self.goal_angle_tolerance = GOAL_POS_TOLERANCE, GOAL_ANGLE_TOLERANCE

    def rollout(self, starts: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return np.concatenate(in_workers("pusht", pusht_states, starts, np.clip(actions, -1.0, 1.0)))

    def costs(self, states: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """The env's ``goal_cost`` (task "goal"): position error / 20 + angle error / (pi / 9)."""
        position_error = np.sqrt(np.square(states[..., :4] - goals[:, None, :4]).sum(axis=-1))
        angle_error = np.abs(wrap_angles(states[..., 4] - goals[:, None, 4]))
        return position_error / self.goal_pos_tolerance + angle_error / self.goal_angle_tolerance


# ---------------------------------------------------------------------- Reacher
class ReacherSimulator:
    """dm_control's reacher model rolled out by ``mujoco.rollout`` on every core."""

    def __init__(self):
        import mujoco
        import mujoco.rollout

        from wmbench.envs.reacher import ACTION_REPEAT, SUCCESS_TOLERANCE

        self.env = state_env("reacher")
        self.model = self.env.physics.model.ptr
        self.spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self.threads = cores()
        self.datas = [mujoco.MjData(self.model) for _ in range(self.threads)]
        self.runner = mujoco.rollout.Rollout(nthread=self.threads if self.threads > 1 else 0)
        self.action_repeat, self.tolerance = ACTION_REPEAT, SUCCESS_TOLERANCE
        self.qpos = slice(1, 1 + self.model.nq)  # in a full physics state: time, qpos, qvel, act
        self.qvel = slice(self.qpos.stop, self.qpos.stop + self.model.nv)

    def physics_states(self, starts: np.ndarray) -> np.ndarray:
        """Full MuJoCo states of env states, the way the env loads them (time 0, no actuator state)."""
        import mujoco

        data, size = self.datas[0], mujoco.mj_stateSize(self.model, self.spec)
        unique, index = np.unique(starts[:, :4], axis=0, return_inverse=True)
        physics = np.zeros((len(unique), size))
        for row, start in zip(physics, unique):
            mujoco.mj_resetData(self.model, data)
            data.qpos[:], data.qvel[:] = start[0:2], start[2:4]
            mujoco.mj_getState(self.model, data, row, self.spec)
        return physics[index.ravel()]

    def rollout(self, starts: np.ndarray, actions: np.ndarray) -> np.ndarray:
        controls = np.repeat(np.clip(actions, -1.0, 1.0), self.action_repeat, axis=1)
        warmstart = np.zeros((len(starts), self.model.nv))  # the env forgets the solver's warm start on load
        physics, _ = self.runner.rollout([self.model], self.datas, self.physics_states(starts), controls, initial_warmstart=warmstart)
        physics = physics[:, self.action_repeat - 1 :: self.action_repeat]
        states = np.empty((*actions.shape[:2], 6))
        states[..., 0:2], states[..., 2:4] = physics[..., self.qpos], physics[..., self.qvel]
        states[..., 0] = wrap_angles(states[..., 0])  # the env keeps the free shoulder's angle in [-pi, pi)
        states[..., 4:6] = starts[:, None, 4:6]
        return states

    def costs(self, states: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """The env's ``goal_cost``: the norm of the two joint errors (modulo 2 pi) / 0.05 rad."""
        error = np.abs(np.angle(np.exp(1j * (states[..., 0:2] - goals[:, None, 0:2]))))
        return np.sqrt(np.square(error).sum(axis=-1)) / self.tolerance


# ---------------------------------------------------------------------- Cube
def cube_states(env_name: str, starts: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """In a worker: the env's physics, one action at a time, from each start: ``[M, S], [M, T, A] -> [M, T, S]``."""
    import mujoco

    env = worker_env(env_name)
    sim = env.sim
    states = np.empty((*actions.shape[:2], len(starts[0])))
    for i, start in enumerate(starts):
        env._load_state(start)
        for t, action in enumerate(actions[i]):
            sim.set_control(action)  # ogbench's inverse kinematics from the current state
            mujoco.mj_step(sim.model, sim.data, nstep=sim._n_steps)
            states[i, t] = env.get_state()
    return states


class CubeSimulator:
    """The env's physics in worker processes (its controls depend on the state at every step)."""

    def __init__(self):
        self.env = state_env("cube")

    def rollout(self, starts: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return np.concatenate(in_workers("cube", cube_states, starts, np.clip(actions, -1.0, 1.0)))

    def costs(self, states: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """The env's own ``goal_cost`` (it needs the gripper's forward kinematics), state by state."""
        cost = self.env.goal_cost
        return np.array([[cost(state, goal) for state in rollout_states] for rollout_states, goal in zip(states, goals)])
