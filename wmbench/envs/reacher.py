"""Reacher: dm_control's two-link planar arm, as a goal-reaching task given by a goal image.

The physics is dm_control's suite reacher (``dm_control.suite.reacher``: its model, its
``Physics``, its step); the task is the one published world-model results use (LeWM,
DINO-WM): reach a goal joint configuration shown only as an image.

==================  ============================================================================
id                  ``wmbench/Reacher-v0`` (200 steps per episode)
action              ``Box(-1, 1, (2,))``: shoulder and wrist motor commands (dm_control's
                    actuators, gear 0.05), each held for 2 physics steps of 0.02 s (action
                    repeat 2: one env step is 0.04 s, ``env.dt``; ``render_fps`` 25)
state (6)           shoulder, wrist (rad), their velocities (rad/s), and the goal's shoulder and
                    wrist, which place the target marker when it is shown. The shoulder turns
                    freely: its angle is kept in [-pi, pi) (wrapping changes no physics); the
                    wrist is limited to +-160 degrees
proprio (4)         shoulder, wrist and their velocities
task                success when every joint is within 0.05 rad of the goal state's joint,
                    angles compared modulo 2 pi (a shoulder 2 pi away looks the same); reward 1
                    on success
reset               joints uniform (shoulder in [-pi, pi], wrist in [-160, 160] degrees) at
                    rest, as dm_control initializes them; the goal configuration drawn the same
                    way, the goal state at rest there
pixels              the model's top-down ``fixed`` camera at ``resolution`` (default 224). The
                    target marker is hidden by default (``target_visible``), so the goal is
                    given by ``info["goal"]`` only; shadows, multisampling and the floor
                    reflection are off (``shadows=``, ``multisample=``, ``reflection=``)
step info           ``success``; ``joint_error`` (largest joint error, rad)
perturb             ``teleport(target="arm", joints=)``: the arm jumps to the given or a random
                    configuration (velocities kept); ``recolor(target="links"|"floor"|"target",
                    color=)``
==================  ============================================================================
"""

from __future__ import annotations

import math

import numpy as np

try:
    import mujoco
    from dm_control.suite import reacher as dm_reacher
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"wmbench/Reacher-v0 needs MuJoCo and dm_control: pip install 'wmbench[mujoco]' ({error})") from error

from wmbench.envs.base import Color, Factor, Flag, Number, Point, shown
from wmbench.envs.mujoco_env import MujocoEnv
from wmbench.envs.mujoco_render import HIDDEN_GROUP

ACTION_REPEAT = 2
PHYSICS_TIMESTEP = 0.02  # s, dm_control's reacher.xml
SUCCESS_TOLERANCE = 0.05  # rad, every joint
WRIST_LIMIT = math.radians(160.0)
LINK_LENGTH = 0.12  # shoulder to wrist and wrist to fingertip (m)
MIN_TELEPORT_JUMP = 0.5  # rad: a random teleport moves some joint at least this far
MAX_VELOCITY = 50.0  # rad/s, the observation box (full torque reaches about 7: the joints are damped)


def angle_error(a, b) -> np.ndarray:
    """|a - b| for angles, modulo 2 pi, in [0, pi]."""
    return np.abs(np.angle(np.exp(1j * (np.asarray(a) - np.asarray(b)))))


