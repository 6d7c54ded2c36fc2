"""The checkpoint error, and the wording its messages share across the package."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or loaded; the message names the problem and the fix."""


def corrupted(path: Path | str, problem: Any) -> CheckpointError:
    return CheckpointError(f"{path} is truncated or corrupted ({problem}): download or export it again")


def first_line(error: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # torch colours some messages
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {line}" if line else type(error).__name__
