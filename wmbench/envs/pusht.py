"""Push-T: push a T-shaped block into a goal pose with a round pusher.

The physics is the reference Push-T of diffusion-policy / gym-pusht that published world-model
results use, step for step (pymunk, same constants and the same order of operations); only the
action is relative, as in the world-model papers, and set-state places the block exactly.

==================  ============================================================================
id                  ``wmbench/PushT-v0`` (300 steps per episode)
action              ``Box(-1, 1, (2,))``: the pusher's PD target is ``agent_xy + 100 * a``,
                    clipped to the 512 x 512 arena (the reference's absolute action box)
state (7)           agent x, y; block x, y (the T's origin: the middle of the crossbar's top
                    edge); block angle (rad, in [-pi, pi)); agent vx, vy; arena units (px at 512)
proprio (4)         agent x, y, vx, vy
pixels              drawn directly at ``resolution`` (default 224), each pixel blended by the share
                    of its area a shape covers (``raster.py``), so poses show to a fraction of a pixel
physics             gravity 0, ``space.damping`` 0 (the block moves only while pushed), friction
                    0, dt 0.01 s, 10 substeps per action (10 Hz: ``env.dt`` 0.1 s, ``render_fps``
                    10), PD: ``acc = 100 (target - pos) + 20 (0 - vel)``, T mass 1 with the
                    reference moment of inertia (twice the crossbar's: a bug of the reference
                    kept for comparability)
task="goal"         (default) success when ``||(agent_xy, block_xy) - goal's|| < 20`` and the
                    block's angle error ``< pi/9`` (the T has no rotational symmetry, so the
                    error is taken modulo 2 pi); reward 1 on success
task="coverage"     the reference task: success when the block covers ``> 0.95`` of the goal T
                    (default goal pose (256, 256, pi/4), drawn in the frame); reward
                    ``clip(coverage / 0.95, 0, 1)``
reset               agent x, y uniform integers in [50, 450); block x, y in [100, 400); angle
                    uniform in [-pi, pi); zero velocity. Without ``goal_state`` the goal is
                    another such state (task "goal") or the fixed goal T (task "coverage")
step info           ``success``; ``pos_error``, ``angle_error`` (goal) or ``coverage`` (coverage)
perturb             ``teleport(target="block"|"agent", position=, angle=)``: a jump to the given
                    or a fresh random pose; ``recolor(target="block"|"agent"|"background",
                    color=)``: the given or a random color
copies              ``copy.deepcopy`` and ``pickle`` rebuild the pymunk space by loading the last
                    loaded state and replaying the actions since (exact: pymunk's own copy moves
                    the T, whose centre of gravity is off its origin, and drops the contacts it
                    carries from step to step; loading ``get_state()`` drops them too)
==================  ============================================================================
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pymunk
import shapely

from wmbench.envs.base import Color, Factor, Flag, Number, OneOf, Point, WorldModelEnv
from wmbench.envs.raster import fill_rects, stamp_box, stamp_disc

ARENA = 512.0
DT = 0.01
SUBSTEPS = 10
ACTION_SCALE = 100.0
# With a kinematic pusher, static walls and zero damping the block's mass changes nothing, so it
# is a constant rather than a variation factor.
BLOCK_MASS = 1.0
WALLS = (((5, 506), (5, 5)), ((5, 5), (506, 5)), ((506, 5), (506, 506)), ((5, 506), (506, 506)))
WALL_RADIUS = 2.0
COVERAGE_GOAL = np.array([256.0, 256.0, math.pi / 4])
GOAL_POS_TOLERANCE = 20.0
GOAL_ANGLE_TOLERANCE = math.pi / 9
COVERAGE_THRESHOLD = 0.95
OUTLINE_HALF_WIDTH = 2.0  # the reference outlines the T with 4-unit lines centred on its edges
AGENT_RIM = 4.0  # the reference's pusher is a disc with a lighter disc 4 units smaller inside
# The reference's wall segments (radius 2) as disjoint rectangles (x0, x1, y0, y1).
WALL_RECTS = ((3.0, 7.0, 3.0, 508.0), (504.0, 508.0, 3.0, 508.0), (7.0, 504.0, 3.0, 7.0), (7.0, 504.0, 504.0, 508.0))


def wrap_angle(angle: float) -> float:
    """Map to [-pi, pi), leaving angles already there untouched (so the state round-trips exactly)."""
    if -math.pi <= angle < math.pi:
        return angle
    wrapped = (angle + math.pi) % (2 * math.pi) - math.pi
    return wrapped - 2 * math.pi if wrapped >= math.pi else wrapped


def tee_boxes(scale: float) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The T's two boxes in body coordinates: the crossbar (4 x 1 units) and the stem (1 x 3)."""
    crossbar = [(-2 * scale, scale), (2 * scale, scale), (2 * scale, 0.0), (-2 * scale, 0.0)]
    stem = [(-scale / 2, scale), (-scale / 2, 4 * scale), (scale / 2, 4 * scale), (scale / 2, scale)]
    return crossbar, stem


