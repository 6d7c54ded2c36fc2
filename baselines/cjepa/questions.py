"""C-JEPA from pixels answers CLEVRER's questions: its slots are matched to the objects, a linear probe reads their
positions, and a "what if" is the rollout with the removed object's slot left out.

A trained C-JEPA (``configs/cpu-clevrer.toml``, or OC-JEPA's ``cpu-clevrer-no-mask.toml``) sees each video as the
frames it was trained on: the scene of ``wmbench clevrer generate`` re-simulated and drawn at the model's resolution by
the env's camera (``render_video``; the generated MP4s are CLEVRER's 3:2 frame, the env's is square).

==============  ================================================================================
matching        at a frame, each object in view is given the slot whose decoder share is
                largest around the object's projected center (one slot per object: the
                assignment that maximizes the total share). Objects out of view get no slot
reading         where a slot's object stands on the table, two ways: ``probe``, ridge
                regression from the slot to its object's position (x, y); ``decoder``, the
                centroid of the pixels the slot wins in the decoded frame and draws in a
                colour other than the table's (the table is shared out among all the slots),
                taken back through the camera to the table at a resting object's center
                height. Both are fitted or checked on the matched slots of the first
                ``--probe-videos`` videos of ``--train``; the one with the smaller error there
                reads the predictions, and both are scored on ``--test``
continuing      the slots of the video's last ``history`` model steps rolled on with the zero
                action; each matched object starts where it was seen and moves as the reading
                of its slot moves (the reading's own offset from the truth cancels out)
what if         the video rolled out again from its first ``history`` model steps with the
                removed object's slot left out of the predictor's tokens (C-JEPA's own way to
                remove an object), each object moving from where it was seen as when
                continuing; the rollout's first frames are the observed ones
unmatched       an object with no slot where the rollout starts (not yet in view) keeps its
                observed track (what-if) or its last velocity (continuing), as the floor does,
                and cannot be removed: the model has never seen it. A matched slot whose
                object the decoder stops drawing keeps its last reading
==============  ================================================================================

The questions' programs run on these trajectories (``wmbench.eval.trajectory_answers``, the same reader as the true-
state predictor of ``states.py``), beside velocity extrapolation (the floor) on the same questions.

    python -m baselines.cjepa.questions runs/cjepa/cpu-clevrer/checkpoint.pt --train clevrer_train --test clevrer_test --out report.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pickle
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from baselines.cjepa.model import CJEPA
from baselines.cjepa.slots import load_trained
from baselines.cjepa.states import interpolate_steps, load_tracks, rollout_errors
from wmbench.cli import whole_number
from wmbench.data.clevrer_videos import read_generated, scene_seed
from wmbench.envs.clevrer.physics import render_video, simulate, view_fovy
from wmbench.envs.clevrer.sampler import sample_scene
from wmbench.envs.clevrer.scene import CAMERA, RADIUS, Camera
from wmbench.eval.trajectory_answers import ObjectTracks, VelocityExtrapolation, answer_by_trajectories
from wmbench.files import atomic_write
from wmbench.progress import progress_bar
from wmbench.stats import fit_ridge


TABLE_SHADING = 0.1  # mean |colour - table colour| on [-1, 1] below which a decoded pixel is the table (5% of the range)


@dataclasses.dataclass(frozen=True)
class SceneVideo:
    """A generated video as the model sees it: its frames, and where its objects are."""

    pixels: np.ndarray  # [F, 3, H, W] uint8 at the model's resolution
    position: np.ndarray  # [F, O, 3] m, the objects' centers


def scene_video(generated: Path, scene_index: int, resolution: int) -> SceneVideo:
    """Video ``scene_index`` of a ``wmbench clevrer generate`` folder, re-simulated and drawn square at ``resolution`` px."""
    seed = json.loads((generated / "settings.json").read_text())["seed"]
    scene = sample_scene(scene_seed(seed, scene_index))
    trajectory = simulate(scene, frames=scene.frames)
    pixels = render_video(scene, trajectory, resolution=(resolution, resolution))
    return SceneVideo(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)), trajectory.position)


def grid_camera(resolution: int, size: int) -> Camera:
    """The env's camera for its square frame at ``resolution`` px, with pixel coordinates on a ``size`` px grid over it."""
    return dataclasses.replace(CAMERA, fovy=view_fovy(resolution, resolution), width=size, height=size)


