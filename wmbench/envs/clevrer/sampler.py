"""The seeded scene sampler: chain reactions, built by simulating the scene as it grows.

A scene is planned as a few *units*, then built one object at a time. Each new object is meant to
cause one event; the scene so far is simulated with it (a full run over the video and the
predictive window), and the object is kept only if that event happens (within ``TIME_TOLERANCE``
of its planned time) and nothing before it changed. So the events below are real MuJoCo
collisions, and each event knows its cause: the remove-one-object questions have answers.

=============  =================================================================================
chain          a striker (entering from outside the view, or starting in view, moving) hits a
               resting object, which is sent into a second resting object placed on its path,
               and so on: A hits B which hits C (and C hits D). B-C is caused by A
strike         an object entering from outside the view hits an object already in the scene at
               a planned time: mostly one that is moving then (an object entering into a moving
               object, whose motion was caused by an earlier collision)
late strike    the last object of a scene of 4 or more objects is a strike timed in the predictive
               window (``LATE``), on any object in view then: what happens after the video
=============  =================================================================================

A scene of ``n`` objects (5 or 6 by default; 3-6 when asked) is one chain of 3 (of 4 with
probability ``LONG_CHAIN`` when there is room), then strikes in the observed window on objects
that an earlier collision set moving and carried ``MIN_DISPLACEMENT`` away, then the late strike.
An object whose unit fails ``TRIES`` times is placed at rest in a free spot where, if one of
``TRIES`` spots allows, it changes no event. Object ids are drawn up front, so an id says nothing
about an object's role, and the scene is simulated in its final id order while it is built.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from wmbench.envs.clevrer.annotations import PREDICTIVE_FRAMES
from wmbench.envs.clevrer.physics import Trajectory, simulate
from wmbench.envs.clevrer.scene import (
    CAMERA,
    COLORS,
    FOOTPRINT_RADII,
    FRAMES,
    GAP,
    GRAVITY,
    HALF_HEIGHTS,
    MATERIALS,
    MAX_OBJECTS,
    SHAPES,
    STAGE,
    STAGE_MARGIN,
    Scene,
    SceneObject,
)

MIN_OBJECTS = 5  # sampled by default: fewer objects leave too few bystanders and causes for the explanatory questions
LONG_CHAIN = 0.5  # probability of a chain of 4 rather than 3 when the scene has room for it
FIRST_HIT = (0.3, 2.0)  # s: when the first chain's striker hits
OBSERVED_HIT = (0.8, 4.2)  # s: when the other observed-window units hit
LATE = (5.05, 6.1)  # s: the late strike, inside the predictive window (5 to 6.25 s)
IN_VIEW_HEAD = 0.5  # probability that a chain's striker starts in view rather than entering
IN_VIEW_RUN = (0.4, 1.6)  # m a striker starting in view runs before it hits
CHAIN_ARRIVAL_SPEED = (1.2, 2.2)  # m/s a chain's striker has when it hits: enough to send the next object on
STRIKE_ARRIVAL_SPEED = (0.6, 1.4)  # m/s of a strike
MIN_LINK_SPEED = 0.25  # m/s: a chain link must still move this fast where the next object waits for it
HEADING_SPREAD = math.radians(30)  # a chain's striker comes within this of the heading that sends its target across the stage
MIN_DISPLACEMENT = 0.6  # m a struck moving object has travelled by then: far enough that, had it never been set moving, the striker misses
LINK_ANGLE = math.radians(35)  # the next link sits up to this far off the moving link's heading
AIM_OFFSET = 0.5  # a striker passes its target's center at most this fraction of their touching distance aside
TIME_TOLERANCE = 0.3  # s between a planned event and the simulated one
FRAME_SLACK = 2  # frames an earlier event may move by when an object is added
BALL_SLOWING = 0.55  # a rolling ball slows at about 0.55 mu g over its first seconds (a block: mu g)
MAX_SPEED = 3.5  # m/s, of any object at the start
TRIES = 12  # placements tried per object before it is placed at rest
HEADINGS = 60  # headings tried per placement for a start that fits


class _Draft:
    """The scene under construction: objects by final id (``None``: not placed yet) and their run."""

    def __init__(self, kinds: list[tuple[str, str, str, float]]):
        self.kinds = kinds
        self.objects: list[SceneObject | None] = [None] * len(kinds)
        self.trajectory: Trajectory | None = None

    def make(self, i: int, xy, velocity=(0.0, 0.0)) -> SceneObject:
        shape, color, material, yaw = self.kinds[i]
        return SceneObject(shape, color, material, float(xy[0]), float(xy[1]), yaw, float(velocity[0]), float(velocity[1]))

    def run(self, objects: list[SceneObject | None]) -> Trajectory:
        """The simulation of ``objects`` (``None`` left out) over the video and the predictive window."""
        filler = next(obj for obj in objects if obj is not None)
        scene = Scene(tuple(obj or filler for obj in objects))
        return simulate(scene, removed=[i for i, obj in enumerate(objects) if obj is None], frames=FRAMES + PREDICTIVE_FRAMES)

    def fits(self, i: int, xy) -> bool:
        """Whether object ``i`` at ``xy`` keeps ``GAP`` from every placed object's start."""
        shape = self.kinds[i][0]
        return all(math.dist(xy, (o.x, o.y)) >= FOOTPRINT_RADII[shape] + FOOTPRINT_RADII[o.shape] + GAP
                   for o in self.objects if o is not None)

    def reach(self, i: int, j: int) -> float:
        """Center distance at which objects ``i`` and ``j`` touch (bounding circles)."""
        return FOOTPRINT_RADII[self.kinds[i][0]] + FOOTPRINT_RADII[self.kinds[j][0]]

    def slowing(self, i: int) -> float:
        """m/s^2: how fast object ``i`` slows while sliding or rolling alone."""
        shape, _, material, _ = self.kinds[i]
        return MATERIALS[material].friction * GRAVITY * (BALL_SLOWING if shape == "sphere" else 1.0)


