"""wmbench datasets and Minari's own tools: why ``minari.combine_datasets`` is not the route and
``wmbench datasets combine`` is (lossless, checksummed, atomic, refusals in one line), and what
``minari.DataCollector`` on a wmbench env gives the training loader."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import minari
import numpy as np
import pytest

import wmbench
from wmbench.cli import main
from wmbench.data import catalog, storage
from wmbench.data.collect import collect
from wmbench.data.combine import combine
from wmbench.data.recipe import Recipe
from wmbench.envs import ENVS

torch = pytest.importorskip("torch", reason="the training loader needs the 'torch' extra")
from wmbench.data import WindowDataset  # noqa: E402

STEPS = 5
pytestmark = pytest.mark.filterwarnings("ignore:`eval_env` is set to None")  # DataCollector's datasets name no eval env


@pytest.fixture(autouse=True)
def datasets_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def tiny(name: str, episodes: int = 2, **fields) -> str:
    """Collect a tiny Push-T dataset (``fields`` override the recipe); returns its id."""
    recipe = {"env": "pusht", "policy": "weak", "episodes": episodes, "steps": STEPS, "resolution": 32, **fields}
    collect(Recipe(name=name, **recipe), progress=False)
    return name


def manifest(name: str) -> dict:
    return json.loads((storage.dataset_dir(name) / "data" / storage.MANIFEST_FILE).read_text())


def episode(name: str, index: int) -> tuple[dict[str, np.ndarray], dict]:
    with h5py.File(storage.dataset_dir(name) / "data" / storage.MAIN_FILE, "r") as file:
        group = file[f"episode_{index}"]
        return storage.episode_arrays(group), dict(group.attrs)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------- minari.combine_datasets
def test_minari_combine_datasets_makes_jpeg_without_the_manifest():
    """What datasets/README.md reports: Minari's combine decodes and re-writes every frame as JPEG
    and keeps none of wmbench's metadata; wmbench's readers then refuse it in one line."""
    tiny("a-v0")
    tiny("b-v0", seed=1)
    minari.combine_datasets([minari.load_dataset("a-v0"), minari.load_dataset("b-v0")], "minari-ab-v0")
    data = storage.dataset_dir("minari-ab-v0") / "data"
    metadata = storage.read_metadata(data)
    assert metadata["jpeg_encoding"] is True and "wmbench" not in metadata
    assert sorted(p.name for p in data.iterdir()) == [storage.MAIN_FILE, storage.METADATA_FILE]  # no manifest
    original, combined = minari.load_dataset("a-v0")[0], minari.load_dataset("minari-ab-v0")[0]
    assert not np.array_equal(original.observations["pixels"], combined.observations["pixels"])  # lossy
    [attrs] = minari.load_dataset("minari-ab-v0").storage.get_episode_metadata([0])
    assert sorted(attrs) == ["id", "total_steps"]  # no seeds, goal state or checksum
    assert catalog.verify("minari-ab-v0") == ["no manifest.json: not a wmbench dataset, nothing to check against"]
    with pytest.raises(ValueError, match="JPEG.*wmbench collect"):
        WindowDataset("minari-ab-v0", history=1, predictions=1, frameskip=1)
    with pytest.raises(ValueError, match="JPEG"):
        catalog.preview("minari-ab-v0")


# ---------------------------------------------------------------------- wmbench datasets combine
def test_combine_keeps_every_byte_of_pixels_checksums_and_opens_everywhere(capsys):
    tiny("a-v0")
    tiny("b-v0", policy="random", seed=1, episodes=3)
    assert main(["datasets", "combine", "a-v0", "b-v0", "--out", "wmbench/ab-v0"]) == 0
    assert "wmbench/ab-v0" in capsys.readouterr().out

    origin = [("a-v0", 0), ("a-v0", 1), ("b-v0", 0), ("b-v0", 1), ("b-v0", 2)]
    for index, (name, source_index) in enumerate(origin):
        arrays, attrs = episode("wmbench/ab-v0", index)
        source_arrays, source_attrs = episode(name, source_index)
        assert arrays.keys() == source_arrays.keys() and all(np.array_equal(arrays[k], source_arrays[k]) for k in arrays)
        assert attrs["id"] == index and attrs["sha256"] == source_attrs["sha256"] == storage.content_sha256(arrays)
        assert (attrs["seed"], attrs["policy_seed"]) == (source_attrs["seed"], source_attrs["policy_seed"])
        assert np.array_equal(attrs["goal_state"], source_attrs["goal_state"])
    with h5py.File(storage.dataset_dir("wmbench/ab-v0") / "data" / storage.MAIN_FILE, "r") as file:
        pixels = file["episode_4/observations/pixels"]
        assert (pixels.compression, pixels.compression_opts, pixels.chunks) == ("gzip", 1, (1, 32, 32, 3))

    assert manifest("wmbench/ab-v0")["episodes"] == manifest("a-v0")["episodes"] + manifest("b-v0")["episodes"]
    assert catalog.verify("wmbench/ab-v0") == []
    assert main(["datasets", "show", "wmbench/ab-v0", "--verify", "--out", str(storage.datasets_root() / "sheet.png")]) == 0
    assert "verified" in capsys.readouterr().out

    dataset = minari.load_dataset("wmbench/ab-v0")
    assert (dataset.total_episodes, dataset.total_steps) == (5, 5 * STEPS)
    assert np.array_equal(dataset[3].observations["pixels"], minari.load_dataset("b-v0")[1].observations["pixels"])
    metadata = dataset.storage.metadata
    assert metadata["jpeg_encoding"] is False and metadata["combined_datasets"] == ["a-v0", "b-v0"]
    ours = metadata["wmbench"]
    assert (ours["policy"], ours["seed"], ours["episodes"], ours["steps"], ours["resolution"]) == ("weak+random", None, 5, STEPS, [32, 32])
    assert ours["sha256"] == manifest("wmbench/ab-v0")["sha256"]
    assert [(s["dataset_id"], s["first_episode"], s["episodes"], s["seed"]) for s in ours["sources"]] == [("a-v0", 0, 2, 0), ("b-v0", 2, 3, 1)]
    assert ours["sources"][1]["recipe"] == storage.read_metadata(storage.find_data("b-v0"))["wmbench"]["recipe"]

    windows, second = WindowDataset("wmbench/ab-v0", history=2, predictions=1, frameskip=1), WindowDataset("b-v0", history=2, predictions=1, frameskip=1)
    assert len(windows) == 5 * (STEPS - 2)
    last, reference = windows[len(windows) - 1], second[len(second) - 1]
    assert last["episode"] == 4 and all(torch.equal(last[k], reference[k]) for k in ("pixels", "actions", "state", "proprio"))

    # the same inputs give the same bytes; a combination of combinations lists the collected datasets
    combine(["a-v0", "b-v0"], "again-v0")
    assert manifest("again-v0") == manifest("wmbench/ab-v0")
    tiny("c-v0", seed=2, episodes=1)
    combine(["wmbench/ab-v0", "c-v0"], "abc-v0")
    sources = storage.read_metadata(storage.find_data("abc-v0"))["wmbench"]["sources"]
    assert [(s["dataset_id"], s["first_episode"]) for s in sources] == [("a-v0", 0), ("b-v0", 2), ("c-v0", 5)]
    assert catalog.verify("abc-v0") == []


def _odd_layout(name: str) -> str:
    """A copy of ``name`` whose episodes store one array more, with a manifest that matches."""
    odd = "odd-v0"
    shutil.copytree(storage.dataset_dir(name), storage.dataset_dir(odd))
    data = storage.dataset_dir(odd) / "data"
    checksums = []
    with h5py.File(data / storage.MAIN_FILE, "r+") as file:
        for index in range(len(file)):
            file[f"episode_{index}"].create_dataset("infos/extra", data=np.zeros(STEPS + 1))
            checksums.append(storage.content_sha256(storage.episode_arrays(file[f"episode_{index}"])))
    document = {"sha256": storage.dataset_sha256(checksums), "files": {storage.MAIN_FILE: storage.file_sha256(data / storage.MAIN_FILE)},
                "episodes": checksums}
    (data / storage.MANIFEST_FILE).write_text(json.dumps(document))
    return odd


def _damaged(name: str) -> str:
    tiny("damaged-v0", seed=1)
    with h5py.File(storage.dataset_dir("damaged-v0") / "data" / storage.MAIN_FILE, "r+") as file:
        file["episode_1/actions"][0, 0] += 0.5
    return "damaged-v0"


def _not_wmbench(name: str) -> str:
    shutil.copytree(storage.dataset_dir(name), storage.dataset_dir("plain-v0"))
    (storage.dataset_dir("plain-v0") / "data" / storage.MANIFEST_FILE).unlink()
    return "plain-v0"


# (how to make the second dataset from the first, "a-v0"; words the one-line refusal must hold)
REFUSED = {
    "env": (lambda a: tiny("tworoom-v0", env="tworoom", policy="expert"), ["differ in env", "wmbench/PushT-v0", "wmbench/TwoRoom-v0"]),
    "steps": (lambda a: tiny("long-v0", seed=1, steps=STEPS + 1), ["differ in episode length", f"{STEPS} vs {STEPS + 1}"]),
    "resolution": (lambda a: tiny("large-v0", seed=1, resolution=48), ["differ in resolution", "[32, 32] vs [48, 48]"]),
    "variation": (lambda a: tiny("sliding-v0", seed=1, variation="sliding"), ["differ in variation"]),
    "layout": (_odd_layout, ["differ in stored arrays", "infos/extra: absent vs float64"]),
    "shared episodes": (lambda a: tiny("more-v0", episodes=3), ["episode 0 of more-v0 is episode 0 of a-v0", "--seed"]),
    "same dataset": (lambda a: a, ["same dataset"]),
    "damaged": (_damaged, ["damaged-v0 does not match its checksum manifest", "--verify"]),
    "not wmbench": (_not_wmbench, ["plain-v0 is not a wmbench dataset"]),
    "missing": (lambda a: "nothing-v0", ["no dataset 'nothing-v0'"]),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_combine_refuses_in_one_line_and_writes_nothing(case, datasets_root, capsys):
    make, words = REFUSED[case]
    first = tiny("a-v0")
    second = make(first)
    before = snapshot(datasets_root)
    assert main(["datasets", "combine", first, second, "--out", "out-v0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    assert all(word in captured.err for word in words), captured.err
    assert snapshot(datasets_root) == before


@pytest.mark.parametrize("argv, words", [
    (["datasets", "combine", "a-v0", "--out", "out-v0"], ["two or more"]),
    (["datasets", "combine", "a-v0", "b-v0"], ["--out NEW"]),
    (["datasets", "combine", "a-v0", "b-v0", "--out", "bad name!"], ["'bad name!' is not a Minari dataset id"]),
    (["datasets", "combine", "a-v0", "b-v0", "--out", "a-v0"], ["a-v0 already exists", "choose another --out"]),
    (["datasets", "show", "a-v0", "b-v0"], ["show NAME"]),
])
def test_combine_command_line_refusals(argv, words, datasets_root, capsys):
    tiny("a-v0")
    tiny("b-v0", seed=1)
    before = snapshot(datasets_root)
    try:
        code = main(argv)
    except SystemExit as parser_exit:  # argparse's errors exit from inside main
        code = parser_exit.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and all(word in err for word in words), err
    assert snapshot(datasets_root) == before


KILLED_BEFORE_THE_RENAME = """
import os, signal, sys
from wmbench.data.combine import combine

