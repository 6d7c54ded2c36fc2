"""Cube: OGBench's cube-single (UR5e arm, Robotiq gripper, one cube), goal given by a goal image.

The scene, the arm's end-effector controller and the physics are the ``ogbench`` package's own
(``ogbench.manipspace``, version 1.2.2; nothing of it is copied here); wmbench adds the
goal-image task, exact state save/restore, its renderer and the variations.

==================  ============================================================================
id                  ``wmbench/Cube-v0`` (200 steps per episode)
action              ``Box(-1, 1, (5,))``: end-effector dx, dy, dz, dyaw and gripper, scaled by
                    (0.05 m, 0.05 m, 0.05 m, 0.3 rad, 1) and tracked by ogbench's inverse
                    kinematics and PD control; one step is 0.05 s (25 physics steps of 0.002 s;
                    ``env.dt``, ``render_fps`` 20)
state (48)          MuJoCo ``qpos`` (21: 6 arm joints, 8 gripper joints, cube position and
                    quaternion), ``qvel`` (20) and the target pose (position, quaternion), which
                    places the target marker when it is shown
proprio (14)        arm joint positions and velocities, gripper opening (``right_driver``
                    joint) and its velocity
task                success when the cube is within 0.04 m of the goal state's cube position
                    (ogbench's rule); reward 1 on success
reset               ogbench's data-collection start: the gripper pointing down at a uniform
                    position and yaw in the arm's sampling box, the cube at rest, uniform in
                    x in [0.3, 0.55], y in [-0.3, 0.3] with a uniform yaw; the target the same
                    way, at least 0.08 m from the cube. The goal state: the cube resting on the
                    target, the arm at a new random pose
pixels              ogbench's ``front_pixels`` camera with its pixel-observation look (arm
                    drawn 90% transparent, gripper purple) at ``resolution`` (default 224);
                    the target marker is hidden. Shadows and multisampling are off
                    (``shadows=``, ``multisample=``) and the arm's meshes are drawn with the
                    detail half a pixel can show (``full_meshes=True`` for every triangle)
step info           ``success``; ``cube_distance`` (m, to the goal state's cube)
perturb             ``teleport(target="cube", position=)``: the cube jumps to the given (x, y)
                    or a random spot at least 0.1 m away; ``teleport(target="arm")``: the arm
                    jumps to a new random start pose, gripper open (a held cube falls);
                    ``recolor(target="cube"|"floor", color=)``
copies              ``copy.deepcopy`` and ``pickle`` carry ogbench's simulation as its whole
                    ``MjData`` (ogbench's own objects can be neither deep-copied nor pickled),
                    so the copy's future is the original's bit for bit. Loading ``get_state()``
                    is not that: ogbench's controller reads positions MuJoCo computed before the
                    last physics step, which a load recomputes
==================  ============================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    import mujoco
    from ogbench.manipspace.envs.cube_env import CubeEnv as OgbenchCubeEnv
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"wmbench/Cube-v0 needs MuJoCo and ogbench: pip install 'wmbench[mujoco]' ({error})") from error

from wmbench.envs.base import Color, Factor, Flag, Number, Point, shown
from wmbench.envs.mujoco_env import MujocoEnv

SUCCESS_DISTANCE = 0.04  # m
CONTROL_TIMESTEP = 0.05  # s, ogbench's: 25 physics steps of 0.002 s
CUBE_SIZE = 0.04  # m, edge
CUBE_AREA = ((0.3, -0.3), (0.55, 0.3))  # (x, y) low and high of ogbench's cube and target sampling
WORKSPACE = ((0.25, -0.35), (0.6, 0.35))  # (x, y) low and high of where ogbench's gripper can go
MIN_TARGET_DISTANCE = 0.08  # m: a sampled target needs the cube to move
MIN_TELEPORT_JUMP = 0.1  # m
MAX_CAMERA_OFFSET = 0.1  # m
MAX_SPEED = 100.0  # rad/s and m/s, the observation box (the oracle and random actions stay under 20)

ARM_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3")
GRIPPER_JOINTS = tuple(f"{side}_{part}" for side in ("right", "left") for part in ("driver", "coupler", "spring_link", "follower"))
JOINTS = ARM_JOINTS + GRIPPER_JOINTS
QPOS_NAMES = JOINTS + ("cube_x", "cube_y", "cube_z", "cube_qw", "cube_qx", "cube_qy", "cube_qz")
QVEL_NAMES = tuple(f"{j}_velocity" for j in JOINTS) + ("cube_vx", "cube_vy", "cube_vz", "cube_wx", "cube_wy", "cube_wz")
TARGET_NAMES = ("target_x", "target_y", "target_z", "target_qw", "target_qx", "target_qy", "target_qz")
NQ, NV = len(QPOS_NAMES), len(QVEL_NAMES)
CUBE_POS = slice(len(JOINTS), len(JOINTS) + 3)  # within the state (and qpos)
CUBE_POSE = slice(len(JOINTS), NQ)
CUBE_VEL = slice(NQ + len(JOINTS), NQ + NV)
TARGET = slice(NQ + NV, NQ + NV + 7)


@dataclass(frozen=True)
class CameraOffset:
    """A shift of the camera in world (x, y, z), metres, at most ``MAX_CAMERA_OFFSET`` long."""

    def __str__(self) -> str:
        return f"an (x, y, z) shift in metres at most {MAX_CAMERA_OFFSET:g} m long"

    def __call__(self, value: Any) -> tuple[float, float, float]:
        axis = (-MAX_CAMERA_OFFSET, MAX_CAMERA_OFFSET)
        offset = Point(("x", "y", "z"), (axis[0],) * 3, (axis[1],) * 3)(value)
        if math.hypot(*offset) > MAX_CAMERA_OFFSET:
            raise ValueError("is too long")
        return offset


def yaw_quaternion(yaw: float) -> np.ndarray:
    """The (w, x, y, z) quaternion of a turn by ``yaw`` about the vertical."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def quaternion_yaw(q: np.ndarray) -> float:
    """The turn about the vertical of a (w, x, y, z) quaternion."""
    w, x, y, z = q
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