def sample_scene(seed: int | np.random.Generator, objects: int | None = None) -> Scene:
    """A CLEVRER-like scene of chain reactions (see the module docstring), the same for the same
    seed (an ``int`` or a numpy ``Generator``). ``objects``: 3-6, default 5 or 6 (even odds)."""
    rng = np.random.default_rng(seed)
    count = int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1)) if objects is None else objects
    if not 3 <= count <= MAX_OBJECTS:
        raise ValueError(f"sample_scene objects={objects!r}: give 3 to {MAX_OBJECTS} (or None)")
    looks = list(itertools.product(SHAPES, COLORS, MATERIALS))
    kinds = [(*looks[k], float(rng.uniform(0, 2 * math.pi))) for k in rng.choice(len(looks), count, replace=False)]
    draft = _Draft(kinds)
    ids = [int(i) for i in rng.permutation(count)]  # the order objects are placed in

    observed = count - 1 if count >= 4 else count  # the last object of 4 or more is the late strike
    length = 4 if observed >= 4 and rng.random() < LONG_CHAIN else 3  # the others strike moving objects
    _chain(rng, draft, ids[:length], FIRST_HIT)
    for striker in ids[length:observed]:
        _strike(rng, draft, striker, OBSERVED_HIT, moving=True)
    if count >= 4:
        _strike(rng, draft, ids[-1], LATE, moving=False)
    return Scene(tuple(draft.objects))


# ---------------------------------------------------------------------- units
def _chain(rng: np.random.Generator, draft: _Draft, members: list[int], window) -> None:
    """``members[0]`` strikes ``members[1]`` (resting in a free spot) in ``window`` (a striker
    starting in view hits when its run takes it there); each next member waits on the path of the
    one before."""
    head, target = members[0], members[1]
    for _ in range(TRIES):
        spot = _free_spot(rng, draft, target)
        across = np.subtract(rng.uniform(*STAGE), spot)  # the target is sent toward a random point of the stage
        start = _approach(rng, draft, head, target, spot, rng.uniform(*window), CHAIN_ARRIVAL_SPEED,
                          in_view=rng.random() < IN_VIEW_HEAD, others=[spot], toward=math.atan2(across[1], across[0]))
        if start is None:
            continue
        trial = list(draft.objects)
        trial[target] = draft.make(target, spot)
        trial[head] = draft.make(head, *start[:2])
        if _accept(draft, trial, head, target, start[2]):
            for previous, member in zip(members[1:], members[2:]):
                _link(rng, draft, previous, member)
            return
    for member in members:
        _at_rest(rng, draft, member)


