"""CLEVRER scenes as data: the objects, their looks and materials, the camera and the stage.

No MuJoCo here: a :class:`Scene` is what a video starts from, ``physics.py`` makes it move, and
``sampler.py`` draws seeded scenes.

Units are SI: metres, seconds, radians. The table is the floor plane z = 0, x to the right of
the camera, y away from it. The camera looks down at 30 degrees from 4.2 m, with CLEVR's lens
(49.1 degrees across a 3:2 frame): at the middle of the stage the view is about 3.8 m wide, and
the stage where objects start in view spans about 3.5 x 3 m. Objects are about 0.3 m across
(CLEVR's proportions: a cube's half-edge is smaller than a sphere's radius so they look alike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SHAPES = ("sphere", "cube", "cylinder")
RADIUS = 0.15  # m, sphere and cylinder
CUBE_HALF_EDGE = 0.12  # m
CYLINDER_HALF_HEIGHT = 0.12  # m
HALF_HEIGHTS = {"sphere": RADIUS, "cube": CUBE_HALF_EDGE, "cylinder": CYLINDER_HALF_HEIGHT}  # m: resting center height
FOOTPRINT_RADII = {"sphere": RADIUS, "cube": CUBE_HALF_EDGE * math.sqrt(2), "cylinder": RADIUS}  # m: bounding circle from above

COLORS = {  # CLEVR's RGB values, in CLEVRER's order
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "yellow": (255, 238, 51),
    "cyan": (41, 208, 208),
    "purple": (129, 38, 192),
}


@dataclass(frozen=True)
class Material:
    """How a material slides, bounces and shines."""

    friction: float  # sliding friction coefficient on the table and against other objects
    restitution: float  # about the fraction of the closing speed kept after a head-on collision (contacts are soft)
    specular: float  # MuJoCo material look, 0-1
    shininess: float


MATERIALS = {
    "metal": Material(friction=0.02, restitution=0.6, specular=0.9, shininess=0.9),
    "rubber": Material(friction=0.04, restitution=0.2, specular=0.05, shininess=0.1),
}
GRAVITY = 9.81  # m/s^2

MAX_OBJECTS = 6
FRAMES = 128
DURATION = 5.0  # s


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking at ``target`` from ``position`` (x right, y up in the image)."""

    position: tuple[float, float, float]
    target: tuple[float, float, float]
    fovy: float  # degrees, vertical, of a ``width`` x ``height`` frame
    width: int = 480
    height: int = 320

    @property
    def axes(self) -> np.ndarray:
        """Rows: the camera's right, up and forward directions in world coordinates."""
        forward = np.subtract(self.target, self.position)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, (0.0, 0.0, 1.0))
        right /= np.linalg.norm(right)
        return np.stack([right, np.cross(right, forward), forward])

    def project(self, points) -> np.ndarray:
        """World points ``[..., 3]`` -> pixel (column, row) ``[..., 2]`` in the ``width`` x ``height``
        frame; points behind the camera get NaN."""
        local = (np.asarray(points, np.float64) - self.position) @ self.axes.T
        depth = np.where(local[..., 2] > 0, local[..., 2], np.nan)
        tangent = math.tan(math.radians(self.fovy) / 2)
        column = self.width / 2 * (1 + local[..., 0] / (depth * tangent * self.width / self.height))
        row = self.height / 2 * (1 - local[..., 1] / (depth * tangent))
        return np.stack([column, row], axis=-1)

    def ground_point(self, pixels, height: float) -> np.ndarray:
        """Pixel (column, row) ``[..., 2]`` -> the point ``[..., 3]`` at ``height`` above the table that projects there: where
        an object whose center rests at that height stands. Rows at or above the horizon get NaN."""
        pixels = np.asarray(pixels, np.float64)
        tangent = math.tan(math.radians(self.fovy) / 2)
        across = (2 * pixels[..., 0] / self.width - 1) * tangent * self.width / self.height
        up = (1 - 2 * pixels[..., 1] / self.height) * tangent
        ray = np.stack([across, up, np.ones_like(across)], axis=-1) @ self.axes  # world direction of each pixel's ray
        distance = (height - self.position[2]) / ray[..., 2]
        return np.where((distance > 0)[..., None], self.position + distance[..., None] * ray, np.nan)

    def in_view(self, points, margin: float = 0.0) -> np.ndarray:
        """Whether each point projects inside the frame, at least ``margin`` pixels from its edges."""
        pixel = self.project(points)
        inside = (pixel[..., 0] >= margin) & (pixel[..., 0] <= self.width - margin)
        return inside & (pixel[..., 1] >= margin) & (pixel[..., 1] <= self.height - margin)


# CLEVR's camera lens (49.1 degrees across), 30 degrees above the table, 4.2 m from the stage.
_ELEVATION, _DISTANCE, _STAGE_CENTER = math.radians(30), 4.2, (0.0, 0.3, 0.0)
CAMERA = Camera(
    position=(0.0, _STAGE_CENTER[1] - _DISTANCE * math.cos(_ELEVATION), _DISTANCE * math.sin(_ELEVATION)),
    target=_STAGE_CENTER,
    fovy=math.degrees(2 * math.atan(math.tan(math.radians(49.1) / 2) * 320 / 480)),
)


@dataclass(frozen=True)
class SceneObject:
    """One object: what it is, and how it starts (resting on the table at ``x, y`` turned by
    ``yaw``, sliding at ``vx, vy``; a sphere starts rolling without slipping)."""

    shape: str
    color: str
    material: str
    x: float
    y: float
    yaw: float = 0.0
    vx: float = 0.0
    vy: float = 0.0

    def __post_init__(self):
        for name, value, allowed in (("shape", self.shape, SHAPES), ("color", self.color, COLORS), ("material", self.material, MATERIALS)):
            if value not in allowed:
                raise ValueError(f"SceneObject {name}={value!r}: choose one of {list(allowed)}")
        if not all(math.isfinite(v) for v in (self.x, self.y, self.yaw, self.vx, self.vy)):
            raise ValueError(f"SceneObject: x, y, yaw, vx, vy must be finite, got {self}")

    @property
    def speed(self) -> float:
        return math.hypot(self.vx, self.vy)


@dataclass(frozen=True)
class Scene:
    """A video's starting point: its objects (object id = index) and its clock."""

    objects: tuple[SceneObject, ...]
    frames: int = FRAMES
    duration: float = DURATION  # s, of ``frames`` frames

    def __post_init__(self):
        object.__setattr__(self, "objects", tuple(self.objects))
        if not 1 <= len(self.objects) <= MAX_OBJECTS:
            raise ValueError(f"Scene: give 1 to {MAX_OBJECTS} objects, got {len(self.objects)}")
        if not isinstance(self.frames, int) or self.frames < 1 or not self.duration > 0:
            raise ValueError(f"Scene: frames must be a positive integer and duration > 0, got {self.frames}, {self.duration}")

    @property
    def frame_time(self) -> float:
        """Seconds between two frames."""
        return self.duration / self.frames


# ---------------------------------------------------------------------- the stage
STAGE = ((-2.2, -1.1), (2.2, 2.0))  # (x, y) low and high of where in-view objects start
STAGE_MARGIN = 40  # px: an object starting in view has its center this far inside the 480 x 320 frame
GAP = 0.1  # m between the footprints of any two objects at the start
