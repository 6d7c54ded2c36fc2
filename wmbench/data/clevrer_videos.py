"""``wmbench clevrer generate``: seeded scenes as videos, ground truth and questions, in parallel.

==============================  ==================================================================
``settings.json``               seed, count, resolution and versions; written before any video
``videos/video_NNNNN.mp4``      the observed frames (128 over 5 s by default), H.264
``annotations/annotation_NNNNN.json``  ground truth in CLEVRER's layout (``annotations.py``), with
                                the counterfactual re-simulations and the predictive window
``questions/questions_NNNNN.json``     the video's questions with answers (``questions.py``)
``questions.json``              every video's questions in one list (CLEVRER ships one per split)
``manifest.json``               the settings, question count and timings; written last
==============================  ==================================================================

Video ``i`` comes from the scene seed ``SeedSequence(seed, spawn_key=(i,))``, so the files do not
depend on the number of workers or on the order they finish in. Each file is written through a
temporary name and renamed, the annotation after the video and the questions last: a video
counts as done when its questions file exists, and ``resume=True`` generates only the others,
after checking that ``settings.json`` matches. One run at a time writes a folder: a second is
refused while the first holds ``.wmbench.lock`` in it (``files.exclusive``). The frozen split
(``--split``) and its digests are ``clevrer_split.py``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

import wmbench
from wmbench.data.collect import CollectionStopped, prepare_worker_process
from wmbench.envs.clevrer.annotations import PREDICTIVE_FRAMES, annotate
from wmbench.envs.clevrer.physics import VIDEO_RESOLUTION, render_video, simulate
from wmbench.envs.clevrer.questions import DEFAULT_PER_TYPE, generate_questions
from wmbench.envs.clevrer.sampler import sample_scene
from wmbench.envs.clevrer.scene import FRAMES
from wmbench.files import atomic_write, exclusive, remove_temporaries, write_json
from wmbench.media import save_mp4
from wmbench.progress import progress_bar


FOLDERS = ("videos", "annotations", "questions")
SETTINGS_FILE = "settings.json"
LOCK_FILE = ".wmbench.lock"


def scene_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1)[0])


def paths(out: Path, index: int) -> dict[str, Path]:
    return {
        "video": out / "videos" / f"video_{index:05d}.mp4",
        "annotation": out / "annotations" / f"annotation_{index:05d}.json",
        "questions": out / "questions" / f"questions_{index:05d}.json",
    }


def read_generated(out: str | Path, videos: int | None = None) -> tuple[list[dict], dict[int, dict]]:
    """The first ``videos`` entries (default all) of a generated folder's questions.json, and their annotations by scene index."""
    out = Path(out)
    chosen = json.loads((out / "questions.json").read_text())[:videos]
    return chosen, {v["scene_index"]: json.loads(paths(out, v["scene_index"])["annotation"].read_text()) for v in chosen}


def make_video(out: Path, index: int, seed: int, resolution: tuple[int, int]) -> dict[str, float]:
    """Write video ``index``'s three files; returns the seconds each stage took."""
    files, timings = paths(out, index), {}
    start = time.perf_counter()
    scene = sample_scene(scene_seed(seed, index))
    trajectory = simulate(scene, frames=scene.frames + PREDICTIVE_FRAMES)  # the video, then the predictive window
    frames = render_video(scene, trajectory, frames=scene.frames, resolution=resolution)
    atomic_write(files["video"], lambda tmp: save_mp4(frames, tmp, fps=scene.frames / scene.duration))
    timings["video_s"] = time.perf_counter() - start

    start = time.perf_counter()
    annotation = annotate(scene, index, trajectory)  # plus one re-simulation per object
    write_json(files["annotation"], annotation, indent=1)
    timings["annotation_s"] = time.perf_counter() - start
    write_json(files["questions"], generate_questions(annotation, scene_seed(seed, index), DEFAULT_PER_TYPE), indent=1)
    return timings


def _make_video_in_worker(arguments: tuple) -> dict[str, float]:
    return make_video(*arguments)


