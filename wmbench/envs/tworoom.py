"""Two-Room: steer a dot from one room to a goal in the other, through a door in the wall.

The geometry is the Two-Room of LeWM / stable-worldmodel at its 224 px scale (PLDM's original is a
65 px version). Everything lives in a 224 x 224 world of units, whatever the pixel resolution.

==================  ============================================================================
id                  ``wmbench/TwoRoom-v0`` (200 steps per episode)
action              ``Box(-1, 1, (2,))``: the agent moves by ``speed * a`` (speed 5 units), then
                    the walls stop it. A step has no duration (``env.dt`` is None); frames play
                    at ``render_fps`` 10
state (2)           agent x, y in world units (one unit is one pixel at 224 px)
proprio (2)         agent x, y
world               224 x 224 units; a border wall 14 units thick on every side; a vertical wall
                    at x in [107, 117] (center 112, thickness 10), open at each door: y in
                    ``[c - h, c + h]`` for every door center c (default one door, c = 49, h = 14).
                    The agent is a disc of radius 7
motion              the disc never overlaps a wall: the move is made in substeps of at most half
                    the radius, each pushing the disc back out of any wall it entered along the
                    shortest way, so it slides along walls and round door corners and passes a
                    door only where it fits. Without contact the move is exactly ``speed * a``
task                success when the agent is less than 16 units from the goal position;
                    reward 1 on success
reset               the start is uniform over the free positions of a room picked at random, the
                    goal uniform over the free positions of the other room. A state whose disc
                    overlaps a wall (start, goal, ``set_state``, teleport) raises ``ValueError``
pixels              drawn at ``resolution`` (default 224) by scaling world units by width / 224
                    and height / 224; anti-aliased exactly: each pixel is blended by the
                    fraction of its area that the disc or a wall covers. The goal image
                    (``info["goal"]``) is the agent drawn at the goal; the goal itself is not
                    drawn unless ``show_target`` (a green dot)
step info           ``success``; ``pos_error`` (distance to the goal)
perturb             ``teleport(target="agent", position=)``: a jump to the given position or to a
                    random free one in the other room; ``recolor(target="agent"|"walls"|
                    "background", color=)``: the given or a random color
==================  ============================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from wmbench.envs.base import Color, Factor, Flag, Number, WorldModelEnv, is_real, shown
from wmbench.envs.raster import fill_rects, stamp_disc

WORLD = 224.0
BORDER = 14.0
WALL_X = 112.0
WALL_THICKNESS = 10.0
WALL_LEFT = WALL_X - WALL_THICKNESS / 2
WALL_RIGHT = WALL_X + WALL_THICKNESS / 2
SUCCESS_DISTANCE = 16.0
MAX_DOORS = 3
OVERLAP_TOLERANCE = 1e-9  # a disc resting on a wall sits at its radius up to rounding


@dataclass(frozen=True)
class DoorCenters:
    """One door center (y) or a sequence of 1 to 3 of them, each between the borders; a sorted tuple."""

    def __str__(self) -> str:
        return f"the y of 1 to {MAX_DOORS} door centers, each {Number(BORDER, WORLD - BORDER)}"

    def __call__(self, value: Any) -> tuple[float, ...]:
        if isinstance(value, np.ndarray):
            value = value.tolist()
        centers = list(value) if isinstance(value, (list, tuple)) else [value] if is_real(value) else None
        if centers is None or not 1 <= len(centers) <= MAX_DOORS:
            raise ValueError(f"is not 1 to {MAX_DOORS} door centers")
        return tuple(sorted(Number(BORDER, WORLD - BORDER)(c) for c in centers))


def wall_pieces(centers: tuple[float, ...], half_size: float) -> tuple[tuple[float, float, float, float], ...]:
    """The solid pieces ``(x0, x1, y0, y1)`` of the middle wall: border to border, minus the doors."""
    pieces, y = [], BORDER
    for center in centers:
        if center - half_size > y:
            pieces.append((WALL_LEFT, WALL_RIGHT, y, center - half_size))
        y = max(y, center + half_size)
    if y < WORLD - BORDER:
        pieces.append((WALL_LEFT, WALL_RIGHT, y, WORLD - BORDER))
    return tuple(pieces)


def border_pieces() -> tuple[tuple[float, float, float, float], ...]:
    """The border wall as four disjoint rectangles ``(x0, x1, y0, y1)``."""
    far = WORLD - BORDER
    return ((0.0, WORLD, 0.0, BORDER), (0.0, WORLD, far, WORLD), (0.0, BORDER, BORDER, far), (far, WORLD, BORDER, far))


class TwoRoomEnv(WorldModelEnv):
    env_name = "TwoRoom"
    state_names = ("agent_x", "agent_y")
    state_low = (0.0, 0.0)
    state_high = (WORLD, WORLD)
    proprio_names = ("agent_x", "agent_y")
    action_names = ("dx", "dy")
    success_text = f"distance from the agent to the goal position < {SUCCESS_DISTANCE:g}"
    # The radius and speed bound the motion's substeps (speed / (radius / 2)): at most 25 here.
    VARIATIONS = {
        "agent_color": Factor((255, 0, 0), "agent color", Color()),
        "wall_color": Factor((0, 0, 0), "border and middle wall color", Color()),
        "background_color": Factor((255, 255, 255), "floor color", Color()),
        "target_color": Factor((0, 255, 0), "color of the goal dot (drawn only with show_target)", Color()),
        "show_target": Factor(False, "draw the goal position as a dot in every frame", Flag()),
        "agent_radius": Factor(7.0, "agent disc radius (units); must be smaller than door_half_size", Number(3.5, 14.0)),
        "speed": Factor(5.0, "distance moved per step at full action (units)", Number(1.0, 30.0)),
        "door_centers": Factor((49.0,), f"y of each door's center, 1 to {MAX_DOORS} doors", DoorCenters()),
        "door_half_size": Factor(14.0, "half the height of every door (units); must exceed agent_radius", Number(4.0, 28.0)),
    }
    RECOLOR_TARGETS = {"agent": "agent_color", "walls": "wall_color", "background": "background_color"}
    PRESETS = {
        "standard": {},
        "three_doors": {"door_centers": (49.0, 112.0, 175.0)},
        "low_door": {"door_centers": (175.0,)},
        "narrow_door": {"door_half_size": 9.0},
        "large_agent": {"agent_radius": 10.0},
        "fast_agent": {"speed": 8.0},
        "recolored": {"agent_color": (30, 144, 255), "wall_color": (47, 79, 79), "background_color": (230, 230, 250)},
        "visible_target": {"show_target": True},
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._pixel_size = (WORLD / self.width, WORLD / self.height)
        self._walls_key: tuple | None = None
        self._walls_image: np.ndarray | None = None
        self._apply_variation()  # the geometry, so that states can be checked before the first reset

    @classmethod
    def _check_together(cls, variation):
        radius, half_size = variation["agent_radius"], variation["door_half_size"]
        if half_size <= radius:
            raise ValueError(
                f"{cls.env_name}: variation door_half_size={half_size:g} with agent_radius={radius:g}: a door must be wider than the "
                "agent (half size > radius), or the goal room is unreachable"
            )
        for center in variation["door_centers"]:
            if center - half_size < BORDER or center + half_size > WORLD - BORDER:
                raise ValueError(
                    f"{cls.env_name}: variation door_centers={variation['door_centers']}: the door at y={center:g} (half size "
                    f"{half_size:g}) must lie between the borders, y in [{BORDER:g}, {WORLD - BORDER:g}]"
                )

    def _apply_variation(self):
        v = self.variation
        self._radius, self._speed = v["agent_radius"], v["speed"]
        self._pieces = wall_pieces(v["door_centers"], v["door_half_size"])
        walls_key = (v["wall_color"], v["background_color"], self._pieces)
        if walls_key != self._walls_key:
            self._walls_key, self._walls_image = walls_key, self._draw_walls()
        self._scene: np.ndarray | None = None  # walls plus the target, drawn once the goal is known

    # ------------------------------------------------------------------ physics
    def _sample_state(self, rng):
        return self._random_position(rng, left_room=bool(rng.integers(2)))

    def _sample_goal_state(self, rng, start):
        return self._random_position(rng, left_room=start[0] >= WALL_X)

    def _random_position(self, rng: np.random.Generator, left_room: bool) -> np.ndarray:
        r = self._radius
        x_low, x_high = (BORDER + r, WALL_LEFT - r) if left_room else (WALL_RIGHT + r, WORLD - BORDER - r)
        return np.array([rng.uniform(x_low, x_high), rng.uniform(BORDER + r, WORLD - BORDER - r)], dtype=np.float64)

    def _load_state(self, state):
        self._x, self._y = float(state[0]), float(state[1])

    def get_state(self):
        return np.array([self._x, self._y], dtype=np.float64)

    def _simulate(self, action):
        dx, dy = self._speed * float(action[0]), self._speed * float(action[1])
        # Substeps shorter than the radius keep the center out of every wall, so no tunnelling.
        substeps = max(1, math.ceil(math.hypot(dx, dy) / (0.5 * self._radius)))
        x, y, touched = self._x, self._y, False
        for _ in range(substeps):
            x, y, hit = self._push_out(x + dx / substeps, y + dy / substeps)
            touched |= hit
        self._x, self._y = (x, y) if touched else (self._x + dx, self._y + dy)

    def _push_out(self, x: float, y: float) -> tuple[float, float, bool]:
        """Move the disc at (x, y) the shortest way out of any wall it overlaps; say whether it did."""
        r, hit = self._radius, False
        for x0, x1, y0, y1 in self._pieces:
            near_x, near_y = min(max(x, x0), x1), min(max(y, y0), y1)
            distance = math.hypot(x - near_x, y - near_y)
            if distance < r:
                x, y, hit = near_x + (x - near_x) * r / distance, near_y + (y - near_y) * r / distance, True
        low, high = BORDER + r, WORLD - BORDER - r
        if not (low <= x <= high and low <= y <= high):
            x, y, hit = min(max(x, low), high), min(max(y, low), high), True
        return x, y, hit

    def clearance(self, x: float, y: float) -> float:
        """Distance from the disc at (x, y) to the nearest wall; negative when they overlap."""
        r = self._radius
        gap = min(x - BORDER, WORLD - BORDER - x, y - BORDER, WORLD - BORDER - y) - r
        for x0, x1, y0, y1 in self._pieces:
            gap = min(gap, math.hypot(x - min(max(x, x0), x1), y - min(max(y, y0), y1)) - r)
        return gap

    def _check_state(self, state, what):
        s = super()._check_state(state, what)
        if self.clearance(s[0], s[1]) < -OVERLAP_TOLERANCE:
            raise ValueError(
                f"{self.env_name}: {what} puts the agent (a disc of radius {self._radius:g}) at ({s[0]:g}, {s[1]:g}), "
                f"where it overlaps a wall; the free area is x, y in [{BORDER + self._radius:g}, {WORLD - BORDER - self._radius:g}] "
                f"clear of the middle wall x in [{WALL_LEFT:g}, {WALL_RIGHT:g}] outside its doors"
            )
        return s

    # ------------------------------------------------------------------ task
    def _evaluate(self, state, goal_state):
        distance = self.goal_distance(state, goal_state)
        success = distance < SUCCESS_DISTANCE
        return success, float(success), {"pos_error": distance}

    def goal_cost(self, state, goal_state):
        # The walking distance: across the wall it goes through the door with the shortest way round.
        position, goal = np.asarray(state[:2]), np.asarray(goal_state[:2])
        if (position[0] < WALL_X) == (goal[0] < WALL_X):
            return self.goal_distance(state, goal_state) / SUCCESS_DISTANCE
        doors = [np.array([WALL_X, center]) for center in self.variation["door_centers"]]
        way = min(np.linalg.norm(position - door) + np.linalg.norm(door - goal) for door in doors)
        return float(way) / SUCCESS_DISTANCE

    @staticmethod
    def goal_distance(state, goal_state) -> float:
        return math.hypot(state[0] - goal_state[0], state[1] - goal_state[1])

    # ------------------------------------------------------------------ pixels
    def _draw(self, state):
        if self._scene is None:
            self._scene = self._draw_scene()
        frame = self._scene.copy()
        stamp_disc(frame, (float(state[0]), float(state[1])), self._radius, self.variation["agent_color"], self._pixel_size)
        return frame

    def _draw_walls(self) -> np.ndarray:
        image = np.empty((self.height, self.width, 3), np.uint8)
        image[...] = self.variation["background_color"]
        fill_rects(image, border_pieces() + self._pieces, self.variation["wall_color"], self._pixel_size)  # disjoint pieces
        return image

    def _draw_scene(self) -> np.ndarray:
        scene = self._walls_image.copy()
        if self.variation["show_target"] and self._goal_state is not None:
            goal = (float(self._goal_state[0]), float(self._goal_state[1]))
            stamp_disc(scene, goal, self._radius, self.variation["target_color"], self._pixel_size)
        return scene

    # ------------------------------------------------------------------ perturbations
    def _perturb_teleport(self, target: str = "agent", position=None):
        if not isinstance(target, str) or target != "agent":
            raise ValueError(f"{self.env_name}: teleport target={shown(target)} is unknown; it teleports only the 'agent'")
        before = self.get_state()
        if position is None:
            position = self._random_position(self.np_random, left_room=before[0] >= WALL_X)
        self._load_state(self._check_state(position, "the teleport position"))
        return {"target": target, "before": before.tolist(), "after": self.get_state().tolist()}
