"""What is on disk: the local datasets, a summary of one, and a preview sheet of its episodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from PIL import Image

from wmbench.data import storage
from wmbench.media import contact_sheet


def local_datasets() -> list[dict[str, Any]]:
    """Every dataset under the Minari root, finished ones and interrupted wmbench collections."""
    root = storage.datasets_root()
    rows = []
    for metadata_file in sorted(root.glob("**/data/" + storage.METADATA_FILE)):
        if storage.PARTIAL_DIR in metadata_file.parts:
            continue
        metadata = json.loads(metadata_file.read_text())
        ours = metadata.get("wmbench", {})
        rows.append({
            "name": metadata.get("dataset_id", str(metadata_file.parent.parent.relative_to(root))),
            "env": ours.get("env", "-"),
            "policy": ours.get("policy", metadata.get("algorithm_name", "-")),
            "episodes": metadata.get("total_episodes", 0),
            "steps": metadata.get("total_steps", 0),
            "size_mb": _size_mb(metadata_file.parent),
            "status": "complete",
        })
    for collection in sorted((root / storage.PARTIAL_DIR).glob("**/collection.json")):
        recipe = json.loads(collection.read_text())["recipe"]
        done = len(list((collection.parent / "episodes").glob("*.h5")))
        rows.append({
            "name": recipe["name"], "env": recipe["env"], "policy": recipe["policy"],
            "episodes": done, "steps": done * recipe["steps"], "size_mb": _size_mb(collection.parent),
            "status": f"interrupted ({done}/{recipe['episodes']}): --resume",
        })
    return rows


def summary(name: str) -> dict[str, Any]:
    """The facts a user checks before training on a dataset."""
    data = storage.find_data(name)
    metadata = storage.read_metadata(data)
    ours = metadata.get("wmbench", {})
    with h5py.File(data / storage.MAIN_FILE, "r") as file:
        episodes = [file[f"episode_{i}"] for i in range(metadata["total_episodes"])]
        solved = [bool(e["infos/success"][()].any()) for e in episodes if "infos/success" in e]
    frames = metadata["total_steps"] + metadata["total_episodes"]
    size = _size_mb(data)
    return {
        "name": metadata["dataset_id"],
        "path": str(data.parent),
        "env": ours.get("env_id"),
        "policy": ours.get("policy"),
        "episodes": metadata["total_episodes"],
        "steps": metadata["total_steps"],
        "steps_per_episode": ours.get("steps"),
        "resolution": ours.get("resolution"),
        "seed": ours.get("seed"),
        "variation": ours.get("variation"),
        "episodes_with_success": f"{sum(solved)}/{len(solved)}",
        "size_mb": size,
        "kb_per_frame": round(size * 1000 / frames, 2),
        "pixel_encoding": ours.get("pixel_encoding"),
        "sha256": ours.get("sha256"),
        "wmbench_version": ours.get("wmbench_version"),
        "recipe": ours.get("recipe"),
        "combined_from": metadata.get("combined_datasets"),
    }


def verify(name: str) -> list[str]:
    """What does not match the dataset's checksum manifest (empty: every episode and the file do)."""
    data = storage.find_data(name)
    manifest_path = data / storage.MANIFEST_FILE
    if not manifest_path.is_file():
        return [f"no {storage.MANIFEST_FILE}: not a wmbench dataset, nothing to check against"]
    manifest = json.loads(manifest_path.read_text())
    problems = []
    if storage.file_sha256(data / storage.MAIN_FILE) != manifest["files"][storage.MAIN_FILE]:
        problems.append(f"the bytes of {storage.MAIN_FILE}")
    with h5py.File(data / storage.MAIN_FILE, "r") as file:
        for index, expected in enumerate(manifest["episodes"]):
            if storage.content_sha256(storage.episode_arrays(file[f"episode_{index}"])) != expected:
                problems.append(f"episode {index}")
    if storage.dataset_sha256(manifest["episodes"]) != manifest["sha256"]:
        problems.append(f"the dataset checksum in {storage.MANIFEST_FILE}")
    return problems


def preview(name: str, episodes: int = 4, frames: int = 8, seed: int = 0) -> Image.Image:
    """A sheet with one row per randomly drawn episode: ``frames`` frames evenly spread over it."""
    data = storage.find_data(name)
    metadata = storage.read_metadata(data)
    total = metadata["total_episodes"]
    picks = np.sort(np.random.default_rng(seed).choice(total, size=min(episodes, total), replace=False))
    rows = []
    with h5py.File(data / storage.MAIN_FILE, "r") as file:
        for episode in picks:
            pixels = file[f"episode_{episode}/observations/pixels"]
            storage.check_raw_pixels(pixels, name)
            steps = np.unique(np.linspace(0, len(pixels) - 1, frames).round().astype(int))
            row = contact_sheet([pixels[t] for t in steps], [f"ep {episode} t={t}" for t in steps])
            rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    for i, row in enumerate(rows):
        sheet.paste(row, (0, sum(r.height for r in rows[:i])))
    return sheet


def _size_mb(directory: Path) -> float:
    return round(sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) / 1e6, 1)
