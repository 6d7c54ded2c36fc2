"""PHYRE-style puzzles (ball tier): place one red ball, then watch the physics solve the task or not.

==================  ============================================================================
action              ``Box(-1, 1, (3,))``: ``(x, y, r)`` mapped linearly to PHYRE's ``[0, 1]^3``
                    (``(a + 1) / 2``): the red ball's centre ``(256 x, 256 y)`` px and radius
                    ``2 + 30 r`` px. Only the first step's action counts: it places the ball;
                    an invalid ball (overlapping an object or leaving the scene) ends the episode
                    with ``info["invalid"] = True``, nothing simulated. Every later step advances
                    ``stride`` physics steps (default 60: one frame per second; ``env.dt`` is
                    ``stride / 60`` s and ``render_fps`` ``60 / stride``) and ignores its action
state (77)          template number, task index, physics steps simulated, consecutive steps the
                    goal relation has held, red ball radius (0 before it is placed); then 12
                    slots of (x, y, angle, vx, vy, angular velocity), one per object in the
                    scene's order, the red ball last, unused slots zero. Pixels, y up
proprio (1)         the red ball radius (0 until placed): the agent's only "body"
pixels              the scene drawn at ``resolution`` (default 224) in PHYRE's colors on white
success             the green object has touched a blue or purple one for 180 consecutive
                    physics steps (3 s), and stays solved after; reward 1 on success. A PHYRE goal is a relation, not a
                    state: ``goal_state`` is the state where the oracle's ball has just solved
                    the task (found by ``solve``, cached per task), so starting there succeeds at
                    once; the rule itself reads only the state's touch counter
termination         on success (unless ``terminate_on_success=False``) or an invalid action;
                    truncation after 17 s of simulation (17 steps at stride 60)
reset               variation ``template`` (name or number) and ``task`` (0-99) select the task;
                    unset, each is drawn from the seed. ``split`` ("within" or "cross") with
                    ``fold`` (0-4) draws only the training tasks of that fold (fold seed 0, as
                    ``wmbench phyre eval``'s default): the data a model may learn from before its
                    evaluation on the test tasks. ``options["state"]`` loads a state, its task
                    included
perturb             ``teleport(index=, position=, angle=)``: moves a dynamic object (default the
                    green one, to a random spot above the scene's middle); ``recolor(target=
                    "goal"|"action_ball"|"dynamic_target"|"static_target"|"background")``;
                    ``pass_through(index=, steps=)``: object ``index`` (default: the static
                    one under the green object, else the floor) collides with nothing for the
                    next ``steps`` physics steps (default 30): things fall through it (a
                    teleport during it keeps it). Perturbation effects are not part of the state
copies              ``copy.deepcopy`` and ``pickle`` rebuild the pymunk world by loading the last
                    loaded state and replaying the physics steps and pass-throughs since (exact:
                    pymunk's own copy, or loading ``get_state()``, drops the contacts the world
                    carries from step to step)
==================  ============================================================================
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymunk

from wmbench.envs.base import Color, Factor, Number, OneOf, OrNone, Point, WorldModelEnv
from wmbench.envs.phyre import simulation as sim
from wmbench.envs.phyre.splits import FOLDS, split_tasks
from wmbench.envs.phyre.templates import TASKS_PER_TEMPLATE, TEMPLATES, parse_task_id, solve, task

SLOTS = 12
BOUND = 1e5  # of positions, angles and velocities: 17 s of free fall reach about 36,000 px and 4,300 px/s
HEADER = ("template", "task", "steps", "touch_steps", "ball_radius")
SLOT_FIELDS = ("x", "y", "angle", "vx", "vy", "angular_velocity")


def world_state(world: sim.World, template: int, index: int, steps: int) -> np.ndarray:
    """The env's state vector (see the table above) of ``world``, task ``index`` of ``template``."""
    state = np.zeros(len(HEADER) + SLOTS * len(SLOT_FIELDS))
    state[:4] = template, index, steps, world.touch_steps
    if len(world.scene.things) > len(task(template, index).things):
        state[4] = world.scene.things[-1].width / 2
    state[len(HEADER) :].reshape(SLOTS, len(SLOT_FIELDS))[: len(world.bodies)] = np.concatenate([world.poses(), world.velocities()], axis=1)
    return state


