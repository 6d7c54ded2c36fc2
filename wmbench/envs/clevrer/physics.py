"""CLEVRER scenes in MuJoCo: the model of a scene, its simulation frame by frame, and its pictures.

=====================  ==========================================================================
model                  an infinite table (plane z = 0), one free body per object (object id =
                       its index in the scene; removed objects get none), the fixed camera
                       ``video`` of ``scene.CAMERA``, a key light and a headlight; no walls
contacts               explicit pairs only: table-object (the object's material friction, and a
                       ball's rolling resistance; critically damped: no bounce) and
                       object-object (mean friction of the two, damping ratio from their mean
                       restitution)
time                   a frame is ``SUBSTEPS`` = 20 physics steps; 5 s / 128 frames gives a
                       step of 2^-9 s, exact in binary. The solver's warm start is off, so the
                       next state depends on the positions and velocities alone
collision              the first contact (penetration) of two objects, or the first after they were
                       ``SEPARATION`` apart at a frame (so one bump, chattering or not, is one
                       event); its frame is the first at or after that touch, its location
                       MuJoCo's contact point. Table contacts are no events
in view                the object's center projects inside the 480 x 320 frame
pictures               the ``video`` camera at any resolution (default 480 x 320); another aspect
                       ratio shows the whole 3:2 view and more table (``view_fovy``). Shadows and
                       multisampling are off unless asked for
=====================  ==========================================================================

Simulation is deterministic: the same scene gives the same bytes in any process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import mujoco
import numpy as np

from wmbench.envs.clevrer.scene import (
    CAMERA,
    COLORS,
    CUBE_HALF_EDGE,
    CYLINDER_HALF_HEIGHT,
    HALF_HEIGHTS,
    MATERIALS,
    RADIUS,
    Scene,
    SceneObject,
)
from wmbench.envs.mujoco_render import MujocoRenderer

SUBSTEPS = 20  # physics steps per video frame
CONTACT_TIME = 0.02  # s, MuJoCo's contact time constant (solref); at least 2 physics steps
SEPARATION = 0.02  # m: two objects touching again after being this far apart collide again
TORSIONAL_FRICTION = 0.005  # m, slows spinning on the table
FLOOR_RGB = (150, 150, 150)
VIDEO_RESOLUTION = (320, 480)  # (height, width)
CAMERA_NAME = "video"


def damping_ratio(restitution: float) -> float:
    """MuJoCo's contact damping ratio whose damped spring keeps ``restitution`` of the closing speed."""
    log = math.log(restitution)
    return -log / math.sqrt(math.pi**2 + log**2)


def view_fovy(height: int, width: int) -> float:
    """The vertical field of view (degrees) of a ``height`` x ``width`` picture showing at least the
    480 x 320 video frame: other aspect ratios add floor above and below, or at the sides."""
    half_width = math.tan(math.radians(CAMERA.fovy) / 2) * CAMERA.width / CAMERA.height
    return max(CAMERA.fovy, math.degrees(2 * math.atan(half_width * height / width)))


def _numbers(values) -> str:
    return " ".join(repr(float(v)) for v in values)  # repr: every bit of a float survives the XML


def _geom(shape: str) -> str:
    if shape == "sphere":
        return f'type="sphere" size="{RADIUS}"'
    if shape == "cube":
        return f'type="box" size="{CUBE_HALF_EDGE} {CUBE_HALF_EDGE} {CUBE_HALF_EDGE}"'
    return f'type="cylinder" size="{RADIUS} {CYLINDER_HALF_HEIGHT}"'


