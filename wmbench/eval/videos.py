"""Passive videos (CLEVRER-style): what a world model knows about a scene, and the question scorer.

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
                         (m) and velocities (m/s) over the objects in the camera's view (one
                         outside it, which no frame shows, is not scored), and R^2 against
                         predicting the training mean
slot probe               for object-centric latents ``[..., S, D]`` only: ridge regression from one
                         slot to its object's x, y, vx, vy, the same weights for every slot. Which
                         slot holds which object is unknown, so fitting alternates: each frame's
                         objects in view get the slots whose readings are nearest (Hungarian, one
                         slot per object), then the probe is refitted on those pairs, until the
                         pairs stop changing. Test frames are matched the same way against the
                         truth, which makes it a bound on what the slots hold, not a tracker;
                         so its R^2 comes with a null's: the same probe with each frame's slots
                         paired with another frame's objects, what the matching alone scores
question answering       for a model with an answering head, ``answer(pixels [1, F, 3, H, W],
                         question) -> str`` (descriptive) or ``{choice_id: "correct" | "wrong"}``,
                         over the videos and questions ``wmbench clevrer generate`` wrote, scored
                         by ``score``. Such a head is research code: an exported ``.wmb`` carries
                         only encode and rollout
=======================  ============================================================================

CLEVRER's metrics (``score``, ``wmbench clevrer score``):

=======================  ============================================================================
prediction               descriptive question: the answer string ("2", "red", "yes"), compared with
                         the truth after stripping spaces and lower-casing; multiple-choice
                         question: a dict {choice_id: "correct" | "wrong"} naming every choice (ids
                         as ints or strings, so that a JSON round trip is harmless)
per option               the fraction of options judged right; a descriptive question is one option
per question             the fraction of questions answered right; a multiple-choice question is
                         right only if all its options are
missing                  a question with no prediction is wrong on every option, and its id is listed
=======================  ============================================================================

    report = score("questions.json", {"7-0": "red", "7-12": {0: "correct", 1: "wrong"}})
    report["overall"]["per_question"], report["by_type"]["predictive"]["per_option"]

Surprise at teleports, vanishings and recolors is ``wmbench voe --env clevrer`` (``eval/voe.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

import wmbench
from wmbench.stats import fit_ridge, mean_band

PROBE_FIELDS = ("present", "x", "y", "vx", "vy")  # per object slot, from the env's state vector
LABELS = ("correct", "wrong")


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
    """Latents ``[V, F, D]`` (flattened) of pixels ``[V, F, 3, H, W]``, one video per ``encode`` call."""
    return torch.stack([model.encode(video[None])[0].flatten(1).cpu() for video in torch.from_numpy(pixels)])


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
        predicted = model.rollout(context, meta.normalize_actions(blocks)).flatten(2).cpu()
        errors[:, column] = (predicted - latents[:, t + 1 : t + 1 + horizons]).pow(2).sum(-1)
    per_video = errors.mean(1).numpy()  # [V, horizons]
    mean, low, _ = mean_band(per_video)
    return [{"horizon": k + 1, "error": float(mean[k]), "band": float(mean[k] - low[k]), "relative": float(mean[k]) / (2 * variance)}
            for k in range(horizons)]


def probe_targets(states: np.ndarray) -> np.ndarray:
    """``[..., S]`` env states -> ``[..., slots * 5]``: each slot's present flag, x, y, vx, vy. An object
    outside the camera's view is all zeros, as an absent one is: no frame shows where it is."""
    from wmbench.envs.clevrer.env import MAX_OBJECTS, QPOS, SLOT, SLOT_FIELDS
    from wmbench.envs.clevrer.scene import CAMERA

    slots = states[..., : MAX_OBJECTS * SLOT].reshape(*states.shape[:-1], MAX_OBJECTS, SLOT)
    targets = slots[..., [SLOT_FIELDS.index(field) for field in PROBE_FIELDS]].copy()
    targets *= CAMERA.in_view(slots[..., QPOS][..., :3])[..., None]
    return targets.reshape(*states.shape[:-1], -1)


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


