"""PHYRE-style scenes as data, their physics (pymunk) and their pictures.

==================  ============================================================================
scene               256 x 256 pixels, y up, origin at the bottom-left corner; nothing bounds it
                    (an object that falls out of it falls on)
units               pixels and seconds. PHYRE's world is Box2D in metres; here 1 m = 25.6 px
                    (the scene is 10 m wide), so gravity -9.8 m/s^2 is ``-9.8 * 25.6`` px/s^2
physics             60 steps per second; PHYRE's materials: density 0.25 (per px^2), friction
                    0.5, restitution 0.2, angular damping 0.01 (Box2D's rule,
                    ``w <- w / (1 + dt * 0.01)`` each step), no linear damping
objects             ``ball`` (diameter = width = height), ``bar`` and ``box`` (rectangles; a bar
                    is thin), ``stick`` (a standing bar), ``jar`` (an open U of three rectangles:
                    the pose is the middle of its bottom's underside), ``wall`` (a static bar).
                    The pose of the others is their centre; angles in radians, counterclockwise
colors              PHYRE's: red = the action's ball, green = goal object, blue = dynamic target,
                    purple = static target, gray = other dynamic, black = other static
goal                the green object touches a blue or purple one for 180 consecutive steps (3 s);
                    once met, the task stays solved (the touch counter stops at 180)
action              ``(x, y, r)`` in [0, 1]^3: a red ball at ``(256 x, 256 y)`` of radius
                    ``2 + 30 r`` px; invalid (not simulated) if it overlaps an object or is not
                    wholly inside the scene
==================  ============================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pymunk

from wmbench.envs.raster import stamp_box, stamp_disc

SIZE = 256.0
PIXELS_PER_METRE = SIZE / 10.0
GRAVITY = -9.8 * PIXELS_PER_METRE
FPS = 60
DT = 1.0 / FPS
DENSITY, FRICTION, RESTITUTION, ANGULAR_DAMPING = 0.25, 0.5, 0.2, 0.01
GOAL_STEPS = 3 * FPS
MAX_STEPS = 17 * FPS  # PHYRE's longest simulation
RADIUS_RANGE = (2.0, 32.0)
KINDS = ("ball", "bar", "box", "stick", "jar", "wall")
COLORS = {  # PHYRE's palette
    "red": (244, 117, 63),
    "green": (52, 193, 52),
    "blue": (24, 128, 219),
    "purple": (161, 89, 196),
    "gray": (176, 176, 176),
    "black": (0, 0, 0),
}
TARGET_COLORS = ("blue", "purple")
BACKGROUND = (255, 255, 255)
SETTLED_SPEED = 0.5  # px/s and (x 0.01) rad/s under which a body counts as at rest


@dataclass(frozen=True)
class Thing:
    """One object of a scene: its kind, pose, size (ball: width = height = diameter), color and
    whether it moves. A jar's ``height`` is its walls', ``thickness`` its walls' and bottom's."""

    kind: str
    x: float
    y: float
    width: float
    height: float
    color: str
    dynamic: bool
    angle: float = 0.0
    thickness: float = 0.0

    def parts(self) -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
        """The convex pieces in the object's frame: ``("circle", centre, (r, r))`` or ``("box", centre, half sizes)``."""
        if self.kind == "ball":
            return [("circle", (0.0, 0.0), (self.width / 2, self.width / 2))]
        if self.kind == "jar":
            t, w, h = self.thickness, self.width, self.height
            return [
                ("box", (0.0, t / 2), (w / 2, t / 2)),
                ("box", (-(w - t) / 2, h / 2), (t / 2, h / 2)),
                ("box", ((w - t) / 2, h / 2), (t / 2, h / 2)),
            ]
        return [("box", (0.0, 0.0), (self.width / 2, self.height / 2))]


def ball(x, y, radius, color="gray") -> Thing:
    return Thing("ball", x, y, 2 * radius, 2 * radius, color, color not in ("purple", "black"))


def bar(x, y, length, color="black", angle=0.0, thickness=6.0) -> Thing:
    return Thing("bar", x, y, length, thickness, color, color not in ("purple", "black"), angle)


def box(x, y, width, height, color="gray") -> Thing:
    return Thing("box", x, y, width, height, color, color not in ("purple", "black"))


def stick(x_bottom, y_bottom, height, color="gray", width=6.0) -> Thing:
    """A standing bar whose bottom middle is at ``(x_bottom, y_bottom)``."""
    return Thing("stick", x_bottom, y_bottom + height / 2, width, height, color, color not in ("purple", "black"))


def jar(x, y_bottom, width, height, color="purple", thickness=5.0) -> Thing:
    return Thing("jar", x, y_bottom, width, height, color, color not in ("purple", "black"), 0.0, thickness)


