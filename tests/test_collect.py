"""Dataset collection: Minari round trip for every env, reproducibility, resume, one writer per
dataset, no temporary file in a finished dataset, refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import minari
import numpy as np
import pytest

import wmbench
from wmbench.cli import main
from wmbench.data import catalog, storage
from wmbench.data.collect import collect, make_collection_env, record_episode
from wmbench.data.recipe import Recipe
from wmbench.envs import ENVS, GOAL_ENVS
from wmbench.files import write_json


@pytest.fixture(autouse=True)
def datasets_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def tiny(name="tiny-v0", env="pusht", episodes=3, steps=8, **kw) -> Recipe:
    return Recipe(name=name, env=env, policy=kw.pop("policy", ENVS[env].default_policy), episodes=episodes,
                  steps=steps, resolution=kw.pop("resolution", 48), **kw)


def manifest(name: str) -> dict:
    return json.loads((storage.dataset_dir(name) / "data" / storage.MANIFEST_FILE).read_text())


@pytest.mark.parametrize("env_name", list(ENVS))
def test_round_trip_through_plain_minari(env_name):
    if ENVS[env_name].extra:
        pytest.importorskip("mujoco", reason=f"needs the '{ENVS[env_name].extra}' extra")
    recipe = tiny(name=f"wmbench/{env_name}-tiny-v0", env=env_name, episodes=2, steps=6)
    collect(recipe, progress=False)

    dataset = minari.load_dataset(recipe.name)
    assert (dataset.total_episodes, dataset.total_steps) == (2, 12)
    meta = dataset.storage.metadata["wmbench"]
    assert (meta["env_id"], meta["policy"], meta["seed"], meta["resolution"]) == (ENVS[env_name].id, recipe.policy, 0, [48, 48])
    assert meta["wmbench_version"] == wmbench.__version__ and meta["sha256"] == manifest(recipe.name)["sha256"]

    env = wmbench.make(env_name, resolution=48)
    for episode in dataset.iterate_episodes():
        obs, infos = episode.observations, episode.infos
        assert obs["pixels"].shape == (7, 48, 48, 3) and obs["pixels"].dtype == np.uint8
        assert episode.actions.shape == (6, *env.action_space.shape)
        assert infos["success"].shape == (7,) and not episode.terminations.any() and episode.truncations[-1]
        assert np.array_equal(obs["state"], infos["state"].astype(np.float32))
        [goal_state] = dataset.storage.get_episode_metadata([episode.id])
        for t in (0, 3, 6):  # the stored frame is what the env draws when reset to the stored state
            frame, _ = env.reset(options={"state": infos["state"][t], "goal_state": goal_state["goal_state"]})
            assert np.array_equal(frame["pixels"], obs["pixels"][t])
            assert np.array_equal(frame["proprio"], obs["proprio"][t])
    env.close()


def test_plain_minari_needs_no_wmbench_code(datasets_root):
    collect(tiny(), progress=False)
    script = (
        "import sys, minari; d = minari.load_dataset('tiny-v0'); e = d[1]; "
        "assert 'wmbench' not in sys.modules, 'minari imported wmbench'; "
        "print(e.observations['pixels'].shape, d.total_steps)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ}, check=True)
    assert out.stdout.split() == ["(9,", "48,", "48,", "3)", "24"]


def test_recipe_reproduces_bit_for_bit_with_any_worker_count(tmp_path):
    text = 'name = "a-v0"\nenv = "tworoom"\npolicy = "expert"\nepisodes = 5\nsteps = 12\nseed = 7\nresolution = 32\n'
    (tmp_path / "r.toml").write_text(text)
    assert main(["collect", "--recipe", str(tmp_path / "r.toml"), "--workers", "1"]) == 0
    assert main(["collect", "--recipe", str(tmp_path / "r.toml"), "--workers", "2", "--out", "b-v0"]) == 0
    first, second = manifest("a-v0"), manifest("b-v0")
    assert first["sha256"] == second["sha256"] and first["episodes"] == second["episodes"]
    assert first["files"] == second["files"]  # even the HDF5 file's bytes
    collect(tiny(name="c-v0", env="tworoom", episodes=5, steps=12, seed=8, resolution=32), progress=False)
    assert manifest("c-v0")["sha256"] != first["sha256"]


COLLECTION = ["collect", "--env", "pusht", "--episodes", "60", "--steps", "40", "--resolution", "32", "--workers", "2"]


def _start_collection(datasets_root: Path, episodes_wanted: int, name: str = "killed-v0"):
    """Start a 2-worker collection in a subprocess and wait until a few episodes are on disk."""
    # Ctrl-C as in a terminal: a child inherits an ignored SIGINT, and this test process may ignore it (a
    # fresh clone's run once collected all 60 episodes through the SIGINT sent below)
    process = subprocess.Popen([sys.executable, "-m", "wmbench.cli", *COLLECTION, "--out", name],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "MINARI_DATASETS_PATH": str(datasets_root)},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    episodes = datasets_root / storage.PARTIAL_DIR / name / "episodes"
    deadline = time.time() + 60
    while len(list(episodes.glob("*.h5"))) < episodes_wanted:
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.05)
    return process


def _workers(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in children if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]


def _assert_resumes_to_the_uninterrupted_dataset():
    with pytest.raises(FileNotFoundError):  # nothing loads as a dataset meanwhile
        minari.load_dataset("killed-v0")
    with pytest.raises(ValueError, match="--resume"):
        collect(tiny(name="killed-v0", episodes=60, steps=40, resolution=32), progress=False)
    collect(tiny(name="killed-v0", episodes=60, steps=40, resolution=32), resume=True, progress=False)
    collect(tiny(name="whole-v0", episodes=60, steps=40, resolution=32), progress=False)
    assert manifest("killed-v0")["sha256"] == manifest("whole-v0")["sha256"]
    assert minari.load_dataset("killed-v0").total_episodes == 60


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the worker processes through /proc (Linux)")
def test_killed_worker_then_resume(datasets_root):
    process = _start_collection(datasets_root, episodes_wanted=3)
    os.kill(_workers(process.pid)[0], signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1 and "a worker process died" in stderr and "--resume" in stderr
    _assert_resumes_to_the_uninterrupted_dataset()


def test_ctrl_c_then_resume(datasets_root):
    process = _start_collection(datasets_root, episodes_wanted=3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr and "--resume" in stderr
    _assert_resumes_to_the_uninterrupted_dataset()


def test_a_second_collection_of_the_same_dataset_is_refused_while_the_first_finishes(datasets_root, capsys):
    first = _start_collection(datasets_root, episodes_wanted=2, name="shared-v0")
    os.kill(first.pid, signal.SIGSTOP)  # so that it cannot finish before the second run starts
    try:
        for resume in ([], ["--resume"]):
            assert main([*COLLECTION, "--out", "shared-v0", *resume]) == 2
            error = capsys.readouterr().err
            assert error.startswith("error: dataset shared-v0 is being written by another run") and len(error.strip().splitlines()) == 1
            assert f"(pid {first.pid} on " in error and "wait for that run to finish or stop it" in error
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert catalog.verify("shared-v0") == [] and minari.load_dataset("shared-v0").total_episodes == 60
    assert not (datasets_root / storage.PARTIAL_DIR / "shared-v0.lock").exists()


KILLED_AT_THE_MERGE = """
import json, os, signal, sys
from wmbench.data import storage
from wmbench.data.collect import collect
from wmbench.data.recipe import Recipe