def slot_probe(latents: np.ndarray, states: np.ndarray, train_fraction: float = 0.8, rounds: int = 20) -> dict[str, float]:
    """The slot probe of the module docstring: fit on the first videos, score on the rest (latents ``[V, F, S, D]``).
    ``null_*``: the same probe on slots paired with another frame's objects, what the matching alone scores."""
    split = int(round(train_fraction * len(latents)))
    if not 0 < split < len(latents):
        raise ValueError(f"{len(latents)} videos cannot be split {train_fraction:.0%} / {1 - train_fraction:.0%}; record more videos")
    objects = probe_targets(states).reshape(*states.shape[:2], -1, len(PROBE_FIELDS))  # [V, F, O, present x y vx vy]
    slots, objects = latents.reshape(-1, *latents.shape[2:]), objects.reshape(-1, *objects.shape[2:])  # frames first
    train = np.arange(len(slots)) < split * latents.shape[1]
    shuffled = np.concatenate([np.random.default_rng(0).permutation(np.flatnonzero(part)) for part in (train, ~train)])
    null = _fit_slot_probe(slots[shuffled], objects, train, rounds)
    return {"train_videos": split, "test_videos": len(latents) - split, **_fit_slot_probe(slots, objects, train, rounds),
            **{f"null_{key}": value for key, value in null.items() if key.endswith("r2")}}


def _fit_slot_probe(slots: np.ndarray, objects: np.ndarray, train: np.ndarray, rounds: int) -> dict[str, float]:
    """Slots ``[N, S, D]`` and objects ``[N, O, 5]`` of N frames: fit on the ``train`` frames, score on the others."""
    present = objects[..., 0] > 0.5
    scale = objects[train][present[train]][:, 1:].std(0) + 1e-8  # metres and m/s weigh alike in the matching
    # The first fit pairs every present object with every slot: its readings lean towards each slot's own object.
    frame, obj = np.nonzero(present & train[:, None])
    pairs = (np.repeat(frame, slots.shape[1]), np.repeat(obj, slots.shape[1]), np.tile(np.arange(slots.shape[1]), len(frame)))
    for _ in range(rounds):
        weights, bias = fit_ridge(slots[pairs[0], pairs[2]], objects[pairs[0], pairs[1], 1:])
        matched = _match_slots(slots @ weights + bias, objects, present, scale)
        fitted = tuple(column[train[matched[0]]] for column in matched)
        if all(np.array_equal(a, b) for a, b in zip(fitted, pairs)):
            break
        pairs = fitted
    frame, obj, slot = (column[~train[matched[0]]] for column in matched)
    truth = objects[frame, obj]
    reading = np.concatenate([truth[:, :1], slots[frame, slot] @ weights + bias], axis=1)  # present, x, y, vx, vy
    mean = objects[train][present[train]].mean(0)
    return {"matched_objects": len(truth), **probe_scores(reading, truth, np.broadcast_to(mean, truth.shape))}


def _match_slots(readings: np.ndarray, objects: np.ndarray, present: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, ...]:
    """(frame, object, slot) of each present object and the slot whose reading ``[N, S, 4]`` is nearest (one each)."""
    from scipy.optimize import linear_sum_assignment

    pairs = []
    for frame in range(len(readings)):
        held = np.flatnonzero(present[frame])
        gaps = ((objects[frame, held, None, 1:] - readings[frame, None]) / scale) ** 2  # [objects, S, 4]
        rows, columns = linear_sum_assignment(gaps.sum(-1))
        pairs += [(frame, held[r], c) for r, c in zip(rows, columns)]
    return tuple(np.array(column, dtype=int) for column in zip(*pairs)) if pairs else (np.zeros(0, int),) * 3


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
        **({"slot_probe": slot_probe(latents.unflatten(-1, meta.latent_shape).numpy(), states)} if len(meta.latent_shape) == 2 else {}),
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
    answer = getattr(getattr(model, "module", None), "answer", None)
    if answer is None:
        raise ValueError("this model has no answering head (a method answer(pixels, question) of its module); "
                         "an exported .wmb carries encode and rollout only: load the research code with --trust-code")
    generated = Path(generated)
    videos = json.loads((generated / "questions.json").read_text())
    predictions = {}
    for video in videos:
        pixels = torch.from_numpy(read_video(generated / "videos" / video["video_filename"], model.meta.image_size)).unsqueeze(0)
        pixels = pixels.to(model.device)
        for question in video["questions"]:
            predictions[question["question_id"]] = answer(pixels, question)
    return score(videos, predictions)