class SlotReader:
    """A trained C-JEPA's slots of a video, which slot holds which object, and (once fitted) where a slot's object is."""

    def __init__(self, model: CJEPA):
        self.model = model
        self.camera = grid_camera(model.meta.image_size[0], model.decoder.size)
        self.probe: tuple[np.ndarray, np.ndarray] | None = None
        self.reading = "probe"

    @torch.no_grad()
    def slots_and_matches(self, video: SceneVideo) -> tuple[torch.Tensor, np.ndarray]:
        """The slots of every frame ``[F, S, D]``, and the slot of each object at each frame ``[F, O]`` (-1: out of view)."""
        slots = self._encode(video)
        return slots, self._match(video, self.model.decoder.parts(slots)[1])

    def _encode(self, video: SceneVideo) -> torch.Tensor:
        return torch.cat([self.model.encode(torch.from_numpy(chunk)[:, None])[:, 0] for chunk in np.array_split(video.pixels, 4)])

    def _match(self, video: SceneVideo, shares: torch.Tensor) -> np.ndarray:
        """The slot of each object at each frame ``[F, O]`` from the decoder's shares ``[F, S, 1, size, size]``."""
        shares = shares[:, :, 0].numpy()
        size = shares.shape[-1]
        centers = np.floor(np.nan_to_num(self.camera.project(video.position), nan=-1)).astype(int)  # [F, O, 2]; behind: -1
        matches = np.full(video.position.shape[:2], -1)
        for frame, (share, center) in enumerate(zip(shares, centers)):
            in_view = np.flatnonzero(np.all((center >= 0) & (center < size), axis=1))
            if len(in_view) == 0:
                continue
            padded = np.pad(share, ((0, 0), (1, 1), (1, 1)))  # each object's 3 x 3 neighbourhood, clipped at the edges
            around = np.stack([padded[:, r : r + 3, c : c + 3].sum((1, 2)) for c, r in center[in_view]])  # [objects, S]
            objects, slots_won = linear_sum_assignment(around, maximize=True)
            matches[frame, in_view[objects]] = slots_won
        return matches

    def fit(self, videos: list[SceneVideo]) -> dict[str, float]:
        """Fit the probe on the matched slots of ``videos`` and keep the reading with the smaller error on them."""
        slots, decoded, targets = self._pairs(videos)
        self.probe = fit_ridge(slots, targets)
        errors = {"probe_rmse_m": rmse(self._probe(slots), targets), "decoder_rmse_m": rmse(decoded, targets)}
        self.reading = min(("probe", "decoder"), key=lambda reading: np.nan_to_num(errors[f"{reading}_rmse_m"], nan=np.inf))
        return {**errors, "decoder_unread_fraction": unread(decoded), "reading": self.reading, "pairs": len(slots)}

    def score(self, videos: list[SceneVideo]) -> dict[str, float]:
        """Both readings' RMSE (m) on the matched slots of ``videos``, against predicting the table's mean position."""
        slots, decoded, targets = self._pairs(videos)
        probed = self._probe(slots)
        return {"probe_rmse_m": rmse(probed, targets), "decoder_rmse_m": rmse(decoded, targets),
                "probe_median_m": median_error(probed, targets), "decoder_median_m": median_error(decoded, targets),
                "decoder_unread_fraction": unread(decoded), "mean_position_rmse_m": rmse(targets.mean(0), targets),
                "mean_position_median_m": median_error(targets.mean(0), targets), "pairs": len(slots),
                "matched_fraction": float(len(slots) / sum(np.prod(v.position.shape[:2]) for v in videos))}

    def positions(self, slots: torch.Tensor) -> np.ndarray:
        """The slots ``[N, S, D]`` of N frames -> the table positions ``[N, S, 2]`` (m) the chosen reading finds in them."""
        return self._probe(slots.numpy()) if self.reading == "probe" else self.decoded_positions(slots)

    @torch.no_grad()
    def decoded_positions(self, slots: torch.Tensor) -> np.ndarray:
        """The slots ``[N, S, D]`` of N frames -> where on the table each slot's object lies ``[N, S, 2]`` (m): the centroid
        of the pixels the slot wins in the decoded frame and draws in a colour other than the table's, taken to a resting
        object's center height (NaN for a slot that draws nothing but table)."""
        return self._drawn_positions(*self.model.decoder.parts(slots))

    def _drawn_positions(self, colors: torch.Tensor, shares: torch.Tensor) -> np.ndarray:
        """``decoded_positions`` from the decoder's parts: colours ``[N, S, 3, size, size]``, shares ``[N, S, 1, size, size]``."""
        table = (colors * shares).sum(1).flatten(2).median(dim=2).values[:, None, :, None, None]  # the frame's commonest colour
        drawn = (colors - table).abs().mean(dim=2) > TABLE_SHADING  # [N, S, size, size]
        won = torch.nn.functional.one_hot(shares[:, :, 0].argmax(dim=1), shares.shape[1]).permute(0, 3, 1, 2).bool()
        weights = (won & drawn).double().numpy()
        middles = np.arange(weights.shape[-1]) + 0.5
        area = weights.sum((2, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            pixel = np.stack([(weights * middles).sum((2, 3)), (weights * middles[:, None]).sum((2, 3))], axis=-1) / area[..., None]
        return self.camera.ground_point(pixel, RADIUS)[..., :2]

    def _probe(self, slots: np.ndarray) -> np.ndarray:
        weights, bias = self.probe
        return slots @ weights + bias

    @torch.no_grad()
    def _pairs(self, videos: list[SceneVideo]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The matched slots ``[N, D]`` of ``videos``, the decoder's reading of each ``[N, 2]``, and the object's position."""
        slots, decoded, targets = [], [], []
        for video in videos:
            video_slots = self._encode(video)
            colors, shares = self.model.decoder.parts(video_slots)  # decoded once for the matching and the reading
            matches = self._match(video, shares)
            frame, obj = np.nonzero(matches >= 0)
            slots.append(video_slots[frame, matches[frame, obj]].numpy())
            decoded.append(self._drawn_positions(colors, shares)[frame, matches[frame, obj]])
            targets.append(video.position[frame, obj, :2])
        return np.concatenate(slots), np.concatenate(decoded), np.concatenate(targets)


def distances(guess: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The distances (m) between positions ``[..., 2]``, flat, leaving out NaN readings (a slot that draws no object)."""
    gaps = np.sqrt(((guess - truth) ** 2).sum(-1)).ravel()
    return gaps[~np.isnan(gaps)]


def rmse(guess: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared distance (m) between positions ``[..., 2]`` (NaN when nothing was read)."""
    gaps = distances(guess, truth)
    return float(np.sqrt((gaps**2).mean())) if gaps.size else math.nan


def median_error(guess: np.ndarray, truth: np.ndarray) -> float:
    """The median distance (m): the typical error, where the RMSE is ruled by the few objects far back, where one decoded
    pixel spans metres of table (NaN when nothing was read)."""
    gaps = distances(guess, truth)
    return float(np.median(gaps)) if gaps.size else math.nan


def unread(positions: np.ndarray) -> float:
    """The fraction of readings ``[..., 2]`` that found nothing (NaN)."""
    return float(np.isnan(positions[..., 0]).mean()) if positions.size else 0.0


def fill_forward(positions: np.ndarray) -> np.ndarray:
    """Positions ``[T, ...]`` with each NaN replaced by the last reading before it (a slot whose object the decoder
    stopped drawing stays where it was last read)."""
    filled = positions.copy()
    for t in range(1, len(filled)):
        filled[t] = np.where(np.isnan(filled[t]), filled[t - 1], filled[t])
    return filled


class PixelSlotDynamics:
    """A trained C-JEPA from pixels as the trajectory model that answers the questions (see the module docstring)."""

    def __init__(self, reader: SlotReader, generated: Path, name: str):
        self.reader, self.generated, self.name = reader, generated, name
        meta = reader.model.meta
        self.history, self.stride = meta.history, meta.action_block
        self.zero_block = meta.normalize_actions(torch.zeros(1, 1, meta.action_block * meta.action_dim))
        self._seen = lru_cache(maxsize=None)(self._encode)  # each video is read twice (rollout errors, then questions); its slots are 0.2 MB

    def _encode(self, scene_index: int) -> tuple[torch.Tensor, np.ndarray]:
        return self.reader.slots_and_matches(scene_video(self.generated, scene_index, self.reader.model.meta.image_size[0]))

    @torch.no_grad()
    def _rolled_positions(self, slots: torch.Tensor, matched: np.ndarray, seen: np.ndarray, steps: int, removed_slot: int | None = None) -> np.ndarray:
        """Positions ``[steps * stride, O, 2]`` of the matched objects (NaN for the others) at every frame after context slots
        ``[history, S, D]`` (the slots of the objects ``matched`` ``[O]``), rolled ``steps`` model steps on: where each was
        ``seen`` ``[O, 2]`` at the last context frame, moved as its slot's reading moves."""
        kept = [s for s in range(slots.shape[1]) if s != removed_slot]
        blocks = self.zero_block.expand(1, self.history + steps, -1)
        predicted = self.reader.model.rollout(slots[None][:, :, kept], blocks, torch.tensor(kept))[0]  # [steps, kept, D]
        stepped = fill_forward(self.reader.positions(torch.cat([slots[-1:, kept], predicted])))  # [steps + 1, kept, 2]
        out = np.full((steps + 1, len(matched), 2), np.nan)
        holds = [(o, kept.index(s)) for o, s in enumerate(matched) if s >= 0 and s != removed_slot]
        for o, k in holds:
            out[:, o] = seen[o] + stepped[:, k] - stepped[0, k]
        return interpolate_steps(out, self.stride)

    def continue_scene(self, observed: ObjectTracks, frames: int) -> np.ndarray:
        slots, matches = self._seen(observed.scene_index)
        last = len(slots) - 1
        context = slots[last - (self.history - 1) * self.stride :: self.stride]
        rolled = self._rolled_positions(context, matches[last], observed.position[last], math.ceil(frames / self.stride))[:frames]
        straight = VelocityExtrapolation().continue_scene(observed, frames)
        return np.where(np.isnan(rolled), straight, rolled)

    def without(self, observed: ObjectTracks, removed: int | None) -> np.ndarray:
        slots, matches = self._seen(observed.scene_index)
        frames, start = len(slots), self.context_end
        removed_slot = None if removed is None or matches[start, removed] < 0 else int(matches[start, removed])  # unseen: not removable
        steps = math.ceil((frames - 1 - start) / self.stride)
        rolled = self._rolled_positions(slots[: start + 1 : self.stride], matches[start], observed.position[start], steps, removed_slot)
        rolled = np.where(np.isnan(rolled[: frames - 1 - start]), observed.position[start + 1 :], rolled[: frames - 1 - start])
        return np.concatenate([observed.position[: start + 1], rolled])

    @property
    def context_end(self) -> int:
        """The last frame of a video's first ``history`` model steps, where a rollout from the start begins."""
        return (self.history - 1) * self.stride


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m baselines.cjepa.questions", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="the checkpoint.pt of `python -m baselines.cjepa.train` on CLEVRER")
    parser.add_argument("--train", type=Path, required=True, help="a `wmbench clevrer generate` folder whose videos fit the probe")
    parser.add_argument("--test", type=Path, required=True, help="a `wmbench clevrer generate` folder whose questions are scored")
    parser.add_argument("--out", type=Path, required=True, help="the report (JSON) to write")
    parser.add_argument("--probe-videos", type=whole_number(1, 100_000), default=40, help="videos of --train that fit the probe (default 40)")
    parser.add_argument("--videos", type=whole_number(1, 100_000), help="score only the first videos of --test (default all)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problems = [f"{flag} {folder}: no questions.json there; give a folder `wmbench clevrer generate` wrote"
                for flag, folder in (("--train", args.train), ("--test", args.test)) if not (folder / "questions.json").is_file()]
    if not args.checkpoint.is_file():
        problems.append(f"{args.checkpoint} does not exist: pass the checkpoint.pt that training wrote")
    if args.out.is_dir():
        problems.append(f"--out {args.out} is a folder; give the path of the JSON report to write")
    try:
        model, config = load_trained(args.checkpoint) if not problems else (None, None)
    except (ValueError, RuntimeError, KeyError, OSError, pickle.UnpicklingError) as error:  # a foreign file
        problems.append(str(error).splitlines()[0])
    if not problems and model.meta.action_dim != 4:
        problems.append(f"{args.checkpoint} was trained on {config['data']['dataset']}, not on CLEVRER; train cpu-clevrer.toml")
    if problems:
        print(f"error: {problems[0]}", file=sys.stderr)
        return 2
    start, resolution = time.perf_counter(), model.meta.image_size[0]
    reader = SlotReader(model)
    probe_scenes = [v["scene_index"] for v in read_generated(args.train, args.probe_videos)[0]]
    bar = progress_bar(total=len(probe_scenes), desc="draw probe videos", unit="video")
    probe_videos = []
    for index in probe_scenes:
        probe_videos.append(scene_video(args.train, index, resolution))
        bar.update(1)
    bar.close()
    report = {"checkpoint": str(args.checkpoint), "config": config, "reading_fit": reader.fit(probe_videos)}
    test_scenes = [v["scene_index"] for v in read_generated(args.test, args.videos)[0]]
    report["reading_test"] = reader.score([scene_video(args.test, index, resolution) for index in test_scenes[:10]])
    name = "C-JEPA from pixels" if config["train"]["mask_slots"] else "OC-JEPA from pixels"
    dynamics = PixelSlotDynamics(reader, args.test, name)
    tracks = load_tracks(args.test)[: args.videos]
    report["rollout_error_m"] = rollout_errors(dynamics, tracks)
    for model_answering in (dynamics, VelocityExtrapolation()):
        report[model_answering.name] = answer_by_trajectories(args.test, model_answering, args.videos, progress=True)["score"]
    report["seconds"] = time.perf_counter() - start
    atomic_write(args.out, lambda tmp: tmp.write_text(json.dumps(report, indent=2) + "\n"))
    for key in (name, VelocityExtrapolation.name):
        by_type = report[key]["by_type"]
        print(f"{key}: " + ", ".join(f"{t} {100 * by_type[t]['per_option']:.1f}" for t in sorted(by_type)))
    test = report["reading_test"]
    print(f"position read from the slots of test videos (RMSE / median): probe {100 * test['probe_rmse_m']:.0f} / {100 * test['probe_median_m']:.0f} cm, "
          f"decoder {100 * test['decoder_rmse_m']:.0f} / {100 * test['decoder_median_m']:.0f} cm, the mean position "
          f"{100 * test['mean_position_rmse_m']:.0f} / {100 * test['mean_position_median_m']:.0f} cm; answered with the {reader.reading}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
