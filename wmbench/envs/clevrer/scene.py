"""CLEVRER scenes as data: the objects, their looks and materials, the camera, and a seeded sampler.

No MuJoCo here: a :class:`Scene` is what a video starts from, and ``physics.py`` makes it move.

Units are SI: metres, seconds, radians. The table is the floor plane z = 0, x to the right of
the camera, y away from it. The camera looks down at 30 degrees from 4.2 m, with CLEVR's lens
(49.1 degrees across a 3:2 frame): at the middle of the stage the view is about 3.8 m wide, and
the stage where objects start in view spans about 3.5 x 3 m. Objects are about 0.3 m across
(CLEVR's proportions: a cube's half-edge is smaller than a sphere's radius so they look alike).
"""

from __future__ import annotations

import itertools
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


# ---------------------------------------------------------------------- sampling
STAGE = ((-2.2, -1.1), (2.2, 2.0))  # (x, y) low and high of where in-view objects start
STAGE_MARGIN = 40  # px: an object starting in view has its center this far inside the 480 x 320 frame
GAP = 0.1  # m between the footprints of any two objects at the start
SPEED = (0.6, 1.5)  # m/s, of an in-view object moving at the start
AIM_NOISE = math.radians(8)  # standard deviation of an in-view mover's aimed direction
ARRIVAL = (1.5, 6.25)  # s: when entering objects reach their targets, over the video and the predictive window
ARRIVAL_SPEED = (0.5, 1.0)  # m/s an entering object still has when it reaches its target
AIM_OFFSET = 0.6  # an entering object passes its target's center at most this fraction of their touching distance aside
BALL_SLOWING = 0.55  # a rolling ball slows at about 0.55 mu g over its first seconds in physics.py's contacts (a block: mu g)
MAX_SPEED = 3.5  # m/s
CLEAR_TRIES = 100  # headings tried for an entering object's clear path before any will do