# ---------------------------------------------------------------------- CLEVRER's scorer
def load_questions(questions_file: str | os.PathLike | Mapping | list) -> list[dict]:
    """The questions of every video: from a JSON file, or already loaded (one video's dict or a list of them)."""
    if isinstance(questions_file, (str, os.PathLike)):
        questions_file = json.loads(Path(questions_file).read_text())
    videos = [questions_file] if isinstance(questions_file, Mapping) else questions_file
    return [q for video in videos for q in video["questions"]]


def options_right(question: Mapping[str, Any], prediction: Any) -> list[bool]:
    """Whether each option of the question is right under the prediction; ValueError naming the question if malformed."""
    if "choices" in question:
        return _choices_right(question, prediction)
    if not isinstance(prediction, str):
        raise ValueError(f"question {question['question_id']!r}: a descriptive prediction must be a string, got {prediction!r}")
    return [prediction.strip().lower() == question["answer"].strip().lower()]


def _choices_right(question: Mapping[str, Any], prediction: Any) -> list[bool]:
    qid = question["question_id"]
    if not isinstance(prediction, Mapping):
        raise ValueError(f"question {qid!r}: a multiple-choice prediction must map choice ids to 'correct'/'wrong', "
                         f"got {prediction!r}")
    labels = {str(choice_id): label for choice_id, label in prediction.items()}
    expected = [str(c["choice_id"]) for c in question["choices"]]
    if sorted(labels) != sorted(expected):
        raise ValueError(f"question {qid!r}: the prediction names choices {sorted(labels)}, the question has {sorted(expected)}")
    bad = {k: v for k, v in labels.items() if v not in LABELS}
    if bad:
        raise ValueError(f"question {qid!r}: labels must be 'correct' or 'wrong', got {bad}")
    return [labels[str(c["choice_id"])] == c["answer"] for c in question["choices"]]


def _accuracy(results: list[tuple[list[bool], bool]]) -> dict:
    """Accuracy over (options right, answered) pairs, one per question."""
    options = [right for result, _ in results for right in result]
    return {"questions": len(results), "per_question": sum(all(result) for result, _ in results) / len(results),
            "options": len(options), "per_option": sum(options) / len(options),
            "missing": sum(not answered for _, answered in results)}


def score(questions_file: str | os.PathLike | Mapping | list, predictions: Mapping[str, Any]) -> dict:
    """Accuracy per option and per question, by question type and overall, and the ids of questions left unanswered.

    ``questions_file`` is what ``load_questions`` takes; ``predictions`` maps question ids to predictions.
    Returns {"overall": {...}, "by_type": {type: {...}}, "missing": [ids]} where each {...} holds
    questions, per_question, options, per_option and missing (a count).
    """
    questions = load_questions(questions_file)
    if not questions:
        raise ValueError("there are no questions to score")
    unknown = set(predictions) - {q["question_id"] for q in questions}
    if unknown:
        raise ValueError(f"predictions for questions that do not exist: {sorted(unknown)[:10]}")
    by_type: dict[str, list[tuple[list[bool], bool]]] = {}
    for q in questions:
        answered = q["question_id"] in predictions
        right = options_right(q, predictions[q["question_id"]]) if answered else [False] * len(q.get("choices", [None]))
        by_type.setdefault(q["question_type"], []).append((right, answered))
    return {"overall": _accuracy([r for results in by_type.values() for r in results]),
            "by_type": {t: _accuracy(results) for t, results in by_type.items()},
            "missing": [q["question_id"] for q in questions if q["question_id"] not in predictions]}
