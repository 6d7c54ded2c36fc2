"""CLEVRER-style collision videos as a live, seeded MuJoCo simulation (``wmbench/CLEVRER-v0``).

``scene`` describes a video's start (pure data), ``sampler`` draws seeded scenes of chain
reactions, ``physics`` simulates and draws them, ``annotations`` writes their ground truth in
CLEVRER's layout, ``env`` is the gymnasium side::

    scene = sample_scene(0)
    trajectory = simulate(scene)            # positions, in-view flags, collisions per frame
    frames = render_video(scene, trajectory) # uint8 [128, 320, 480, 3]
    truth = annotate(scene, scene_index=0)   # JSON-ready, with counterfactual and predictive events
"""

from wmbench.envs.clevrer.annotations import annotate, counterfactuals, view_events
from wmbench.envs.clevrer.env import ClevrerEnv
from wmbench.envs.clevrer.physics import Collision, Trajectory, render, render_video, simulate
from wmbench.envs.clevrer.sampler import sample_scene
from wmbench.envs.clevrer.scene import CAMERA, COLORS, DURATION, FRAMES, MATERIALS, MAX_OBJECTS, SHAPES, Scene, SceneObject

__all__ = [
    "CAMERA",
    "COLORS",
    "DURATION",
    "FRAMES",
    "MATERIALS",
    "MAX_OBJECTS",
    "SHAPES",
    "ClevrerEnv",
    "Collision",
    "Scene",
    "SceneObject",
    "Trajectory",
    "annotate",
    "counterfactuals",
    "render",
    "render_video",
    "sample_scene",
    "simulate",
    "view_events",
]
