"""The training loader, on small hand-made datasets whose every value says where it came from.

Frame ``t`` of episode ``e`` has every pixel equal to ``(50 * e + t) % 256``, its state is
``[e, t, 0.5]`` and its proprio ``[t]``; action ``a_t = [t, 10 * e + t]``. A window's contents
therefore tell exactly which steps it was cut from.
"""

from __future__ import annotations

import json
import multiprocessing
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from wmbench.data import WindowDataset
from wmbench.data.loader import split_episodes

FRAME = (16, 24)  # (height, width) of the stored frames


def write_dataset(directory: Path, lengths: list[int], keys=("pixels", "state", "proprio")) -> Path:
    """A dataset in the collector's Minari layout; episode ``e`` has ``lengths[e]`` steps."""
    data = directory / "data"
    data.mkdir(parents=True)
    with h5py.File(data / "main_data.hdf5", "w") as file:
        for e, n_steps in enumerate(lengths):
            group = file.create_group(f"episode_{e}")
            group.attrs.update(id=e, total_steps=n_steps, seed=e)
            t = np.arange(n_steps + 1)
            frame_values = ((50 * e + t) % 256).astype(np.uint8)
            observations = {
                "pixels": np.broadcast_to(frame_values[:, None, None, None], (n_steps + 1, *FRAME, 3)),
                "state": np.stack([np.full(n_steps + 1, e), t, np.full(n_steps + 1, 0.5)], axis=1).astype(np.float32),
                "proprio": t[:, None].astype(np.float32),
            }
            for key in keys:
                chunks = (1, *FRAME, 3) if key == "pixels" else None
                group.create_dataset(f"observations/{key}", data=observations[key], chunks=chunks, compression="gzip")
            group["actions"] = np.stack([t[:-1], 10 * e + t[:-1]], axis=1).astype(np.float32)
            group["rewards"] = np.zeros(n_steps)
            group["terminations"] = np.zeros(n_steps, dtype=bool)
            group["truncations"] = np.zeros(n_steps, dtype=bool)
            group["infos/success"] = np.zeros(n_steps + 1, dtype=bool)
            group["infos/state"] = observations["state"].astype(np.float64)
    metadata = {
        "dataset_id": "tiny-test-v0",
        "total_episodes": len(lengths),
        "total_steps": int(sum(lengths)),
        "data_format": "hdf5",
        "wmbench": {"env": "pusht", "policy": "random"},
    }
    (data / "metadata.json").write_text(json.dumps(metadata))
    return directory


# history 3 + predictions 1 at frameskip 5 spans 20 steps: 11 windows, none, 31 windows, none
LENGTHS = [30, 12, 50, 19]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("tiny") / "tiny-test-v0", LENGTHS)


def expected_window(episode: int, step: int, frames: int, frameskip: int) -> dict[str, np.ndarray]:
    t = step + frameskip * np.arange(frames)
    steps = step + np.arange(frames * frameskip)
    actions = np.stack([steps, 10 * episode + steps], axis=1).reshape(frames, 2 * frameskip)
    return {
        "pixel": (50 * episode + t) % 256,
        "actions": actions,
        "state": np.stack([np.full(frames, episode), t, np.full(frames, 0.5)], axis=1),
        "proprio": t[:, None],
    }


def check_window(item: dict, frames: int, frameskip: int) -> None:
    expected = expected_window(int(item["episode"]), int(item["step"]), frames, frameskip)
    pixels = item["pixels"].numpy()
    assert (pixels == expected["pixel"][:, None, None, None]).all()
    np.testing.assert_array_equal(item["actions"].numpy(), expected["actions"])
    np.testing.assert_array_equal(item["state"].numpy(), expected["state"])
    np.testing.assert_array_equal(item["proprio"].numpy(), expected["proprio"])


