"""PHYRE-style ball-tier templates: 25 parametrized scene families, 100 seeded tasks each, and an oracle.

Every scene is a room (a floor and two side walls, 4 px thick) holding one mechanism under a black
roof. The roof has one opening, above the spot where a falling ball sets the mechanism off, that
only a small ball passes; half the roofs have a second, decoy opening. So a solution needs aim
(the opening's few pixels) and a small ball, as PHYRE's ball tier does. Half the tasks of a template are mirrored left-right. Task ``i`` of
template ``t`` is drawn from ``np.random.default_rng([t's number, i])``, the same on every machine.

==============================  ==================================================================
``ball_off_shelf``              knock the green ball off a shelf onto the purple floor
``ball_into_jar``               knock the green ball off a shelf into the purple jar below it
``ball_onto_blue_ball``         knock the green ball off a shelf into a narrow jar holding a blue ball
``ball_into_blue_jar``          knock the green ball off a shelf into the (movable) blue jar
``ball_onto_platform``          knock the green ball off a shelf onto a lower purple platform
``stick_onto_box``              topple the standing green stick onto the purple box
``stick_onto_blue_box``         topple the standing green stick onto the (movable) blue box
``stick_into_jar``              topple the standing green stick onto the purple jar
``stick_off_ledge``             topple the green stick standing on a ledge onto the purple floor
``stick_onto_ball``             topple the standing green stick onto the purple (fixed) ball
``balls_meet_at_wall``          knock the green ball off a shelf; it rolls down a slope to the blue ball
``ball_under_wall``             push the green ball under a hanging wall onto the purple floor
``ball_into_pit``               knock the green ball off a shelf into a narrow pit with a purple floor
``stick_onto_stick``            topple the standing green stick onto a short purple post
``stick_onto_blue_ball``        topple the standing green stick onto the blue ball in a cup
``stick_into_blue_jar``         topple the standing green stick onto the (movable) blue jar
``stick_across_gap``            topple the green stick on a ledge across a gap onto the purple ledge
``ball_off_pillar``             knock the green ball off a pillar to the side of the purple floor
``ball_off_pillar_into_jar``    knock the green ball off a pillar into the purple jar beside it
``ball_off_pillar_to_blue``     knock the green ball off a pillar into the cup holding the blue ball
``stick_off_pillar``            topple the green stick standing on a pillar onto the purple floor
``domino_onto_box``             topple a gray stick into the green one, which falls onto the purple box
``domino_into_jar``             topple a gray stick into the green one, which falls onto the purple jar
``ball_off_pillar_onto_platform``  knock the green ball off a pillar onto the lower purple platform
``ball_into_jar_on_ledge``      knock the green ball off a shelf into the purple jar on a lower ledge
==============================  ==================================================================

Each task is solvable by some valid ball and is not solved by doing nothing: tests/test_phyre.py
checks all 100 tasks of every template, and so does ``python -m wmbench.envs.phyre.templates``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np

from wmbench.envs.phyre.simulation import RADIUS_RANGE, SIZE, Scene, Thing, ball, bar, box, jar, simulate, stick, wall

TASKS_PER_TEMPLATE = 100
WALL = 4.0
FLOOR = 6.0  # the floor's top
ROOF = 6.0  # the roof's thickness


def room(floor_color: str = "black") -> list[Thing]:
    floor = box(SIZE / 2, FLOOR / 2, SIZE, FLOOR, floor_color)
    return [floor, wall(0, FLOOR, WALL, SIZE), wall(SIZE - WALL, FLOOR, SIZE, SIZE)]


def split_room(split: float) -> list[Thing]:
    """A room whose floor is black left of ``split`` and purple right of it."""
    return [box(split / 2, FLOOR / 2, split, FLOOR, "black"), box((split + SIZE) / 2, FLOOR / 2, SIZE - split, FLOOR, "purple"),
            wall(0, FLOOR, WALL, SIZE), wall(SIZE - WALL, FLOOR, SIZE, SIZE)]


def top_of(thing: Thing) -> float:
    if thing.kind == "jar":
        return thing.y + thing.height
    c, s = abs(math.cos(thing.angle)), abs(math.sin(thing.angle))
    return thing.y + s * thing.width / 2 + c * thing.height / 2


def roof(rng: np.random.Generator, mechanism: list[Thing], impact_x: float, radius: float) -> tuple[list[Thing], tuple[float, float, float]]:
    """The black roof over ``mechanism`` with an opening above ``impact_x`` that a ball of ``radius``
    px falls through, and that ball, placed just above the opening (x, y, r in px)."""
    gap = 2 * radius + rng.uniform(1, 3)
    low = max(top_of(t) for t in mechanism) + 2 * radius + rng.uniform(2, 8)  # the roof's underside
    left, right = impact_x - gap / 2, impact_x + gap / 2
    bars = [wall(WALL, low, left, low + ROOF), wall(right, low, SIZE - WALL, low + ROOF)]
    decoy = rng.uniform(0, 1) < 0.5
    if decoy:  # a second opening of the same width in the longer half, away from the first
        longer = 0 if left - WALL > SIZE - WALL - right else 1
        x0, x1 = (WALL, left) if longer == 0 else (right, SIZE - WALL)
        if x1 - x0 > 2 * gap + 40:
            centre = rng.uniform(x0 + 12 + gap / 2, x1 - 20 - gap * 1.5) if longer == 0 else rng.uniform(x0 + 20 + gap * 1.5, x1 - 12 - gap / 2)
            bars[longer : longer + 1] = [wall(x0, low, centre - gap / 2, low + ROOF), wall(centre + gap / 2, low, x1, low + ROOF)]
    return bars, (impact_x, low + ROOF + radius + 2, radius)


# ---------------------------------------------------------------- mechanisms: (things, impact x, ball radius)
def shelf_with_ball(rng: np.random.Generator, top_range=(40, 110)) -> tuple[list[Thing], float, float, float]:
    """A shelf from the left wall with the green ball near its free end; returns the things, the
    shelf's free end x, its top y and the x where a falling ball knocks the green ball off."""
    end, top = rng.uniform(70, 140), rng.uniform(*top_range)
    radius = rng.uniform(8, 13)
    green = ball(end - radius - rng.uniform(3, 16), top + radius, radius, "green")
    return [wall(WALL, top - 6, end, top), green], end, top, green.x - 0.6 * radius


