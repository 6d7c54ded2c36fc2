"""Benchmark fixtures: one-core timing and a JSON of figures per benchmark.

Benchmarks are not part of the default test run (they are marked ``benchmark``); run them with
``pytest tests/benchmarks -m benchmark``. Each writes ``tests/benchmarks/results/<name>.json``
and asserts its target as a ratio against a reference measured in the same run, because these
machines are shared and noisy.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Callable

import pytest

RESULTS = Path(__file__).parent / "results"


@pytest.fixture(scope="session", autouse=True)
def one_core():
    """Pin the benchmark process to one core, as the targets are stated per core."""
    if hasattr(os, "sched_setaffinity"):
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(before)})
        yield
        os.sched_setaffinity(0, before)
    else:
        yield


@pytest.fixture
def rate() -> Callable[..., float]:
    """``rate(fn, n)``: calls per second of ``fn``, the best of ``repeats`` runs of ``n`` calls."""

    def measure(fn: Callable[[], object], n: int, repeats: int = 5, warmup: int = 20) -> float:
        for _ in range(warmup):
            fn()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            best = min(best, time.perf_counter() - start)
        return n / best

    return measure


@pytest.fixture
def report(request) -> Callable[[dict], Path]:
    """``report(figures)``: write the figures (plus machine facts) as JSON and print them."""

    def write(figures: dict) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{request.node.name}.json"
        record = {
            "benchmark": request.node.nodeid,
            "machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version(), "cores_used": 1},
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **figures,
        }
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps(record, indent=2))
        return path

    return write
