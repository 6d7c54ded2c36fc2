"""Progress bars that suit where they are shown: live on a terminal, a line every half minute in a log, none when asked.

``TQDM_DISABLE=1`` (what ``--quiet`` sets) turns every bar off. tqdm reads that variable only for
arguments a caller leaves unset, and wmbench's callers set ``disable``, so it is honoured here.
"""

from __future__ import annotations

import os
import sys

from tqdm import tqdm

LOG_INTERVAL_S = 30.0  # stderr redirected to a file: at most one progress line per 30 s, not one per step


def quiet() -> bool:
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes")


def progress_bar(iterable=None, *, disable: bool = False, **options) -> tqdm:
    """A tqdm bar over ``iterable`` (or ``total=``), off when ``disable`` or quiet, sparse when stderr is not a terminal."""
    interactive = sys.stderr.isatty()
    return tqdm(iterable, disable=disable or quiet(), mininterval=0.1 if interactive else LOG_INTERVAL_S,
                dynamic_ncols=interactive, **options)