def generate(videos: int, out: str | Path, *, seed: int = 0, workers: int = 2, resolution: tuple[int, int] = VIDEO_RESOLUTION,
             resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Generate ``videos`` videos into ``out`` (see the module docstring); returns the manifest."""
    out = Path(out)
    if videos < 1 or workers < 1:
        raise ValueError(f"--videos {videos} and --workers {workers}: both must be at least 1")
    height, width = resolution
    if height % 2 or width % 2:
        raise ValueError(f"--resolution {width}x{height}: MP4 needs even sizes, e.g. 480x320")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the videos")
    settings = {"videos": videos, "seed": seed, "resolution": [height, width],
                "wmbench_version": wmbench.__version__, "mujoco_version": mujoco.__version__}
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out / LOCK_FILE, f"the CLEVRER videos in {out}"):
        _start_or_resume(out, settings, resume)
        return _generate(out, settings, workers, progress)


def _start_or_resume(out: Path, settings: dict[str, Any], resume: bool) -> None:
    """Write the settings before any video, or check them against those of the run being resumed."""
    settings_path = out / SETTINGS_FILE
    if any(path.name != LOCK_FILE for path in out.iterdir()):
        if not resume:
            raise ValueError(f"{out} is not empty; pass --resume to finish an interrupted run there, or choose another --out")
        if not settings_path.is_file():
            raise ValueError(f"--resume: {out} holds no {SETTINGS_FILE}, so it is no run of `wmbench clevrer generate`; choose another --out")
        try:
            saved = json.loads(settings_path.read_text())
        except ValueError as error:
            raise ValueError(f"--resume: {settings_path} is unreadable ({error}); choose another --out") from None
        differences = [f"{key} {saved.get(key)} there, {value} here" for key, value in settings.items() if saved.get(key) != value]
        if differences:
            raise ValueError(f"--resume: the run in {out} has other settings ({'; '.join(differences)}); "
                             "resume it with its own settings, or choose another --out")
        for folder in (out, *(out / name for name in FOLDERS)):
            remove_temporaries(folder)  # files being written when it stopped
    else:
        write_json(settings_path, settings)
    for folder in FOLDERS:
        (out / folder).mkdir(exist_ok=True)


def _generate(out: Path, settings: dict[str, Any], workers: int, progress: bool) -> dict[str, Any]:
    videos = settings["videos"]
    todo = [i for i in range(videos) if not paths(out, i)["questions"].exists()]
    bar = progress_bar(total=videos, initial=videos - len(todo), desc="clevrer", unit="video", disable=not progress)
    timings, start = [], time.perf_counter()
    jobs = [(out, index, settings["seed"], tuple(settings["resolution"])) for index in todo]
    try:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                timings.append(make_video(*job))
                bar.update()
        else:
            # spawn, not fork: OpenGL contexts do not survive a fork
            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn"),
                                     initializer=prepare_worker_process, initargs=(os.getpid(),)) as pool:
                pending = {pool.submit(_make_video_in_worker, job) for job in jobs}
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        timings.append(future.result())
                        bar.update()
    except KeyboardInterrupt:
        done = sum(paths(out, i)["questions"].exists() for i in range(videos))
        raise CollectionStopped(f"interrupted: {done} of {videos} videos are complete in {out}; rerun with --resume to generate the rest", 130) from None
    finally:
        bar.close()
    wall = time.perf_counter() - start

    every_question = [json.loads(paths(out, i)["questions"].read_text()) for i in range(videos)]
    write_json(out / "questions.json", every_question, indent=1)
    manifest = {
        **settings,
        "frames": FRAMES,
        "workers": workers,
        "questions": sum(len(video["questions"]) for video in every_question),
        "wall_s": wall,
        "videos_per_minute": 60 * len(jobs) / wall if jobs else None,
        "mean_s": {key: float(np.mean([t[key] for t in timings])) for key in ("video_s", "annotation_s")} if timings else None,
    }
    write_json(out / "manifest.json", manifest)
    return manifest
