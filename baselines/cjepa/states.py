"""C-JEPA's predictor on the true object states of CLEVRER videos: the predictor's upper bound, with no learned encoder.

Each object of a frame is a slot holding its true state, so the predictor is judged apart from
perception. It is C-JEPA's own (``SlotPredictor``) with the same object-level masking; the action
token carries nothing, since the videos are passive. It answers the questions through the
trajectories it predicts (``wmbench.eval.trajectory_answers``): it continues the video for the
predictive questions, and for a counterfactual it rolls the video out from its first frames with
the removed object's slot marked absent.

==============  ================================================================================
slot            present, x, y, vx, vy, cos and sin of the heading, shape and material (one-hot);
                positions and velocities standardized by the training videos' statistics; an
                absent slot (no object, or the removed one) is all zeros
output          each slot's change of motion from the straight-line continuation of the last
                state the predictor sees of it (its anchor, for a masked object), where C-JEPA
                predicts the latent itself: a state needs centimetre precision over metres of
                table, which a small predictor does not reach in absolute terms (trained so, it
                erred by 6 cm after one step, against 0.1 cm for the straight line)
model step      ``STRIDE`` = 2 video frames (0.078 s); a training window is ``history`` steps and
                the next one, and the loss is the masked-history and next-step error on the
                motion features (position, velocity, heading) of present objects
rollout         the next step's motion from the last ``history`` steps; what an object is and
                whether it is there are carried over, not predicted. Positions between steps are
                interpolated linearly for the collision reader
==============  ================================================================================

    python -m baselines.cjepa.states --train clevrer_train --test clevrer_test --out runs/cjepa-states
    python -m baselines.cjepa.states --train clevrer_train --test clevrer_test --out runs/ocjepa-states --mask-slots 0

``--train`` and ``--test`` are folders that ``wmbench clevrer generate --split train`` (and
``--split test``) wrote. The report (``report.json`` in ``--out``) scores the model beside the
floor (velocity extrapolation) and the ceiling (re-simulation) on the same questions.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from baselines.cjepa.model import SlotPredictor, draw_masked_slots, object_mask
from wmbench.cli import SEED, whole_number
from wmbench.data.clevrer_videos import read_generated
from wmbench.envs.clevrer.questions import MATERIALS, SHAPES
from wmbench.envs.clevrer.scene import MAX_OBJECTS
from wmbench.eval.trajectory_answers import FRAME_TIME, ObjectTracks, Resimulation, VelocityExtrapolation, answer_by_trajectories
from wmbench.progress import progress_bar

STRIDE = 2  # video frames per model step
MOTION = slice(1, 7)  # x, y, vx, vy, cos, sin: what the predictor predicts
FEATURES = 1 + 6 + len(SHAPES) + len(MATERIALS)


def slots(tracks: ObjectTracks, scale: np.ndarray) -> np.ndarray:
    """The slots ``[F, MAX_OBJECTS, FEATURES]`` of every frame of a video, motion divided by ``scale`` (4: x, y, vx, vy)."""
    frames, objects = tracks.position.shape[:2]
    out = np.zeros((frames, MAX_OBJECTS, FEATURES), np.float32)
    out[:, :objects, 0] = 1
    out[:, :objects, 1:5] = np.concatenate([tracks.position, tracks.velocity], axis=-1) / scale
    out[:, :objects, 5], out[:, :objects, 6] = np.cos(tracks.yaw), np.sin(tracks.yaw)
    for i, p in enumerate(tracks.properties):
        out[:, i, 7 + SHAPES.index(p["shape"])] = 1
        out[:, i, 7 + len(SHAPES) + MATERIALS.index(p["material"])] = 1
    return out


def load_tracks(generated: Path) -> list[ObjectTracks]:
    return [ObjectTracks.from_annotation(annotation) for annotation in read_generated(generated)[1].values()]


def interpolate_steps(stepped: np.ndarray, stride: int) -> np.ndarray:
    """Positions ``[steps + 1, S, 2]`` at model steps ``stride`` frames apart -> ``[steps * stride, S, 2]`` at every frame after
    the first, linearly between steps (what the collision reader needs)."""
    steps = len(stepped) - 1
    fraction = (np.arange(1, steps * stride + 1) / stride)[:, None, None]
    low = np.minimum(np.floor(fraction).astype(int), steps - 1)[:, 0, 0]
    return stepped[low] + (fraction - low[:, None, None]) * (stepped[low + 1] - stepped[low])


class StateSlotPredictor(nn.Module):
    """C-JEPA's predictor over true-state slots: masked prediction on windows, autoregressive rollouts."""

    def __init__(self, history: int, layers: int, heads: int, dim: int, scale: tuple[float, ...]):
        super().__init__()
        self.history = history
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))  # x, y, vx, vy
        self.predictor = SlotPredictor(FEATURES, MAX_OBJECTS, 1, layers, heads, dim, history + 1)
        for parameter in self.predictor.out.parameters():  # untrained, it predicts straight lines: training adds what they miss
            nn.init.zeros_(parameter)

    def motion(self, history: torch.Tensor, masked_slots: torch.Tensor) -> torch.Tensor:
        """The motion features ``[B, history + 1, S, 6]`` predicted at every token of a window from its ``history``
        ``[B, history, S, FEATURES]``, ``masked_slots`` ``[B, S]`` hidden after their first frame. The predictor gives each
        slot's change from the straight-line continuation of the last state it sees of it (the anchor, for a masked one):
        what collisions and friction do, not the centimetres that velocity alone explains."""
        batch = len(history)
        masked = object_mask(masked_slots, self.history, 1)
        change = self.predictor(history, history.new_zeros(batch, self.history, 1), masked)[..., MOTION]
        steps = torch.arange(self.history + 1, dtype=history.dtype, device=history.device)[None, :, None, None]
        from_anchor = self.continued(history[:, :1], steps)  # [B, history + 1, S, 6]
        following = torch.where(masked_slots[:, None, :, None], from_anchor[:, -1:], self.continued(history[:, -1:], steps[:, 1:2]))
        return torch.cat([from_anchor[:, :-1], following], dim=1) + change

    def continued(self, state: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """The motion features of ``state`` ``[B, 1, S, FEATURES]`` moved on at its own velocity by ``steps`` model steps."""
        motion = state[..., MOTION].expand(-1, steps.shape[1], -1, -1)
        step = STRIDE * FRAME_TIME * self.scale[2:] / self.scale[:2]  # standardized position per standardized velocity and step
        return torch.cat([motion[..., :2] + steps * step * motion[..., 2:4], motion[..., 2:]], dim=-1)

    def loss(self, windows: torch.Tensor, mask_slots: int) -> torch.Tensor:
        """The mean squared error of the motion of present objects on windows ``[B, history + 1, S, FEATURES]``: of the
        next step, plus of the masked objects' history (each averaged on its own, as C-JEPA's two terms)."""
        masked_slots = draw_masked_slots(len(windows), MAX_OBJECTS, mask_slots, windows.device)
        errors = (self.motion(windows[:, : self.history], masked_slots) - windows[..., MOTION]).pow(2).mean(-1)  # [B, W, S]
        queried = object_mask(masked_slots, self.history, 1).float() * windows[..., 0]  # queried and present
        mean = lambda part: (errors[:, part] * queried[:, part]).sum() / queried[:, part].sum().clamp(min=1)
        return mean(slice(self.history, None)) + mean(slice(None, self.history))

    @torch.no_grad()
    def rollout(self, context: torch.Tensor, steps: int) -> torch.Tensor:
        """Slots ``[B, steps, S, FEATURES]`` after ``context`` ``[B, history, S, FEATURES]``, one step at a time."""
        nothing_masked = torch.zeros(len(context), MAX_OBJECTS, dtype=torch.bool)
        window, predicted = context, []
        for _ in range(steps):
            following = window[:, -1].clone()
            following[..., MOTION] = self.motion(window, nothing_masked)[:, -1] * following[..., :1]  # an absent slot stays all zeros
            predicted.append(following)
            window = torch.cat([window[:, 1:], following[:, None]], dim=1)
        return torch.stack(predicted, dim=1)


class StateSlotDynamics:
    """A trained ``StateSlotPredictor`` as the trajectory model that answers the questions."""

    def __init__(self, model: StateSlotPredictor, name: str):
        self.model, self.name = model.eval(), name
        self.scale = model.scale.numpy().astype(np.float64)

    def _positions(self, context: np.ndarray, steps: int) -> np.ndarray:
        """Positions ``[steps * STRIDE, S, 2]`` (m) at every frame after the context slots ``[history, S, FEATURES]``."""
        predicted = self.model.rollout(torch.from_numpy(context[None]), steps)[0].numpy()
        return interpolate_steps(np.concatenate([context[-1:, :, 1:3], predicted[:, :, 1:3]]) * self.scale[:2], STRIDE)

    def continue_scene(self, observed: ObjectTracks, frames: int) -> np.ndarray:
        history = self.model.history
        stepped = slots(observed, self.scale)[::-STRIDE][:history][::-1]  # the last `history` steps, ending at the last frame
        objects = observed.position.shape[1]
        return self._positions(np.ascontiguousarray(stepped), math.ceil(frames / STRIDE))[:frames, :objects]

    def without(self, observed: ObjectTracks, removed: int | None) -> np.ndarray:
        """The observed frames rolled out again from the first ``history`` steps, object ``removed`` marked absent (None:
        every object kept, the video re-predicted); the context's frames are the observed ones."""
        (frames, objects), start = observed.position.shape[:2], self.context_end
        context = slots(observed, self.scale)[: start + 1 : STRIDE].copy()
        if removed is not None:
            context[:, removed] = 0
        rolled = self._positions(context, math.ceil((frames - 1 - start) / STRIDE))[: frames - 1 - start, :objects]
        return np.concatenate([observed.position[: start + 1], rolled])

    @property
    def context_end(self) -> int:
        """The last frame of a video's first ``history`` steps, where a rollout from the start begins."""
        return (self.model.history - 1) * STRIDE


def rollout_errors(dynamics: StateSlotDynamics, tracks: list[ObjectTracks], after: tuple[int, ...] = (2, 8, 32, 120)) -> dict:
    """Mean distance (m) between the true positions and each video re-predicted from its first steps, ``after`` frames past
    the context; beside the straight line (the context's last position and velocity) at the same frames."""
    start = dynamics.context_end
    errors: dict[str, dict[int, list[float]]] = {"model": {k: [] for k in after}, "straight_line": {k: [] for k in after}}
    for observed in tracks:
        predicted = dynamics.without(observed, removed=None)
        for k in after:
            straight = observed.position[start] + observed.velocity[start] * k * FRAME_TIME
            for name, guess in (("model", predicted[start + k]), ("straight_line", straight)):
                errors[name][k].append(float(np.linalg.norm(guess - observed.position[start + k], axis=-1).mean()))
    return {name: {f"{k}_frames": float(np.mean(values)) for k, values in by_frames.items()} for name, by_frames in errors.items()}


def windows_of(videos: list[np.ndarray], history: int) -> np.ndarray:
    """Every window of ``history + 1`` steps of every video's slots, at each frame offset of the stride."""
    out = []
    for video in videos:
        for offset in range(STRIDE):
            stepped = video[offset::STRIDE]
            out.extend(stepped[start : start + history + 1] for start in range(len(stepped) - history))
    return np.stack(out)


def train(tracks: list[ObjectTracks], args: argparse.Namespace) -> StateSlotPredictor:
    torch.manual_seed(args.seed)
    motion = np.concatenate([np.concatenate([t.position, t.velocity], axis=-1).reshape(-1, 4) for t in tracks])
    scale = motion.std(axis=0)
    model = StateSlotPredictor(args.history, args.layers, args.heads, args.dim, tuple(float(s) for s in scale))
    data = torch.from_numpy(windows_of([slots(t, scale) for t in tracks], args.history))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-3)
    generator = torch.Generator().manual_seed(args.seed)
    bar = progress_bar(total=args.steps, desc="train cjepa on states", unit="step")
    for step in range(args.steps):
        batch = data[torch.randint(len(data), (args.batch_size,), generator=generator)]
        loss = model.loss(batch, args.mask_slots)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    return model


