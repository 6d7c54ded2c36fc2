"""CLEVRER scenes generated per minute at 480 x 320: video, annotations (with counterfactuals) and questions.

The reference, measured in the same run on one core, is the bare work of a scene: sample it,
simulate and render its 128 frames, and annotate it (the 160-frame run and one re-simulation per
object). `wmbench clevrer generate` with one worker adds the MP4 encoding, the JSON and the
questions; it must keep at least 70% of the bare rate. Two workers (one llvmpipe thread each) must
generate at least 1.3x as many scenes per minute as one.
"""

from __future__ import annotations

import os
import time

import pytest

pytest.importorskip("av")
pytest.importorskip("mujoco")

from wmbench.envs.clevrer import annotate, render_video, sample_scene, simulate  # noqa: E402
from wmbench.data.clevrer_videos import generate  # noqa: E402

pytestmark = pytest.mark.benchmark

VIDEOS = 24  # enough that the workers' start (imports, GL context) does not dominate


def bare_seconds_per_scene() -> float:
    start = time.perf_counter()
    for seed in range(VIDEOS):
        scene = sample_scene(seed)
        render_video(scene, simulate(scene))
        annotate(scene, seed)
    return (time.perf_counter() - start) / VIDEOS


def test_clevrer_scenes_per_minute(tmp_path, report):
    bare = 60 / bare_seconds_per_scene()
    one = generate(VIDEOS, tmp_path / "one", workers=1, progress=False)["videos_per_minute"]
    pinned = os.sched_getaffinity(0)
    os.sched_setaffinity(0, range(os.cpu_count()))  # the workers may use every core (the benchmarks pin one)
    try:
        two = generate(VIDEOS, tmp_path / "two", workers=2, progress=False)["videos_per_minute"]
    finally:
        os.sched_setaffinity(0, pinned)
    report({"bare_scenes_per_minute": bare, "generate_1_worker_per_minute": one, "generate_2_workers_per_minute": two,
            "ratio_1_worker_to_bare": one / bare, "ratio_2_workers_to_1": two / one})
    assert one >= 0.7 * bare, f"generate keeps {one / bare:.0%} of the bare scene rate ({one:.0f} vs {bare:.0f} per minute)"
    assert two >= 1.3 * one, f"two workers generate {two:.0f} scenes per minute, one {one:.0f}"
