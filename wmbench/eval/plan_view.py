"""What a world model expected its plan to show, without a decoder: the nearest dataset frame to each predicted latent.

A latent model cannot draw its predictions. This view encodes a sample of frames from a dataset (the
model's training data, ideally) and, for every latent the model predicted along the plan it
executed, shows the sampled frame whose latent is closest (squared L2, the planning cost's
distance). The GIFs of ``wmbench eval --videos N --plan-view DATASET`` put it between the real
frames and the goal.

Limits: it can only show frames the sample holds, so a state the data never visited shows its
nearest neighbour, however far; the distance is printed on the panel for that reason, beside the
distance between the real frame's own latent and its nearest (how close "close" is here). And it
shows what the model predicted, not why: two latents near one frame may differ in what the cost
reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np
import torch

from wmbench.data import storage

SAMPLE_FRAMES = 2000  # frames of the dataset encoded for the lookup: a few seconds of encoding for a small model


@dataclass
class FrameIndex:
    """Sampled dataset frames and their latents, for nearest-neighbour lookups."""

    frames: np.ndarray  # uint8 [N, H, W, 3]
    latents: torch.Tensor  # [N, L]: flattened

    def nearest(self, latents: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """The sampled frame nearest to each latent ``[K, ...]``, and the squared distance to it."""
        distances = torch.cdist(latents.reshape(len(latents), -1).float(), self.latents).square()
        best, index = distances.min(dim=1)
        return self.frames[index.numpy()], best.numpy()


def sample_frames(dataset: str, count: int, image_size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """``count`` frames drawn uniformly from the stored episodes of ``dataset`` (uint8 ``[N, H, W, 3]``)."""
    data = storage.find_data(dataset)
    with h5py.File(data / storage.MAIN_FILE, "r") as file:
        pixels = [file[name]["observations/pixels"] for name in sorted(file, key=lambda n: int(n.split("_")[-1]))]
        stored = tuple(pixels[0].shape[1:3])
        if stored != tuple(image_size):
            raise ValueError(f"--plan-view {dataset}: its frames are {stored[0]}x{stored[1]} px, the model's "
                             f"{image_size[0]}x{image_size[1]}; collect the dataset at the model's resolution (--resolution)")
        lengths = np.array([len(p) for p in pixels])
        rng = np.random.default_rng(seed)
        picks = np.sort(rng.choice(lengths.sum(), size=min(count, int(lengths.sum())), replace=False))
        episode = np.searchsorted(np.cumsum(lengths), picks, side="right")
        offsets = picks - np.concatenate([[0], np.cumsum(lengths)[:-1]])[episode]
        return np.stack([pixels[e][o] for e, o in zip(episode, offsets)])


def frame_index(model, dataset: str, device: torch.device, count: int = SAMPLE_FRAMES, batch: int = 256) -> FrameIndex:
    """Encode ``count`` frames of ``dataset`` with ``model`` (a world model with ``encode`` and ``meta``)."""
    frames = sample_frames(dataset, count, tuple(model.meta.image_size))
    latents = []
    with torch.no_grad():
        for start in range(0, len(frames), batch):
            pixels = torch.from_numpy(frames[start : start + batch]).to(device).permute(0, 3, 1, 2)[:, None]
            latents.append(model.encode(pixels)[:, 0].reshape(len(pixels), -1).float().cpu())
    return FrameIndex(frames, torch.cat(latents))