def scene_xml(objects: Sequence[SceneObject | None], timestep: float, fovy: float = CAMERA.fovy) -> str:
    """The MJCF of ``objects`` (``None``: no object with that id).

    The model depends on the objects' kinds only, never on where they start (bodies are built at
    the origin and the statistics MuJoCo would derive from that pose are fixed), so every
    simulation of the same objects runs the same model, bit for bit.
    """
    right, up, _ = CAMERA.axes
    bodies, pairs = [], []
    for i, obj in enumerate(objects):
        if obj is None:
            continue
        rgba = " ".join(f"{c / 255:.6f}" for c in COLORS[obj.color])
        bodies.append(
            f'<body name="object{i}" pos="0 0 {HALF_HEIGHTS[obj.shape]}">'
            f'<freejoint name="object{i}"/>'
            f'<geom name="object{i}" {_geom(obj.shape)} material="{obj.material}" rgba="{rgba} 1" contype="0" conaffinity="0"/>'
            "</body>"
        )
        mu = MATERIALS[obj.material].friction
        # Rolling resistance mu_r: rolling without slipping would slow a ball by (5/7) mu_r g / r = mu g,
        # as friction slows a block; MuJoCo's soft contacts let the ball creep, so it rolls about 1.6x as far.
        rolling = 1.4 * mu * RADIUS if obj.shape == "sphere" else 0.0
        pairs.append(
            f'<pair geom1="table" geom2="object{i}" condim="6" friction="{mu} {mu} {TORSIONAL_FRICTION} {rolling} {rolling}" '
            f'solref="{CONTACT_TIME} 1"/>'
        )
        for j in range(i):
            if objects[j] is not None:
                a, b = MATERIALS[objects[j].material], MATERIALS[obj.material]
                mu = (a.friction + b.friction) / 2
                zeta = damping_ratio((a.restitution + b.restitution) / 2)
                pairs.append(f'<pair geom1="object{j}" geom2="object{i}" condim="3" friction="{mu} {mu}" solref="{CONTACT_TIME} {zeta:.6f}"/>')
    materials = "".join(f'<material name="{name}" specular="{m.specular}" shininess="{m.shininess}"/>' for name, m in MATERIALS.items())
    floor = " ".join(f"{c / 255:.6f}" for c in FLOOR_RGB)
    return f"""
<mujoco model="clevrer">
  <option timestep="{timestep!r}" integrator="Euler" cone="elliptic" solver="Newton" tolerance="1e-10">
    <flag warmstart="disable"/>
  </option>
  <statistic extent="8" center="{_numbers(CAMERA.target)}"/>
  <visual>
    <global offwidth="{VIDEO_RESOLUTION[1]}" offheight="{VIDEO_RESOLUTION[0]}"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.3 0.3 0.3" specular="0.1 0.1 0.1"/>
    <quality shadowsize="2048"/>
  </visual>
  <asset>{materials}<material name="table" rgba="{floor} 1" specular="0" shininess="0"/></asset>
  <worldbody>
    <light name="key" directional="true" pos="0 0 5" dir="0.35 0.45 -1" diffuse="0.6 0.6 0.6" specular="0.4 0.4 0.4" castshadow="true"/>
    <camera name="{CAMERA_NAME}" pos="{_numbers(CAMERA.position)}" xyaxes="{_numbers([*right, *up])}" fovy="{fovy!r}"/>
    <geom name="table" type="plane" size="30 30 0.1" material="table" contype="0" conaffinity="0"/>
    {''.join(bodies)}
  </worldbody>
  <contact>{''.join(pairs)}</contact>
</mujoco>"""


def start_state(obj: SceneObject) -> tuple[np.ndarray, np.ndarray]:
    """The free joint's ``qpos`` (7) and ``qvel`` (6) of ``obj`` at the start: resting on the table,
    sliding at (vx, vy); a sphere rolls without slipping."""
    qpos = np.array([obj.x, obj.y, HALF_HEIGHTS[obj.shape], math.cos(obj.yaw / 2), 0.0, 0.0, math.sin(obj.yaw / 2)])
    qvel = np.array([obj.vx, obj.vy, 0.0, 0.0, 0.0, 0.0])
    if obj.shape == "sphere":
        qvel[3:] = rolling_spin(obj.vx, obj.vy, qpos[3:])
    return qpos, qvel


def rolling_spin(vx: float, vy: float, quaternion: np.ndarray) -> np.ndarray:
    """The angular velocity, in the frame of a ball turned by ``quaternion``, of rolling on the
    table at (vx, vy) without slipping."""
    world = np.array([-vy / RADIUS, vx / RADIUS, 0.0])  # z x v / r
    inverse, body = np.empty(4), np.empty(3)
    mujoco.mju_negQuat(inverse, np.asarray(quaternion, np.float64))
    mujoco.mju_rotVecQuat(body, world, inverse)
    return body


def quaternion_yaw(q: np.ndarray) -> np.ndarray:
    """The heading (rotation about the vertical) of (w, x, y, z) quaternions ``[..., 4]``."""
    w, x, y, z = np.moveaxis(np.asarray(q), -1, 0)
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


