"""CLEVRER questions answered by reading object trajectories, the way object-centric world models answer.

An object-centric model does not need an answering head: it predicts where each object goes, and
the question's own program (``questions.execute``) runs on an annotation built from those
predictions. What the model supplies, per video:

================  ================================================================================
perception        the objects, their properties, their observed motion and the observed collisions
                  and view events. Here taken from the video's annotation (perfect perception), so
                  the score measures the dynamics alone; descriptive questions, which ask about the
                  observed video only, are then answered right by construction
prediction        the objects' positions for the ``PREDICTIVE_FRAMES`` after the video
                  (``TrajectoryModel.continue_scene``): "what will happen next"
counterfactual    the positions over the observed frames had one object never been there
                  (``TrajectoryModel.without``): "what if", and "which is responsible"
================  ================================================================================

Collisions are read off positions by ``detect_collisions``: two objects collide where their
footprints (circles; a cube's radius halfway between its inscribed and circumscribed circle) come
within ``CONTACT_TOLERANCE`` of touching at a frame, and again only after they were ``SEPARATION``
further apart, the simulator's own rule. A contact lasts less than a frame, hence the tolerance.
On the true trajectories of 40 sampled scenes, the reader finds 177 of the simulator's 201
collisions within 3 frames (0.8 frames early on average) and adds 12 that the simulator does not
count (``reader_agreement(seed=7, scenes=range(1000, 1040))``). Models:

========================  ======================================================================
``VelocityExtrapolation``  no interactions: objects keep their last observed velocity after the
                          video, and removing an object changes nobody else's motion. The floor a
                          dynamics model has to beat on the predictive, counterfactual and
                          explanatory questions
``Resimulation``          the true simulator re-run from the scene (``simulate``): the ceiling of
                          this way of answering, short of 100% only by the collision reader
========================  ======================================================================

    report = answer_by_trajectories("clevrer_val", VelocityExtrapolation())
    report["score"]["by_type"]["counterfactual"]["per_option"]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np

from wmbench.data.clevrer_videos import read_generated, scene_seed
from wmbench.envs.clevrer.annotations import PREDICTIVE_FRAMES
from wmbench.envs.clevrer.physics import SEPARATION, quaternion_yaw, simulate
from wmbench.envs.clevrer.questions import answer_all
from wmbench.envs.clevrer.sampler import sample_scene
from wmbench.envs.clevrer.scene import CUBE_HALF_EDGE, DURATION, FRAMES, RADIUS, Scene, SceneObject
from wmbench.eval.videos import score
from wmbench.progress import progress_bar

FRAME_TIME = DURATION / FRAMES  # s between two frames of a video
# footprint radius by shape: a cube turns, so it reaches between its inscribed and circumscribed circle
CONTACT_RADII = {"sphere": RADIUS, "cylinder": RADIUS, "cube": CUBE_HALF_EDGE * (1 + math.sqrt(2)) / 2}
# a contact lasts less than a frame, so frames show two colliding objects nearly touching, rarely overlapping
CONTACT_TOLERANCE = 0.02  # m


@dataclass(frozen=True)
class ObjectTracks:
    """The objects of one video and their motion on the table over its observed frames."""

    properties: tuple[dict, ...]  # annotation["object_property"]: object_id, color, material, shape
    position: np.ndarray  # [F, S, 2] m, the centers (x, y)
    velocity: np.ndarray  # [F, S, 2] m/s
    yaw: np.ndarray  # [F, S] rad, the heading about the vertical
    scene_index: int | None = None  # the video's index in its generated folder, for a model that looks at its frames

    @classmethod
    def from_annotation(cls, annotation: Mapping[str, Any]) -> ObjectTracks:
        frames = sorted(annotation["motion_trajectory"], key=lambda f: f["frame_id"])
        ordered = lambda frame: sorted(frame["objects"], key=lambda o: o["object_id"])
        position = np.array([[o["location"][:2] for o in ordered(f)] for f in frames], np.float64)
        velocity = np.array([[o["velocity"][:2] for o in ordered(f)] for f in frames], np.float64)
        orientation = np.array([[o["orientation"] for o in ordered(f)] for f in frames], np.float64)
        properties = tuple(sorted(annotation["object_property"], key=lambda o: o["object_id"]))
        return cls(properties, position, velocity, quaternion_yaw(orientation), annotation.get("scene_index"))

    @property
    def shapes(self) -> tuple[str, ...]:
        return tuple(p["shape"] for p in self.properties)


class TrajectoryModel(Protocol):
    """What answers the questions about the future and about "what if"."""

    name: str

    def continue_scene(self, observed: ObjectTracks, frames: int) -> np.ndarray:
        """Positions ``[frames, S, 2]`` of the frames after the observed ones."""

    def without(self, observed: ObjectTracks, removed: int) -> np.ndarray:
        """Positions ``[F, S, 2]`` over the observed frames had object ``removed`` never been there (its row is ignored)."""


def detect_collisions(position: np.ndarray, shapes: tuple[str, ...], absent: frozenset[int] = frozenset(),
                      first_frame: int = 0) -> list[dict[str, Any]]:
    """Collisions ``[{"object_ids", "frame_id"}]`` read off positions ``[F, S, 2]``: where two footprints first come within
    ``CONTACT_TOLERANCE``, and again after being ``SEPARATION`` further apart. Frames count from ``first_frame``; objects in
    ``absent`` take no part."""
    radii = np.array([CONTACT_RADII[s] for s in shapes])
    gaps = np.linalg.norm(position[:, :, None] - position[:, None, :], axis=-1) - (radii[:, None] + radii[None, :])
    pairs = [(a, b) for b in range(len(shapes)) for a in range(b) if a not in absent and b not in absent]
    collisions, touching = [], set()
    for frame, gap in enumerate(gaps):
        for pair in pairs:
            if gap[pair] <= CONTACT_TOLERANCE and pair not in touching:
                collisions.append({"object_ids": list(pair), "frame_id": first_frame + frame})
                touching.add(pair)
            elif gap[pair] >= CONTACT_TOLERANCE + SEPARATION:
                touching.discard(pair)
    return collisions


def reader_agreement(seed: int, scenes: range, within: int = 3) -> dict[str, float]:
    """The collision reader on the true trajectories of sampled scenes (``sample_scene(scene_seed(seed, i))``, 160 frames)
    against the simulator's own collisions: how many it finds within ``within`` frames, misses and adds, and how early."""
    found, missed, extra, offsets = 0, 0, 0, []
    for index in scenes:
        scene = sample_scene(scene_seed(seed, index))
        trajectory = simulate(scene, frames=scene.frames + PREDICTIVE_FRAMES)
        truth = [(frozenset(c.object_ids), c.frame) for c in trajectory.collisions]
        for collision in detect_collisions(trajectory.position[:, :, :2], tuple(o.shape for o in scene.objects)):
            pair, frame = frozenset(collision["object_ids"]), collision["frame_id"]
            match = next((t for t in truth if t[0] == pair and abs(t[1] - frame) <= within), None)
            if match is None:
                extra += 1
            else:
                found, offsets = found + 1, offsets + [frame - match[1]]
                truth.remove(match)
        missed += len(truth)
    return {"simulator_collisions": found + missed, "found": found, "missed": missed, "extra": extra,
            "mean_frames_early": -float(np.mean(offsets)) if offsets else 0.0}


