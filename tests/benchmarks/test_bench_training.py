"""Training throughput of the LeWM baseline, the model step of ``baselines/training.py`` (loss under its autocast,
backward, clipping, AdamW) on synthetic windows of the config's shapes, timed after a warm-up.

On a GPU (``tests/gpu/run.sh``): the ``paper`` config, batch 128, bf16, 200 steps after 20; the JSON has samples/s,
seconds per step and the peak memory. On a CPU: the ``cpu`` config, batch 16, 3 steps after 1, one core (for
scale, not a target: the CPU runs are in ``baselines/README.md``). Data loading is left out, as it overlaps with
the step in the real loop.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch

from baselines.lewm import LeWM
from baselines.training import tomllib
from wmbench.devices import resolve_device, synchronize

pytestmark = pytest.mark.benchmark

CONFIGS = Path(__file__).parents[2] / "baselines" / "lewm" / "configs"


def training_throughput(config_name: str, batch: int, steps: int, warmup: int, device: torch.device) -> dict:
    """Samples per second of ``steps`` LeWM training steps with the config ``config_name`` after ``warmup`` steps."""
    config = tomllib.loads((CONFIGS / f"{config_name}.toml").read_text())
    data, train = config["data"], config["train"]
    frames, block = data["history"] + data["predictions"], data["frameskip"] * 2  # a Push-T window: 2-d actions
    facts = dict(image_size=data["resolution"], history=data["history"], action_block=data["frameskip"], action_dim=2)
    model = LeWM.from_config(config, facts).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=train["lr"], weight_decay=train["weight_decay"])
    pixels = torch.randint(0, 256, (batch, frames, 3, data["resolution"], data["resolution"]), dtype=torch.uint8, device=device)
    blocks = torch.randn(batch, frames, block, device=device)
    bf16 = train["bf16"] and device.type == "cuda"  # as the training loop: bf16 autocast on CUDA only

    def step() -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(pixels, blocks, train)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train["grad_clip"])
        optimizer.step()
        return loss.item()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    synchronize(device)
    start = time.perf_counter()
    losses = [step() for _ in range(steps)]
    synchronize(device)
    seconds = time.perf_counter() - start
    return {
        "config": config_name, "parameters": model.parameter_summary()["total"], "batch": batch, "frames": frames,
        "resolution": data["resolution"], "bf16": bf16, "steps": steps, "step_s": seconds / steps, "samples_per_s": batch * steps / seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "losses_finite": all(map(math.isfinite, losses)),
    }


def test_lewm_training_throughput(report):
    device = resolve_device("auto")
    if device.type == "cuda":
        figures = training_throughput("paper", batch=128, steps=200, warmup=20, device=device)
        figures["device"] = torch.cuda.get_device_name(device)
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one core, as the conftest pins the process
        try:
            figures = training_throughput("cpu", batch=16, steps=3, warmup=1, device=device)
        finally:
            torch.set_num_threads(threads)
        figures["device"] = "cpu (one core, one torch thread)"
    report(figures)
    assert figures["losses_finite"] and figures["samples_per_s"] > 0