def _link(rng: np.random.Generator, draft: _Draft, mover: int, member: int) -> None:
    """Place ``member`` at rest where ``mover``, set moving by an earlier collision, runs into it."""
    trajectory = draft.trajectory
    hits = [c.time for c in trajectory.collisions if mover in c.object_ids]
    if not hits:
        _at_rest(rng, draft, member)
        return
    dt = trajectory.frame_time
    speed = np.hypot(*trajectory.velocity[:, mover, :2].T)
    frames = [f for f in range(int((hits[0] + 0.15) / dt) + 1, len(speed))
              if speed[f] >= MIN_LINK_SPEED and f * dt <= LATE[1] - 0.3 and _on_stage(draft, mover, trajectory.position[f, mover])]
    for _ in range(TRIES):
        if not frames:
            break
        frame = frames[rng.integers(len(frames))]
        heading = math.atan2(*trajectory.velocity[frame, mover, 1::-1]) + rng.uniform(-LINK_ANGLE, LINK_ANGLE)
        spot = trajectory.position[frame, mover, :2] + draft.reach(mover, member) * np.array([math.cos(heading), math.sin(heading)])
        if not (_on_stage(draft, member, spot) and draft.fits(member, spot)):
            continue
        trial = list(draft.objects)
        trial[member] = draft.make(member, spot)
        if _accept(draft, trial, member, mover, frame * dt):
            return
    _at_rest(rng, draft, member)


def _strike(rng: np.random.Generator, draft: _Draft, striker: int, window, moving: bool) -> None:
    """``striker`` enters the view and hits a placed object in ``window``: one moving then when
    ``moving`` and there is one, else any object in view then."""
    trajectory, dt = draft.trajectory, draft.trajectory.frame_time
    first, end = int(math.ceil(window[0] / dt)), min(int(window[1] / dt), len(trajectory.position) - 1)
    in_view = CAMERA.in_view(trajectory.position[first:end + 1], margin=STAGE_MARGIN)  # [frames, objects]
    speed = np.hypot(trajectory.velocity[first:end + 1, :, 0], trajectory.velocity[first:end + 1, :, 1])
    hit_before = np.zeros_like(in_view)  # [frames, objects]: the object has collided by then
    for c in trajectory.collisions:
        hit_before[max(c.frame - first, 0):, list(c.object_ids)] = True
    moved = np.linalg.norm(trajectory.position[first:end + 1, :, :2] - trajectory.position[:1, :, :2], axis=-1) >= MIN_DISPLACEMENT
    candidates = np.argwhere(in_view & hit_before & moved & (speed >= MIN_LINK_SPEED)) if moving else np.empty((0, 2), int)
    if not len(candidates):
        candidates = np.argwhere(in_view)
    for _ in range(TRIES if len(candidates) else 0):
        frame, target = candidates[rng.integers(len(candidates))]
        frame = int(frame) + first
        start = _approach(rng, draft, striker, int(target), trajectory.position[frame, target, :2], frame * dt, STRIKE_ARRIVAL_SPEED,
                          in_view=False, others=[])
        if start is None:
            continue
        trial = list(draft.objects)
        trial[striker] = draft.make(striker, *start[:2])
        if _accept(draft, trial, striker, int(target), frame * dt):
            return
    _at_rest(rng, draft, striker)


def _at_rest(rng: np.random.Generator, draft: _Draft, i: int) -> None:
    """Place ``i`` at rest in a free spot where, if one of ``TRIES`` does, it changes no event."""
    for _ in range(TRIES):
        trial = list(draft.objects)
        trial[i] = draft.make(i, _free_spot(rng, draft, i))
        trajectory = draft.run(trial)
        if draft.trajectory is None or _events(trajectory) == _events(draft.trajectory):
            break
    draft.objects, draft.trajectory = trial, trajectory


# ---------------------------------------------------------------------- checks
def _events(trajectory: Trajectory) -> list[tuple[tuple[int, int], int]]:
    return [(c.object_ids, c.frame) for c in trajectory.collisions]


def _same_history(trial: Trajectory, draft: Trajectory, new: int, end: int) -> bool:
    """Whether the collisions of ``trial`` before frame ``end``, less those of ``new``, are those of ``draft``:
    the same pairs in the same order, each within ``FRAME_SLACK`` frames (one more body shifts MuJoCo's numbers a little)."""
    ours = [e for e in _events(trial) if new not in e[0] and e[1] < end]
    theirs = [e for e in _events(draft) if e[1] < end]
    return len(ours) == len(theirs) and all(a[0] == b[0] and abs(a[1] - b[1]) <= FRAME_SLACK for a, b in zip(ours, theirs))


