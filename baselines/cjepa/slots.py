"""What each slot of a C-JEPA in training holds: frames of its dataset, their reconstruction, and
each slot's part of it (its colors where it wins the pixel, white elsewhere).

    python -m baselines.cjepa.slots runs/cjepa/cpu/checkpoint.pt --out slots.png [--frames 6]

Slots that have bound objects show one object each; slots that have not split the frame share
the whole of it, or one holds everything.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from baselines.cjepa.model import CJEPA
from wmbench.data.loader import WindowDataset
from wmbench.files import atomic_write
from wmbench.media import contact_sheet


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m baselines.cjepa.slots", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="the checkpoint.pt that training writes, e.g. runs/cjepa/cpu/checkpoint.pt")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--frames", type=int, default=6, help="frames of the dataset, spread over it (default 6)")
    return parser.parse_args(argv)


def load_trained(path: Path) -> tuple[CJEPA, dict]:
    """The model of a training checkpoint, and its config."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not {"config", "model"} <= set(state) or "decoder.position" not in state["model"]:
        raise ValueError(f"{path} is not a C-JEPA training checkpoint: pass the checkpoint.pt of `python -m baselines.cjepa.train`")
    config, weights = state["config"], state["model"]
    block_size = weights["predictor.action_in.0.weight"].shape[1]  # action_block * action_dim
    data = config["data"]
    facts = dict(image_size=data["resolution"], history=data["history"], action_block=data["frameskip"],
                 action_dim=block_size // data["frameskip"])
    model = CJEPA.from_config(config, facts)
    model.load_state_dict(weights)
    return model.eval(), config


def slot_rows(model: CJEPA, pixels: torch.Tensor) -> list[Image.Image]:
    """One labelled row per frame of uint8 pixels [N, 3, H, W]: the frame, its reconstruction, each slot's part."""
    with torch.no_grad():
        colors, shares = model.decoder.parts(model.encode(pixels[:, None])[:, 0])
    size = pixels.shape[-1]

    def picture(image: torch.Tensor) -> np.ndarray:  # [3, r, r] in [-1, 1] -> uint8 [size, size, 3]
        array = ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        return np.asarray(Image.fromarray(array).resize((size, size), Image.NEAREST))

    rows = []
    for frame, color, share in zip(pixels, colors, shares):
        parts = [picture(c * s + (1 - s)) for c, s in zip(color, share)]  # white where the slot does not win
        tiles = [frame.permute(1, 2, 0).numpy(), picture((color * share).sum(0)), *parts]
        labels = ["frame", "decoded", *(f"slot {i}" for i in range(len(parts)))]
        rows.append(contact_sheet(tiles, labels))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.frames < 1:
        print(f"error: --frames {args.frames}: must be at least 1", file=sys.stderr)
        return 2
    if not args.checkpoint.is_file():
        print(f"error: {args.checkpoint} does not exist: pass the checkpoint.pt that training wrote", file=sys.stderr)
        return 2
    try:
        model, config = load_trained(args.checkpoint)
        data = config["data"]
        windows = WindowDataset(data["dataset"], history=1, predictions=0, frameskip=data["frameskip"], resolution=data["resolution"], keys=("pixels",))
    except (ValueError, RuntimeError, KeyError, OSError, pickle.UnpicklingError) as error:  # a foreign file, or its dataset not here
        print(f"error: {error}".splitlines()[0], file=sys.stderr)
        return 2
    chosen = np.linspace(0, len(windows) - 1, args.frames).astype(int)
    rows = slot_rows(model, torch.stack([windows[int(i)]["pixels"][0] for i in chosen]))
    sheet = Image.new("RGB", (rows[0].width, sum(row.height for row in rows)), "white")
    for i, row in enumerate(rows):
        sheet.paste(row, (0, i * row.height))
    atomic_write(args.out, lambda tmp: sheet.save(tmp, format="PNG"))
    print(f"wrote {args.out}: {args.frames} frames of {data['dataset']}, {model.meta.latent_shape[0]} slots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
