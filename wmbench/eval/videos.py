"""What a world model knows about CLEVRER scenes: latent prediction error by horizon, linear probes, answers.

Passive videos are recorded from ``wmbench/CLEVRER-v0`` at the model's resolution (reset seeds
``seed, seed + 1, ...``, the zero action), one frame kept every ``action_block`` env steps, so a
model step is one action block as everywhere in wmbench.

=======================  ============================================================================
prediction error         for horizon k: ``|| rollout(encode(f_(t-T+1) .. f_t), zero blocks)[k - 1]
                         - encode(f_(t+k)) ||^2`` over every start t and video; reported raw and
                         relative to the latents' total variance (1.0 = no better than a random
                         frame's latent), with a 95% band over videos
linear probe             ridge regression from the latent of a frame to every object slot's
                         present flag, position (x, y) and velocity (vx, vy), fitted on the first
                         ``train_fraction`` of the videos, scored on the rest: RMSE of positions
                         (m) and velocities (m/s) over present objects, and R^2 against
                         predicting the training mean
question answering       for a model with an answering head, ``answer(pixels [1, F, 3, H, W],
                         question) -> str`` (descriptive) or ``{choice_id: "correct" | "wrong"}``,
                         over the videos and questions ``wmbench clevrer generate`` wrote, scored
                         by ``scoring.score`` (per option and per question, by type). Such a head is
                         research code: an exported ``.wmb`` carries only encode and rollout
=======================  ============================================================================

Surprise at teleports, vanishings and recolors is ``wmbench voe --env clevrer`` (``voe.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

import wmbench

PROBE_FIELDS = ("present", "x", "y", "vx", "vy")  # per object slot, from the env's state vector
RIDGE = 1e-3  # of the mean feature variance: keeps the normal equations well conditioned


def record_passive_videos(videos: int, resolution: tuple[int, int], stride: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``[V, F, 3, H, W]`` uint8 and states ``[V, F, S]`` of ``videos`` passive videos, every ``stride``-th frame."""
    env = wmbench.make("clevrer", resolution=resolution).unwrapped
    pixels, states = [], []
    for video in range(videos):
        obs, _ = env.reset(seed=seed + video)
        frames, rows = [obs["pixels"]], [obs["state"]]
        for step in range(1, wmbench.ENVS["clevrer"].max_episode_steps + 1):
            obs, *_ = env.step(np.zeros(env.action_space.shape, np.float32))
            if step % stride == 0:
                frames.append(obs["pixels"])
                rows.append(obs["state"])
        pixels.append(np.stack(frames).transpose(0, 3, 1, 2))
        states.append(np.stack(rows))
    env.close()
    return np.stack(pixels), np.stack(states)


@torch.no_grad()
def encode_videos(model, pixels: np.ndarray) -> torch.Tensor:
    """Latents ``[V, F, D]`` (flattened). An exported model encodes exactly ``history`` frames per
    sample, so each video's frames go in as a batch of ``history``-frame chunks (the last one padded)."""
    history = model.meta.history
    latents = []
    for video in torch.from_numpy(pixels):
        padding = -len(video) % history
        chunks = torch.cat([video, video[-1:].expand(padding, *video.shape[1:])]).unflatten(0, (-1, history))
        latents.append(model.encode(chunks).flatten(0, 1)[: len(video)].flatten(1))
    return torch.stack(latents)


@torch.no_grad()
def prediction_error(model, latents: torch.Tensor, horizons: int) -> list[dict[str, Any]]:
    """Squared error of the passive rollout against the encoded frames at horizons 1..``horizons``."""
    meta = model.meta
    videos, frames = latents.shape[:2]
    history = meta.history
    starts = range(history - 1, frames - horizons)
    if not starts:
        raise ValueError(f"videos of {frames} model steps are too short for history {history} and {horizons} horizons")
    variance = latents.flatten(0, 1).var(0).sum().item()  # total variance: the expected error of a random frame's latent, halved
    errors = torch.zeros(videos, len(starts), horizons)
    blocks = torch.zeros(videos, history + horizons, meta.action_block * meta.action_dim)
    for column, t in enumerate(starts):
        context = latents[:, t - history + 1 : t + 1].unflatten(-1, meta.latent_shape)
        predicted = model.rollout(context, meta.normalize_actions(blocks)).flatten(2)
        errors[:, column] = (predicted - latents[:, t + 1 : t + 1 + horizons]).pow(2).sum(-1)
    per_video = errors.mean(1)  # [V, horizons]
    band = 1.96 * per_video.std(0) / max(videos, 2) ** 0.5
    return [
        {"horizon": k + 1, "error": per_video[:, k].mean().item(), "band": band[k].item(), "relative": per_video[:, k].mean().item() / (2 * variance)}
        for k in range(horizons)
    ]