def sample_scene(seed: int | np.random.Generator, objects: int | None = None) -> Scene:
    """A CLEVRER-like scene, the same for the same seed (an ``int`` or a numpy ``Generator``).

    ``objects`` (3-6, default uniform) are placed apart. Half of them, or one fewer (at least one),
    start outside the camera's view and enter it on a schedule: each is sent at its own target, an
    in-view object at rest, to touch it at an arrival time, and the k entering objects draw one
    uniform time each from the k equal parts of ``ARRIVAL`` (1.5 s to the end of the predictive
    window), so that objects enter and collide throughout the video and right after it. An entering
    object starts as far out along a clear path as it travels in that time at its material's
    deceleration (a block slides at mu g, a ball rolls at about ``BALL_SLOWING`` of that) to arrive
    still moving at ``ARRIVAL_SPEED``. The other in-view objects, when there are two or more, each
    move with probability 0.6 (at least one does), aimed at another of them: the early collisions;
    they never aim at a target, which rests until its arrival. The object ids are shuffled, so an
    id says nothing about an object's role.
    """
    rng = np.random.default_rng(seed)
    count = int(rng.integers(3, MAX_OBJECTS + 1)) if objects is None else objects
    if not 3 <= count <= MAX_OBJECTS:
        raise ValueError(f"sample_scene objects={objects!r}: give 3 to {MAX_OBJECTS} (or None)")
    entering = int(rng.integers(max(1, count // 2 - 1), count // 2 + 1))
    kinds = [(rng.choice(SHAPES), rng.choice(list(COLORS)), rng.choice(list(MATERIALS))) for _ in range(count)]
    inside = count - entering

    placed: list[tuple[float, float]] = []
    for shape, _, _ in kinds[:inside]:
        placed.append(_free_spot(rng, placed, kinds, shape))
    targets = [int(i) for i in rng.permutation(inside)[:entering]]
    free = [i for i in range(inside) if i not in targets]
    moving = ({i for i in free if rng.random() < 0.6} | {free[rng.integers(len(free))]}) if len(free) > 1 else set()
    velocities = [_aimed_velocity(rng, placed[i], [placed[j] for j in free if j != i]) if i in moving else (0.0, 0.0) for i in range(inside)]
    edges = np.linspace(*ARRIVAL, entering + 1)
    for k in range(entering):
        arrival = rng.uniform(edges[k], edges[k + 1])
        start, velocity = _entering_start(rng, placed, kinds, inside + k, targets[k], arrival)
        placed.append(start)
        velocities.append(velocity)

    scene_objects = [
        SceneObject(str(shape), str(color), str(material), float(x), float(y), float(rng.uniform(0, 2 * math.pi)), float(vx), float(vy))
        for (shape, color, material), (x, y), (vx, vy) in zip(kinds, placed, velocities)
    ]
    return Scene(tuple(scene_objects[i] for i in rng.permutation(count)))


def _fits(point, shape: str, placed, kinds) -> bool:
    """Whether an object of ``shape`` at ``point`` keeps ``GAP`` from every placed object."""
    return all(
        math.dist(point, other) >= FOOTPRINT_RADII[shape] + FOOTPRINT_RADII[kinds[j][0]] + GAP for j, other in enumerate(placed)
    )


def _free_spot(rng: np.random.Generator, placed, kinds, shape: str) -> tuple[float, float]:
    """A uniform point of the stage, well inside the view, away from the objects placed so far."""
    while True:
        x, y = rng.uniform(*STAGE)
        if CAMERA.in_view((x, y, HALF_HEIGHTS[shape]), margin=STAGE_MARGIN) and _fits((x, y), shape, placed, kinds):
            return float(x), float(y)


def _aimed_velocity(rng: np.random.Generator, start, aims) -> tuple[float, float]:
    """A velocity from ``start`` pointing (up to ``AIM_NOISE``) at one of ``aims``."""
    target = aims[rng.integers(len(aims))]
    heading = math.atan2(target[1] - start[1], target[0] - start[0]) + rng.normal(0, AIM_NOISE)
    speed = rng.uniform(*SPEED)
    return speed * math.cos(heading), speed * math.sin(heading)


def _entering_start(rng: np.random.Generator, placed, kinds, i: int, target: int, arrival: float):
    """A start outside the view and a velocity that bring object ``i``, still moving, to touch
    object ``target`` (resting at ``placed[target]``) ``arrival`` seconds into the video, on a path
    clear of the other placed objects (if one turns up in ``CLEAR_TRIES`` headings)."""
    shape, _, material = kinds[i]
    slowing = MATERIALS[material].friction * GRAVITY * (BALL_SLOWING if shape == "sphere" else 1.0)
    reach = FOOTPRINT_RADII[shape] + FOOTPRINT_RADII[kinds[target][0]]  # center to center when they touch
    for attempt in itertools.count():
        heading = rng.uniform(0, 2 * math.pi)
        direction = np.array([math.cos(heading), math.sin(heading)])
        side = rng.uniform(-AIM_OFFSET, AIM_OFFSET)
        aim = np.asarray(placed[target]) + side * reach * np.array([-direction[1], direction[0]])
        touch = math.sqrt(1 - side**2) * reach  # short of the aim point when they touch
        travel = rng.uniform(*ARRIVAL_SPEED) * arrival + slowing * arrival**2 / 2  # to the touch
        # Far enough back to start wholly out of view, and a bit more.
        hidden = 0.0
        while _visible(aim - hidden * direction, shape):
            hidden += 0.05
        travel = max(travel, hidden + 0.3 - touch)
        start = aim - (touch + travel) * direction
        speed = travel / arrival + slowing * arrival / 2
        contact = aim - touch * direction  # where its center is when they touch: in view, so the collision is seen
        clear = attempt >= CLEAR_TRIES or _clear(start, contact, shape, placed, kinds, target)
        if speed <= MAX_SPEED and clear and _fits(start, shape, placed, kinds) and CAMERA.in_view((*contact, HALF_HEIGHTS[shape])):
            return (float(start[0]), float(start[1])), tuple(float(v) for v in speed * direction)


def _clear(a, b, shape: str, placed, kinds, skip: int) -> bool:
    """Whether an object of ``shape`` sliding from ``a`` to ``b`` keeps ``GAP`` from the placed objects but ``skip``."""
    a, b = np.asarray(a), np.asarray(b)
    for j, point in enumerate(placed):
        along = np.clip(np.dot(point - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
        if j != skip and math.dist(a + along * (b - a), point) < FOOTPRINT_RADII[shape] + FOOTPRINT_RADII[kinds[j][0]] + GAP:
            return False
    return True


def _visible(xy, shape: str) -> bool:
    """Whether any part of an object of ``shape`` resting at ``xy`` could be in view."""
    radius, half_height = FOOTPRINT_RADII[shape], HALF_HEIGHTS[shape]
    corners = [(xy[0] + dx, xy[1] + dy, z) for dx in (-radius, radius) for dy in (-radius, radius) for z in (0.0, 2 * half_height)]
    return bool(CAMERA.in_view(corners).any())
