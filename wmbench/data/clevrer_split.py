"""The frozen CLEVRER split: fixed seeds and sizes, and the sha256 of every video's annotation and questions.

==========  ======  ==========  ==============  ==============================================
split       seed    videos      full size       what it is for
==========  ======  ==========  ==============  ==============================================
train       1       200         10,000          training a model (or its answering head)
val         2       50          5,000           choosing settings
test        3       50          5,000           the reported score
==========  ======  ==========  ==============  ==============================================

Video ``i`` of a split is video ``i`` of ``wmbench clevrer generate --seed SEED``, so the default
size is the first videos of CLEVRER's size (``--full``). ``eval_sets/clevrer_split.json`` holds
one digest per video of the default size: sha256 of the annotation (and of the questions) as
canonical JSON (sorted keys, no spaces), so a file's indentation does not matter, while any
changed answer, frame or float does. Scoring as a split (``check_questions``) refuses questions
that are not exactly the frozen ones. The digests are of this package's MuJoCo build; a platform
whose physics differs in the last bit is told so by ``wmbench clevrer generate --split``.

``python -m wmbench.data.clevrer_split`` recomputes the digests (minutes; no rendering).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from pathlib import Path
from typing import Any

from wmbench.data.clevrer_videos import paths, scene_seed
from wmbench.envs.clevrer.annotations import PREDICTIVE_FRAMES, annotate
from wmbench.envs.clevrer.physics import simulate
from wmbench.envs.clevrer.questions import DEFAULT_PER_TYPE, generate_questions
from wmbench.envs.clevrer.sampler import sample_scene

SPLITS = {"train": {"seed": 1, "videos": 200, "full": 10_000},
          "val": {"seed": 2, "videos": 50, "full": 5_000},
          "test": {"seed": 3, "videos": 50, "full": 5_000}}
CHECKSUMS = Path(__file__).parent / "eval_sets" / "clevrer_split.json"


def digest(document: Any) -> str:
    """sha256 of a JSON document written canonically (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def video_truth(seed: int, index: int) -> tuple[dict, dict]:
    """Video ``index`` of ``generate --seed seed``: its annotation and questions, without rendering it."""
    scene = sample_scene(scene_seed(seed, index))
    annotation = annotate(scene, index, simulate(scene, frames=scene.frames + PREDICTIVE_FRAMES))
    return annotation, generate_questions(annotation, scene_seed(seed, index), DEFAULT_PER_TYPE)


def frozen(split: str) -> dict:
    """The committed digests of ``split``: {"seed", "videos", "annotations": [...], "questions": [...]}."""
    if split not in SPLITS:
        raise ValueError(f"--split {split}: choose one of {list(SPLITS)}")
    return json.loads(CHECKSUMS.read_text())["splits"][split]


def check_questions(videos: list[dict], split: str, table: dict | None = None) -> None:
    """Refuse (ValueError, one line) questions that are not exactly the frozen ``split``'s; ``table``: its digests (default: committed)."""
    table = table or frozen(split)
    indices = [video.get("scene_index") for video in videos]
    if indices != list(range(table["videos"])):
        raise ValueError(f"these questions are of videos {_span(indices)}, the frozen {split} split has videos 0-{table['videos'] - 1}; "
                         f"score the questions.json of `wmbench clevrer generate --split {split}`, or score without --split")
    for video, expected in zip(videos, table["questions"]):
        if digest(video) != expected:
            raise ValueError(f"the questions of video {video['scene_index']} differ from the frozen {split} split's (sha256 mismatch); "
                             f"score the questions.json of `wmbench clevrer generate --split {split}`, or score without --split")


def check_folder(out: Path, split: str, table: dict | None = None) -> int:
    """Compare the annotations and questions ``generate`` wrote in ``out`` with the frozen digests; returns the videos checked."""
    table = table or frozen(split)
    for index in range(table["videos"]):
        files = paths(out, index)
        for kind, key in (("annotation", "annotations"), ("questions", "questions")):
            if files[kind].exists() and digest(json.loads(files[kind].read_text())) != table[key][index]:
                raise ValueError(f"the {kind} of video {index} in {out} differs from the frozen {split} split's (sha256 mismatch): "
                                 "this platform's MuJoCo build simulates differently; score without --split, and report the platform")
    return table["videos"]


def _span(indices: list) -> str:
    return f"{indices[0]}-{indices[-1]} ({len(indices)} videos)" if indices else "none"


def _digests(job: tuple[int, int]) -> tuple[str, str]:
    annotation, questions = video_truth(*job)
    return digest(annotation), digest(questions)


def freeze(workers: int = 2) -> dict:
    """Recompute every split's digests and write ``CHECKSUMS``."""
    import mujoco

    splits = {}
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for name, spec in SPLITS.items():
            pairs = pool.map(_digests, [(spec["seed"], i) for i in range(spec["videos"])], chunksize=4)
            splits[name] = {"seed": spec["seed"], "videos": spec["videos"],
                            "annotations": [a for a, _ in pairs], "questions": [q for _, q in pairs]}
    document = {"mujoco_version": mujoco.__version__, "splits": splits}
    CHECKSUMS.write_text(json.dumps(document, indent=1) + "\n")
    return document


if __name__ == "__main__":
    import time

    start = time.perf_counter()
    freeze()
    print(f"wrote {CHECKSUMS} in {time.perf_counter() - start:.0f} s")