class CubeSimulation(OgbenchCubeEnv):
    """ogbench's cube-single scene, arm controller and physics; wmbench draws the pixels itself.

    Built as ogbench builds its pixel envs (``ob_type="pixels"``: transparent arm, purple
    gripper) in data-collection mode (one freely placed target), with its info overlays off.
    """

    def __init__(self):
        super().__init__(env_type="single", ob_type="pixels", mode="data_collection", visualize_info=False)

    def compute_observation(self):
        return np.zeros(0)  # ogbench's observation would be a second, slow render


class CubeEnv(MujocoEnv):
    env_name = "Cube"
    dt = CONTROL_TIMESTEP
    metadata = {"render_modes": ["rgb_array"], "render_fps": 1 / dt}
    camera_name = "front_pixels"
    nearest_mesh = 0.45  # the gripper at the top front corner of the arm's workspace
    state_names = QPOS_NAMES + QVEL_NAMES + TARGET_NAMES
    state_high = (2 * np.pi,) * len(JOINTS) + (1.0, 1.0, 1.0) + (1.0,) * 4 + (MAX_SPEED,) * NV + (1.0, 1.0, 1.0) + (1.0,) * 4
    state_low = tuple(-x for x in state_high)
    proprio_names = ARM_JOINTS + tuple(f"{j}_velocity" for j in ARM_JOINTS) + ("right_driver", "right_driver_velocity")
    action_names = ("dx", "dy", "dz", "dyaw", "gripper")
    success_text = f"cube within {SUCCESS_DISTANCE:g} m of the goal state's cube position"
    VARIATIONS = {
        "cube_color": Factor((245, 66, 84), "cube color", Color()),
        # The gripper holds cubes from 0.02 to 0.06 m.
        "cube_size": Factor(CUBE_SIZE, "cube edge (m); physical: mass and contacts follow", Number(0.02, 0.06)),
        "floor_color": Factor((30, 37, 52), "mean color of the checkered floor (the pattern is kept)", Color()),
        # From dim (the scene still visible) to twice as bright (most colors saturate beyond).
        "light_intensity": Factor(1.0, "scale of every light's brightness", Number(0.2, 2.0)),
        "camera_offset": Factor((0.0, 0.0, 0.0), "shift of the camera in world (x, y, z), metres", CameraOffset()),
        "target_visible": Factor(False, "draw the target as a translucent cube", Flag()),
    }
    RECOLOR_TARGETS = {"cube": "cube_color", "floor": "floor_color"}
    PRESETS = {
        "standard": {},
        "recolored": {"cube_color": (65, 105, 225), "floor_color": (120, 110, 90)},
        "large_cube": {"cube_size": 0.05},
        "small_cube": {"cube_size": 0.03},
        "dim_light": {"light_intensity": 0.5},
        "shifted_camera": {"camera_offset": (0.0, 0.05, 0.03)},
        "visible_target": {"target_visible": True},
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sim = CubeSimulation()
        self.sim.reset(seed=0)  # builds and compiles the scene; wmbench then sets every state itself
        self._size = CUBE_SIZE
        self._build_picture()
        self._apply_variation()

    def _resize_cube(self, size: float) -> None:
        """Recompile ogbench's scene with a cube (and target) of edge ``size``, and its picture side."""
        self._compile(size)
        self._size = size
        self._build_picture()

    def _compile(self, size: float) -> None:
        """Recompile ogbench's scene with a cube (and target) of edge ``size``."""
        self.sim.mjcf_model.find("default", "cube").geom.size = [size / 2] * 3
        self.sim.mark_dirty()
        self.sim.reset(seed=0)

    def __getstate__(self) -> dict:
        """What ``copy.deepcopy`` and ``pickle`` copy: ogbench's simulation as its ``MjData`` (see the
        docstring's ``copies``)."""
        return {**self.__dict__, "sim": None, "_kinematics": None, "_sim_data": self.sim.data}

    def __setstate__(self, state: dict) -> None:
        data = state.pop("_sim_data")
        self.__dict__.update(state)
        self.sim = CubeSimulation()
        self.sim.reset(seed=0)
        if self._size != CUBE_SIZE:
            self._compile(self._size)
        mujoco.mj_copyData(self.sim.data, self.sim.model, data)

    def _build_picture(self) -> None:
        self._build_renderer(self.sim.model)
        picture = self.render_model
        self._cube_geom = picture.geom("object_0").id
        self._target_geom = picture.geom("target_object_0").id
        self._camera = picture.camera(self.camera_name).id
        self._standard_camera = picture.cam_pos[self._camera].copy()
        self._standard_lights = (picture.light_diffuse.copy(), picture.vis.headlight.diffuse.copy(), picture.vis.headlight.ambient.copy())

    def _apply_variation(self):
        v = self.variation
        if v["cube_size"] != self._size:
            self._resize_cube(v["cube_size"])
        picture = self.render_model
        self._paint("cube", picture.geom_rgba[self._cube_geom], v["cube_color"], self.VARIATIONS["cube_color"].default)
        picture.geom_rgba[self._target_geom] = (*picture.geom_rgba[self._cube_geom, :3], 0.3 if v["target_visible"] else 0.0)
        diffuse, head_diffuse, head_ambient = self._standard_lights
        picture.light_diffuse[:] = diffuse * v["light_intensity"]
        picture.vis.headlight.diffuse[:] = head_diffuse * v["light_intensity"]
        picture.vis.headlight.ambient[:] = head_ambient * v["light_intensity"]
        picture.cam_pos[self._camera] = self._standard_camera + v["camera_offset"]
        self._tint_texture("grid", v["floor_color"], self.VARIATIONS["floor_color"].default)

    # ------------------------------------------------------------------ physics
    def _sample_state(self, rng):
        state = np.zeros(len(self.state_names))
        state[:NQ] = self._random_arm_qpos(rng)
        state[CUBE_POSE] = self._resting_pose(rng.uniform(*CUBE_AREA), rng.uniform(0, 2 * np.pi))
        while True:
            xy = rng.uniform(*CUBE_AREA)
            if np.linalg.norm(xy - state[CUBE_POS][:2]) >= MIN_TARGET_DISTANCE:
                break
        state[TARGET] = self._resting_pose(xy, rng.uniform(0, 2 * np.pi))
        return state

    def _sample_goal_state(self, rng, start):
        goal = start.copy()
        goal[:NQ] = self._random_arm_qpos(rng)
        goal[CUBE_POSE] = start[TARGET]
        goal[NQ : NQ + NV] = 0.0
        return goal

    def _random_arm_qpos(self, rng: np.random.Generator) -> np.ndarray:
        """A ``qpos`` with the arm at ogbench's random start pose (its IK), gripper open, cube unset."""
        model, data = self.sim.model, self.sim.data
        mujoco.mj_resetData(model, data)
        self.sim.np_random = rng
        self.sim.initialize_arm()
        return data.qpos.copy()

    def _resting_pose(self, xy, yaw: float) -> np.ndarray:
        return np.concatenate([xy, [self._size / 2], yaw_quaternion(yaw)])

    def _load_state(self, state):
        self._pose(self.sim.model, self.sim.data, state)
        data = self.sim.data
        data.ctrl[:] = 0.0
        data.qacc_warmstart[:] = 0.0  # the solver's warm start is history, not state
        mujoco.mj_forward(self.sim.model, data)
        mujoco.mj_rnePostConstraint(self.sim.model, data)  # contact forces, read by the oracle

    def get_state(self):
        data = self.sim.data
        return np.concatenate([data.qpos, data.qvel, data.mocap_pos[0], data.mocap_quat[0]])

    def _simulate(self, action):
        self.sim.step(action)

    # ------------------------------------------------------------------ task
    def _evaluate(self, state, goal_state):
        distance = float(np.linalg.norm(state[CUBE_POS] - goal_state[CUBE_POS]))
        success = distance <= SUCCESS_DISTANCE
        return success, float(success), {"cube_distance": distance}

    def goal_cost(self, state, goal_state):
        # The cube's distance to its goal, plus half the gripper's distance to the cube: without
        # that shaping a sampling planner rarely stumbles on a grasp.
        model, scratch = self.sim.model, self._cost_data
        scratch.qpos[:] = state[:NQ]
        mujoco.mj_kinematics(model, scratch)
        reach = np.linalg.norm(scratch.site_xpos[self.sim._pinch_site_id] - state[CUBE_POS])
        carry = np.linalg.norm(state[CUBE_POS] - goal_state[CUBE_POS])
        return float(carry + 0.5 * reach) / SUCCESS_DISTANCE

    @property
    def _cost_data(self):
        """Scratch data for the cost's forward kinematics (remade when a resize recompiles the model)."""
        cached = getattr(self, "_kinematics", None)
        if cached is None or cached[0] is not self.sim.model:
            self._kinematics = (self.sim.model, mujoco.MjData(self.sim.model))
        return self._kinematics[1]

    # ------------------------------------------------------------------ pixels
    def _pose(self, model, data, state):
        data.qpos[:] = state[:NQ]
        data.qvel[:] = state[NQ : NQ + NV]
        data.mocap_pos[0] = state[TARGET][:3]
        data.mocap_quat[0] = state[TARGET][3:]

    # ------------------------------------------------------------------ perturbations
    def _perturb_teleport(self, target: str = "cube", position=None):
        if not isinstance(target, str) or target not in ("cube", "arm"):
            raise ValueError(f"{self.env_name}: teleport target={shown(target)} is unknown; Cube teleports the 'cube' or the 'arm'")
        before = self.get_state()
        after = before.copy()
        if target == "cube":
            if position is None:
                while True:  # a jump big enough to see
                    position = self.np_random.uniform(*CUBE_AREA)
                    if np.linalg.norm(position - before[CUBE_POS][:2]) >= MIN_TELEPORT_JUMP:
                        break
            xy = np.asarray(self._argument("teleport position", Point(("x", "y"), *WORKSPACE), position))
            after[CUBE_POSE] = self._resting_pose(xy, quaternion_yaw(before[CUBE_POSE][3:]))
            after[CUBE_VEL] = 0.0
            changed = CUBE_POS
        else:
            if position is not None:
                raise ValueError(f"{self.env_name}: teleport target='arm' takes no position; the arm jumps to a random configuration")
            after[: len(JOINTS)] = self._random_arm_qpos(self.np_random)[: len(JOINTS)]
            after[NQ : NQ + len(JOINTS)] = 0.0
            changed = slice(0, len(ARM_JOINTS))
        self._load_state(self._check_state(after, "the teleported state"))
        return {"target": target, "before": before[changed].tolist(), "after": after[changed].tolist()}