def small_ball(rng) -> float:
    return rng.uniform(4, 7)


def stick_ball(rng) -> float:
    """A ball heavy enough to topple a stick when it hits the top's corner."""
    return rng.uniform(9, 12)


def ball_off_shelf(rng):
    things, _, _, impact = shelf_with_ball(rng)
    return room("purple"), things, impact, small_ball(rng)


def jar_below_shelf(rng, color: str):
    things, end, _, impact = shelf_with_ball(rng)
    width = rng.uniform(45, 70)
    return room(), things + [jar(end + rng.uniform(0, 15) + width / 2, FLOOR, width, rng.uniform(15, 25), color)], impact, small_ball(rng)


def ball_into_jar(rng):
    return jar_below_shelf(rng, "purple")


def ball_onto_blue_ball(rng):
    things, end, _, impact = shelf_with_ball(rng)
    green_radius, blue_radius = things[1].width / 2, rng.uniform(9, 14)
    thickness = 5.0
    width = 2 * blue_radius + 1.5 * green_radius + 2 * thickness  # too narrow for both balls side by side
    left = end + rng.uniform(0, 10)
    blue = ball(left + thickness + blue_radius + rng.uniform(0, 1.5 * green_radius), FLOOR + thickness + blue_radius, blue_radius, "blue")
    return room(), things + [jar(left + width / 2, FLOOR, width, 2 * blue_radius + 4, "black", thickness), blue], impact, small_ball(rng)


def ball_into_blue_jar(rng):
    return jar_below_shelf(rng, "blue")


def ball_onto_platform(rng):
    things, end, top, impact = shelf_with_ball(rng, (60, 110))
    height = rng.uniform(20, top - 35)
    return room(), things + [box((end - 20 + SIZE - WALL) / 2, FLOOR + height / 2, SIZE - WALL - end + 20, height, "purple")], impact, small_ball(rng)


def standing_stick(rng, base: float = FLOOR, x_range=(40, 110), color: str = "green") -> tuple[Thing, float]:
    """A standing stick on ``base``; returns it and the x where a falling ball topples it rightwards."""
    height = rng.uniform(50, 80)
    x = rng.uniform(*x_range)
    return stick(x, base, height, color), x - 8