def _accept(draft: _Draft, trial: list[SceneObject | None], new: int, partner: int, planned: float) -> bool:
    """Keep ``trial`` (the draft plus object ``new``) if ``new``'s first collision is with ``partner``
    about the ``planned`` time and no other event before it changed."""
    trajectory = draft.run(trial)
    own = [c for c in trajectory.collisions if new in c.object_ids]
    if not own or set(own[0].object_ids) != {new, partner} or abs(own[0].time - planned) > TIME_TOLERANCE:
        return False
    if draft.trajectory is not None and not _same_history(trajectory, draft.trajectory, new, own[0].frame):
        return False
    draft.objects, draft.trajectory = trial, trajectory
    return True


# ---------------------------------------------------------------------- geometry
def _on_stage(draft: _Draft, i: int, xy) -> bool:
    return bool(CAMERA.in_view((xy[0], xy[1], HALF_HEIGHTS[draft.kinds[i][0]]), margin=STAGE_MARGIN))


def _free_spot(rng: np.random.Generator, draft: _Draft, i: int) -> tuple[float, float]:
    """A uniform point of the stage, well inside the view, away from the placed objects' starts
    (six objects leave the stage plenty of room)."""
    while True:
        xy = rng.uniform(*STAGE)
        if _on_stage(draft, i, xy) and draft.fits(i, xy):
            return float(xy[0]), float(xy[1])


def _approach(rng: np.random.Generator, draft: _Draft, i: int, target: int, at, hit: float, arrival_speed, in_view: bool, others,
              toward: float | None = None):
    """A start ``(xy, velocity, hit)`` that brings object ``i`` to touch ``target`` (at ``at``
    then), still moving at ``arrival_speed``: from outside the view ``hit`` seconds into the video,
    or from a spot in view ``IN_VIEW_RUN`` away, at the time that run takes; None when no heading
    gives a start that fits. ``toward``: a heading to keep within ``HEADING_SPREAD`` (else any)."""
    reach, slowing = draft.reach(i, target), draft.slowing(i)
    shape = draft.kinds[i][0]
    for _ in range(HEADINGS):
        heading = rng.uniform(0, 2 * math.pi) if toward is None else toward + rng.uniform(-HEADING_SPREAD, HEADING_SPREAD)
        direction = np.array([math.cos(heading), math.sin(heading)])
        side = rng.uniform(-AIM_OFFSET, AIM_OFFSET)
        aim = np.asarray(at) + side * reach * np.array([-direction[1], direction[0]])
        contact = aim - math.sqrt(1 - side**2) * reach * direction  # its center when they touch
        arrival = rng.uniform(*arrival_speed)
        if in_view:
            travel = rng.uniform(*IN_VIEW_RUN)
            speed = math.sqrt(arrival**2 + 2 * slowing * travel)
            hit = (speed - arrival) / slowing
        else:
            hidden = 0.0  # far enough back to start wholly out of view, and a bit more
            while _visible(contact - hidden * direction, shape):
                hidden += 0.05
            travel = max(arrival * hit + slowing * hit**2 / 2, hidden + 0.3)
            speed = travel / hit + slowing * hit / 2
        start = contact - travel * direction
        if (speed <= MAX_SPEED and draft.fits(i, start) and all(math.dist(start, o) >= reach + GAP for o in others)
                and CAMERA.in_view((*contact, HALF_HEIGHTS[shape])) and (not in_view or _on_stage(draft, i, start))):
            return (float(start[0]), float(start[1])), tuple(float(v) for v in speed * direction), hit
    return None


def _visible(xy, shape: str) -> bool:
    """Whether any part of an object of ``shape`` resting at ``xy`` could be in view."""
    radius, half_height = FOOTPRINT_RADII[shape], HALF_HEIGHTS[shape]
    corners = [(xy[0] + dx, xy[1] + dy, z) for dx in (-radius, radius) for dy in (-radius, radius) for z in (0.0, 2 * half_height)]
    return bool(CAMERA.in_view(corners).any())
