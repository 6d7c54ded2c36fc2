"""Pictures of rollouts: labelled contact sheets (PNG) and clips (GIF)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

LABEL_HEIGHT = 14
GAP = 4


def contact_sheet(frames: Sequence[np.ndarray], labels: Sequence[str], goal: np.ndarray | None = None) -> Image.Image:
    """Frames side by side with a label under each; the goal, if given, last after a wider gap."""
    tiles = [*zip(frames, labels)] + ([(goal, "goal")] if goal is not None else [])
    height, width = frames[0].shape[:2]
    extra = 3 * GAP if goal is not None else 0
    sheet = Image.new("RGB", (len(tiles) * (width + GAP) + GAP + extra, height + LABEL_HEIGHT + 2 * GAP), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (frame, label) in enumerate(tiles):
        x = GAP + i * (width + GAP) + (extra if goal is not None and i == len(tiles) - 1 else 0)
        sheet.paste(Image.fromarray(frame), (x, GAP))
        draw.text((x + 2, GAP + height + 1), label, fill=(40, 40, 40))
    return sheet


def save_gif(frames: Sequence[np.ndarray], path: Path, fps: int = 10) -> None:
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
