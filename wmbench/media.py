"""Pictures of rollouts: labelled contact sheets (PNG) and clips (GIF)."""

from __future__ import annotations

from fractions import Fraction
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


def save_mp4(frames: Sequence[np.ndarray], path: Path, fps: float = 25.6, crf: int = 20) -> None:
    """H.264 MP4 (yuv420p, plays everywhere) of uint8 RGB frames, through PyAV's bundled FFmpeg."""
    try:
        import av
    except ImportError as error:
        raise ImportError(f"writing MP4 needs PyAV: pip install 'wmbench[clevrer]' ({error})") from None
    height, width = frames[0].shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"MP4 (yuv420p) needs even frame sizes; got {width}x{height}")
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