class Simulation:
    """One scene's physics, advanced one video frame at a time.

    ``objects[i]`` is object ``i`` (``None``: not in this simulation); ``ids`` lists the simulated
    ones in body order, and ``qpos``/``qvel`` are ``[len(ids), 7]`` / ``[len(ids), 6]`` views of
    MuJoCo's state (position, quaternion w-x-y-z; linear velocity in the world frame, angular
    velocity in the body frame).
    """

    def __init__(self, objects: Sequence[SceneObject | None], frame_time: float, fovy: float = CAMERA.fovy):
        self.objects = tuple(objects)
        self.ids = tuple(i for i, obj in enumerate(self.objects) if obj is not None)
        self.model = mujoco.MjModel.from_xml_string(scene_xml(self.objects, frame_time / SUBSTEPS, fovy))
        self.data = mujoco.MjData(self.model)
        self._view_state()
        self._object_of_geom = np.full(self.model.ngeom, -1)
        for i in self.ids:
            self._object_of_geom[self.model.geom(f"object{i}").id] = i
        self.restart()

    def _view_state(self) -> None:
        self.qpos = self.data.qpos.reshape(len(self.ids), 7)
        self.qvel = self.data.qvel.reshape(len(self.ids), 6)

    def __getstate__(self) -> dict:
        # qpos and qvel are views into data; a copy (deepcopy, pickle) makes its own into its data
        return {key: value for key, value in self.__dict__.items() if key not in ("qpos", "qvel")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._view_state()

    def restart(self) -> None:
        """Every object back at its start (``start_state``)."""
        for row, i in enumerate(self.ids):
            self.qpos[row], self.qvel[row] = start_state(self.objects[i])
        self.settle()

    def settle(self) -> None:
        """Make MuJoCo's derived quantities follow after ``qpos``/``qvel`` were written."""
        self.data.time = 0.0
        mujoco.mj_forward(self.model, self.data)

    def step(self) -> dict[tuple[int, int], tuple[int, np.ndarray]]:
        """Advance one frame; returns, per pair of objects ``(a, b)``, ``a < b``, that touched during
        it: the first physics step (0 to ``SUBSTEPS - 1``) they touched in, and where."""
        touched: dict[tuple[int, int], tuple[int, np.ndarray]] = {}
        for substep in range(SUBSTEPS):
            mujoco.mj_step(self.model, self.data)  # its contacts are those of the positions it started from
            contacts = self.data.contact
            pairs = np.sort(self._object_of_geom[contacts.geom], axis=1)
            for k in np.flatnonzero((pairs[:, 0] >= 0) & (contacts.dist < 0)):  # not the table, and touching
                pair = (int(pairs[k, 0]), int(pairs[k, 1]))
                touched.setdefault(pair, (substep, contacts.pos[k].copy()))
        return touched

    def gaps(self, pairs) -> dict[tuple[int, int], float]:
        """The distance between the surfaces of each pair of objects now (negative: overlapping)."""
        if not pairs:
            return {}
        mujoco.mj_kinematics(self.model, self.data)
        geom = {i: self.model.geom(f"object{i}").id for i in self.ids}
        return {(a, b): mujoco.mj_geomDistance(self.model, self.data, geom[a], geom[b], 1.0, None) for a, b in pairs}


@dataclass(frozen=True)
class Collision:
    object_ids: tuple[int, int]
    frame: int  # the first frame at or after the first touch
    time: float  # s, of the first touch
    location: tuple[float, float, float]  # m, the contact point


@dataclass(frozen=True, eq=False)
class Trajectory:
    """What a simulation recorded, per frame and object (NaN and out of view for removed objects)."""

    position: np.ndarray  # [frames, objects, 3] m, the center
    quaternion: np.ndarray  # [frames, objects, 4] (w, x, y, z)
    velocity: np.ndarray  # [frames, objects, 3] m/s
    angular_velocity: np.ndarray  # [frames, objects, 3] rad/s, in the body frame
    in_view: np.ndarray  # [frames, objects] bool: the center projects inside the 480 x 320 frame
    collisions: tuple[Collision, ...]
    removed: frozenset[int]
    frame_time: float  # s

    @property
    def yaw(self) -> np.ndarray:
        """[frames, objects] heading (rad) about the vertical."""
        return quaternion_yaw(self.quaternion)


def simulate(scene: Scene, removed: Iterable[int] = (), frames: int | None = None) -> Trajectory:
    """Run ``scene`` for ``frames`` frames (default ``scene.frames``) without the ``removed`` objects."""
    removed = frozenset(int(i) for i in removed)
    if not removed <= set(range(len(scene.objects))):
        raise ValueError(f"simulate removed={sorted(removed)}: the scene has objects 0 to {len(scene.objects) - 1}")
    frames = scene.frames if frames is None else frames
    sim = Simulation([None if i in removed else obj for i, obj in enumerate(scene.objects)], scene.frame_time)
    rows = list(sim.ids)
    shape = (frames, len(scene.objects))
    qpos, qvel = np.full((*shape, 7), np.nan), np.full((*shape, 6), np.nan)
    collisions, touching = [], set()  # touching: pairs that touched and have not been SEPARATION apart since
    for frame in range(frames):
        qpos[frame, rows], qvel[frame, rows] = sim.qpos, sim.qvel
        if frame == frames - 1:
            break
        touched = sim.step()
        for pair, (substep, location) in touched.items():
            if pair not in touching:
                start = frame * SUBSTEPS + substep
                time = start * scene.frame_time / SUBSTEPS
                collisions.append(Collision(pair, math.ceil(start / SUBSTEPS), time, tuple(float(c) for c in location)))
        apart = [pair for pair, gap in sim.gaps(touching - touched.keys()).items() if gap >= SEPARATION]
        touching = (touching | touched.keys()) - set(apart)
    return Trajectory(
        position=qpos[..., :3],
        quaternion=qpos[..., 3:],
        velocity=qvel[..., :3],
        angular_velocity=qvel[..., 3:],
        in_view=CAMERA.in_view(qpos[..., :3]),
        collisions=tuple(sorted(collisions, key=lambda c: (c.time, c.object_ids))),
        removed=removed,
        frame_time=scene.frame_time,
    )


class SceneRenderer:
    """Draws the objects of a scene (less ``removed``) from the video camera, at any resolution.

    Shadows and multisampling are off by default: on a software renderer each costs a second pass.
    """

    def __init__(self, scene: Scene, removed: Iterable[int] = (), resolution: tuple[int, int] = VIDEO_RESOLUTION,
                 shadows: bool = False, multisample: bool = False):
        removed = frozenset(removed)
        height, width = resolution
        self.sim = Simulation([None if i in removed else obj for i, obj in enumerate(scene.objects)], scene.frame_time, view_fovy(height, width))
        self._renderer = MujocoRenderer(self.sim.model, height, width, CAMERA_NAME, shadows=shadows, multisample=multisample)

    def render(self, trajectory: Trajectory | None = None, frame: int = 0) -> np.ndarray:
        """uint8 ``(height, width, 3)``: frame ``frame`` of ``trajectory``, or the scene's start."""
        if trajectory is None:
            self.sim.restart()
        else:
            rows = list(self.sim.ids)
            self.sim.qpos[:, :3] = trajectory.position[frame, rows]
            self.sim.qpos[:, 3:] = trajectory.quaternion[frame, rows]
            self.sim.settle()
        return self._renderer.render(self.sim.data)

    def close(self) -> None:
        self._renderer.close()


def render(scene: Scene, trajectory: Trajectory | None = None, frame: int = 0, *, resolution: tuple[int, int] = VIDEO_RESOLUTION,
           shadows: bool = False, multisample: bool = False) -> np.ndarray:
    """One frame (uint8, ``resolution`` = (height, width), default 480 x 320) of ``trajectory``
    (without its removed objects), or of the scene's start."""
    renderer = SceneRenderer(scene, () if trajectory is None else trajectory.removed, resolution, shadows, multisample)
    try:
        return renderer.render(trajectory, frame)
    finally:
        renderer.close()


def render_video(scene: Scene, trajectory: Trajectory, *, frames: int | None = None, resolution: tuple[int, int] = VIDEO_RESOLUTION,
                 shadows: bool = False, multisample: bool = False) -> np.ndarray:
    """The first ``frames`` frames (default all) of ``trajectory``: uint8 ``[frames, height, width, 3]``."""
    renderer = SceneRenderer(scene, trajectory.removed, resolution, shadows, multisample)
    try:
        return np.stack([renderer.render(trajectory, frame) for frame in range(frames or len(trajectory.position))])
    finally:
        renderer.close()
