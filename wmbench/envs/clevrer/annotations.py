"""Ground truth of a scene in CLEVRER's annotation layout, with the events its questions ask about.

``annotate(scene, scene_index)`` gives one JSON-ready dict (plain Python types):

======================  ===========================================================================
``scene_index``         as given; ``video_filename``: ``video_{scene_index:05d}.mp4``
``object_property``     ``[{"object_id", "color", "material", "shape"}]``
``motion_trajectory``   per observed frame: ``{"frame_id", "objects": [{"object_id", "location"
                        [x, y, z] (m), "orientation" [w, x, y, z] (quaternion), "velocity"
                        [vx, vy, vz] (m/s), "inside_camera_view"}]}``
``collision``           ``[{"object_ids": [a, b], "frame_id", "location": [x, y, z]}]`` in the
                        observed frames (``physics.py`` defines a collision)
``events``              entering and leaving the view: ``[{"object_id", "frame_id", "type":
                        "enter" | "exit"}]``, at the first frame of the new in-view flag
``counterfactual``      ``[{"removed_object_id", "collision": [...]}]``: the collisions of the
                        observed frames re-simulated without each object in turn
``predictive``          ``{"frames": [first, end), "collision": [...], "events": [...]}``: what
                        happens in the ``PREDICTIVE_FRAMES`` = 32 frames after the observed ones
======================  ===========================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wmbench.envs.clevrer.physics import Collision, Trajectory, simulate
from wmbench.envs.clevrer.scene import Scene

PREDICTIVE_FRAMES = 32  # frames simulated after the observed ones: 1.25 s of a 128-frame, 5 s video


def collision_record(collision: Collision) -> dict[str, Any]:
    return {"object_ids": list(collision.object_ids), "frame_id": collision.frame, "location": list(collision.location)}


def view_events(in_view: np.ndarray) -> list[dict[str, Any]]:
    """Enter and exit events from per-frame in-view flags ``[frames, objects]``: an object enters at
    the first frame it is in view after a frame out of it, and exits at the first frame out."""
    events = []
    changed = np.argwhere(in_view[1:] != in_view[:-1])  # sorted by frame, then object
    for before, object_id in changed:
        frame = int(before) + 1
        events.append({"object_id": int(object_id), "frame_id": frame, "type": "enter" if in_view[frame, object_id] else "exit"})
    return events


def counterfactuals(scene: Scene, frames: int | None = None) -> dict[int, list[dict[str, Any]]]:
    """For each object, the collisions of the first ``frames`` frames (default ``scene.frames``) had it never been there."""
    return {i: [collision_record(c) for c in simulate(scene, removed={i}, frames=frames).collisions] for i in range(len(scene.objects))}


def annotate(scene: Scene, scene_index: int, trajectory: Trajectory | None = None) -> dict[str, Any]:
    """The ground truth of ``scene`` (see the module docstring); JSON-ready. ``trajectory``, when
    given, is ``simulate(scene, frames=scene.frames + PREDICTIVE_FRAMES)``, already run."""
    observed = scene.frames
    total = observed + PREDICTIVE_FRAMES
    trajectory = trajectory if trajectory is not None else simulate(scene, frames=total)
    events = view_events(trajectory.in_view)
    return {
        "scene_index": scene_index,
        "video_filename": f"video_{scene_index:05d}.mp4",
        "object_property": [
            {"object_id": i, "color": obj.color, "material": obj.material, "shape": obj.shape} for i, obj in enumerate(scene.objects)
        ],
        "motion_trajectory": [
            {
                "frame_id": frame,
                "objects": [
                    {
                        "object_id": i,
                        "location": trajectory.position[frame, i].tolist(),
                        "orientation": trajectory.quaternion[frame, i].tolist(),
                        "velocity": trajectory.velocity[frame, i].tolist(),
                        "inside_camera_view": bool(trajectory.in_view[frame, i]),
                    }
                    for i in range(len(scene.objects))
                ],
            }
            for frame in range(observed)
        ],
        "collision": [collision_record(c) for c in trajectory.collisions if c.frame < observed],
        "events": [e for e in events if e["frame_id"] < observed],
        "counterfactual": [{"removed_object_id": i, "collision": collisions} for i, collisions in counterfactuals(scene).items()],
        "predictive": {
            "frames": [observed, total],
            "collision": [collision_record(c) for c in trajectory.collisions if c.frame >= observed],
            "events": [e for e in events if e["frame_id"] >= observed],
        },
    }
