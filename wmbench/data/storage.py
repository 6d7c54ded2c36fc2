"""The on-disk form of a wmbench dataset: a Minari (HDF5) dataset that plain ``minari`` opens.

``<root>/<id>/data/`` holds ``metadata.json`` (Minari's keys; ours under ``"wmbench"``),
``main_data.hdf5`` and ``manifest.json`` (checksums). ``<root>`` is ``$MINARI_DATASETS_PATH``
or ``~/.minari/datasets``, as for Minari. One group per episode of ``T`` steps:

=======================  ======================  ===========================================
``observations/pixels``  uint8 [T+1, H, W, 3]    lossless: deflate level 1, one chunk a frame
``observations/state``   float32 [T+1, S]        the observation's state
``observations/proprio`` float32 [T+1, P]
``actions``              float32 [T, A]          in [-1, 1]
``rewards``              float64 [T]
``terminations``         bool [T]                never: episodes run their full length
``truncations``          bool [T]                true at the last step
``infos/success``        bool [T+1]              the env's success rule, at reset and each step
``infos/state``          float64 [T+1, S]        the exact simulator state (``reset(options=
                                                 {"state": s})`` redraws the frame bit for bit)
attrs                    ``id``, ``total_steps``, ``seed`` (env reset seed), ``policy_seed``,
                         ``goal_state`` (float64 [S]), ``sha256`` (of the episode's arrays)
=======================  ======================  ===========================================

Pixels are stored raw behind HDF5's built-in deflate filter, so every HDF5 reader decodes them
with no plugin and they equal the rendered frames exactly (figures in ``datasets/README.md``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from wmbench.files import atomic_write, write_json

PIXEL_FILTER = {"compression": "gzip", "compression_opts": 1}
PIXEL_ENCODING = "raw uint8, HDF5 deflate level 1 (lossless), one chunk per frame"
MAIN_FILE = "main_data.hdf5"
MANIFEST_FILE = "manifest.json"
METADATA_FILE = "metadata.json"
PARTIAL_DIR = ".wmbench-partial"  # hidden, so Minari's listing skips interrupted collections


def datasets_root() -> Path:
    """Where Minari keeps local datasets (the same rule as ``minari``)."""
    root = os.environ.get("MINARI_DATASETS_PATH")
    return Path(root) if root else Path.home() / ".minari" / "datasets"


def dataset_dir(name: str) -> Path:
    return datasets_root() / name


def find_data(name_or_path: str | Path) -> Path:
    """The ``data`` directory of a finished dataset: by Minari id, or the path of the dataset, its
    ``data`` directory or its main file."""
    path = Path(name_or_path).expanduser()
    for candidate in (dataset_dir(str(name_or_path)) / "data", path / "data", path, path.parent):
        if (candidate / METADATA_FILE).is_file() and (candidate / MAIN_FILE).is_file():
            return candidate
    raise ValueError(
        f"no dataset {str(name_or_path)!r} in {datasets_root()} (set MINARI_DATASETS_PATH to look elsewhere); "
        "`wmbench datasets` lists the local ones; `wmbench collect --recipe datasets/pusht-weak-mini.toml` "
        "(or another recipe in datasets/) makes one"
    )


def read_metadata(data: Path) -> dict[str, Any]:
    return json.loads((data / METADATA_FILE).read_text())


def episode_arrays(group: h5py.Group) -> dict[str, np.ndarray]:
    """Every array of a stored episode, by its path in the group."""
    arrays = {}
    group.visititems(lambda path, item: arrays.__setitem__(path, item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


def content_sha256(arrays: dict[str, np.ndarray]) -> str:
    """sha256 of the arrays' names, dtypes, shapes and bytes, in name order (not of any file)."""
    digest = hashlib.sha256()
    for path in sorted(arrays):
        array = np.ascontiguousarray(arrays[path])
        digest.update(f"{path}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.data)  # the buffer itself: no copy of the frames
    return digest.hexdigest()


def dataset_sha256(episode_checksums: list[str]) -> str:
    """One checksum for the dataset: sha256 of the episode checksums in episode order."""
    return hashlib.sha256("\n".join(episode_checksums).encode()).hexdigest()


def write_episode(path: Path, index: int, arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> str:
    """Write one episode's file atomically (temporary name, then rename); returns its checksum."""
    checksum = content_sha256(arrays)

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w", track_order=True) as file:
            group = file.create_group(f"episode_{index}", track_order=True)
            for key, array in arrays.items():
                if key == "observations/pixels":
                    group.create_dataset(key, data=array, chunks=(1, *array.shape[1:]), track_times=False, **PIXEL_FILTER)
                else:
                    group.create_dataset(key, data=array, track_times=False)
            group.attrs.update({"id": index, **attrs, "sha256": checksum})

    atomic_write(path, write)
    return checksum


def read_episode_checksum(path: Path, index: int) -> str:
    """The checksum a finished episode file carries in its attributes."""
    with h5py.File(path, "r") as file:
        return str(file[f"episode_{index}"].attrs["sha256"])


def merge_episodes(episodes: list[tuple[Path, int]], out: Path) -> None:
    """Copy episodes, each given as (file, index in that file), into one Minari main file as
    ``episode_0``, ``episode_1``, ... in order. HDF5 copies the compressed chunks as they are, so the
    pixels keep their filter and their bytes; an episode's checksum (of its arrays) stays valid."""

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w", track_order=True) as main:
            new_index = 0
            for path, run in itertools.groupby(episodes, key=lambda episode: episode[0]):
                with h5py.File(path, "r") as source:  # opened once for a run of its episodes
                    for _, index in run:
                        source.copy(source[f"episode_{index}"], main, name=f"episode_{new_index}")
                        if index != new_index:
                            main[f"episode_{new_index}"].attrs["id"] = new_index
                        new_index += 1

    atomic_write(out, write)


def check_raw_pixels(pixels: h5py.Dataset, dataset: str | Path) -> None:
    """Refuse stored pixels that are not raw uint8 frames [T, H, W, 3], such as Minari's JPEG encoding
    (one byte string a frame), with the way to a dataset wmbench reads."""
    if pixels.dtype != np.uint8 or pixels.ndim != 4:
        raise ValueError(
            f"the pixels of {dataset} are stored as {pixels.dtype} {pixels.shape}, not raw uint8 frames [T, H, W, 3] "
            "(as Minari's JPEG encoding, lossy, stores them: metadata jpeg_encoding true); wmbench reads raw frames: collect with "
            "`wmbench collect`, or with minari.DataCollector(env, jpeg_encoding=False)"
        )


def write_data(data: Path, episodes: list[tuple[Path, int]], checksums: list[str], metadata: Callable[[str], dict[str, Any]]) -> None:
    """Write a dataset's ``data`` folder: ``episodes`` (file, index) merged into the main file in order, the manifest of
    their ``checksums``, and the metadata that ``metadata`` gives for the dataset's checksum."""
    data.mkdir(parents=True)
    merge_episodes(episodes, data / MAIN_FILE)
    sha256 = dataset_sha256(checksums)
    write_json(data / MANIFEST_FILE, {"sha256": sha256, "files": {MAIN_FILE: file_sha256(data / MAIN_FILE)}, "episodes": checksums})
    write_json(data / METADATA_FILE, metadata(sha256))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
