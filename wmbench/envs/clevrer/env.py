"""CLEVRER: a passive video of 3-6 objects sliding and colliding on a table, live and seeded.

The scene, its sampler, its physics and its annotations are ``scene.py``, ``sampler.py``,
``physics.py`` and ``annotations.py``; this is the gymnasium side. ``reset(seed=s)`` starts the video of
``sample_scene(s)``, so ``annotate(sample_scene(s), s)`` is its ground truth (for the passive
video: the zero action).

==================  ============================================================================
id                  ``wmbench/CLEVRER-v0`` (127 steps per episode: one step is one video frame,
                    5 s / 128 = 0.039 s (``env.dt``; ``render_fps`` 25.6), so an episode shows
                    the 128 frames of a CLEVRER video)
action              ``Box(-1, 1, (4,))``: an optional intervention at the video's first frame
                    (frame 0) only: ``object`` (the k-th object present, k = floor((a + 1) / 2 n)),
                    ``angle`` (heading, a pi rad), ``speed`` ((a + 1) / 2 x 3 m/s) and ``push``
                    (> 0: the object's horizontal velocity becomes that; a sphere rolls). The zero
                    action, and any action after frame 0, leaves the video alone
state (103)         6 object slots of 17 numbers, then ``frame``. A slot: ``present`` (0/1),
                    ``shape`` (index in ``SHAPES``), ``color`` (in ``COLORS``), ``material`` (in
                    ``MATERIALS``), ``x, y, z`` (m), ``qw, qx, qy, qz`` (orientation),
                    ``vx, vy, vz`` (m/s), ``wx, wy, wz`` (rad/s, body frame): the free joint's
                    full MuJoCo state. An absent slot is all zeros; yaw = ``quaternion_yaw(q)``.
                    The state holds the whole scene (what the objects are and how they move),
                    so ``set_state`` and ``reset(options={"state": s})`` continue any state
                    exactly, in any env; a recolor (drawing only) and the variation are not
                    state
proprio (6)         the 6 ``present`` flags: there is no agent, and what is in the scene is the
                    only thing an observer of the video knows without looking
task                a passive video has no goal to reach: the goal state is the video's last
                    frame (127) after the zero action, and success is reaching it: at or after
                    the goal's frame, with the same objects present, each within 0.15 m (an
                    object's radius) of its goal position. The passive video succeeds at its last
                    frame and no sooner (a push usually changes the ending); reward 1 on success
reset               ``sample_scene`` with the env's generator (``variation["objects"]`` fixes the
                    count), at frame 0
pixels              the fixed camera of the 480 x 320 video at ``resolution`` (default 224: the
                    whole 3:2 view with more table above and below; CLEVRER's own frame is
                    ``resolution=(320, 480)``). Shadows and multisampling are off (``shadows=``,
                    ``multisample=``)
step info           ``success``; ``frame``; ``goal_distance`` (m, the farthest object from its
                    goal position); ``contacts``: the pairs of objects touching during the step
perturb             ``teleport(object=, position=)``: the object jumps to (x, y) or a random free
                    spot in view at least 0.5 m away, keeping its velocity and orientation;
                    ``recolor(object=, color=)``: the object is drawn in another color (a CLEVRER
                    color name or RGB; default another CLEVRER color), its state unchanged;
                    ``recolor(target="floor")``; ``vanish(object=)``: the object leaves the
                    scene, physics and pixels. ``object`` defaults to a random one in view
==================  ============================================================================
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from wmbench.envs.base import Color, Factor, Number, OrNone, Point, shown
from wmbench.envs.clevrer.physics import (
    CAMERA_NAME,
    FLOOR_RGB,
    SUBSTEPS,
    Simulation,
    rolling_spin,
    scene_xml,
    start_state,
    view_fovy,
)
from wmbench.envs.clevrer.sampler import sample_scene
from wmbench.envs.clevrer.scene import (
    CAMERA,
    COLORS,
    DURATION,
    FOOTPRINT_RADII,
    FRAMES,
    GAP,
    HALF_HEIGHTS,
    MATERIALS,
    MAX_OBJECTS,
    RADIUS,
    SHAPES,
    STAGE,
    STAGE_MARGIN,
    Scene,
    SceneObject,
)
from wmbench.envs.mujoco_env import MujocoEnv

SLOT_FIELDS = ("present", "shape", "color", "material", "x", "y", "z", "qw", "qx", "qy", "qz", "vx", "vy", "vz", "wx", "wy", "wz")
SLOT = len(SLOT_FIELDS)
KIND = slice(1, 4)  # shape, color, material within a slot
QPOS = slice(4, 11)
XY = slice(4, 6)
QVEL = slice(11, 17)
FRAME = MAX_OBJECTS * SLOT  # index of `frame` in the state
EPISODE_STEPS = FRAMES - 1
FRAME_TIME = DURATION / FRAMES
SUCCESS_DISTANCE = RADIUS  # m
PUSH_SPEED = 3.0  # m/s, the fastest push
MIN_TELEPORT_JUMP = 0.5  # m
_CODES = (SHAPES, tuple(COLORS), tuple(MATERIALS))
# the observation box of a slot: codes from 0, positions and velocities either way
_SLOT_HIGH = (1.0, len(SHAPES) - 1, len(COLORS) - 1, len(MATERIALS) - 1) + (50.0,) * 3 + (1.0,) * 4 + (50.0,) * 3 + (1000.0,) * 3
_SLOT_LOW = (0.0,) * 4 + tuple(-x for x in _SLOT_HIGH[4:])


def slots(state: np.ndarray) -> np.ndarray:
    """The ``[6, 17]`` object slots of a state (a view)."""
    return state[:FRAME].reshape(MAX_OBJECTS, SLOT)


def scene_state(scene: Scene) -> np.ndarray:
    """The env state of ``scene`` at frame 0."""
    state = np.zeros(FRAME + 1)
    for slot, obj in zip(slots(state), scene.objects):
        slot[0] = 1.0
        slot[KIND] = [codes.index(value) for codes, value in zip(_CODES, (obj.shape, obj.color, obj.material))]
        slot[QPOS], slot[QVEL] = start_state(obj)
    return state


class ClevrerEnv(MujocoEnv):
    dt = FRAME_TIME
    metadata = {"render_modes": ["rgb_array"], "render_fps": FRAMES / DURATION}
    env_name = "CLEVRER"
    camera_name = CAMERA_NAME
    state_names = tuple(f"object{i}_{field}" for i in range(MAX_OBJECTS) for field in SLOT_FIELDS) + ("frame",)
    state_high = _SLOT_HIGH * MAX_OBJECTS + (1e6,)
    state_low = _SLOT_LOW * MAX_OBJECTS + (0.0,)
    proprio_names = tuple(f"object{i}_present" for i in range(MAX_OBJECTS))
    action_names = ("object", "angle", "speed", "push")
    success_text = f"at the goal's frame (the end of the passive video), every object within {SUCCESS_DISTANCE:g} m of its goal position"
    VARIATIONS = {
        "objects": Factor(None, "objects in a sampled scene", OrNone(Number(3, MAX_OBJECTS, integer=True), "5 or 6")),
        "floor_color": Factor(FLOOR_RGB, "table color", Color()),
        # From dim (the scene still visible) to twice as bright (most colors saturate beyond).
        "light_intensity": Factor(1.0, "scale of every light's brightness", Number(0.2, 2.0)),
    }
    PRESETS = {
        "standard": {},
        "recolored": {"floor_color": (185, 170, 140)},
        "dim_light": {"light_intensity": 0.6},
        "three_objects": {"objects": 3},
        "six_objects": {"objects": 6},
    }
    PERTURBATIONS = ("teleport", "recolor", "vanish")
    RECOLOR_TARGETS = {"floor": "floor_color"}  # objects are recolored by `recolor(object=...)`, the default

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sim: Simulation | None = None
        self._layout: tuple | None = None  # (shape, color, material) codes per slot, None where absent: what `sim` holds
        self._picture_layout: tuple | None = None  # the same for the render model
        self._frame = 0
        self._repainted: dict[int, tuple[int, int, int]] = {}  # object -> color drawn instead of its own, until reset
        self._contacts: list[list[int]] = []

    # ------------------------------------------------------------------ scene <-> model
    def _objects(self, layout: tuple) -> list[SceneObject | None]:
        """The object kinds of a layout (positions are set from the state, not from these)."""
        return [None if kind is None else SceneObject(*(codes[k] for codes, k in zip(_CODES, kind)), 0.0, 0.0) for kind in layout]

    def _layout_of(self, state: np.ndarray) -> tuple:
        layout = []
        for i, slot in enumerate(slots(state)):
            if slot[0] not in (0.0, 1.0):
                raise ValueError(f"{self.env_name}: state object{i}_present must be 0 or 1, got {slot[0]}")
            if slot[0] == 0.0:
                if np.any(slot != 0.0):
                    raise ValueError(f"{self.env_name}: absent object slot {i} must be all zeros")
                layout.append(None)
                continue
            kind = []
            for field, codes, value in zip(("shape", "color", "material"), _CODES, slot[KIND]):
                if value != int(value) or not 0 <= value < len(codes):
                    raise ValueError(f"{self.env_name}: state object{i}_{field} must be an index 0-{len(codes) - 1} into {list(codes)}, got {value}")
                kind.append(int(value))
            layout.append(tuple(kind))
        frame = state[FRAME]
        if frame != int(frame) or frame < 0:
            raise ValueError(f"{self.env_name}: state frame must be a non-negative integer, got {frame}")
        return tuple(layout)

    def _model(self, layout: tuple) -> mujoco.MjModel:
        """The compiled model of ``layout`` (the simulation's own when it holds that layout)."""
        if layout == self._layout:
            return self.sim.model
        return mujoco.MjModel.from_xml_string(scene_xml(self._objects(layout), FRAME_TIME / SUBSTEPS, view_fovy(self.height, self.width)))

    # ------------------------------------------------------------------ physics
    def _sample_state(self, rng):
        return scene_state(sample_scene(rng, objects=self.variation["objects"]))

    def _sample_goal_state(self, rng, start):
        self._load_state(start)
        while self._frame < EPISODE_STEPS:
            self._simulate(np.zeros(self.action_space.shape))
        return self.get_state()

    def _load_state(self, state):
        layout = self._layout_of(state)
        if layout != self._layout:
            self.sim = Simulation(self._objects(layout), FRAME_TIME, view_fovy(self.height, self.width))
            self._layout = layout
        present = slots(state)[[i for i, kind in enumerate(layout) if kind is not None]]
        self.sim.qpos[:], self.sim.qvel[:] = present[:, QPOS], present[:, QVEL]
        self.sim.settle()
        self._frame = int(state[FRAME])

    def get_state(self):
        state = np.zeros(FRAME + 1)
        for row, i in enumerate(self.sim.ids):
            slot = slots(state)[i]
            slot[0], slot[KIND] = 1.0, self._layout[i]
            slot[QPOS], slot[QVEL] = self.sim.qpos[row], self.sim.qvel[row]
        state[FRAME] = self._frame
        return state

    def _simulate(self, action):
        if self._frame == 0 and action[3] > 0:
            self._push(action)
        self._contacts = [list(pair) for pair in sorted(self.sim.step())]
        self._frame += 1

    def _push(self, action: np.ndarray) -> None:
        rows = len(self.sim.ids)
        if rows == 0:
            return
        row = min(int((action[0] + 1) / 2 * rows), rows - 1)
        speed, heading = (action[2] + 1) / 2 * PUSH_SPEED, action[1] * math.pi
        vx, vy = speed * math.cos(heading), speed * math.sin(heading)
        self.sim.qvel[row, :2] = vx, vy
        if self._layout[self.sim.ids[row]][0] == SHAPES.index("sphere"):
            self.sim.qvel[row, 3:] = rolling_spin(vx, vy, self.sim.qpos[row, 3:])

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        info["contacts"] = self._contacts
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed=None, options=None):
        self._repainted = {}
        self._contacts = []
        return super().reset(seed=seed, options=options)

    # ------------------------------------------------------------------ task
    def _evaluate(self, state, goal_state):
        here, there = slots(state), slots(goal_state)
        either = (here[:, 0] == 1) | (there[:, 0] == 1)
        distance = float(np.max(np.linalg.norm(here[either, XY] - there[either, XY], axis=1), initial=0.0))
        same_objects = np.array_equal(here[:, :4], there[:, :4])
        success = bool(same_objects and state[FRAME] >= goal_state[FRAME] and distance <= SUCCESS_DISTANCE)
        return success, float(success), {"frame": int(state[FRAME]), "goal_distance": distance}

    def goal_cost(self, state, goal_state):
        _, _, diagnostics = self._evaluate(state, goal_state)
        frames_short = max(0.0, goal_state[FRAME] - state[FRAME])
        changed = float(np.sum(np.any(slots(state)[:, :4] != slots(goal_state)[:, :4], axis=1)))
        return diagnostics["goal_distance"] / SUCCESS_DISTANCE + frames_short + changed

    # ------------------------------------------------------------------ pixels
    def _draw(self, state):
        layout = self._layout_of(state)
        if layout != self._picture_layout or self._renderer is None:
            self._build_renderer(self._model(layout))
            self._picture_layout = layout
            self._standard_lights = (self.render_model.light_diffuse.copy(), self.render_model.vis.headlight.diffuse.copy(),
                                     self.render_model.vis.headlight.ambient.copy())
            self._apply_variation()
        return super()._draw(state)

    def _pose(self, model, data, state):
        present = slots(state)[slots(state)[:, 0] == 1]
        data.qpos[:] = present[:, QPOS].ravel()
        data.qvel[:] = present[:, QVEL].ravel()

    def _apply_variation(self):
        if self._renderer is None:
            return  # painted when the first picture is built
        v, picture = self.variation, self.render_model
        self._paint("floor", picture.mat_rgba[picture.material("table").id], v["floor_color"], FLOOR_RGB)
        diffuse, head_diffuse, head_ambient = self._standard_lights
        picture.light_diffuse[:] = diffuse * v["light_intensity"]
        picture.vis.headlight.diffuse[:] = head_diffuse * v["light_intensity"]
        picture.vis.headlight.ambient[:] = head_ambient * v["light_intensity"]
        for i, kind in enumerate(self._picture_layout):
            if kind is not None:
                own = COLORS[_CODES[1][kind[1]]]
                self._paint(f"object{i}", picture.geom_rgba[picture.geom(f"object{i}").id], self._repainted.get(i, own), own)

    # ------------------------------------------------------------------ perturbations
    def _pick_object(self, object: int | None) -> int:
        """``object`` checked, or a random object in view (any present one if none is)."""
        present = [i for i, kind in enumerate(self._layout) if kind is not None]
        if object is not None:
            object = self._argument("object", Number(0, MAX_OBJECTS - 1, integer=True), object)
            if object not in present:
                raise ValueError(f"{self.env_name}: object={object!r} is not in the scene; present: {present}")
            return object
        if not present:
            raise ValueError(f"{self.env_name}: no object left to perturb")
        visible = [i for i, row in zip(self.sim.ids, self.sim.qpos) if CAMERA.in_view(row[:3])]
        return int(self.np_random.choice(visible or present))

    def _perturb_teleport(self, object: int | None = None, position=None):
        i = self._pick_object(object)
        state = self.get_state()
        slot = slots(state)[i]
        before = slot[XY].copy()
        if position is None:
            shape = SHAPES[int(slot[1])]
            others = [(s[XY], SHAPES[int(s[1])]) for j, s in enumerate(slots(state)) if s[0] == 1 and j != i]
            while True:  # a free spot in view, a jump big enough to see
                xy = self.np_random.uniform(*STAGE)
                if (CAMERA.in_view((*xy, HALF_HEIGHTS[shape]), margin=STAGE_MARGIN)
                        and np.linalg.norm(xy - before) >= MIN_TELEPORT_JUMP
                        and all(np.linalg.norm(xy - at) >= FOOTPRINT_RADII[shape] + FOOTPRINT_RADII[kind] + GAP for at, kind in others)):
                    break
        else:
            xy = self._argument("teleport position", Point(("x", "y"), _SLOT_LOW[XY], _SLOT_HIGH[XY]), position)
        slot[XY] = xy
        self._load_state(state)
        return {"object": i, "before": before.tolist(), "after": slot[XY].tolist()}

    def _perturb_recolor(self, target: str = "object", object: int | None = None, color=None):
        if not isinstance(target, str) or target != "object":
            if object is not None:
                raise ValueError(f"{self.env_name}: recolor target={shown(target)} takes no object; leave target unset to recolor an object")
            return super()._perturb_recolor(target, color)
        i = self._pick_object(object)
        own = _CODES[1][self._layout[i][1]]
        before = self._repainted.get(i, COLORS[own])
        if color is None:
            color = self.np_random.choice([name for name, rgb in COLORS.items() if rgb != before])
        after = COLORS[color] if isinstance(color, str) and color in COLORS else self._argument("recolor color", Color(), color)
        self._repainted[i] = after
        if self._renderer is not None:
            self._apply_variation()
        return {"target": "object", "object": i, "before": before, "after": after}

    def _perturb_vanish(self, object: int | None = None):
        i = self._pick_object(object)
        state = self.get_state()
        kind = {field: codes[k] for field, codes, k in zip(("shape", "color", "material"), _CODES, self._layout[i])}
        slots(state)[i] = 0.0
        self._repainted.pop(i, None)
        self._load_state(state)
        return {"object": i, **kind}