replace = os.replace
def replace_unless_the_merged_file(source, destination):  # killed with the merged file written, not yet renamed
    if os.path.basename(destination) == storage.MAIN_FILE:
        os.kill(os.getpid(), signal.SIGKILL)
    replace(source, destination)
os.replace = replace_unless_the_merged_file
collect(Recipe.from_dict(json.loads(sys.argv[1])), progress=False)
"""


def test_a_run_killed_during_the_merge_resumes_to_a_dataset_with_no_temporary_file(datasets_root):
    recipe = tiny(name="merged-v0")
    killed = subprocess.Popen([sys.executable, "-c", KILLED_AT_THE_MERGE, json.dumps(recipe.to_dict())], stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "MINARI_DATASETS_PATH": str(datasets_root)})
    _, stderr = killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL, stderr
    lock = datasets_root / storage.PARTIAL_DIR / "merged-v0.lock"
    assert json.loads(lock.read_text())["pid"] == killed.pid  # left by the killed run: stale, taken over below
    assert list((datasets_root / storage.PARTIAL_DIR / "merged-v0" / "dataset" / "data").glob(".*.tmp"))

    collect(recipe, resume=True, progress=False)
    data = storage.dataset_dir("merged-v0") / "data"
    assert sorted(path.name for path in data.iterdir()) == sorted([storage.MAIN_FILE, storage.MANIFEST_FILE, storage.METADATA_FILE])
    assert not list(datasets_root.rglob("*.tmp")) and not lock.exists()
    assert catalog.verify("merged-v0") == []
    collect(tiny(name="whole-v0"), progress=False)
    assert manifest("merged-v0") == manifest("whole-v0")


def test_refuses_to_overwrite_and_to_resume_another_recipe(datasets_root, capsys):
    collect(tiny(), progress=False)
    before = manifest("tiny-v0")
    assert main(["collect", "--env", "pusht", "--episodes", "2", "--steps", "3", "--out", "tiny-v0"]) == 2
    assert "already exists" in capsys.readouterr().err and manifest("tiny-v0") == before

    staging = datasets_root / storage.PARTIAL_DIR / "other-v0"
    (staging / "episodes").mkdir(parents=True)
    write_json(staging / "collection.json", {"recipe": tiny(name="other-v0", steps=9).to_dict(),
                                                     "wmbench_version": wmbench.__version__})
    with pytest.raises(ValueError, match=r"differs in recipe fields \['steps'\]"):
        collect(tiny(name="other-v0"), resume=True, progress=False)
    assert not any((staging / "episodes").iterdir())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x-v0"\nenv = "pusht"\npolicy = "weak"\nepisodes = 2\nsteps = \n', "not valid TOML"),
        ('name = "x-v0"\nenv = "pusht"\npolicy = "weak"\nepisodes = 2\nsteps = 3\nworkers = 2\n', r"unknown key\(s\) \['workers'\]"),
        ('name = "x-v0"\nenv = "pusht"\npolicy = "weak"\nsteps = 3\n', r"missing key\(s\) \['episodes'\]"),
        ('name = "x-v0"\nenv = "pusht"\npolicy = "weak"\nepisodes = -1\nsteps = 3\n', "episodes = -1: must be an integer >= 1"),
        ('name = "x-v0"\nenv = "pusht"\npolicy = "expert"\nepisodes = 2\nsteps = 3\n', "unknown policy 'expert' for pusht"),
        ('name = "x"\nenv = "pusht"\npolicy = "weak"\nepisodes = 2\nsteps = 3\n', "not a Minari dataset id"),
        ('name = "x-v0"\nenv = "pong"\npolicy = "weak"\nepisodes = 2\nsteps = 3\n', "unknown environment 'pong'"),
        ('name = "x-v0"\nenv = "pusht"\npolicy = "weak"\nepisodes = 2\nsteps = 3\nvariation = "neon"\n', "unknown variation preset 'neon'"),
    ],
)
def test_malformed_recipe_is_refused_before_anything_is_written(tmp_path, datasets_root, capsys, text, message):
    (tmp_path / "bad.toml").write_text(text)
    assert main(["collect", "--recipe", str(tmp_path / "bad.toml")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and len(error.strip().splitlines()) == 1
    assert pytest.importorskip("re").search(message, error), error
    assert not datasets_root.exists() or not any(datasets_root.rglob("*.h5"))


def test_standard_recipes_match_the_published_sizes_and_minis_share_their_seeds():
    recipes = {path.stem: Recipe.load(path) for path in Path(__file__).parents[1].joinpath("datasets").glob("*.toml")}
    assert {r.env for r in recipes.values()} == set(GOAL_ENVS) | {"phyre", "clevrer"}
    # PHYRE publishes no dataset: 20,000 random valid placements on a fold's training tasks is ours; CLEVRER trains on 10,000 videos
    published = {"pusht": (18_500, 160), "tworoom": (10_000, 92), "reacher": (10_000, 200), "cube": (10_000, 200), "phyre": (20_000, 18),
                 "clevrer": (10_000, 127)}
    for stem, recipe in recipes.items():
        assert recipe.name == f"wmbench/{stem}-v0"
        if stem.endswith("-mini"):
            full = recipes[stem.removesuffix("-mini")]
            assert (recipe.env, recipe.policy, recipe.steps, recipe.seed, recipe.variation) == (full.env, full.policy, full.steps, full.seed, full.variation)
            assert recipe.resolution == 64 and recipe.episodes < full.episodes
        else:
            assert (recipe.episodes, recipe.steps, recipe.resolution) == (*published[recipe.env], 224)
    assert len(recipes) == 2 * (len(GOAL_ENVS) + 2)


@pytest.mark.parametrize("env_name", ["pusht", "cube"])
def test_resolution_changes_the_pixels_only(env_name):
    """What lets a 64 px mini stand for the first episodes of its 224 px dataset."""
    if ENVS[env_name].extra:
        pytest.importorskip("mujoco")
    small, large = (tiny(name=f"{env_name}-{r}-v0", env=env_name, episodes=2, steps=5, resolution=r) for r in (32, 48))
    env = make_collection_env(small)
    first = record_episode(env, small, 1)[0]
    env.close()
    env = make_collection_env(large)
    second = record_episode(env, large, 1)[0]
    env.close()
    for key in first:
        if key != "observations/pixels":
            assert np.array_equal(first[key], second[key]), key


def test_datasets_lists_and_shows(tmp_path, capsys):
    collect(tiny(name="wmbench/shown-v0", episodes=3), progress=False)
    assert main(["datasets"]) == 0
    listing = capsys.readouterr().out
    assert "wmbench/shown-v0" in listing and "complete" in listing
    out = tmp_path / "sheet.png"
    assert main(["datasets", "show", "wmbench/shown-v0", "--episodes", "2", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.split("\nwrote")[0])
    assert (summary["episodes"], summary["steps"], summary["resolution"]) == (3, 24, [48, 48])
    with h5py.File(storage.dataset_dir("wmbench/shown-v0") / "data" / storage.MAIN_FILE) as file:
        assert file["episode_0"].attrs["sha256"] == manifest("wmbench/shown-v0")["episodes"][0]
    from PIL import Image

    assert Image.open(out).size[1] > 2 * 48  # two rows of frames
    assert main(["datasets", "show", "wmbench/shown-v0", "--verify", "--out", str(out)]) == 0
    assert "verified" in capsys.readouterr().out
    with h5py.File(storage.dataset_dir("wmbench/shown-v0") / "data" / storage.MAIN_FILE, "r+") as file:
        file["episode_2/actions"][0, 0] += 0.5  # tampered with
    assert main(["datasets", "show", "wmbench/shown-v0", "--verify", "--out", str(out)]) == 2
    assert "episode 2" in capsys.readouterr().err
    assert main(["datasets", "show", "nothing-v0"]) == 2
    assert "wmbench collect" in capsys.readouterr().err


def test_collect_help_lists_every_policy(capsys):
    with pytest.raises(SystemExit):
        main(["collect", "--help"])
    text = capsys.readouterr().out
    from wmbench.policies import POLICIES

    for env, policies in POLICIES.items():
        assert f"  {env}:" in text and all(f"    {name} " in text for name in policies)