@functools.lru_cache(maxsize=None)
def solved_state(template: int, index: int) -> np.ndarray:
    """The state at which the oracle's ball has solved the task: the goal relation has just held for
    3 s. A PHYRE goal is a relation, not a state; this is one state satisfying it, so that starting
    there succeeds at once, as the env contract asks of every goal state."""
    scene = task(template, index)
    world = sim.World(scene.with_ball(solve(scene)))
    steps = 0
    while world.touch_steps < sim.GOAL_STEPS:
        world.step()
        steps += 1
    return world_state(world, template, index, steps)


@dataclass(frozen=True)
class Template:
    """A template by number or by name; its number."""

    def __str__(self) -> str:
        return f"a template number from 0 to {len(TEMPLATES) - 1} or its name"

    def __call__(self, value: Any) -> int:
        if isinstance(value, str):
            if value not in TEMPLATES:
                raise ValueError(f"is not a template name ({', '.join(TEMPLATES)})")
            return list(TEMPLATES).index(value)
        return Number(0, len(TEMPLATES) - 1, integer=True)(value)


class PhyreEnv(WorldModelEnv):
    env_name = "Phyre"
    state_names = HEADER + tuple(f"{field}_{slot}" for slot in range(SLOTS) for field in SLOT_FIELDS)
    state_low = (0.0, 0.0, 0.0, 0.0, 0.0) + (-BOUND,) * (SLOTS * len(SLOT_FIELDS))
    state_high = (len(TEMPLATES) - 1, TASKS_PER_TEMPLATE - 1, sim.MAX_STEPS, sim.MAX_STEPS, sim.RADIUS_RANGE[1]) + (BOUND,) * (
        SLOTS * len(SLOT_FIELDS)
    )
    proprio_names = ("ball_radius",)
    action_names = ("x", "y", "r")
    success_text = "the green object touches a blue or purple one for 3 s (180 physics steps)"
    PERTURBATIONS = ("teleport", "recolor", "pass_through")
    VARIATIONS = {
        "template": Factor(None, "the task's template", OrNone(Template(), "drawn from the seed")),
        "task": Factor(None, "the task's index in its template", OrNone(Number(0, TASKS_PER_TEMPLATE - 1, integer=True), "drawn from the seed")),
        "split": Factor(None, "draw tasks only from the training side of this split", OrNone(OneOf(("within", "cross")), "every task")),
        "fold": Factor(0, "the fold of `split` whose training tasks are drawn", Number(0, FOLDS - 1, integer=True)),
        **{f"{name}_color": Factor(rgb, f"color of {name} objects", Color()) for name, rgb in sim.COLORS.items()},
        "background_color": Factor(sim.BACKGROUND, "background color", Color()),
    }
    RECOLOR_TARGETS = {
        "goal": "green_color",
        "action_ball": "red_color",
        "dynamic_target": "blue_color",
        "static_target": "purple_color",
        "background": "background_color",
    }
    PRESETS = {"standard": {}, "recolored": {"green_color": "Orange", "purple_color": "Teal", "background_color": "Beige"}}
    metadata = {"render_modes": ["rgb_array"], "render_fps": 1.0}  # at the default stride; an env's own is 1 / dt

    def __init__(self, stride: int = sim.FPS, **kwargs):
        self.stride = self._argument("stride", Number(1, sim.MAX_STEPS, integer=True), stride)
        super().__init__(**kwargs)
        self.metadata = {**self.metadata, "render_fps": sim.FPS / self.stride}
        self._world: sim.World | None = None
        self._loaded_state: np.ndarray | None = None  # the state last loaded
        self._history: list[tuple] = []  # since then: ("advance",) and ("pass_through", index, steps), what a copy replays
        self._steps = 0
        self._invalid = False
        self._ghost: tuple[int, int] | None = None  # (object, physics steps left) of a pass_through

    @classmethod
    def _check_together(cls, variation):
        if variation["split"] is not None and (variation["template"] is not None or variation["task"] is not None):
            raise ValueError(
                f"{cls.env_name}: variation split={variation['split']!r} draws the task from a fold's training side; "
                "leave `template` and `task` unset with it"
            )

    # ------------------------------------------------------------------ physics
    def _sample_state(self, rng):
        v = self.variation
        if v["split"] is not None:
            train, _ = split_tasks(v["split"], v["fold"], seed=0)
            name, index = parse_task_id(train[int(rng.integers(len(train)))])
            template = list(TEMPLATES).index(name)
        else:
            template = v["template"] if v["template"] is not None else int(rng.integers(len(TEMPLATES)))
            index = v["task"] if v["task"] is not None else int(rng.integers(TASKS_PER_TEMPLATE))
        scene = task(template, index)
        state = np.zeros(len(self.state_names))
        state[:2] = template, index
        self._slots(state)[: len(scene.things), :3] = sim.initial_poses(scene)
        return state

    def _sample_goal_state(self, rng, start):
        return solved_state(int(start[0]), int(start[1])).copy()

    @staticmethod
    def _slots(state: np.ndarray) -> np.ndarray:
        return state[len(HEADER) :].reshape(SLOTS, len(SLOT_FIELDS))

    def _load_state(self, state):
        template, index = int(state[0]), int(state[1])
        if state[0] != template or not 0 <= template < len(TEMPLATES) or state[1] != index or not 0 <= index < TASKS_PER_TEMPLATE:
            raise ValueError(f"{self.env_name}: state holds template={state[0]}, task={state[1]}; no such task")
        scene = task(template, index)
        slots = self._slots(state)
        if state[4] > 0:
            scene = sim.Scene(scene.things + (sim.ball(slots[len(scene.things), 0], slots[len(scene.things), 1], state[4], "red"),))
        world = sim.World(scene)
        n = len(scene.things)
        world.set_bodies(slots[:n, :3], slots[:n, 3:])
        world.touch_steps = int(state[3])
        self._world, self._steps, self._loaded_state = world, int(state[2]), state.copy()
        self._invalid, self._ghost, self._history = False, None, []

    def get_state(self):
        # pymunk keeps the centre of gravity and derives the origin: until the next physics step
        # the state is the one loaded, exactly.
        if self._steps == self._loaded_state[2]:
            return self._loaded_state.copy()
        return world_state(self._world, *self._task_id, self._steps)

    @property
    def dt(self) -> float:
        return self.stride / sim.FPS

    @property
    def _task_id(self) -> tuple[int, int]:
        return int(self._goal_state[0]), int(self._goal_state[1])

    @property
    def placed(self) -> bool:
        return len(self._world.scene.things) > len(task(*self._task_id).things)

    def is_valid_action(self, action: np.ndarray) -> bool:
        """Whether ``action`` (in [-1, 1]^3, checked and clipped as ``step`` does) would place a valid ball in the current scene."""
        return not self.placed and sim.is_valid(self._world.scene, (self._check_action(action) + 1.0) / 2.0)

    def _simulate(self, action):
        self._invalid = False
        if not self.placed:
            phyre_action = (action + 1.0) / 2.0
            if not sim.is_valid(self._world.scene, phyre_action):
                self._invalid = True
                return
            state = self.get_state()
            x, y, radius = sim.action_ball(phyre_action)
            state[4] = radius
            self._slots(state)[len(self._world.scene.things), :3] = x, y, 0.0
            self._load_state(state)
            return
        self._advance()

    def _advance(self) -> None:
        """``stride`` physics steps (fewer at the end of the simulation)."""
        self._history.append(("advance",))
        for _ in range(min(self.stride, sim.MAX_STEPS - self._steps)):
            self._world.step()
            self._steps += 1
            if self._ghost is not None:
                index, left = self._ghost
                self._ghost = (index, left - 1) if left > 1 else None
                if self._ghost is None:
                    for shape in self._world.shapes[index]:
                        shape.filter = pymunk.ShapeFilter()

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated or self._invalid, self._steps >= sim.MAX_STEPS, info

    def _info(self, success: bool, diagnostics: dict) -> dict:
        return {**super()._info(success, diagnostics), "invalid": self._invalid}

    # ------------------------------------------------------------------ task
    def _evaluate(self, state, goal_state):
        success = state[3] >= sim.GOAL_STEPS
        return bool(success), float(success), {"touch_steps": int(state[3]), "seconds": state[2] / sim.FPS}

    def goal_cost(self, state, goal_state):
        return 1.0 - min(state[3] / sim.GOAL_STEPS, 1.0)

    # ------------------------------------------------------------------ pixels
    def _draw(self, state):
        template, index = int(state[0]), int(state[1])
        scene = task(template, index)
        n = len(scene.things)
        slots = self._slots(np.asarray(state))
        if state[4] > 0:
            scene = sim.Scene(scene.things + (sim.ball(slots[n, 0], slots[n, 1], state[4], "red"),))
        colors = {name: self.variation[f"{name}_color"] for name in sim.COLORS} | {"background": self.variation["background_color"]}
        return sim.draw(scene, slots[: len(scene.things), :3], (self.height, self.width), colors)

    # ------------------------------------------------------------------ perturbations
    def _perturb_teleport(self, index: int | None = None, position=None, angle=None):
        world = self._world
        index = world.goal if index is None else self._argument("teleport index", Number(0, len(world.bodies) - 1, integer=True), index)
        if not world.scene.things[index].dynamic:
            raise ValueError(f"{self.env_name}: teleport index={index} is a static object; choose a dynamic one (the green one is {world.goal})")
        if position is not None:
            position = self._argument("teleport position", Point(("x", "y"), (0.0, 0.0), (sim.SIZE, sim.SIZE)), position)
        if angle is not None:
            angle = self._argument("teleport angle", Number(-np.pi, np.pi), angle)
        state = self.get_state()
        slot = self._slots(state)[index]
        before = slot[:3].tolist()
        slot[:2] = self.np_random.uniform([40, 128], [216, 220]) if position is None else position
        slot[2] = slot[2] if angle is None else angle
        ghost = self._ghost
        self._load_state(self._check_state(state, "teleported state"))
        if ghost is not None:  # a pass-through goes on in the rebuilt world
            self._pass_through(*ghost)
        return {"index": index, "before": before, "after": slot[:3].tolist()}

    def _perturb_pass_through(self, index: int | None = None, steps: int = 30):
        world = self._world
        if index is None:
            bottom = min(shape.bb.bottom for shape in world.shapes[world.goal])  # before any step there are no contacts
            below = world.space.point_query((world.bodies[world.goal].position.x, bottom - 1.0), 0.0, pymunk.ShapeFilter())
            static = [world.bodies.index(q.shape.body) for q in below if not world.scene.things[world.bodies.index(q.shape.body)].dynamic]
            index = static[0] if static else 0
        else:
            index = self._argument("pass_through index", Number(0, len(world.bodies) - 1, integer=True), index)
        steps = self._argument("pass_through steps", Number(1, sim.MAX_STEPS, integer=True), steps)
        self._pass_through(index, steps)
        return {"index": index, "steps": steps}

    def _pass_through(self, index: int, steps: int) -> None:
        """Object ``index`` collides with nothing for the next ``steps`` physics steps."""
        for shape in self._world.shapes[index]:
            shape.filter = pymunk.ShapeFilter(categories=0, mask=0)
        self._ghost = (index, steps)
        self._history.append(("pass_through", index, steps))

    # ------------------------------------------------------------------ copies
    def __getstate__(self) -> dict:
        """What ``copy.deepcopy`` and ``pickle`` copy: everything but the pymunk world, which the copy
        rebuilds exactly (see the docstring's ``copies``)."""
        return {**self.__dict__, "_world": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self._loaded_state is not None:
            self._load_state(self._loaded_state)
            for event, *arguments in state["_history"]:
                if event == "advance":
                    self._advance()
                else:
                    self._pass_through(*arguments)
            self._invalid = state["_invalid"]
