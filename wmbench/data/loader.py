"""Training windows from a collected dataset: the torch loader for world models.

A window is ``T = history + predictions`` frames taken ``frameskip`` env steps apart, each with
the block of ``frameskip`` actions that follows it (the block a LeWM-style predictor is
conditioned on), so a window starting at step ``s`` uses actions ``s .. s + T * frameskip - 1``::

    from torch.utils.data import DataLoader
    from wmbench.data import WindowDataset, split_episodes

    # n_episodes: the dataset's metadata["total_episodes"] (WindowDataset(...).n_episodes)
    train_episodes, val_episodes = split_episodes(n_episodes=1000, val_fraction=0.1, seed=0)
    train = WindowDataset("pusht-weak-mini-v0", history=3, predictions=1, frameskip=5, episodes=train_episodes)
    batch = next(iter(DataLoader(train, batch_size=128, shuffle=True, num_workers=4)))
    batch["pixels"].shape, batch["actions"].shape    # [128, 4, 3, 224, 224] uint8, [128, 4, 5 * A]

Actions and the low-dimensional observations of the selected episodes are read into memory when
the dataset is made (~0.35 ms an episode; ~150 MB for 18,500 Push-T episodes, shared with forked
workers); frames are decoded per item from the HDF5 file, which each process opens for itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from wmbench.data import storage
from wmbench.envs.base import parse_resolution

def split_episodes(n_episodes: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) episode indices, each sorted: a seeded random ``val_fraction`` of the episodes is held out."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction = {val_fraction!r}: must be in [0, 1)")
    order = np.random.default_rng(seed).permutation(n_episodes)
    n_val = int(round(val_fraction * n_episodes))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def check_count(name: str, value: int, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} = {value!r}: must be an integer >= {low}")
    return int(value)


class WindowDataset(torch.utils.data.Dataset):
    """Windows of ``history + predictions`` frames, ``frameskip`` steps apart, with grouped actions.

    An item is a dict: ``pixels`` uint8 [T, 3, H, W], ``actions`` float32 [T, frameskip * A]
    (``actions[k]`` concatenates the env actions taken from frame ``k`` up to frame ``k + 1``),
    ``state`` float32 [T, S] and ``proprio`` float32 [T, P] (the observations named in ``keys``;
    actions always), and ``episode`` and ``step``: the episode index and the env step of frame 0.

    ``action_dim`` is the width of one action block (``frameskip * A``, what a predictor takes),
    ``frame_shape`` the returned (3, H, W) (None when the dataset stores no pixels), ``metadata``
    the dataset's parsed metadata.json, ``episodes`` the episodes that give at least one window.
    """

    def __init__(
        self,
        dataset: str | os.PathLike,
        history: int = 3,
        predictions: int = 1,
        frameskip: int = 5,
        resolution: int | Sequence[int] | None = None,
        keys: Sequence[str] = ("pixels", "state", "proprio"),
        episodes: Sequence[int] | None = None,
    ):
        self.history = check_count("history", history, 1)
        self.predictions = check_count("predictions", predictions, 0)
        self.frameskip = check_count("frameskip", frameskip, 1)
        self.window_frames = self.history + self.predictions
        self.window_steps = self.window_frames * self.frameskip  # env actions one window spans
        self.keys = (keys,) if isinstance(keys, str) else tuple(keys)
        data = storage.find_data(dataset)
        self.path = data / storage.MAIN_FILE
        self.metadata = storage.read_metadata(data)
        self.n_episodes = int(self.metadata["total_episodes"])
        selected = np.arange(self.n_episodes) if episodes is None else np.asarray(episodes).reshape(-1)
        if selected.size and not np.issubdtype(selected.dtype, np.integer):
            raise ValueError(f"episodes must be integer indices, got {selected.dtype} values")
        selected = selected.astype(np.int64)
        outside = selected[(selected < 0) | (selected >= self.n_episodes)]
        if outside.size:
            raise ValueError(f"episodes {outside[:5].tolist()} are outside the dataset's {self.n_episodes} episodes")

        with h5py.File(self.path, "r") as file:
            if self.n_episodes and not isinstance(file["episode_0/observations"], h5py.Group):
                raise ValueError(
                    f"{dataset} stores one observation array, not a dict of 'pixels', 'state' and 'proprio'; "
                    "collect it from an env with the default obs_type"
                )
            stored = sorted(file["episode_0/observations"]) if self.n_episodes else []
            missing = [key for key in self.keys if key not in stored]
            if missing:
                raise ValueError(f"keys {missing} are not stored in {self.path}; it stores {stored}")
            if "pixels" in self.keys:
                storage.check_raw_pixels(file["episode_0/observations/pixels"], dataset)
            actions = [file[f"episode_{e}/actions"][()] for e in selected]
            long_enough = [len(a) >= self.window_steps for a in actions]
            if not any(long_enough):
                longest = max((len(a) for a in actions), default=0)
                raise ValueError(
                    f"no episode of {self.path} ({selected.size} selected) is long enough for one window: it needs "
                    f"(history + predictions) * frameskip = {self.window_steps} steps; the longest has {longest}"
                )
            self.episodes = selected[long_enough]
            self.actions = [a.astype(np.float32, copy=False) for a, keep in zip(actions, long_enough) if keep]
            self.observations = {
                key: [file[f"episode_{e}/observations/{key}"][()].astype(np.float32, copy=False) for e in self.episodes]
                for key in self.keys
                if key != "pixels"
            }
            stored_frame_shape = file["episode_0/observations/pixels"].shape[1:3] if "pixels" in stored else None

        windows = np.array([len(a) - self.window_steps + 1 for a in self.actions])
        # window i is in episode self.episodes[k] where first_window[k] <= i < first_window[k + 1]
        self.first_window = np.concatenate([[0], np.cumsum(windows)])
        self.action_dim = self.frameskip * self.actions[0].shape[1]  # one block: what the predictor sees
        size = stored_frame_shape if resolution is None else parse_resolution(resolution)
        self.resize = None if size == stored_frame_shape else size
        self.frame_shape = None if size is None else (3, *size)
        self._file, self._file_pid = None, None

    def __len__(self) -> int:
        return int(self.first_window[-1])

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        k = int(np.searchsorted(self.first_window, index, side="right")) - 1
        episode, start = int(self.episodes[k]), int(index - self.first_window[k])
        frames = range(start, start + self.window_steps, self.frameskip)
        actions = self.actions[k][start : start + self.window_steps]
        # copies, so that changing an item never changes the dataset
        item = {"actions": torch.tensor(actions.reshape(self.window_frames, self.action_dim))}
        for key, values in self.observations.items():
            item[key] = torch.tensor(values[k][start : start + self.window_steps : self.frameskip])
        if "pixels" in self.keys:
            item["pixels"] = self.read_frames(episode, frames)
        item["episode"], item["step"] = episode, start
        return item

    def read_frames(self, episode: int, frames: range) -> torch.Tensor:
        """The frames of an episode as uint8 [T, 3, H, W], resized when asked."""
        stored = self.file[f"episode_{episode}/observations/pixels"]
        # one read per frame: an h5py strided selection reads ~100x slower than T single-chunk reads
        if self.resize is None:
            pixels = np.empty((len(frames), 3, *stored.shape[1:3]), np.uint8)
            for k, t in enumerate(frames):
                pixels[k] = stored[t].transpose(2, 0, 1)
            return torch.from_numpy(pixels)
        channels_last = torch.from_numpy(np.stack([stored[t] for t in frames])).permute(0, 3, 1, 2)
        # the antialiased uint8 resize runs ~2x faster on channels-last frames than on channels-first ones
        resized = F.interpolate(channels_last, size=self.resize, mode="bilinear", antialias=True)
        return resized.contiguous()

    @property
    def file(self) -> h5py.File:
        # h5py handles must not cross a fork: each process (each DataLoader worker) opens its own.
        # No chunk cache: a window reads each frame once, and uncached chunks decode straight into the output.
        if self._file is None or self._file_pid != os.getpid():
            self._file, self._file_pid = h5py.File(self.path, "r", rdcc_nbytes=0), os.getpid()
        return self._file

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None, "_file_pid": None}

    def __repr__(self) -> str:
        return (
            f"WindowDataset({str(self.path)!r}, history={self.history}, predictions={self.predictions}, "
            f"frameskip={self.frameskip}: {len(self)} windows from {self.episodes.size} episodes)"
        )