class ReacherEnv(MujocoEnv):
    env_name = "Reacher"
    dt = ACTION_REPEAT * PHYSICS_TIMESTEP
    metadata = {"render_modes": ["rgb_array"], "render_fps": 1 / dt}
    camera_name = "fixed"
    state_names = ("shoulder", "wrist", "shoulder_velocity", "wrist_velocity", "goal_shoulder", "goal_wrist")
    state_low = (-np.pi, -np.pi, -MAX_VELOCITY, -MAX_VELOCITY, -np.pi, -np.pi)
    state_high = (np.pi, np.pi, MAX_VELOCITY, MAX_VELOCITY, np.pi, np.pi)
    proprio_names = ("shoulder", "wrist", "shoulder_velocity", "wrist_velocity")
    action_names = ("shoulder_torque", "wrist_torque")
    success_text = f"every joint within {SUCCESS_TOLERANCE:g} rad of the goal configuration (angles modulo 2 pi)"
    VARIATIONS = {
        "link_color": Factor((179, 128, 77), "color of both links", Color()),
        "floor_color": Factor((38, 64, 89), "mean color of the checkered floor (the pattern is kept)", Color()),
        "target_color": Factor((153, 77, 77), "color of the target marker", Color()),
        "target_visible": Factor(False, "draw the target marker at the goal's fingertip position", Flag()),
        # A quarter to 4 times water's: the damped joints stay stable (and under 7 rad/s) throughout.
        "arm_density": Factor(1000.0, "density of the upper link (kg/m^3)", Number(250.0, 4000.0)),
        "hand_density": Factor(1000.0, "density of the lower link and fingertip (kg/m^3)", Number(250.0, 4000.0)),
    }
    RECOLOR_TARGETS = {"links": "link_color", "floor": "floor_color", "target": "target_color"}
    PRESETS = {
        "standard": {},
        "recolored": {"link_color": (70, 130, 180), "floor_color": (170, 160, 130)},
        "visible_target": {"target_visible": True},
        "heavy_hand": {"hand_density": 3000.0},
        "light_arm": {"arm_density": 400.0},
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.physics = dm_reacher.Physics.from_xml_string(*dm_reacher.get_model_and_assets())
        model = self.physics.model.ptr
        self._links = {"arm": [model.body("arm").id], "hand": [model.body("hand").id, model.body("finger").id]}
        self._standard_mass = model.body_mass.copy()
        self._standard_inertia = model.body_inertia.copy()
        self._build_renderer(model)
        self._goal_joints = np.zeros(2)
        self._densities: tuple | None = None
        self._apply_variation()

    def _apply_variation(self):
        v, model, picture = self.variation, self.physics.model.ptr, self.render_model
        densities = (v["arm_density"], v["hand_density"])
        if densities != self._densities:
            for ids, density in zip(self._links.values(), densities):  # the model's links have MuJoCo's default density, 1000
                model.body_mass[ids] = self._standard_mass[ids] * density / 1000.0
                model.body_inertia[ids] = self._standard_inertia[ids] * density / 1000.0
            mujoco.mj_setConst(model, mujoco.MjData(model))  # derived masses; scratch data keeps the state intact
            self._densities = densities
        for material, factor in (("self", "link_color"), ("target", "target_color")):
            self._paint(material, picture.material(material).rgba, v[factor], self.VARIATIONS[factor].default)
        self._tint_texture("grid", v["floor_color"], self.VARIATIONS["floor_color"].default)
        picture.geom_group[picture.geom("target").id] = 0 if v["target_visible"] else HIDDEN_GROUP

    # ------------------------------------------------------------------ physics
    def _sample_state(self, rng):
        shoulder, wrist, goal_shoulder, goal_wrist = self._random_joints(rng, 2).ravel()
        return np.array([shoulder, wrist, 0.0, 0.0, goal_shoulder, goal_wrist])

    def _sample_goal_state(self, rng, start):
        goal = start[4:6]
        return np.array([goal[0], goal[1], 0.0, 0.0, goal[0], goal[1]])

    @staticmethod
    def _random_joints(rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` configurations drawn as dm_control draws its starts: (n, 2) shoulder, wrist."""
        return np.stack([rng.uniform(-np.pi, np.pi, n), rng.uniform(-WRIST_LIMIT, WRIST_LIMIT, n)], axis=1)

    def _load_state(self, state):
        data = self.physics.data.ptr
        data.qpos[:] = state[0:2]
        data.qvel[:] = state[2:4]
        data.ctrl[:] = 0.0
        data.qacc_warmstart[:] = 0.0  # the solver's warm start is history, not state
        self._goal_joints = state[4:6].copy()
        self.physics.forward()

    def get_state(self):
        data = self.physics.data.ptr
        return np.concatenate([data.qpos, data.qvel, self._goal_joints]).astype(np.float64)

    def _simulate(self, action):
        self.physics.set_control(action)
        self.physics.step(ACTION_REPEAT)
        qpos = self.physics.data.ptr.qpos
        if not -np.pi <= qpos[0] < np.pi:  # the shoulder turns freely; keep its angle in [-pi, pi)
            qpos[0] = (qpos[0] + np.pi) % (2 * np.pi) - np.pi

    # ------------------------------------------------------------------ task
    def _evaluate(self, state, goal_state):
        error = float(angle_error(state[0:2], goal_state[0:2]).max())
        success = error < SUCCESS_TOLERANCE
        return success, float(success), {"joint_error": error}

    def goal_cost(self, state, goal_state):
        return float(np.linalg.norm(angle_error(state[0:2], goal_state[0:2]))) / SUCCESS_TOLERANCE

    # ------------------------------------------------------------------ pixels
    def _pose(self, model, data, state):
        data.qpos[:] = state[0:2]
        data.qvel[:] = state[2:4]
        model.geom("target").pos[:2] = fingertip(state[4], state[5])

    # ------------------------------------------------------------------ perturbations
    def _perturb_teleport(self, target: str = "arm", joints=None):
        if not isinstance(target, str) or target != "arm":
            raise ValueError(f"{self.env_name}: teleport target={shown(target)} is unknown; Reacher teleports only the 'arm'")
        if joints is not None:
            joints = self._argument("teleport joints", Point(("shoulder", "wrist"), (-np.pi, -WRIST_LIMIT), (np.pi, WRIST_LIMIT)), joints)
        before = self.get_state()
        if joints is None:
            while True:  # a jump big enough to see
                joints = self._random_joints(self.np_random, 1)[0]
                if angle_error(joints, before[0:2]).max() >= MIN_TELEPORT_JUMP:
                    break
        after = before.copy()
        after[0:2] = joints
        self._load_state(self._check_state(after, "the teleport configuration"))
        return {"target": target, "before": before[0:2].tolist(), "after": self.get_state()[0:2].tolist()}


def fingertip(shoulder: float, wrist: float) -> np.ndarray:
    """The fingertip's (x, y) in metres for a joint configuration (both links 0.12 m)."""
    return LINK_LENGTH * np.array(
        [math.cos(shoulder) + math.cos(shoulder + wrist), math.sin(shoulder) + math.sin(shoulder + wrist)]
    )