def positive_number(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{value} must be a finite number above 0")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True, help="a `wmbench clevrer generate` folder to train on")
    parser.add_argument("--test", type=Path, required=True, help="a `wmbench clevrer generate` folder whose questions are scored")
    parser.add_argument("--out", type=Path, required=True, help="folder for model.pt and report.json")
    parser.add_argument("--model", type=Path, help="score this trained model.pt instead of training (give its --history, --layers, "
                                                   "--heads and --dim)")
    parser.add_argument("--mask-slots", type=whole_number(0, MAX_OBJECTS - 1), default=1,
                        help="objects masked over their history per window (default 1; 0: OC-JEPA)")
    parser.add_argument("--history", type=whole_number(1, 32), default=4, help="model steps of context (default 4)")
    parser.add_argument("--layers", type=whole_number(1, 64), default=3)
    parser.add_argument("--heads", type=whole_number(1, 64), default=4, help="attention heads; must divide --dim")
    parser.add_argument("--dim", type=whole_number(1, 4096), default=64)
    parser.add_argument("--steps", type=whole_number(1, 10_000_000), default=3000)
    parser.add_argument("--batch-size", type=whole_number(1, 1_000_000), default=64)
    parser.add_argument("--lr", type=positive_number, default=3e-4)
    parser.add_argument("--seed", type=SEED, default=0)
    args = parser.parse_args(argv)
    problems = [f"{flag} {folder}: no questions.json there; give a folder `wmbench clevrer generate` wrote"
                for flag, folder in (("--train", args.train), ("--test", args.test)) if not (folder / "questions.json").is_file()]
    problems += [message for broken, message in (
        (args.model is not None and not args.model.is_file(), f"--model {args.model}: no such file; give the model.pt of an earlier run"),
        (args.out.exists() and not args.out.is_dir(), f"--out {args.out} is a file; give a folder to write into"),
        (args.dim % args.heads != 0, f"--heads {args.heads} does not divide --dim {args.dim}; choose heads that divide it"),
    ) if broken]
    if problems:
        print(f"error: {problems[0]}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.model is None:
        model = train(load_tracks(args.train), args)
        torch.save(model.state_dict(), args.out / "model.pt")
    else:
        state = torch.load(args.model, weights_only=True)
        model = StateSlotPredictor(args.history, args.layers, args.heads, args.dim, tuple(state["scale"].tolist()))
        model.load_state_dict(state)
    name = "C-JEPA predictor on true states" if args.mask_slots else "OC-JEPA predictor on true states"
    report = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "train_s": time.perf_counter() - start if args.model is None else None,
              "parameters": sum(p.numel() for p in model.parameters()),
              "rollout_error_m": rollout_errors(StateSlotDynamics(model, name), load_tracks(args.test))}
    for dynamics in (StateSlotDynamics(model, name), VelocityExtrapolation(), Resimulation()):
        report[dynamics.name] = answer_by_trajectories(args.test, dynamics)["score"]
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    for key in (name, VelocityExtrapolation.name, Resimulation.name):
        by_type = report[key]["by_type"]
        print(f"{key}: " + ", ".join(f"{t} {100 * by_type[t]['per_option']:.1f}" for t in sorted(by_type)))
    errors = report["rollout_error_m"]
    print("rollout error (cm), model / straight line: " + ", ".join(
        f"{key.split('_')[0]} frames {100 * errors['model'][key]:.1f} / {100 * errors['straight_line'][key]:.1f}" for key in errors["model"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