rename = os.rename
def rename_unless_the_dataset(source, destination):  # killed with everything written, not yet moved into place
    if str(destination).endswith("ab-v0"):
        os.kill(os.getpid(), signal.SIGKILL)
    rename(source, destination)
os.rename = rename_unless_the_dataset
combine(["a-v0", "b-v0"], "ab-v0")
"""


def test_a_killed_or_failed_combine_leaves_no_dataset_and_a_rerun_completes(datasets_root):
    tiny("a-v0")
    tiny("b-v0", seed=1)
    killed = subprocess.run([sys.executable, "-c", KILLED_BEFORE_THE_RENAME], capture_output=True, text=True,
                            env={**os.environ, "MINARI_DATASETS_PATH": str(datasets_root)}, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not storage.dataset_dir("ab-v0").exists() and "ab-v0" not in minari.list_local_datasets()
    assert (datasets_root / storage.PARTIAL_DIR / "ab-v0" / "dataset").is_dir()  # hidden: what a rerun removes
    assert [row["name"] for row in catalog.local_datasets()] == ["a-v0", "b-v0"]

    def stop_at_the_metadata(path, document):
        if path.name == storage.METADATA_FILE:
            raise KeyboardInterrupt
        return write_json(path, document)

    write_json = storage.write_json
    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(storage, "write_json", stop_at_the_metadata)
        combine(["a-v0", "b-v0"], "ab-v0")
    assert not storage.dataset_dir("ab-v0").exists() and not (datasets_root / storage.PARTIAL_DIR / "ab-v0").exists()
    assert not list(datasets_root.rglob("*.tmp")) and not list(datasets_root.rglob("*.lock"))

    combine(["a-v0", "b-v0"], "ab-v0")
    data = storage.dataset_dir("ab-v0") / "data"
    assert sorted(p.name for p in data.iterdir()) == sorted([storage.MAIN_FILE, storage.MANIFEST_FILE, storage.METADATA_FILE])
    assert catalog.verify("ab-v0") == [] and not (datasets_root / storage.PARTIAL_DIR / "ab-v0").exists()


# ---------------------------------------------------------------------- minari.DataCollector
def record(env, episodes: int = 2, steps: int = STEPS) -> list[np.ndarray]:
    """Step ``env`` (a DataCollector) through seeded episodes of random actions; returns the frames it showed."""
    frames = []
    env.action_space.seed(0)
    for index in range(episodes):
        obs, _ = env.reset(seed=index)
        frames.append(obs["pixels"])
        for _ in range(steps):
            obs, *_ = env.step(env.action_space.sample())
            frames.append(obs["pixels"])
    return frames


def test_data_collector_with_raw_pixels_is_read_by_the_loader():
    pytest.importorskip("jax", reason="minari.DataCollector needs jax (minari[create])")
    env = minari.DataCollector(wmbench.make("pusht", resolution=32), jpeg_encoding=False)
    frames = record(env)
    env.create_dataset("collector-raw-v0", algorithm_name="random", author="wmbench tests", description="test",
                       code_permalink="-", author_email="-")
    env.close()
    windows = WindowDataset("collector-raw-v0", history=STEPS, predictions=0, frameskip=1)
    assert len(windows) == 2
    for k, item in enumerate(windows):
        stored = np.stack(frames[k * (STEPS + 1) : k * (STEPS + 1) + STEPS])
        assert np.array_equal(item["pixels"].numpy().transpose(0, 2, 3, 1), stored)  # lossless, in step order
        assert item["state"].shape == (STEPS, *env.observation_space["state"].shape) and item["actions"].shape == (STEPS, 2)


def test_data_collector_default_jpeg_is_refused_by_the_loader_in_one_line():
    pytest.importorskip("jax", reason="minari.DataCollector needs jax (minari[create])")
    env = minari.DataCollector(wmbench.make("pusht", resolution=32))
    record(env, episodes=1)
    env.create_dataset("collector-jpeg-v0", algorithm_name="random", author="wmbench tests", description="test",
                       code_permalink="-", author_email="-")
    env.close()
    with pytest.raises(ValueError, match=r"JPEG.*jpeg_encoding=False") as refused:
        WindowDataset("collector-jpeg-v0", history=1, predictions=1, frameskip=1)
    assert "\n" not in str(refused.value)


def test_data_collector_of_an_image_only_env_is_refused_by_the_loader_in_one_line():
    pytest.importorskip("jax", reason="minari.DataCollector needs jax (minari[create])")
    env = minari.DataCollector(wmbench.make("pusht", resolution=32, obs_type="pixels"), jpeg_encoding=False)
    env.reset(seed=0)
    for _ in range(STEPS):
        env.step(env.action_space.sample())
    env.create_dataset("collector-image-v0", algorithm_name="random", author="wmbench tests", description="test",
                       code_permalink="-", author_email="-")
    env.close()
    with pytest.raises(ValueError, match="one observation array.*default obs_type"):
        WindowDataset("collector-image-v0", history=1, predictions=1, frameskip=1)


@pytest.mark.parametrize("env_name", [name for name in ENVS if ENVS[name].task != "video"])
def test_data_collector_records_infos(env_name):
    pytest.importorskip("jax", reason="minari.DataCollector needs jax (minari[create])")
    if ENVS[env_name].extra:
        pytest.importorskip("mujoco", reason=f"needs the '{ENVS[env_name].extra}' extra")
    env = minari.DataCollector(wmbench.make(env_name, resolution=32, terminate_on_success=False), record_infos=True,
                               jpeg_encoding=False)
    record(env, episodes=2, steps=3)
    dataset = env.create_dataset(f"collector-{env_name}-v0", algorithm_name="random", author="wmbench tests",
                                 description="test", code_permalink="-", author_email="-")
    env.close()
    infos = dataset[1].infos
    reset_info = wmbench.make(env_name, resolution=32).reset(seed=1)[1]
    assert infos["success"].shape == (4,) and np.array_equal(infos["goal_state"][0], reset_info["goal_state"])
    assert np.array_equal(infos["goal"][3], reset_info["goal"])
    assert len(WindowDataset(f"collector-{env_name}-v0", history=2, predictions=1, frameskip=1)) == 2