def heel(stick: Thing) -> Thing:
    """A low black block behind the stick's foot: the foot cannot slide back as it topples forward."""
    bottom = stick.y - stick.height / 2
    return wall(stick.x - stick.width / 2 - 10, bottom, stick.x - stick.width / 2, bottom + 5)


def stick_and(rng, target_width: float, reach: float = 0.3) -> tuple[Thing, float, float]:
    """The standing green stick, the x of a target's centre within its reach when it falls, and the impact x."""
    green, impact = standing_stick(rng)
    return green, green.x + 3 + rng.uniform(5, reach * green.height) + target_width / 2, impact


def stick_onto_box(rng, color: str = "purple"):
    width, height = rng.uniform(20, 40), rng.uniform(15, 35)
    green, x, impact = stick_and(rng, width)
    return room(), [green, heel(green), box(x, FLOOR + height / 2, width, height, color)], impact, stick_ball(rng)


def stick_onto_blue_box(rng):
    return stick_onto_box(rng, "blue")


def stick_into_jar(rng, color: str = "purple"):
    width = rng.uniform(40, 70)
    green, x, impact = stick_and(rng, width, 0.35)
    return room(), [green, heel(green), jar(x, FLOOR, width, rng.uniform(15, 30), color)], impact, stick_ball(rng)


def stick_off_ledge(rng):
    end, top = rng.uniform(70, 130), rng.uniform(40, 90)
    green, impact = standing_stick(rng, top, (end - 3 - 12, end - 5))
    return room("purple"), [wall(WALL, top - 6, end, top), green, heel(green)], impact, stick_ball(rng)


def stick_onto_ball(rng):
    radius = rng.uniform(14, 22)
    green, x, impact = stick_and(rng, 2 * radius, 0.25)
    return room(), [green, heel(green), ball(x, FLOOR + radius, radius, "purple")], impact, stick_ball(rng)


def balls_meet_at_wall(rng):
    things, end, top, impact = shelf_with_ball(rng, (75, 110))
    lower_top = top - rng.uniform(35, 55)
    x0, x1 = end - rng.uniform(10, 30), SIZE - WALL
    slope = -rng.uniform(0.05, 0.1)  # down towards the right wall
    length = (x1 - x0) / math.cos(slope)
    middle_top = lower_top + (x1 - x0) / 2 * math.tan(slope)
    ramp = bar((x0 + x1) / 2 + 3 * math.sin(slope), middle_top - 3 * math.cos(slope), length, "black", slope)
    blue_radius = rng.uniform(8, 12)
    blue_x = x1 - blue_radius - 1
    surface = lower_top + (blue_x - x0) * math.tan(slope)
    blue = ball(blue_x, surface + blue_radius / math.cos(slope) + 0.5, blue_radius, "blue")
    return room(), things + [ramp, blue], impact, small_ball(rng)


def ball_under_wall(rng):
    radius = rng.uniform(8, 12)
    wall_x = rng.uniform(90, 150)
    green = ball(wall_x - rng.uniform(20, 45), FLOOR + radius, radius, "green")
    hanging = wall(wall_x - 3, FLOOR + 2 * radius + rng.uniform(4, 10), wall_x + 3, FLOOR + 2 * radius + rng.uniform(20, 30))
    return split_room(wall_x + rng.uniform(5, 20)), [green, hanging], green.x - 0.6 * radius, stick_ball(rng)  # a push to roll far


def ball_into_pit(rng):
    things, end, top, impact = shelf_with_ball(rng, (70, 110))
    green_radius = things[1].width / 2
    pit_left = end - rng.uniform(2, 6)
    pit_right = pit_left + 2 * green_radius + rng.uniform(12, 20)
    height = rng.uniform(20, 40)
    sides = [wall(WALL, FLOOR, pit_left, FLOOR + height), wall(pit_right, FLOOR, SIZE - WALL, FLOOR + height)]
    return room("purple"), things + sides, impact, rng.uniform(6, 8)  # a firmer push: the pit is past the shelf's end


def stick_onto_stick(rng):
    green, x, impact = stick_and(rng, 6, 0.3)
    return room(), [green, heel(green), stick(x, FLOOR, rng.uniform(0.35, 0.6) * green.height, "purple")], impact, stick_ball(rng)


