"""Where the tensors of a run live: one meaning of ``--device`` for every command, and what a results file says of it."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from typing import Any

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: the GPU when there is one, else the CPU; ``cpu``, ``cuda`` or ``cuda:N`` as given.

    Raises ``ValueError`` naming the fix for a device that does not exist here.
    """
    if isinstance(device, torch.device):
        chosen = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            chosen = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"--device {device!r}: not a device; use auto, cpu, cuda or cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device is available here; use --device cpu or auto")
    return chosen


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timer around it measures the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# glibc's mallopt parameters (malloc.h) and the values planning wants: keep up to 1 GiB of freed memory, grow the heap
# 64 MiB at a time, and serve blocks up to 32 MiB (the largest glibc allows) from the heap rather than from fresh mappings
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
KEPT_FREE_BYTES, HEAP_GROWTH_BYTES, LARGEST_HEAP_BLOCK_BYTES = 1 << 30, 64 << 20, 32 << 20


def keep_freed_memory() -> bool:
    """Ask the C allocator (glibc) to keep freed memory for reuse instead of returning it to the kernel at once.

    A plan allocates and frees tensors of a few MB at every iteration. By default glibc hands such blocks back
    and the next iteration faults in fresh zeroed pages: 44k page faults in a 50-episode CEM plan, a third of
    its planner time. Kept, the pages are reused (no faults). Process-wide and harmless for the rest of the run;
    returns False where the C library is not glibc (nothing changes there).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    settings = ((M_TRIM_THRESHOLD, KEPT_FREE_BYTES), (M_TOP_PAD, HEAP_GROWTH_BYTES), (M_MMAP_THRESHOLD, LARGEST_HEAP_BLOCK_BYTES))
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in settings)


def device_info(device: torch.device) -> dict[str, Any]:
    """The device as a results file records it: type, model name, torch version and CPU threads."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), platform.machine())
    return {"type": device.type, "name": name, "torch": torch.__version__,
            "threads": torch.get_num_threads() if device.type == "cpu" else None}


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo") as file:
            return file.read().splitlines()
    except OSError:
        return []