def predicted_annotation(annotation: Mapping[str, Any], model: TrajectoryModel) -> dict[str, Any]:
    """The video's annotation with its predictive window and its counterfactuals replaced by what ``model`` predicts."""
    observed = ObjectTracks.from_annotation(annotation)
    frames = len(observed.position)
    future = model.continue_scene(observed, PREDICTIVE_FRAMES)
    # the window starts at the last observed frame, so a contact already under way there is not new
    window = detect_collisions(np.concatenate([observed.position[-1:], future]), observed.shapes, first_frame=frames - 1)
    return {**annotation,
            "predictive": {"frames": [frames, frames + PREDICTIVE_FRAMES], "collision": [c for c in window if c["frame_id"] >= frames],
                           "events": []},
            "counterfactual": [{"removed_object_id": removed,
                                "collision": detect_collisions(model.without(observed, removed), observed.shapes, frozenset([removed]))}
                               for removed in range(len(observed.shapes))]}


def trajectory_predictions(videos: list[dict], annotations: Mapping[int, Mapping[str, Any]], model: TrajectoryModel,
                           progress: bool = False) -> dict[str, Any]:
    """Every question of ``videos`` (entries of a questions.json) answered through ``model``'s trajectories."""
    predictions: dict[str, Any] = {}
    for video in progress_bar(videos, disable=not progress, desc=f"answer: {model.name}", unit="video"):
        predictions.update(answer_all(video["questions"], predicted_annotation(annotations[video["scene_index"]], model)))
    return predictions


def answer_by_trajectories(generated: str | Path, model: TrajectoryModel, videos: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Score ``model`` on the questions of a ``wmbench clevrer generate`` folder (its first ``videos`` videos, default all)."""
    chosen, annotations = read_generated(generated, videos)
    return {"model": model.name, "videos": len(chosen), "score": score(chosen, trajectory_predictions(chosen, annotations, model, progress))}


class VelocityExtrapolation:
    """No interactions: each object goes on at its last observed velocity, and no object affects another."""

    name = "velocity extrapolation"

    def continue_scene(self, observed: ObjectTracks, frames: int) -> np.ndarray:
        elapsed = FRAME_TIME * np.arange(1, frames + 1)[:, None, None]
        return observed.position[-1] + elapsed * observed.velocity[-1]

    def without(self, observed: ObjectTracks, removed: int) -> np.ndarray:
        return observed.position


class Resimulation:
    """The true simulator, re-run from the scene at the first frame: the ceiling of answering through trajectories."""

    name = "resimulation"

    def continue_scene(self, observed: ObjectTracks, frames: int) -> np.ndarray:
        observed_frames = len(observed.position)
        return simulate(scene_at_start(observed), frames=observed_frames + frames).position[observed_frames:, :, :2]

    def without(self, observed: ObjectTracks, removed: int) -> np.ndarray:
        return np.nan_to_num(simulate(scene_at_start(observed), removed={removed}, frames=len(observed.position)).position[:, :, :2])


def scene_at_start(observed: ObjectTracks) -> Scene:
    """The scene as it stands at the first observed frame."""
    return Scene(tuple(SceneObject(p["shape"], p["color"], p["material"], *observed.position[0, i], observed.yaw[0, i], *observed.velocity[0, i])
                       for i, p in enumerate(observed.properties)), frames=len(observed.position))