def stick_onto_blue_ball(rng):
    radius = rng.uniform(8, 14)
    green, x, impact = stick_and(rng, 2 * radius + 10, 0.2)
    cup = jar(x, FLOOR, 2 * radius + 10, radius, "black")
    return room(), [green, heel(green), cup, ball(x, FLOOR + 5 + radius, radius, "blue")], impact, stick_ball(rng)


def stick_into_blue_jar(rng):
    return stick_into_jar(rng, "blue")


def stick_across_gap(rng):
    end, top = rng.uniform(60, 120), rng.uniform(40, 90)
    green, impact = standing_stick(rng, top, (end - 3 - 12, end - 5))
    far = end + rng.uniform(15, 0.6 * green.height)
    purple_ledge = Thing("wall", (far + SIZE - WALL) / 2, top - 3, SIZE - WALL - far, 6, "purple", False)
    return room(), [wall(WALL, top - 6, end, top), green, heel(green), purple_ledge], impact, stick_ball(rng)


def pillar_with_ball(rng) -> tuple[list[Thing], float, float, float]:
    """A black pillar on the floor with the green ball on top; returns them, the pillar's right side x,
    the ball's radius and the impact x."""
    width, height, x = rng.uniform(8, 14), rng.uniform(30, 80), rng.uniform(50, 120)
    radius = rng.uniform(8, 12)
    green = ball(x, FLOOR + height + radius, radius, "green")
    return [wall(x - width / 2, FLOOR, x + width / 2, FLOOR + height), green], x + width / 2, radius, x - 0.6 * radius


def ball_off_pillar(rng):
    things, side, _, impact = pillar_with_ball(rng)
    return split_room(side), things, impact, small_ball(rng)


def ball_off_pillar_into_jar(rng):
    things, side, radius, impact = pillar_with_ball(rng)
    width = rng.uniform(2 * radius + 20, 2 * radius + 40)
    return room(), things + [jar(side + rng.uniform(1, 8) + width / 2, FLOOR, width, rng.uniform(12, 22), "purple")], impact, small_ball(rng)


def ball_off_pillar_to_blue(rng):
    things, side, radius, impact = pillar_with_ball(rng)
    blue_radius = rng.uniform(8, 12)
    width = 2 * blue_radius + 2 * radius + 10
    left = side + rng.uniform(1, 6)
    cup = jar(left + width / 2, FLOOR, width, blue_radius + 4, "black")
    return room(), things + [cup, ball(left + width - 5 - blue_radius - 0.5, FLOOR + 5 + blue_radius, blue_radius, "blue")], impact, small_ball(rng)


def stick_off_pillar(rng):
    width, height, x = rng.uniform(12, 20), rng.uniform(20, 60), rng.uniform(50, 120)
    green, impact = standing_stick(rng, FLOOR + height, (x, x))
    return split_room(x + width / 2 + 2), [wall(x - width / 2, FLOOR, x + width / 2, FLOOR + height), green, heel(green)], impact, stick_ball(rng)


def domino(rng, target: str):
    gray, impact = standing_stick(rng, x_range=(30, 80), color="gray")
    green = stick(gray.x + rng.uniform(0.4, 0.8) * gray.height, FLOOR, rng.uniform(40, 0.9 * gray.height), "green")
    width = rng.uniform(25, 50)
    x = green.x + 3 + rng.uniform(8, 0.5 * green.height) + width / 2
    if target == "box":
        height = rng.uniform(12, 28)
        thing = box(x, FLOOR + height / 2, width, height, "purple")
    else:
        thing = jar(x, FLOOR, width, rng.uniform(12, 25), "purple")
    return room(), [gray, heel(gray), green, heel(green), thing], impact, stick_ball(rng)


def domino_onto_box(rng):
    return domino(rng, "box")


def domino_into_jar(rng):
    return domino(rng, "jar")


def ball_off_pillar_onto_platform(rng):
    things, side, _, impact = pillar_with_ball(rng)
    pillar_top = things[0].y + things[0].height / 2
    height = rng.uniform(10, pillar_top - FLOOR - 15)
    left = side + rng.uniform(0, 10)
    return room(), things + [box((left + SIZE - WALL) / 2, FLOOR + height / 2, SIZE - WALL - left, height, "purple")], impact, small_ball(rng)