@pytest.mark.parametrize("history, predictions, frameskip", [(3, 1, 5), (1, 1, 1), (2, 0, 3), (1, 4, 2)])
def test_window_shapes_and_dtypes(dataset_dir, history, predictions, frameskip):
    dataset = WindowDataset(dataset_dir, history=history, predictions=predictions, frameskip=frameskip)
    frames = history + predictions
    item = dataset[len(dataset) // 2]
    assert set(item) == {"pixels", "actions", "state", "proprio", "episode", "step"}
    assert item["pixels"].shape == (frames, 3, *FRAME) and item["pixels"].dtype == torch.uint8
    assert item["pixels"].is_contiguous()
    assert item["actions"].shape == (frames, 2 * frameskip) and item["actions"].dtype == torch.float32
    assert item["state"].shape == (frames, 3) and item["state"].dtype == torch.float32
    assert item["proprio"].shape == (frames, 1) and item["proprio"].dtype == torch.float32
    assert dataset.action_dim == 2 * frameskip
    assert dataset.frame_shape == (3, *FRAME)


@pytest.mark.parametrize("history, predictions, frameskip", [(3, 1, 5), (1, 1, 1), (2, 0, 3)])
def test_every_window_holds_the_frames_and_action_blocks_it_names(dataset_dir, history, predictions, frameskip):
    dataset = WindowDataset(dataset_dir, history=history, predictions=predictions, frameskip=frameskip)
    for index in range(len(dataset)):
        check_window(dataset[index], history + predictions, frameskip)


def test_action_blocks_spelled_out(dataset_dir):
    item = WindowDataset(dataset_dir, history=1, predictions=1, frameskip=3)[0]
    # episode 0 from step 0: frames 0 and 3, blocks a_0 a_1 a_2 and a_3 a_4 a_5, a_t = [t, t]
    assert item["episode"] == 0 and item["step"] == 0
    assert item["actions"].tolist() == [[0, 0, 1, 1, 2, 2], [3, 3, 4, 4, 5, 5]]
    assert item["proprio"].flatten().tolist() == [0, 3]


def test_windows_per_episode(dataset_dir):
    dataset = WindowDataset(dataset_dir, history=3, predictions=1, frameskip=5)
    # a start s is valid when s + 20 <= the episode's actions; episodes 1 and 3 are too short
    assert len(dataset) == (30 - 20 + 1) + (50 - 20 + 1)
    starts = {}
    for index in range(len(dataset)):
        item = dataset[index]
        starts.setdefault(int(item["episode"]), []).append(int(item["step"]))
    assert starts == {0: list(range(11)), 2: list(range(31))}
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_episode_subsets(dataset_dir):
    dataset = WindowDataset(dataset_dir, episodes=[2, 1])
    assert len(dataset) == 31
    assert {int(dataset[i]["episode"]) for i in range(len(dataset))} == {2}
    assert len(WindowDataset(dataset_dir, episodes=np.array([0]))) == 11


def test_split_episodes():
    train, val = split_episodes(100, val_fraction=0.2, seed=3)
    assert len(val) == 20 and len(train) == 80
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    again_train, again_val = split_episodes(100, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(val, again_val)
    assert not np.array_equal(val, split_episodes(100, val_fraction=0.2, seed=4)[1])
    with pytest.raises(ValueError, match="val_fraction"):
        split_episodes(10, val_fraction=1.0)


@pytest.mark.parametrize("resolution, size", [(8, (8, 8)), ((12, 32), (12, 32)), (FRAME, FRAME)])
def test_resize(dataset_dir, resolution, size):
    dataset = WindowDataset(dataset_dir, resolution=resolution)
    item = dataset[5]
    assert item["pixels"].shape == (4, 3, *size) and item["pixels"].dtype == torch.uint8
    assert dataset.frame_shape == (3, *size)
    # the frames are flat, so a resize keeps every value
    check_window(item, frames=4, frameskip=5)


def test_resize_is_antialiased(tmp_path):
    dataset = WindowDataset(write_dataset(tmp_path / "d", [25]), resolution=(8, 8), keys=("pixels",))
    frames = np.zeros((26, *FRAME, 3), np.uint8)
    frames[:, :, ::2] = 255  # one-pixel stripes: a 3x downsample without antialiasing would keep them black and white
    with h5py.File(dataset.path, "r+") as file:
        file["episode_0/observations/pixels"][...] = frames
    pixels = dataset[0]["pixels"]
    assert pixels.float().mean().item() == pytest.approx(127.5, abs=2)
    assert (pixels > 100).all() and (pixels < 155).all()


def test_keys_select_the_returned_observations(dataset_dir):
    item = WindowDataset(dataset_dir, keys=("pixels",))[0]
    assert set(item) == {"pixels", "actions", "episode", "step"}
    item = WindowDataset(dataset_dir, keys="state")[0]
    assert set(item) == {"state", "actions", "episode", "step"}


def test_items_do_not_share_memory_with_the_dataset(dataset_dir):
    dataset = WindowDataset(dataset_dir)
    item = dataset[0]
    item["actions"] += 100
    item["state"] += 100
    check_window(dataset[0], frames=4, frameskip=5)


def test_located_by_minari_id_dir_data_dir_or_file(dataset_dir, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(dataset_dir.parent))
    by_id = WindowDataset("tiny-test-v0")
    for where in (dataset_dir, dataset_dir / "data", dataset_dir / "data" / "main_data.hdf5", str(dataset_dir)):
        assert WindowDataset(where).path == by_id.path
    assert by_id.metadata["total_episodes"] == len(LENGTHS)
    assert by_id.metadata["wmbench"] == {"env": "pusht", "policy": "random"}


def test_pickles_without_its_file_handle(dataset_dir):
    dataset = WindowDataset(dataset_dir)
    dataset[0]  # opens the file in this process
    clone = pickle.loads(pickle.dumps(dataset))
    check_window(clone[7], frames=4, frameskip=5)


@pytest.mark.parametrize("start_method", ["spawn", None])
def test_dataloader_with_two_workers(dataset_dir, start_method):
    dataset = WindowDataset(dataset_dir, history=3, predictions=1, frameskip=5)
    dataset[0]  # the parent's open handle must not leak into the workers
    context = multiprocessing.get_context(start_method) if start_method else None
    loader = DataLoader(dataset, batch_size=8, shuffle=True, num_workers=2, multiprocessing_context=context)
    seen = []
    for batch in loader:
        assert batch["pixels"].shape[1:] == (4, 3, *FRAME) and batch["pixels"].dtype == torch.uint8
        for i in range(len(batch["episode"])):
            check_window({key: value[i] for key, value in batch.items()}, frames=4, frameskip=5)
            seen.append((int(batch["episode"][i]), int(batch["step"][i])))
    assert sorted(seen) == [(0, s) for s in range(11)] + [(2, s) for s in range(31)]


def test_errors(dataset_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    with pytest.raises(ValueError, match=r"no dataset .*minari.*wmbench collect --recipe datasets/pusht-weak-mini.toml"):
        WindowDataset("pusht-weak-mini-v0")
    with pytest.raises(ValueError, match=r"wmbench collect --recipe datasets/"):
        WindowDataset(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="history = 0"):
        WindowDataset(dataset_dir, history=0)
    with pytest.raises(ValueError, match="predictions = -1"):
        WindowDataset(dataset_dir, predictions=-1)
    with pytest.raises(ValueError, match="frameskip = 0"):
        WindowDataset(dataset_dir, frameskip=0)
    with pytest.raises(ValueError, match="frameskip = 2.5"):
        WindowDataset(dataset_dir, frameskip=2.5)
    with pytest.raises(ValueError, match=r"keys \['depth'\] are not stored.*\['pixels', 'proprio', 'state'\]"):
        WindowDataset(dataset_dir, keys=("pixels", "depth"))
    with pytest.raises(ValueError, match=r"long enough.*= 60 steps; the longest has 50"):
        WindowDataset(dataset_dir, history=10, predictions=2, frameskip=5)
    with pytest.raises(ValueError, match=r"long enough.*the longest has 19"):
        WindowDataset(dataset_dir, episodes=[1, 3])
    with pytest.raises(ValueError, match=r"episodes \[4\] are outside the dataset's 4 episodes"):
        WindowDataset(dataset_dir, episodes=[0, 4])
    with pytest.raises(ValueError, match="resolution"):
        WindowDataset(dataset_dir, resolution=0)


def test_state_only_dataset(tmp_path):
    dataset = WindowDataset(write_dataset(tmp_path / "d", [25], keys=("state", "proprio")), keys=("state",))
    assert dataset.frame_shape is None and len(dataset) == 6
    with pytest.raises(ValueError, match=r"keys \['pixels'\] are not stored"):
        WindowDataset(dataset.path)


def test_windows_of_a_collected_dataset_by_its_id(tmp_path, monkeypatch):
    from wmbench.data.collect import collect
    from wmbench.data.recipe import Recipe

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    collect(Recipe(name="wmbench/loader-v0", env="pusht", policy="weak", episodes=2, steps=12, resolution=32), progress=False)
    dataset = WindowDataset("wmbench/loader-v0", history=2, predictions=1, frameskip=3)
    assert len(dataset) == 2 * (12 - 9 + 1) and dataset.action_dim == 6 and dataset.frame_shape == (3, 32, 32)
    item = dataset[5]  # episode 1, start step 1
    with h5py.File(dataset.path) as file:
        stored = file["episode_1"]
        assert np.array_equal(item["pixels"].numpy(), stored["observations/pixels"][[1, 4, 7]].transpose(0, 3, 1, 2))
        assert np.array_equal(item["actions"].numpy(), stored["actions"][1:10].reshape(3, 6))
        assert np.array_equal(item["state"].numpy(), stored["observations/state"][[1, 4, 7]])
