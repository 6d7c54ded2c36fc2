"""Training-loader throughput: windows per second through a torch DataLoader, and where the time goes.

The dataset is 40 episodes of 160 steps of Push-T at 224 px under the random data policy,
written by ``wmbench.data.collect`` (frames deflate-compressed at level 1, one chunk per frame). Windows are
LeWM's: history 3, predictions 1, frameskip 5; batches of 128, shuffled.

The breakdown is CPU time per window in this process (one core): indexing and the in-memory
actions and low-dim observations, reading and decoding the 4 frames, laying them out channels
first, and ``default_collate`` stacking 128 windows. The conftest pins benchmarks to one core;
the DataLoader figures with workers are measured with every core of the machine, which is what
workers are for (``cores`` in the JSON says how many). The target is a ratio measured in the same
run: a single-process DataLoader delivers at least a quarter of the rate at which h5py alone can
decode the frames, so the loader's and the DataLoader's own costs stay below three times the
decoding (measured: about a third).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, default_collate

from wmbench.data.collect import collect
from wmbench.data.loader import WindowDataset
from wmbench.data.recipe import Recipe

pytestmark = pytest.mark.benchmark

EPISODES, STEPS, RESOLUTION = 40, 160, 224
HISTORY, PREDICTIONS, FRAMESKIP, BATCH = 3, 1, 5, 128
MIN_SHARE_OF_DECODE_RATE = 1 / 4


@pytest.fixture(scope="module")
def pusht_dataset(tmp_path_factory):
    """A Push-T dataset at 224 px from the random data policy, written by the collector."""
    root = tmp_path_factory.mktemp("loader")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    recipe = Recipe(name="pusht-random-bench-v0", env="pusht", policy="random", episodes=EPISODES, steps=STEPS, resolution=RESOLUTION)
    return collect(recipe, progress=False)


def cpu_us_per_call(fn, calls) -> float:
    """Process CPU time per call, in microseconds: the machine is shared, so wall time is noisier."""
    fn(calls[0])
    start = time.process_time()
    for call in calls:
        fn(call)
    return 1e6 * (time.process_time() - start) / len(calls)


def loader_windows_per_second(dataset, num_workers: int, batches: int) -> tuple[float, float]:
    """(windows/s, main-process CPU us per window), from the first batch received to the last."""
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=num_workers)
    iterator = iter(loader)
    next(iterator)  # workers started and warm
    start, cpu_start = time.perf_counter(), time.process_time()
    windows = sum(len(next(iterator)["step"]) for _ in range(batches))
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    del iterator
    return windows / seconds, 1e6 * cpu_seconds / windows


def test_loader_windows_per_second(pusht_dataset, report):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core, as each DataLoader worker runs
    dataset = WindowDataset(pusht_dataset, history=HISTORY, predictions=PREDICTIONS, frameskip=FRAMESKIP)
    frames_per_window = HISTORY + PREDICTIONS
    rng = np.random.default_rng(0)
    indices = [int(i) for i in rng.permutation(len(dataset))[:600]]
    lowdim_only = WindowDataset(pusht_dataset, HISTORY, PREDICTIONS, FRAMESKIP, keys=("state", "proprio"))
    locations = [(int(lowdim_only[i]["episode"]), int(lowdim_only[i]["step"])) for i in indices]

    file = dataset.file
    pixels_by_episode = {e: file[f"episode_{e}/observations/pixels"] for e in range(EPISODES)}

    def decode(location):
        episode, step = location
        return [pixels_by_episode[episode][t] for t in range(step, step + frames_per_window * FRAMESKIP, FRAMESKIP)]

    def strided_selection(location):
        episode, step = location
        return pixels_by_episode[episode][step : step + (frames_per_window - 1) * FRAMESKIP + 1 : FRAMESKIP]

    frames = torch.from_numpy(np.stack(decode(locations[0])))
    episodes = [episode for episode, _ in locations]
    batch_items = [dataset[i] for i in indices[:BATCH]]
    decode_us = cpu_us_per_call(decode, locations)
    breakdown_us = {
        "index_actions_state_proprio": cpu_us_per_call(lowdim_only.__getitem__, indices),
        "lookup_pixel_dataset": cpu_us_per_call(lambda e: file[f"episode_{e}/observations/pixels"], episodes),
        "read_and_decode_frames": decode_us,
        "channels_first_copy": cpu_us_per_call(lambda _: frames.permute(0, 3, 1, 2).contiguous(), indices),
        "whole_item": cpu_us_per_call(dataset.__getitem__, indices),
        "default_collate": cpu_us_per_call(lambda _: default_collate(batch_items), range(8)) / BATCH,
    }
    strided_us = cpu_us_per_call(strided_selection, locations[:6])
    decode_windows_per_s = 1e6 / decode_us

    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    rates, main_cpu = {}, {}
    for workers in (0, 1, 2):
        if cores is not None and workers > 0:
            os.sched_setaffinity(0, range(os.cpu_count()))  # workers inherit it
        try:
            rates[workers], main_cpu[workers] = loader_windows_per_second(dataset, workers, batches=20)
        finally:
            if cores is not None:
                os.sched_setaffinity(0, cores)
    torch.set_num_threads(threads)

    figures = {
        "dataset": f"{EPISODES} episodes x {STEPS} steps of Push-T at {RESOLUTION} px, gzip 1, a chunk per frame",
        "window": {"history": HISTORY, "predictions": PREDICTIONS, "frameskip": FRAMESKIP, "batch": BATCH},
        "cores_for_workers": os.cpu_count(),
        "compressed_bytes_per_frame": round(os.path.getsize(dataset.path) / (EPISODES * (STEPS + 1))),
        **{f"windows_per_s_workers_{w}": round(r) for w, r in rates.items()},
        **{f"main_process_cpu_us_per_window_workers_{w}": round(c) for w, c in main_cpu.items()},
        "cpu_us_per_window": {name: round(us, 1) for name, us in breakdown_us.items()},
        "h5py_strided_selection_us_per_window": round(strided_us),
        "decode_only_windows_per_s": round(decode_windows_per_s),
        "target_share_of_decode_rate": round(MIN_SHARE_OF_DECODE_RATE, 3),
    }
    report(figures)
    assert rates[0] >= MIN_SHARE_OF_DECODE_RATE * decode_windows_per_s, (
        f"a single-process DataLoader gives {rates[0]:.0f} windows/s, under {MIN_SHARE_OF_DECODE_RATE:.2f} of "
        f"the {decode_windows_per_s:.0f} windows/s h5py alone decodes"
    )