def tee_polygon(x: float, y: float, angle: float, scale: float) -> shapely.Polygon:
    """The T's outline at a pose, for coverage."""
    s = scale
    outline = np.array([(-2 * s, 0), (2 * s, 0), (2 * s, s), (s / 2, s), (s / 2, 4 * s), (-s / 2, 4 * s), (-s / 2, s), (-2 * s, s)])
    c, si = math.cos(angle), math.sin(angle)
    return shapely.Polygon(outline @ np.array([[c, si], [-si, c]]) + (x, y))


def lighter(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The reference's fill shade: 1.2 x the outline color, saturated."""
    return tuple(min(255, int(1.2 * c)) for c in rgb)


class PushTEnv(WorldModelEnv):
    env_name = "PushT"
    dt = DT * SUBSTEPS
    metadata = {"render_modes": ["rgb_array"], "render_fps": 1 / dt}
    state_names = ("agent_x", "agent_y", "block_x", "block_y", "block_angle", "agent_vx", "agent_vy")
    # The pusher is kinematic and can squeeze the block through a wall, as in the reference, so the
    # block's bounds reach one T length past the arena; the PD keeps |velocity| under ~500 px/s.
    state_low = (0.0, 0.0, -128.0, -128.0, -math.pi, -1000.0, -1000.0)
    state_high = (ARENA, ARENA, ARENA + 128, ARENA + 128, math.pi, 1000.0, 1000.0)
    proprio_names = ("agent_x", "agent_y", "agent_vx", "agent_vy")
    action_names = ("dx", "dy")
    success_text = "task goal: |(agent,block) xy error| < 20 and angle error < pi/9; task coverage: coverage > 0.95"
    VARIATIONS = {
        "agent_color": Factor("RoyalBlue", "pusher color", Color()),
        "block_color": Factor("LightSlateGray", "T outline color (filled 1.2x lighter)", Color()),
        "goal_color": Factor("LightGreen", "color of the drawn goal T", Color()),
        "wall_color": Factor("LightGray", "arena wall color", Color()),
        "background_color": Factor("White", "background color", Color()),
        "show_goal_region": Factor(False, "draw the goal T in every frame (default on for task='coverage')", Flag()),
        # Half to 1.5 times the reference: at 45 the T (180 wide) still fits the arena in any pose.
        "block_scale": Factor(30.0, "T unit length: the crossbar is 4 x 1 units, the stem 1 x 3", Number(15.0, 45.0)),
        "agent_radius": Factor(15.0, "pusher radius", Number(5.0, 30.0)),
        "friction": Factor(0.0, "friction coefficient of every shape (reference: 0)", Number(0.0, 2.0)),
        # Below 1, so a pushed block always comes to rest (at 1 one squeezed through a wall flies off for good).
        "damping": Factor(0.0, "pymunk space damping: fraction of velocity kept per second (reference: 0)", Number(0.0, 0.9)),
        "kp": Factor(100.0, "PD controller position gain; needs kv >= 1.8 sqrt(kp)", Number(25.0, 400.0)),
        "kv": Factor(20.0, "PD controller velocity gain; at least 1.8 sqrt(kp) (damping ratio 0.9), so the pusher does not overshoot", Number(10.0, 80.0)),
    }
    RECOLOR_TARGETS = {"block": "block_color", "agent": "agent_color", "background": "background_color"}
    PRESETS = {
        "standard": {},
        "recolored": {"agent_color": "Crimson", "block_color": "DarkOrange", "background_color": "Lavender"},
        "large_block": {"block_scale": 36.0},
        "small_agent": {"agent_radius": 10.0},
        "sliding": {"damping": 0.3},  # the block glides after a push, keeping 30% of its speed per second
        "frictional": {"friction": 0.5},
    }

    def __init__(self, task: str = "goal", variation: str | dict[str, Any] | None = None, **kwargs):
        self.task = self._argument("task", OneOf(("goal", "coverage")), task)
        if task == "coverage":  # the reference task shows its goal T unless told otherwise
            explicit = self.PRESETS.get(variation, {}) if isinstance(variation, str) else (variation or {})
            variation = {**self.resolve_variation(variation), "show_goal_region": explicit.get("show_goal_region", True)}
        super().__init__(variation=variation, **kwargs)
        self._pixel_size = (ARENA / self.width, ARENA / self.height)
        self._background_key: tuple | None = None
        self._background_image: np.ndarray | None = None
        self._space: pymunk.Space | None = None
        self._loaded_state: np.ndarray | None = None  # the state last loaded
        self._actions: list[np.ndarray] = []  # the actions since: with it, the space's whole history

    @classmethod
    def _check_together(cls, variation):
        kp, kv = variation["kp"], variation["kv"]
        # a clearly under-damped PD overshoots its target and carries the pusher out of the arena; at a damping
        # ratio of 0.9 the overshoot is 0.15%, so gains near the default's critical damping stay allowed
        if kv < 1.8 * math.sqrt(kp):
            raise ValueError(
                f"{cls.env_name}: variation kp={kp:g} with kv={kv:g} under-damps the pusher; give kv >= 1.8 sqrt(kp) = {1.8 * math.sqrt(kp):g}"
            )

    # ------------------------------------------------------------------ physics
    def _sample_state(self, rng):
        agent = rng.integers(50, 450, size=2)
        block = rng.integers(100, 400, size=2)
        angle = rng.uniform(-math.pi, math.pi)
        return np.array([*agent, *block, angle, 0.0, 0.0], dtype=np.float64)

    def _sample_goal_state(self, rng, start):
        if self.task == "coverage":
            return np.array([start[0], start[1], *COVERAGE_GOAL, 0.0, 0.0])
        return self._sample_state(rng)

    def _load_state(self, state):
        v = self.variation
        space = pymunk.Space()
        space.gravity = (0.0, 0.0)
        space.damping = v["damping"]
        walls = [pymunk.Segment(space.static_body, a, b, WALL_RADIUS) for a, b in WALLS]
        for wall in walls:
            wall.friction = v["friction"]
        space.add(*walls)

        # Bodies are created and added in the reference's order and at its construction poses,
        # then moved: pymunk's collision order (and so the exact numbers) depends on it.
        agent = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
        agent.position = (256, 400)
        agent_shape = pymunk.Circle(agent, v["agent_radius"])
        agent_shape.friction = v["friction"]
        space.add(agent, agent_shape)

        crossbar, stem = tee_boxes(v["block_scale"])
        block = pymunk.Body(BLOCK_MASS, 2 * pymunk.moment_for_poly(BLOCK_MASS, crossbar))
        shapes = [pymunk.Poly(block, crossbar), pymunk.Poly(block, stem)]
        for shape in shapes:
            shape.friction = v["friction"]
        block.center_of_gravity = (shapes[0].center_of_gravity + shapes[1].center_of_gravity) / 2
        block.angle = 0.0
        block.position = (256, 300)
        space.add(block, *shapes)

        self._loaded_state, self._actions = state.copy(), []
        agent.position = (state[0], state[1])
        agent.velocity = (state[5], state[6])
        block.angle = state[4]  # angle first, so the origin lands exactly on the requested position
        block.position = (state[2], state[3])
        self._space, self._agent, self._block = space, agent, block

    def get_state(self):
        # pymunk keeps the centre of gravity and derives the origin, which can come back an ulp
        # off: until the next physics step, the state is the one loaded.
        if not self._actions:
            return self._loaded_state.copy()
        a, b = self._agent, self._block
        return np.array(
            [a.position.x, a.position.y, b.position.x, b.position.y, wrap_angle(b.angle), a.velocity.x, a.velocity.y],
            dtype=np.float64,
        )

    def _simulate(self, action):
        agent, kp, kv = self._agent, self.variation["kp"], self.variation["kv"]
        x, y = agent.position
        self._actions.append(action)
        tx = min(max(x + ACTION_SCALE * action[0], 0.0), ARENA)
        ty = min(max(y + ACTION_SCALE * action[1], 0.0), ARENA)
        for _ in range(SUBSTEPS):
            (px, py), (vx, vy) = agent.position, agent.velocity
            # Same float operations, in the same order, as the reference controller.
            ax = kp * (tx - px) + kv * (0.0 - vx)
            ay = kp * (ty - py) + kv * (0.0 - vy)
            agent.velocity = (vx + ax * DT, vy + ay * DT)
            self._space.step(DT)

    def __getstate__(self) -> dict:
        """What ``copy.deepcopy`` and ``pickle`` copy: everything but the pymunk space, which the copy
        rebuilds exactly (see the docstring's ``copies``)."""
        return {**self.__dict__, "_space": None, "_agent": None, "_block": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self._loaded_state is not None:
            self._load_state(self._loaded_state)
            for action in state["_actions"]:
                self._simulate(action)

    # ------------------------------------------------------------------ task
    def _evaluate(self, state, goal_state):
        if self.task == "coverage":
            coverage = self.coverage(state, goal_state)
            reward = min(max(coverage / COVERAGE_THRESHOLD, 0.0), 1.0)
            return coverage > COVERAGE_THRESHOLD, reward, {"coverage": coverage}
        pos_error, angle_error = self.goal_errors(state, goal_state)
        success = pos_error < GOAL_POS_TOLERANCE and angle_error < GOAL_ANGLE_TOLERANCE
        return success, float(success), {"pos_error": pos_error, "angle_error": angle_error}

    def goal_cost(self, state, goal_state):
        if self.task == "coverage":
            return (1.0 - self.coverage(state, goal_state)) / (1.0 - COVERAGE_THRESHOLD)
        pos_error, angle_error = self.goal_errors(state, goal_state)
        return pos_error / GOAL_POS_TOLERANCE + angle_error / GOAL_ANGLE_TOLERANCE

    @staticmethod
    def goal_errors(state, goal_state) -> tuple[float, float]:
        """Euclidean error of the 4-vector (agent xy, block xy) and the block angle error in [0, pi]."""
        pos_error = float(np.linalg.norm(np.asarray(state[:4]) - np.asarray(goal_state[:4])))
        return pos_error, abs(wrap_angle(float(state[4]) - float(goal_state[4])))

    def coverage(self, state, goal_state) -> float:
        """Fraction of the goal T's area covered by the block."""
        scale = self.variation["block_scale"]
        goal = tee_polygon(goal_state[2], goal_state[3], goal_state[4], scale)
        block = tee_polygon(state[2], state[3], state[4], scale)
        return float(goal.intersection(block).area / goal.area)

    # ------------------------------------------------------------------ pixels
    def _draw(self, state):
        v, pixel = self.variation, self._pixel_size
        frame = self._background().copy()
        for center, half_size in self._tee_boxes_world(state[2:5]):  # box by box, as the reference: a seam shows
            stamp_box(frame, center, half_size + OUTLINE_HALF_WIDTH, state[4], v["block_color"], pixel)
            stamp_box(frame, center, half_size - OUTLINE_HALF_WIDTH, state[4], lighter(v["block_color"]), pixel)
        stamp_disc(frame, state[:2], v["agent_radius"], v["agent_color"], pixel)
        if v["agent_radius"] > AGENT_RIM:
            stamp_disc(frame, state[:2], v["agent_radius"] - AGENT_RIM, lighter(v["agent_color"]), pixel)
        return frame

    def _background(self) -> np.ndarray:
        """Background, walls and (if shown) the goal T: drawn once per episode."""
        v = self.variation
        goal = self._goal_state[2:5].tobytes() if v["show_goal_region"] and self._goal_state is not None else None
        key = (v["background_color"], v["wall_color"], v["goal_color"], v["block_scale"], goal)
        if key != self._background_key:
            image = np.empty((self.height, self.width, 3), np.uint8)
            image[...] = v["background_color"]
            fill_rects(image, WALL_RECTS, v["wall_color"], self._pixel_size)
            if goal is not None:
                seamless = max(self._pixel_size)  # the stem reaches a pixel into the crossbar: no seam in one color
                for center, half_size in self._tee_boxes_world(self._goal_state[2:5], seamless):
                    stamp_box(image, center, half_size, self._goal_state[4], v["goal_color"], self._pixel_size)
            self._background_key, self._background_image = key, image
        return self._background_image

    def _tee_boxes_world(self, pose, stem_overlap: float = 0.0) -> list[tuple[tuple[float, float], np.ndarray]]:
        """Centre (world) and half sizes of the T's two boxes at ``pose`` (x, y, angle)."""
        x, y, angle = pose
        c, s = math.cos(angle), math.sin(angle)
        scale = self.variation["block_scale"]
        # Body frame: the crossbar's centre is (0, s/2), half sizes (2s, s/2); the stem's (0, 5s/2), (s/2, 3s/2).
        crossbar, stem_y = np.array([2 * scale, scale / 2]), 2.5 * scale - stem_overlap / 2
        stem = np.array([scale / 2, 1.5 * scale + stem_overlap / 2])
        return [((x - s * w, y + c * w), half) for w, half in ((scale / 2, crossbar), (stem_y, stem))]

    # ------------------------------------------------------------------ perturbations
    def _perturb_teleport(self, target: str = "block", position=None, angle=None):
        target = self._argument("teleport target", OneOf(("block", "agent")), target)
        if position is not None:
            position = self._argument("teleport position", Point(("x", "y"), (0.0, 0.0), (ARENA, ARENA)), position)
        if angle is not None:
            if target == "agent":
                raise ValueError(f"{self.env_name}: teleport target='agent' takes no angle (the pusher is a disc)")
            angle = self._argument("teleport angle", Number(-math.pi, math.pi), angle)
        state = self.get_state()
        if target == "block":
            before = state[2:5].tolist()
            state[2:4] = self.np_random.integers(100, 400, size=2) if position is None else position
            state[4] = self.np_random.uniform(-math.pi, math.pi) if angle is None else angle
            after = state[2:5].tolist()
        else:
            before = state[0:2].tolist()
            state[0:2] = self.np_random.integers(50, 450, size=2) if position is None else position
            state[5:7] = 0.0
            after = state[0:2].tolist()
        self._load_state(self._check_state(state, "teleported state"))
        return {"target": target, "before": before, "after": after}
