"""Combine wmbench datasets into one without touching a pixel: ``wmbench datasets combine A B ... --out NEW``.

``minari.combine_datasets`` is not the route: it decodes every episode and writes it again through
Minari's writer, which JPEG-encodes the pixels (lossy), and it keeps Minari's metadata only: no
``manifest.json``, no ``"wmbench"`` metadata, no episode seeds, goal states or checksums (measured
in ``datasets/README.md``).

Here the episode groups are copied as they are stored: HDF5 copies the compressed chunks, so the
pixels keep their lossless filter and their bytes. Episodes are renumbered in the order the datasets
are given. An episode's checksum is of its arrays, so it is kept; each dataset's file is first
checked against its manifest, so the kept checksums describe what is copied. The datasets must
share the env (and its version), episode length, resolution, variation and stored arrays; policies
and seeds may differ, and ``metadata["wmbench"]["sources"]`` says which episodes came from which
dataset and recipe. An episode found in two of them (collections with one env, policy and seed share
their first episodes) is refused. The result is written like a collection: built in ``<root>/.wmbench-partial/<id>`` under
that id's lock, then moved into place with one rename, so it is complete or absent.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import h5py
import minari

import wmbench
from wmbench.data import storage
from wmbench.data.recipe import check_dataset_id
from wmbench.files import exclusive


@dataclass(frozen=True)
class Source:
    """A dataset to combine, read and checked against its manifest."""

    name: str
    data: Path
    metadata: dict[str, Any]
    checksums: list[str]  # the manifest's, one per episode
    file_sha256: str  # the manifest's, of the main file
    arrays: dict[str, str]  # the stored arrays of its first episode: path -> dtype and shape of one step

    @property
    def ours(self) -> dict[str, Any]:
        return self.metadata["wmbench"]

    @property
    def episodes(self) -> int:
        return len(self.checksums)


# What every combined dataset must share, in the order it is checked: (what, its value in a source).
SHARED = (
    ("env", lambda source: source.ours.get("env_id")),
    ("episode length (steps)", lambda source: source.ours.get("steps")),
    ("resolution", lambda source: source.ours.get("resolution")),
    ("variation", lambda source: source.ours.get("variation")),
    ("pixel encoding", lambda source: source.ours.get("pixel_encoding")),
    ("stored arrays", lambda source: source.arrays),
)


def combine(names: Sequence[str], out: str) -> Path:
    """Write the episodes of the datasets ``names``, in order, as the dataset ``out``; returns its directory."""
    check_dataset_id(out)
    if len(names) < 2:
        raise ValueError(f"give two or more datasets to combine (got {len(names)})")
    sources = [read_source(name) for name in names]
    check_combinable(sources)
    target = storage.dataset_dir(out)
    staging = storage.datasets_root() / storage.PARTIAL_DIR / out
    with exclusive(staging.with_name(f"{staging.name}.lock"), f"dataset {out}"):
        if target.exists():
            raise ValueError(f"dataset {out} already exists at {target}; choose another --out or delete it first (minari delete {out})")
        if (staging / "collection.json").exists():
            raise ValueError(f"an interrupted collection of {out} is at {staging}; choose another --out, or finish or delete that collection")
        for source in sources:  # after the quick checks: this reads every byte
            if storage.file_sha256(source.data / storage.MAIN_FILE) != source.file_sha256:
                raise ValueError(
                    f"{source.name} does not match its checksum manifest (`wmbench datasets show {source.name} --verify` says where); "
                    "combine only intact datasets: copy or collect it again"
                )
        shutil.rmtree(staging, ignore_errors=True)  # what a combine killed midway left
        try:
            data = staging / "dataset" / "data"
            episodes = [(source.data / storage.MAIN_FILE, index) for source in sources for index in range(source.episodes)]
            checksums = [checksum for source in sources for checksum in source.checksums]
            storage.write_data(data, episodes, checksums, lambda sha256: combined_metadata(out, sources, sha256, data))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging / "dataset", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def read_source(name: str) -> Source:
    """The dataset ``name`` (an id or a path) with its manifest, refused unless it is a wmbench dataset."""
    data = storage.find_data(name)
    metadata = storage.read_metadata(data)
    if "wmbench" not in metadata or not (data / storage.MANIFEST_FILE).is_file():
        raise ValueError(
            f"{name} is not a wmbench dataset (it has no manifest.json or no 'wmbench' metadata); "
            "`wmbench datasets combine` combines datasets made by `wmbench collect` or by itself"
        )
    try:
        manifest = json.loads((data / storage.MANIFEST_FILE).read_text())
        file_checksum, checksums = manifest["files"][storage.MAIN_FILE], list(manifest["episodes"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{name}: {data / storage.MANIFEST_FILE} is unreadable ({error!r}); collect the dataset again") from None
    if len(checksums) != metadata.get("total_episodes"):
        raise ValueError(f"{name}: its manifest lists {len(checksums)} episodes, its metadata {metadata.get('total_episodes')}; collect it again")
    with h5py.File(data / storage.MAIN_FILE, "r") as file:
        arrays = stored_arrays(file["episode_0"])
    return Source(name, data, metadata, checksums, file_checksum, arrays)


def stored_arrays(episode: h5py.Group) -> dict[str, str]:
    """Each array of an episode with its dtype and the shape of one step: ``{"actions": "float32 (2,)", ...}``."""
    found = {}

    def note(path: str, item) -> None:
        if isinstance(item, h5py.Dataset):
            found[path] = f"{item.dtype} {item.shape[1:]}"

    episode.visititems(note)
    return found


def difference(first: Any, other: Any) -> str:
    """``first`` vs ``other``; for two dicts, only the first key where they differ."""
    if isinstance(first, dict) and isinstance(other, dict):
        key = next(k for k in sorted({*first, *other}, key=str) if first.get(k) != other.get(k))
        return f"{key}: {first.get(key, 'absent')} vs {other.get(key, 'absent')}"
    return f"{first} vs {other}"


def check_combinable(sources: list[Source]) -> None:
    """Refuse, in one line naming the difference, datasets that cannot form one dataset."""
    seen: dict[Path, str] = {}
    for source in sources:
        if source.data.resolve() in seen:
            raise ValueError(f"{source.name} and {seen[source.data.resolve()]} are the same dataset; give each dataset once")
        seen[source.data.resolve()] = source.name
    first = sources[0]
    for what, value in SHARED:
        for other in sources[1:]:
            if value(other) != value(first):
                raise ValueError(
                    f"cannot combine {first.name} and {other.name}: they differ in {what} ({difference(value(first), value(other))}); "
                    "combine datasets of one env, episode length, resolution, variation and layout (collect again with matching settings)"
                )
    where: dict[str, tuple[str, int]] = {}
    for source in sources:
        for index, checksum in enumerate(source.checksums):
            if checksum in where:
                name, first_index = where[checksum]
                raise ValueError(
                    f"episode {index} of {source.name} is episode {first_index} of {name} (the same sha256), so the combination "
                    "would hold it twice (collections of one env, policy and seed share their first episodes); "
                    "leave one out, or collect it again with another --seed"
                )
            where[checksum] = (source.name, index)


def combined_metadata(out: str, sources: list[Source], sha256: str, data: Path) -> dict[str, Any]:
    """Minari's keys and ours for the combination: what the sources share, and where each episode came from."""
    first = sources[0]
    origins = source_ranges(sources)
    policies = list(dict.fromkeys(policy for origin in origins for policy in str(origin["policy"]).split("+")))
    seeds = {origin["seed"] for origin in origins}
    episodes = sum(source.episodes for source in sources)
    steps = first.ours["steps"]
    return {
        # Minari's keys ("combined_datasets" as minari.combine_datasets names them)
        "dataset_id": out,
        "minari_version": minari.__version__,
        "data_format": "hdf5",
        "jpeg_encoding": False,
        "total_episodes": episodes,
        "total_steps": episodes * steps,
        "observation_space": first.metadata["observation_space"],
        "action_space": first.metadata["action_space"],
        "env_spec": first.metadata["env_spec"],
        "algorithm_name": "+".join(policies),
        "author": sorted({author for source in sources for author in source.metadata.get("author", [])}),
        "description": f"{episodes} episodes of {steps} steps of {first.ours['env_id']}, combined from "
        + ", ".join(f"{source.episodes} of {source.metadata.get('dataset_id', source.name)}" for source in sources),
        "dataset_size": round(sum(f.stat().st_size for f in data.iterdir()) / 1e6, 1),
        "combined_datasets": [source.metadata.get("dataset_id", source.name) for source in sources],
        # ours
        "wmbench": {
            "wmbench_version": wmbench.__version__,
            "env": first.ours["env"],
            "env_id": first.ours["env_id"],
            "env_version": first.ours["env_version"],
            "policy": "+".join(policies),
            "seed": seeds.pop() if len(seeds) == 1 else None,  # each source's is in "sources"
            "episodes": episodes,
            "steps": steps,
            "resolution": first.ours["resolution"],
            "variation": first.ours["variation"],
            "recipe": None,  # no one recipe makes a combination: each source's is in "sources"
            "pixel_encoding": first.ours["pixel_encoding"],
            "episode_seeds": "as in the recipe of each source, counting episodes from the source's first_episode; "
            "each episode's attributes carry its env reset seed and policy seed",
            "sources": origins,
            "sha256": sha256,
        },
    }


def source_ranges(sources: list[Source]) -> list[dict[str, Any]]:
    """Which episodes came from which collected dataset and recipe (combinations of combinations flattened)."""
    origins, offset = [], 0
    for source in sources:
        ours = source.ours
        inner = ours.get("sources") or [{
            "dataset_id": source.metadata.get("dataset_id", source.name),
            "first_episode": 0,
            "episodes": source.episodes,
            "sha256": ours.get("sha256"),
            "policy": ours.get("policy"),
            "seed": ours.get("seed"),
            "recipe": ours.get("recipe"),
            "wmbench_version": ours.get("wmbench_version"),
        }]
        origins += [{**origin, "first_episode": offset + origin["first_episode"]} for origin in inner]
        offset += source.episodes
    return origins
