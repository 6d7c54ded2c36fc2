"""PHYRE-style ball-tier templates: parametrized scene families, 100 seeded tasks each, and an oracle.

Every scene is a room (a floor and two side walls, 4 px thick walls) holding one mechanism; half
the tasks of a template are mirrored left-right. Task ``i`` of template ``t`` is drawn from
``np.random.default_rng([t's number, i])``, so it is the same on every machine.

==========================  ======================================================================
``ball_off_shelf``          knock the green ball off a shelf onto the purple floor
``ball_into_jar``           knock the green ball off a shelf into the purple jar below it
``ball_onto_blue_ball``     knock the green ball off a shelf into a narrow jar holding a blue ball
``ball_into_blue_jar``      knock the green ball off a shelf into the (movable) blue jar
``ball_onto_platform``      knock the green ball off a shelf onto the lower purple platform
``stick_onto_box``          topple the standing green stick onto the purple box
``stick_onto_blue_box``     topple the standing green stick onto the (movable) blue box
``stick_into_jar``          topple the standing green stick onto the purple jar
``stick_off_ledge``         topple the green stick standing on a ledge onto the purple floor
``stick_onto_ball``         topple the standing green stick onto the purple (fixed) ball
==========================  ======================================================================

Each task is solvable by some valid ball and is not solved by doing nothing: tests/test_phyre.py
checks all 100 tasks of every template, and so does ``python -m wmbench.envs.phyre.templates``.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from wmbench.envs.phyre.simulation import SIZE, Scene, Thing, ball, box, jar, simulate, stick, wall

TASKS_PER_TEMPLATE = 100
WALL = 4.0
FLOOR = 6.0  # the floor's top


def room(floor_color: str = "black") -> list[Thing]:
    floor = box(SIZE / 2, FLOOR / 2, SIZE, FLOOR, floor_color)
    return [floor, wall(0, FLOOR, WALL, SIZE), wall(SIZE - WALL, FLOOR, SIZE, SIZE)]


def shelf_with_ball(rng: np.random.Generator) -> tuple[list[Thing], float, float]:
    """A shelf from the left wall with the green ball near its free end; returns the things, the
    shelf's free end x and its top y."""
    end, top = rng.uniform(70, 130), rng.uniform(70, 150)
    radius = rng.uniform(8, 15)
    shelf = wall(WALL, top - 6, end, top)
    green = ball(end - radius - rng.uniform(4, 30), top + radius, radius, "green")
    return [shelf, green], end, top


def ball_off_shelf(rng):
    things, _, _ = shelf_with_ball(rng)
    return room("purple") + things


def jar_below_shelf(rng, color: str) -> list[Thing]:
    """The shelf with the green ball, and a jar of ``color`` on the floor past the shelf's end."""
    things, end, _ = shelf_with_ball(rng)
    width = rng.uniform(60, 90)
    return room() + things + [jar(end + rng.uniform(0, 20) + width / 2, FLOOR, width, rng.uniform(15, 30), color)]


def ball_into_jar(rng):
    return jar_below_shelf(rng, "purple")


def ball_onto_blue_ball(rng):
    things, end, _ = shelf_with_ball(rng)
    green_radius, blue_radius = things[1].width / 2, rng.uniform(9, 14)
    thickness = 5.0
    width = 2 * blue_radius + 1.5 * green_radius + 2 * thickness  # too narrow for both balls side by side
    left = end + rng.uniform(0, 15)
    blue = ball(left + thickness + blue_radius + rng.uniform(0, 1.5 * green_radius), FLOOR + thickness + blue_radius, blue_radius, "blue")
    return room() + things + [jar(left + width / 2, FLOOR, width, 2 * blue_radius + 4, "black", thickness), blue]


def ball_into_blue_jar(rng):
    return jar_below_shelf(rng, "blue")


def ball_onto_platform(rng):
    things, end, top = shelf_with_ball(rng)
    height = rng.uniform(20, top - 40)
    return room() + things + [box((end - 20 + SIZE - WALL) / 2, FLOOR + height / 2, SIZE - WALL - end + 20, height, "purple")]


def standing_stick(rng) -> tuple[Thing, float]:
    """The green stick on the floor; returns it and its x."""
    height = rng.uniform(50, 90)
    x = rng.uniform(40, 120)
    return stick(x, FLOOR, height, "green"), x


