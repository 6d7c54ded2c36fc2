"""Writing files so that an interrupted run never leaves a half-written one behind, and one
writer at a time."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``.

    The rename is atomic, so readers see the old file or the whole new one; after a crash only a
    hidden ``.<name>.<pid>.tmp`` can be left (never mistaken for the file: it has another suffix).
    """
    path = Path(path)
    if path.is_dir():  # os.replace would fail only after the whole file was written
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_temporaries(folder: str | Path) -> None:
    """Delete the temporaries ``atomic_write`` left in ``folder`` when its writer was killed.

    Call it only while holding the folder's lock (``exclusive``): another writer's are live.
    """
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


@contextmanager
def exclusive(lock_path: str | Path, what: str) -> Iterator[None]:
    """Hold ``lock_path`` while the block runs, so that one run at a time writes ``what``.

    The file names its owner (pid and host) for the refusal a second writer gets. The lock itself
    is the kernel's (``flock``), released when its owner exits in any way: the file a killed run
    leaves is stale and the next run takes it over, with no pid to check and no race to take it.
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _lock_owner(descriptor)
            os.close(descriptor)
            raise ValueError(
                f"{what} is being written by another run ({owner}; lock file {lock_path}); "
                "wait for that run to finish or stop it, then run this again"
            ) from None
        if _is_the_file_at(descriptor, lock_path):
            break
        os.close(descriptor)  # the owner removed the file between our open and our lock: lock the new one
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        os.close(descriptor)


def _lock_owner(descriptor: int) -> str:
    try:
        owner = json.loads(os.pread(descriptor, 4096, 0))
        return f"pid {owner['pid']} on {owner['host']}"
    except (ValueError, KeyError, TypeError):  # the owner has locked the file but not yet written it
        return "pid not yet recorded"


def _is_the_file_at(descriptor: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (opened.st_dev, opened.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def write_json(path: str | Path, document: Any, indent: int = 2) -> Path:
    """``document`` as JSON (numpy scalars and arrays as plain numbers and lists), written atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(document, indent=indent, default=_jsonable) + "\n"))


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