def wall(x0, y0, x1, y1) -> Thing:
    """A static black rectangle spanning ``[x0, x1] x [y0, y1]``."""
    return Thing("wall", (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, "black", False)


@dataclass(frozen=True)
class Scene:
    """A task's initial scene: its objects; the first green one is the goal object. ``designed`` is
    the placement (x, y, r in [0, 1]) its template was built around, where the oracle looks first."""

    things: tuple[Thing, ...]
    designed: tuple[float, float, float] | None = field(default=None, compare=False)

    @property
    def goal_index(self) -> int:
        return next(i for i, t in enumerate(self.things) if t.color == "green")

    @property
    def target_indices(self) -> tuple[int, ...]:
        return tuple(i for i, t in enumerate(self.things) if t.color in TARGET_COLORS)

    def with_ball(self, action) -> "Scene":
        """The scene with the action's red ball added last."""
        x, y, radius = action_ball(action)
        return Scene(self.things + (ball(x, y, radius, "red"),))


def action_ball(action) -> tuple[float, float, float]:
    """``(x, y, r)`` in [0, 1]^3 -> ball centre and radius in pixels."""
    x, y, r = (float(v) for v in action)
    return SIZE * x, SIZE * y, RADIUS_RANGE[0] + (RADIUS_RANGE[1] - RADIUS_RANGE[0]) * r


def _damped_velocity(body, gravity, damping, dt):
    pymunk.Body.update_velocity(body, gravity, damping, dt)
    body.angular_velocity = body.angular_velocity / (1.0 + dt * ANGULAR_DAMPING)


def _shapes(thing: Thing, body: pymunk.Body) -> list[pymunk.Shape]:
    shapes = []
    for part, (cx, cy), (hx, hy) in thing.parts():
        if part == "circle":
            shape = pymunk.Circle(body, hx, (cx, cy))
        else:
            shape = pymunk.Poly(body, [(cx - hx, cy - hy), (cx + hx, cy - hy), (cx + hx, cy + hy), (cx - hx, cy + hy)])
        shape.friction, shape.elasticity = FRICTION, RESTITUTION
        if thing.dynamic:
            shape.density = DENSITY
        shapes.append(shape)
    return shapes


class World:
    """A scene in pymunk: step it, read and write its bodies' poses and velocities."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.space = pymunk.Space()
        self.space.gravity = (0.0, GRAVITY)
        self.bodies: list[pymunk.Body] = []
        self.shapes: list[list[pymunk.Shape]] = []
        for thing in scene.things:
            body = pymunk.Body(body_type=pymunk.Body.DYNAMIC if thing.dynamic else pymunk.Body.STATIC)
            if thing.dynamic:
                body.velocity_func = _damped_velocity
            body.position, body.angle = (thing.x, thing.y), thing.angle
            shapes = _shapes(thing, body)
            self.space.add(body, *shapes)
            self.bodies.append(body)
            self.shapes.append(shapes)
        self.goal = scene.goal_index
        self.targets = scene.target_indices
        self.touch_steps = 0  # consecutive steps the goal relation has held

    def poses(self) -> np.ndarray:
        """(n, 3): x, y, angle of every object."""
        return np.array([(b.position.x, b.position.y, b.angle) for b in self.bodies], dtype=np.float64)

    def velocities(self) -> np.ndarray:
        """(n, 3): vx, vy (of the centre of gravity), angular velocity."""
        return np.array([(b.velocity.x, b.velocity.y, b.angular_velocity) for b in self.bodies], dtype=np.float64)

    def set_bodies(self, poses: np.ndarray, velocities: np.ndarray) -> None:
        for body, pose, velocity in zip(self.bodies, poses, velocities):
            body.angle = float(pose[2])  # angle first: the position then lands exactly
            body.position = (float(pose[0]), float(pose[1]))
            if body.body_type == pymunk.Body.DYNAMIC:
                body.velocity, body.angular_velocity = (float(velocity[0]), float(velocity[1])), float(velocity[2])
        for body in self.bodies:
            if body.body_type == pymunk.Body.STATIC:
                self.space.reindex_shapes_for_body(body)

    def contacts(self, index: int) -> list[int]:
        """The objects in contact with object ``index`` now."""
        found = []

        def record(arbiter):
            if arbiter.contact_point_set.points:
                found.extend(self.bodies.index(s.body) for s in arbiter.shapes if s.body is not self.bodies[index])

        self.bodies[index].each_arbiter(record)
        return sorted(set(found))

    def touching(self) -> bool:
        """Whether the goal object is in contact with a target now."""
        return any(i in self.targets for i in self.contacts(self.goal))

    def step(self) -> None:
        self.space.step(DT)
        if not self.solved:  # a solved task stays solved, as in PHYRE, whatever happens next
            self.touch_steps = self.touch_steps + 1 if self.touching() else 0

    @property
    def solved(self) -> bool:
        return self.touch_steps >= GOAL_STEPS

    def at_rest(self) -> bool:
        return all(
            b.velocity.length < SETTLED_SPEED and abs(b.angular_velocity) < SETTLED_SPEED / 100
            for b in self.bodies
            if b.body_type == pymunk.Body.DYNAMIC and b.position.y > -SIZE  # bodies that fell far out no longer matter
        )


@dataclass(frozen=True)
class Rollout:
    """What ``simulate`` saw: per observed frame the poses (frames, n, 3), and the outcome."""

    valid: bool
    solved: bool
    poses: np.ndarray
    steps: int  # physics steps simulated


def is_valid(scene: Scene, action) -> bool:
    """Whether the action's ball lies wholly inside the scene and overlaps no object."""
    return bool(valid_placements(scene, [action])[0])


def valid_placements(scene: Scene, actions) -> np.ndarray:
    """``is_valid`` of each of ``actions`` (``[N, 3]``), querying one world of ``scene``."""
    space = World(scene).space
    valid = np.zeros(len(actions), bool)
    for i, action in enumerate(actions):
        x, y, radius = action_ball(action)
        if radius <= x <= SIZE - radius and radius <= y <= SIZE - radius:
            probe = pymunk.Circle(pymunk.Body(body_type=pymunk.Body.KINEMATIC), radius)
            probe.body.position = (x, y)
            valid[i] = not space.shape_query(probe)
    return valid


def random_valid_placements(scene: Scene, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` uniform (x, y, r) in [0, 1]^3 that place a valid ball, drawn in batches."""
    found = []
    while sum(len(f) for f in found) < count:
        draws = rng.uniform(0.0, 1.0, (2 * count, 3))
        found.append(draws[valid_placements(scene, draws)])
    return np.concatenate(found)[:count]


def simulate(scene: Scene, action=None, steps: int = MAX_STEPS, stride: int = FPS, stop_when_decided: bool = False) -> Rollout:
    """Simulate ``scene`` (with the action's red ball, if given) for ``steps`` physics steps,
    observing every ``stride``-th one (frame 0 is the start).

    ``stop_when_decided`` ends early once the goal holds or every object is at rest without it
    (the outcome can no longer change): for searching actions, not for recording videos.
    """
    if action is not None:
        if not is_valid(scene, action):
            return Rollout(False, False, np.zeros((0, len(scene.things) + 1, 3)), 0)
        scene = scene.with_ball(action)
    world = World(scene)
    frames = [world.poses()]
    solved = False
    for step in range(1, steps + 1):
        world.step()
        solved = solved or world.solved
        if step % stride == 0:
            frames.append(world.poses())
        if stop_when_decided and (solved or (step % 30 == 0 and world.touch_steps == 0 and world.at_rest())):
            break
    return Rollout(True, solved, np.stack(frames), step)


def draw(scene: Scene, poses: np.ndarray, resolution: int | tuple[int, int] = 256, colors: dict[str, tuple] | None = None) -> np.ndarray:
    """The picture (uint8 height x width x 3) of ``scene``'s objects at ``poses``, PHYRE's colors on white.

    ``colors`` overrides PHYRE's by name (``{"green": (r, g, b), "background": ...}``).
    """
    height, width = (resolution, resolution) if np.isscalar(resolution) else resolution
    colors = {**COLORS, "background": BACKGROUND, **(colors or {})}
    image = np.empty((height, width, 3), np.uint8)
    image[...] = colors["background"]
    pixel = (SIZE / width, SIZE / height)
    for thing, (x, y, angle) in zip(scene.things, poses):
        rgb = colors[thing.color]
        c, s = math.cos(angle), math.sin(angle)
        for part, (cx, cy), half in thing.parts():
            centre = (x + c * cx - s * cy, SIZE - (y + s * cx + c * cy))  # image rows run down
            if part == "circle":
                stamp_disc(image, centre, half[0], rgb, pixel)
            else:
                stamp_box(image, centre, half, -angle, rgb, pixel)
    return image


def draw_ball(image: np.ndarray, action, rgb=COLORS["red"]) -> np.ndarray:
    """A copy of ``image`` (a ``draw`` of a scene) with the action's ball drawn on top: exactly
    ``draw`` of the scene with the ball added (it is drawn last), without redrawing the rest."""
    x, y, radius = action_ball(action)
    height, width = image.shape[:2]
    image = image.copy()
    stamp_disc(image, (x, SIZE - y), radius, rgb, (SIZE / width, SIZE / height))
    return image


def initial_poses(scene: Scene) -> np.ndarray:
    return np.array([(t.x, t.y, t.angle) for t in scene.things], dtype=np.float64)