def ball_into_jar_on_ledge(rng):
    things, end, top, impact = shelf_with_ball(rng, (80, 120))
    radius = things[1].width / 2
    ledge_top = top - rng.uniform(30, 50)
    ledge_left = end + rng.uniform(-10, 10)
    width = rng.uniform(2 * radius + 20, 2 * radius + 40)
    cup = jar(max(ledge_left, end + 5) + width / 2 - rng.uniform(0, 10), ledge_top, width, rng.uniform(12, 20), "purple")
    return room(), things + [wall(ledge_left, ledge_top - 6, SIZE - WALL, ledge_top), cup], impact, small_ball(rng)


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
        balls_meet_at_wall,
        ball_under_wall,
        ball_into_pit,
        stick_onto_stick,
        stick_onto_blue_ball,
        stick_into_blue_jar,
        stick_across_gap,
        ball_off_pillar,
        ball_off_pillar_into_jar,
        ball_off_pillar_to_blue,
        stick_off_pillar,
        domino_onto_box,
        domino_into_jar,
        ball_off_pillar_onto_platform,
        ball_into_jar_on_ledge,
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
    room_things, mechanism, impact_x, radius = TEMPLATES[names[number]](rng)
    cover, (x, y, r) = roof(rng, mechanism, impact_x, radius)
    things = room_things + mechanism + cover
    if rng.random() < 0.5:
        things, x = [mirrored(t) for t in things], SIZE - x
    designed = (x / SIZE, y / SIZE, (r - RADIUS_RANGE[0]) / (RADIUS_RANGE[1] - RADIUS_RANGE[0]))
    return Scene(tuple(things), designed)


def task_id(template: str, index: int) -> str:
    return f"{template}:{index:03d}"


def parse_task_id(task_id: str) -> tuple[str, int]:
    template, index = task_id.split(":")
    return template, int(index)


# Around the designed placement: x shifts (px), slightly smaller balls, drops from higher up (px).
NEAR_X = (0, -0.5, 0.5, -1, 1, -1.5, 1.5, -2, 2, -3, 3, -4, 4)
NEAR_R = (0, -0.5, -1)
NEAR_Y = (0, 30, 60, 90)


def near_designed(scene: Scene):
    """Placements around the one ``scene``'s template was built around, nearest first."""
    x, y, r = scene.designed
    for dy, dr, dx in itertools.product(NEAR_Y, NEAR_R, NEAR_X):
        action = (x + dx / SIZE, y + dy / SIZE, r + dr / (RADIUS_RANGE[1] - RADIUS_RANGE[0]))
        if action[1] + action_radius(action) / SIZE <= 1 and action[2] >= 0:
            yield action


def action_radius(action) -> float:
    return RADIUS_RANGE[0] + (RADIUS_RANGE[1] - RADIUS_RANGE[0]) * action[2]


# The oracle's grids (x, y, r) when nothing near the design solves: a coarse one (x every 2 px),
# then a finer one (x every px, other heights and sizes); x outward from the designed x.
GRIDS = (
    (np.arange(1, 128) / 128, (0.9, 0.7, 0.5), (0.1, 0.2, 0.5)),
    (np.arange(1, 256) / 256, (0.95, 0.8, 0.6, 0.4), (0.05, 0.15, 0.25, 1.0)),
)


def solve(scene: Scene) -> tuple[float, float, float] | None:
    """A valid action that solves ``scene``, found by simulating placements near the designed one
    first, then grids of placements, or None."""
    def solves(action):
        return simulate(scene, action, stop_when_decided=True).solved

    if scene.designed is not None:
        for action in near_designed(scene):
            if solves(action):
                return action
    centre = scene.designed[0] if scene.designed is not None else scene.things[scene.goal_index].x / SIZE
    for grid_x, grid_y, grid_r in GRIDS:
        for x, r, y in itertools.product(sorted(grid_x, key=lambda x: abs(x - centre)), grid_r, grid_y):
            action = (float(x), y, r)
            if solves(action):
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
        print(f"{name:28s} {time.perf_counter() - start:6.1f} s  failing tasks: {failures or 'none'}")
