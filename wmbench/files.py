"""Writing files so that an interrupted run never leaves a half-written one behind."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``.

    The rename is atomic, so readers see the old file or the whole new one; after a crash only a
    hidden ``.<name>.<pid>.tmp`` can be left (never mistaken for the file: it has another suffix).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: str | Path, document: Any, indent: int = 2) -> Path:
    """``document`` as JSON (numpy scalars and arrays as plain numbers and lists), written atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(document, indent=indent, default=_jsonable) + "\n"))


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