def probe_targets(states: np.ndarray) -> np.ndarray:
    """``[..., S]`` env states -> ``[..., slots * 5]``: each slot's present flag, x, y, vx, vy."""
    from wmbench.envs.clevrer.env import MAX_OBJECTS, SLOT, SLOT_FIELDS

    slots = states[..., : MAX_OBJECTS * SLOT].reshape(*states.shape[:-1], MAX_OBJECTS, SLOT)
    return slots[..., [SLOT_FIELDS.index(field) for field in PROBE_FIELDS]].reshape(*states.shape[:-1], -1)


def fit_ridge(features: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias of ridge regression ``targets ~ features @ W + b`` (features standardized inside)."""
    mean, scale = features.mean(0), features.std(0) + 1e-8
    x = (features - mean) / scale
    gram = x.T @ x + RIDGE * len(x) * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, x.T @ (targets - targets.mean(0))) / scale[:, None]
    return weights, targets.mean(0) - mean @ weights


def probe_scores(predicted: np.ndarray, targets: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """RMSE of positions and velocities over present objects, and R^2 against the ``baseline`` prediction."""
    fields = len(PROBE_FIELDS)
    predicted, targets, baseline = (a.reshape(len(a), -1, fields) for a in (predicted, targets, baseline))
    present = targets[..., 0] > 0.5
    scores = {}
    for name, columns in (("position", [1, 2]), ("velocity", [3, 4])):
        error = ((predicted[..., columns] - targets[..., columns]) ** 2).sum(-1)[present]
        base = ((baseline[..., columns] - targets[..., columns]) ** 2).sum(-1)[present]
        scores[f"{name}_rmse"] = float(np.sqrt(error.mean()))
        scores[f"{name}_r2"] = float(1 - error.sum() / base.sum())
    return scores


def linear_probe(latents: np.ndarray, states: np.ndarray, train_fraction: float = 0.8) -> dict[str, float]:
    """Fit on the first videos, score on the rest (latents ``[V, F, D]``, states ``[V, F, S]``)."""
    split = int(round(train_fraction * len(latents)))
    if not 0 < split < len(latents):
        raise ValueError(f"{len(latents)} videos cannot be split {train_fraction:.0%} / {1 - train_fraction:.0%}; record more videos")
    targets = probe_targets(states)
    train_x, train_y = latents[:split].reshape(-1, latents.shape[-1]), targets[:split].reshape(-1, targets.shape[-1])
    test_x, test_y = latents[split:].reshape(-1, latents.shape[-1]), targets[split:].reshape(-1, targets.shape[-1])
    weights, bias = fit_ridge(train_x, train_y)
    return {"train_videos": split, "test_videos": len(latents) - split,
            **probe_scores(test_x @ weights + bias, test_y, np.broadcast_to(train_y.mean(0), test_y.shape))}


def evaluate_scenes(model, videos: int = 20, horizons: int = 5, seed: int = 0) -> dict[str, Any]:
    """Record ``videos`` passive videos and measure the model on them (see the module docstring)."""
    meta = model.meta
    if meta.action_dim != 4:
        raise ValueError(f"the model takes {meta.action_dim}-d actions; CLEVRER's intervention action is 4-d")
    pixels, states = record_passive_videos(videos, meta.image_size, meta.action_block, seed)
    latents = encode_videos(model, pixels)
    return {
        "env": "clevrer",
        "model": meta.name,
        "videos": videos,
        "seed": seed,
        "model_steps": latents.shape[1],
        "prediction_error": prediction_error(model, latents, horizons),
        "probe": linear_probe(latents.numpy(), states),
    }


def read_video(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Every frame of an MP4 as uint8 ``[F, 3, H, W]`` at ``size`` = (height, width)."""
    import av

    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24", height=size[0], width=size[1]) for frame in container.decode(video=0)]
    return np.stack(frames).transpose(0, 3, 1, 2)


@torch.no_grad()
def answer_questions(model, generated: str | Path) -> dict[str, Any]:
    """Ask the model's answering head every question of a ``clevrer generate`` folder; the scorer's report."""
    from wmbench.envs.clevrer.scoring import score

    answer = getattr(getattr(model, "module", None), "answer", None)
    if answer is None:
        raise ValueError("this model has no answering head (a method answer(pixels, question) of its module); "
                         "an exported .wmb carries encode and rollout only: load the research code with --trust-code")
    generated = Path(generated)
    videos = json.loads((generated / "questions.json").read_text())
    predictions = {}
    for video in videos:
        pixels = torch.from_numpy(read_video(generated / "videos" / video["video_filename"], model.meta.image_size)).unsqueeze(0)
        for question in video["questions"]:
            predictions[question["question_id"]] = answer(pixels, question)
    return score(videos, predictions)
