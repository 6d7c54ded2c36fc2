"""Collect a dataset from a recipe into a Minari dataset: parallel, resumable, finished atomically.

Each episode is written to its own file in ``<root>/.wmbench-partial/<id>/episodes/`` (temporary
name, then rename), so a Ctrl-C, a killed worker or a killed run loses at most the episodes in
flight, and ``--resume`` collects only the missing ones. Only when every episode is there are
they merged into the Minari layout, which is moved to ``<root>/<id>`` in one rename: a dataset
that Minari can load is always complete. One run at a time writes a dataset: a second run on the
same id is refused while ``<root>/.wmbench-partial/<id>.lock`` is held (``files.exclusive``).

On a Ray cluster (``on_ray``), every episode is a Ray task that records it and sends its file back;
this process writes it as a local worker's would, so the dataset is byte-identical to a local
collection of the same recipe, and a task retried after its worker died writes nothing twice.
"""

from __future__ import annotations

import atexit
import json
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
from minari.serialization import serialize_space

import wmbench
from wmbench import cluster
from wmbench.data import storage
from wmbench.data.recipe import Recipe, episode_seeds
from wmbench.policies import make_policy
from wmbench.files import atomic_write, exclusive, remove_temporaries, write_json
from wmbench.progress import progress_bar


class CollectionStopped(RuntimeError):
    """The collection stopped before the end; what was finished is kept for ``--resume``."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code  # 130 for Ctrl-C, as a shell reports it; 1 when a worker died


def make_collection_env(recipe: Recipe) -> gym.Env:
    """The env a recipe collects from: every episode runs exactly ``recipe.steps`` steps."""
    return wmbench.make(
        recipe.env,
        resolution=recipe.resolution,
        variation=recipe.variation,
        terminate_on_success=False,
        max_episode_steps=recipe.steps,
        disable_env_checker=True,
    )


def record_episode(env: gym.Env, recipe: Recipe, index: int) -> tuple[dict[str, np.ndarray], dict]:
    """Run episode ``index`` of ``recipe``: its arrays in the storage layout and its attributes."""
    env_seed, policy_seed = episode_seeds(recipe.seed, index)
    policy = make_policy(env, recipe.policy, seed=policy_seed)
    sim = env.unwrapped
    steps = recipe.steps
    obs, info = env.reset(seed=env_seed)
    policy.reset()
    arrays = {
        "observations/pixels": np.empty((steps + 1, *obs["pixels"].shape), np.uint8),
        "observations/state": np.empty((steps + 1, *obs["state"].shape), np.float32),
        "observations/proprio": np.empty((steps + 1, *obs["proprio"].shape), np.float32),
        "actions": np.empty((steps, *env.action_space.shape), np.float32),
        "rewards": np.empty(steps, np.float64),
        "terminations": np.empty(steps, bool),
        "truncations": np.empty(steps, bool),
        "infos/success": np.empty(steps + 1, bool),
        "infos/state": np.empty((steps + 1, len(sim.state_names)), np.float64),
    }

    def keep(t, obs, info):
        for key in ("pixels", "state", "proprio"):
            arrays[f"observations/{key}"][t] = obs[key]
        arrays["infos/success"][t] = info["success"]
        arrays["infos/state"][t] = sim.get_state()

    keep(0, obs, info)
    for t in range(steps):
        action = policy.act()
        obs, reward, terminated, truncated, info = env.step(action)
        arrays["actions"][t] = action
        arrays["rewards"][t], arrays["terminations"][t], arrays["truncations"][t] = reward, terminated, truncated
        keep(t + 1, obs, info)
    attrs = {"total_steps": steps, "seed": env_seed, "policy_seed": policy_seed, "goal_state": sim.goal_state}
    return arrays, attrs


def episode_file(episodes_dir: Path, index: int) -> Path:
    return episodes_dir / f"{index:07d}.h5"


# ---------------------------------------------------------------------- worker processes
_worker: dict = {}


def prepare_worker_process(parent_pid: int) -> None:
    """What every rendering worker process does first: leave Ctrl-C to the parent, render on one
    thread, and exit when the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # One rasterizer thread per worker: llvmpipe's default (one per core) oversubscribes the cores
    # the workers already fill (measured: Cube 224 px, 2 workers, 29 -> 46 steps/s).
    os.environ.setdefault("LP_NUM_THREADS", "1")
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _start_worker(recipe_fields: dict, episodes_dir: str, parent_pid: int) -> None:
    prepare_worker_process(parent_pid)
    recipe = Recipe(**recipe_fields)
    _worker.update(recipe=recipe, env=make_collection_env(recipe), episodes_dir=Path(episodes_dir))
    atexit.register(_worker.clear)  # free the simulator before interpreter teardown (pymunk complains after)