def box_beside_stick(rng, color: str) -> list[Thing]:
    """The standing green stick, and a box of ``color`` within its reach when it falls."""
    green, x = standing_stick(rng)
    width, height = rng.uniform(20, 40), rng.uniform(15, 35)
    gap = rng.uniform(10, 0.6 * green.height)
    return room() + [green, box(x + 3 + gap + width / 2, FLOOR + height / 2, width, height, color)]


def stick_onto_box(rng):
    return box_beside_stick(rng, "purple")


def stick_onto_blue_box(rng):
    return box_beside_stick(rng, "blue")


def stick_into_jar(rng):
    green, x = standing_stick(rng)
    width = rng.uniform(40, 70)
    gap = rng.uniform(10, 0.5 * green.height)
    return room() + [green, jar(x + 3 + gap + width / 2, FLOOR, width, rng.uniform(15, 30), "purple")]


def stick_off_ledge(rng):
    end, top = rng.uniform(70, 130), rng.uniform(40, 110)
    height = rng.uniform(40, 70)
    green = stick(end - 3 - rng.uniform(2, 12), top, height, "green")
    return room("purple") + [wall(WALL, top - 6, end, top), green]


def stick_onto_ball(rng):
    green, x = standing_stick(rng)
    radius = rng.uniform(10, 20)
    gap = rng.uniform(10, 0.6 * green.height)
    return room() + [green, ball(x + 3 + gap + radius, FLOOR + radius, radius, "purple")]


TEMPLATES = {
    builder.__name__: builder
    for builder in (
        ball_off_shelf,
        ball_into_jar,
        ball_onto_blue_ball,
        ball_into_blue_jar,
        ball_onto_platform,
        stick_onto_box,
        stick_onto_blue_box,
        stick_into_jar,
        stick_off_ledge,
        stick_onto_ball,
    )
}


def mirrored(thing: Thing) -> Thing:
    return replace(thing, x=SIZE - thing.x, angle=-thing.angle)


def task(template: str | int, index: int) -> Scene:
    """Task ``index`` (0-99) of ``template`` (its name or number)."""
    names = list(TEMPLATES)
    number = template if isinstance(template, (int, np.integer)) else names.index(template) if template in TEMPLATES else None
    if number is None or not 0 <= number < len(names):
        raise ValueError(f"template={template!r}: choose a number 0-{len(names) - 1} or one of {names}")
    if not 0 <= index < TASKS_PER_TEMPLATE:
        raise ValueError(f"task index={index}: each template has tasks 0-{TASKS_PER_TEMPLATE - 1}")
    rng = np.random.default_rng([int(number), int(index)])
    things = TEMPLATES[names[number]](rng)
    if rng.random() < 0.5:
        things = [mirrored(t) for t in things]
    return Scene(tuple(things))


def task_id(template: str, index: int) -> str:
    return f"{template}:{index:03d}"


def parse_task_id(task_id: str) -> tuple[str, int]:
    template, index = task_id.split(":")
    return template, int(index)


# The oracle's grids (x, y, r): a coarse one (x every 2 px), then a finer one (x every px, other
# heights and sizes). x is searched outward from the green object, where solutions usually are.
GRIDS = (
    (np.arange(1, 128) / 128, (0.9, 0.7, 0.5), (0.5, 0.25, 0.8)),
    (np.arange(1, 256) / 256, (0.95, 0.8, 0.6), (0.1, 0.25, 1.0)),
)


def solve(scene: Scene) -> tuple[float, float, float] | None:
    """A valid action that solves ``scene``, found by simulating grids of placements, or None."""
    goal_x = scene.things[scene.goal_index].x / SIZE
    for grid_x, grid_y, grid_r in GRIDS:
        xs = sorted(grid_x, key=lambda x: abs(x - goal_x))
        for x, r, y in itertools.product(xs, grid_r, grid_y):
            action = (float(x), y, r)
            if simulate(scene, action, stop_when_decided=True).solved:
                return action
    return None


if __name__ == "__main__":
    import time

    for name in TEMPLATES:
        start, failures = time.perf_counter(), []
        for index in range(TASKS_PER_TEMPLATE):
            scene = task(name, index)
            if simulate(scene, stop_when_decided=True).solved or solve(scene) is None:
                failures.append(index)
        print(f"{name:22s} {time.perf_counter() - start:6.1f} s  failing tasks: {failures or 'none'}")