def _exit_with_parent(parent_pid: int) -> None:
    """A worker whose collector was killed would wait for work forever: leave instead."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


def _collect_in_worker(index: int) -> int:
    arrays, attrs = record_episode(_worker["env"], _worker["recipe"], index)
    storage.write_episode(episode_file(_worker["episodes_dir"], index), index, arrays, attrs)
    return index


def recorded_episode_file(recipe_fields: dict, index: int) -> bytes:
    """A Ray task: episode ``index`` of the recipe, as the bytes of its episode file."""
    recipe = Recipe(**recipe_fields)
    if _worker.get("recipe") != recipe:  # a Ray worker process keeps its env for the next episode of the same recipe
        if "env" in _worker:
            _worker["env"].close()
        os.environ.setdefault("LP_NUM_THREADS", "1")  # as in a local worker: the cores are the tasks'
        _worker.update(recipe=recipe, env=make_collection_env(recipe))
    arrays, attrs = record_episode(_worker["env"], recipe, index)
    with tempfile.TemporaryDirectory() as folder:
        path = episode_file(Path(folder), index)
        storage.write_episode(path, index, arrays, attrs)
        return path.read_bytes()


# ---------------------------------------------------------------------- the collection
def collect(recipe: Recipe, workers: int = 1, resume: bool = False, progress: bool = True, on_ray: bool = False) -> Path:
    """Collect ``recipe`` into ``<root>/<recipe.name>`` with ``workers`` processes, or as tasks on the Ray cluster this
    process is connected to (``on_ray``: see ``wmbench.cluster.connect``); returns its directory."""
    if workers < 1:
        raise ValueError(f"--workers {workers}: must be at least 1")
    target = storage.dataset_dir(recipe.name)
    staging = storage.datasets_root() / storage.PARTIAL_DIR / recipe.name
    env = make_collection_env(recipe)  # checks the variation and resolution before anything is written
    try:
        with exclusive(staging.with_name(f"{staging.name}.lock"), f"dataset {recipe.name}"):
            if target.exists():
                raise ValueError(
                    f"dataset {recipe.name} already exists at {target}; choose another name (--out) "
                    f"or delete it first (minari delete {recipe.name})"
                )
            _prepare_staging(recipe, staging, resume)
            episodes_dir = staging / "episodes"
            todo = [i for i in range(recipe.episodes) if not episode_file(episodes_dir, i).exists()]
            bar = progress_bar(total=recipe.episodes, initial=recipe.episodes - len(todo), desc=recipe.name, unit="ep",
                               disable=not progress)
            try:
                if on_ray:
                    _collect_on_ray(recipe, todo, episodes_dir, bar)
                elif workers == 1 or len(todo) <= 1:
                    _collect_here(env, recipe, todo, episodes_dir, bar)
                else:
                    _collect_in_workers(recipe, todo, episodes_dir, workers, bar)
            finally:
                bar.close()
            return _finish(recipe, env, staging, target)
    finally:
        env.close()


def _prepare_staging(recipe: Recipe, staging: Path, resume: bool) -> None:
    """Check an interrupted collection against ``recipe`` (``resume``), or start one with its settings
    written first: no episode is written before ``collection.json``, so a staging folder without it holds none."""
    expected = {"recipe": recipe.to_dict(), "wmbench_version": wmbench.__version__}
    episodes_dir = staging / "episodes"
    if not (staging / "collection.json").exists():
        episodes_dir.mkdir(parents=True, exist_ok=True)
        write_json(staging / "collection.json", expected)
        return
    if not resume:
        done = len(list(episodes_dir.glob("*.h5")))
        raise ValueError(
            f"an interrupted collection of {recipe.name} is at {staging} ({done} of {recipe.episodes} "
            "episodes done); continue it with --resume, or delete that folder to start again"
        )
    try:
        saved = json.loads((staging / "collection.json").read_text())
    except ValueError as error:
        raise ValueError(f"--resume: {staging / 'collection.json'} is unreadable ({error}); delete {staging} to start again") from None
    if saved != expected:
        changed = sorted(k for k in expected["recipe"] if saved["recipe"].get(k) != expected["recipe"][k])
        what = f"recipe fields {changed}" if changed else f"wmbench version {saved['wmbench_version']}"
        raise ValueError(f"--resume: the interrupted collection at {staging} differs in {what}; delete it to start again")
    remove_temporaries(episodes_dir)  # episodes being written when it stopped


def _collect_here(env, recipe, todo, episodes_dir, bar) -> None:
    start = time.perf_counter()
    try:
        for n, index in enumerate(todo, 1):
            arrays, attrs = record_episode(env, recipe, index)
            storage.write_episode(episode_file(episodes_dir, index), index, arrays, attrs)
            bar.update()
            bar.set_postfix_str(f"{n * recipe.steps / (time.perf_counter() - start):,.0f} steps/s")
    except KeyboardInterrupt:
        raise CollectionStopped(_stopped_message("interrupted", recipe, episodes_dir), 130) from None


def _collect_in_workers(recipe, todo, episodes_dir, workers, bar) -> None:
    # spawn, not fork: OpenGL contexts and HDF5 handles do not survive a fork
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(recipe.to_dict(), str(episodes_dir), os.getpid()),
    )
    start, finished = time.perf_counter(), 0
    try:
        pending = {pool.submit(_collect_in_worker, index) for index in todo}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
                finished += 1
                bar.update()
            bar.set_postfix_str(f"{finished * recipe.steps / (time.perf_counter() - start):,.0f} steps/s")
    except KeyboardInterrupt:
        raise CollectionStopped(_stopped_message("interrupted", recipe, episodes_dir), 130) from None
    except BrokenProcessPool:
        raise CollectionStopped(_stopped_message("a worker process died", recipe, episodes_dir), 1) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _collect_on_ray(recipe, todo, episodes_dir, bar) -> None:
    start, finished = time.perf_counter(), 0
    try:
        for index, data in cluster.run_tasks(recorded_episode_file, [(recipe.to_dict(), index) for index in todo]):
            atomic_write(episode_file(episodes_dir, index), lambda tmp: tmp.write_bytes(data))
            finished += 1
            bar.update()
            bar.set_postfix_str(f"{finished * recipe.steps / (time.perf_counter() - start):,.0f} steps/s")
    except KeyboardInterrupt:
        raise CollectionStopped(_stopped_message("interrupted", recipe, episodes_dir), 130) from None
    except cluster.ClusterError as error:
        raise CollectionStopped(_stopped_message(str(error), recipe, episodes_dir), 1) from None


def _stopped_message(why: str, recipe: Recipe, episodes_dir: Path) -> str:
    done = len(list(episodes_dir.glob("*.h5")))
    return (
        f"{why}: {done} of {recipe.episodes} episodes of {recipe.name} are saved in {episodes_dir.parent}; "
        "run the same command with --resume to collect the rest"
    )


def _finish(recipe: Recipe, env: gym.Env, staging: Path, target: Path) -> Path:
    """Merge the episodes into the Minari layout, write the metadata last, and move it in place.

    The layout is built afresh in the staging folder: a merge killed midway leaves its temporaries
    there, never in the finished dataset, and the next ``--resume`` starts the merge over.
    """
    files = [episode_file(staging / "episodes", i) for i in range(recipe.episodes)]
    checksums = [storage.read_episode_checksum(path, i) for i, path in enumerate(files)]
    shutil.rmtree(staging / "dataset", ignore_errors=True)
    data = staging / "dataset" / "data"
    storage.write_data(data, [(path, i) for i, path in enumerate(files)], checksums, lambda sha256: _metadata(recipe, env, sha256, data))
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staging / "dataset", target)
    shutil.rmtree(staging)
    return target


def _metadata(recipe: Recipe, env: gym.Env, sha256: str, data: Path) -> dict:
    sim = env.unwrapped
    size_mb = sum(f.stat().st_size for f in data.iterdir()) / 1e6
    return {
        # Minari's keys
        "dataset_id": recipe.name,
        "minari_version": minari.__version__,
        "data_format": "hdf5",
        "jpeg_encoding": False,
        "total_episodes": recipe.episodes,
        "total_steps": recipe.episodes * recipe.steps,
        "observation_space": serialize_space(env.observation_space),
        "action_space": serialize_space(env.action_space),
        "env_spec": env.spec.to_json(),
        "algorithm_name": recipe.policy,
        "author": ["wmbench"],
        "description": f"{recipe.episodes} episodes of {recipe.steps} steps of {recipe.env_id} under the {recipe.policy} policy",
        "dataset_size": round(size_mb, 1),
        # ours
        "wmbench": {
            "wmbench_version": wmbench.__version__,
            "env": recipe.env,
            "env_id": recipe.env_id,
            "env_version": int(recipe.env_id.rsplit("-v", 1)[1]),
            "policy": recipe.policy,
            "seed": recipe.seed,
            "episodes": recipe.episodes,
            "steps": recipe.steps,
            "resolution": [sim.height, sim.width],
            "variation": sim.variation,
            "recipe": recipe.to_dict(),
            "pixel_encoding": storage.PIXEL_ENCODING,
            "episode_seeds": "(env reset seed, policy seed) = numpy SeedSequence(seed, spawn_key=(episode,)).generate_state(2)",
            "sha256": sha256,
        },
    }
