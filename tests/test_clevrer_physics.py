"""CLEVRER scenes: sampling, deterministic physics, collision and view events, counterfactuals, annotations."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import mujoco
import numpy as np
import pytest

import wmbench  # noqa: F401  (headless defaults)
from wmbench.envs.clevrer import CAMERA, Scene, SceneObject, annotate, counterfactuals, render, sample_scene, simulate, view_events
from wmbench.envs.clevrer.annotations import PREDICTIVE_FRAMES
from wmbench.envs.clevrer.physics import Simulation
from wmbench.envs.clevrer.scene import FOOTPRINT_RADII, FRAMES, GAP

SEEDS = range(30)


@pytest.fixture(scope="module")
def sampled():
    """30 sampled scenes and their trajectories over the video and the predictive window (about 30 s: the sampler simulates as it builds)."""
    return [(scene, simulate(scene, frames=scene.frames + PREDICTIVE_FRAMES)) for scene in map(sample_scene, SEEDS)]


def surface_distances(scene, trajectory, frames) -> np.ndarray:
    """``[len(frames), n, n]``: the distances between the objects' surfaces (negative: overlapping)."""
    sim = Simulation(scene.objects, scene.frame_time)
    geoms = [sim.model.geom(f"object{i}").id for i in range(len(scene.objects))]
    out = np.zeros((len(frames), len(geoms), len(geoms)))
    for k, frame in enumerate(frames):
        sim.qpos[:, :3], sim.qpos[:, 3:] = trajectory.position[frame], trajectory.quaternion[frame]
        mujoco.mj_kinematics(sim.model, sim.data)
        for a in range(len(geoms)):
            for b in range(a):
                out[k, a, b] = out[k, b, a] = mujoco.mj_geomDistance(sim.model, sim.data, geoms[a], geoms[b], 10.0, None)
    return out


DIGEST = """
import hashlib, numpy as np, wmbench
from wmbench.envs.clevrer import render, sample_scene, simulate
def digest(seed):
    scene = sample_scene(seed)
    trajectory = simulate(scene, frames=40)
    h = hashlib.sha256(repr(scene).encode() + repr(trajectory.collisions).encode())
    for array in (trajectory.position, trajectory.quaternion, trajectory.velocity, trajectory.angular_velocity, trajectory.in_view):
        h.update(array.tobytes())
    for frame in (0, 20, 39):
        h.update(render(scene, trajectory, frame, resolution=(32, 48)).tobytes())
    return h.hexdigest()
"""


def test_the_same_seed_gives_the_same_bytes_in_another_process():
    namespace = {}
    exec(DIGEST, namespace)
    here = namespace["digest"](5)
    env = {**os.environ, "PYTHONHASHSEED": "3"}
    out = subprocess.run([sys.executable, "-c", DIGEST + "print(digest(5))"], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == here
    assert namespace["digest"](6) != here


def test_sampled_scenes_have_5_or_6_objects_apart_some_entering_the_view(sampled):
    counts, outside, entered = set(), 0, 0
    for scene, trajectory in sampled:
        counts.add(len(scene.objects))
        assert 5 <= len(scene.objects) <= 6
        for i, a in enumerate(scene.objects):
            for b in scene.objects[:i]:
                assert math.dist((a.x, a.y), (b.x, b.y)) >= FOOTPRINT_RADII[a.shape] + FOOTPRINT_RADII[b.shape] + GAP - 1e-9
        starts_out = np.flatnonzero(~trajectory.in_view[0])
        outside += len(starts_out)
        entered += sum(bool(trajectory.in_view[:, i].any()) for i in starts_out)
        assert any(obj.speed > 0 for obj in scene.objects)
    assert counts == {5, 6}
    assert outside >= 30  # the late striker and the other strikers enter from outside the view
    # Each is kept only if it touched its target in view in the sampler's simulation, which the scene replays.
    assert entered >= outside - 2
    assert sample_scene(3) == sample_scene(3) and sample_scene(3) != sample_scene(4)
    assert len(sample_scene(3, objects=6).objects) == 6 and len(sample_scene(3, objects=3).objects) == 3
    with pytest.raises(ValueError, match="3 to 6"):
        sample_scene(0, objects=7)


def test_sampled_scenes_collide_often(sampled):
    collisions = np.array([sum(c.frame < scene.frames for c in trajectory.collisions) for scene, trajectory in sampled])
    # Every scene is a chain (A hits B which hits C) plus strikes, each kept only if its collision
    # happened in the sampler's own simulation. These 30 seeds measure 100% with a collision, 87%
    # with three or more, 3.8 on average; the bounds fail if chains stop forming.
    assert (collisions >= 1).mean() >= 0.9
    assert (collisions >= 3).mean() >= 0.6
    assert collisions.mean() >= 2.5


def test_sampled_events_spread_over_the_video_and_the_predictive_window(sampled):
    def share(frames_of, first, end):
        """The share of videos with an event whose frame is in [first, end)."""
        return np.mean([any(first <= f < end for f in frames_of(trajectory)) for _, trajectory in sampled])

    def collision_frames(trajectory):
        return [c.frame for c in trajectory.collisions]

    def enter_frames(trajectory):
        return [e["frame_id"] for e in view_events(trajectory.in_view) if e["type"] == "enter"]

    end = FRAMES + PREDICTIVE_FRAMES
    # Chains start in the first 2 s, strikes land up to 4.2 s, and the last object strikes in the
    # predictive window. These 30 seeds measure 0.50, 1.00, 1.00 and 1.00; the bounds sit below, so they
    # fail if the schedule stops reaching the second half or the predictive window.
    assert share(collision_frames, 64, FRAMES) >= 0.35
    assert share(collision_frames, FRAMES, end) >= 0.8  # something happens for the predictive questions
    assert share(collision_frames, 0, end) >= 0.95
    assert share(enter_frames, 32, end) >= 0.8


def test_every_collision_is_a_real_contact_and_every_overlap_a_collision(sampled):
    checked = 0
    for scene, trajectory in sampled[:8]:
        dt, frames = scene.frame_time, len(trajectory.position)
        distances = surface_distances(scene, trajectory, range(frames))
        for c in trajectory.collisions:
            (a, b), f = c.object_ids, c.frame
            # The event's frame is the first at or after the first touch: since then the two can
            # have drifted apart by at most their relative speed times a frame.
            speed = max(np.linalg.norm(trajectory.velocity[g, a] - trajectory.velocity[g, b]) for g in (f - 1, f) if g >= 0)
            assert distances[f, a, b] <= speed * dt + 0.01
            for i in (a, b):  # the contact point lies on both objects
                reach = FOOTPRINT_RADII[scene.objects[i].shape] + speed * dt + 0.01
                assert np.linalg.norm(np.subtract(c.location, trajectory.position[f, i])[:2]) <= reach
            checked += 1
        pairs = {c.object_ids for c in trajectory.collisions}
        for a in range(len(scene.objects)):
            for b in range(a + 1, len(scene.objects)):
                closest = distances[:, a, b].min()
                if closest < -1e-3:
                    assert (a, b) in pairs  # overlapping at a frame: they collided
                fastest = np.linalg.norm(trajectory.velocity[:, a] - trajectory.velocity[:, b], axis=-1).max()
                if closest > fastest * dt:
                    assert (a, b) not in pairs  # never within a frame's reach of each other: no event
    assert checked >= 10


def test_objects_that_never_come_close_make_no_event():
    passing = Scene((SceneObject("cube", "red", "metal", -1.5, 0.0, vx=1.2), SceneObject("sphere", "blue", "rubber", 1.5, 0.6, vx=-1.2)))
    trajectory = simulate(passing)
    assert trajectory.collisions == ()
    assert np.abs(trajectory.position[:, :, 1] - [0.0, 0.6]).max() < 1e-6  # they slid past each other undisturbed
    head_on = Scene((SceneObject("cube", "red", "metal", -1.5, 0.0, vx=1.2), SceneObject("sphere", "blue", "rubber", 1.5, 0.0, vx=-1.2)))
    (collision,) = simulate(head_on).collisions
    assert collision.object_ids == (0, 1) and abs(collision.location[0]) < 0.2


def test_one_bump_is_one_event_and_a_second_bump_another(sampled):
    # 0 knocks 1 into 2, which comes head on and sends 1 back into 0: two separate 0-1 bumps.
    line = Scene(tuple(SceneObject("cube", color, "metal", x, 0.3, vx=vx) for color, x, vx in (("red", -1.0, 1.2), ("green", -0.3, 0.0), ("blue", 1.5, -1.2))))
    trajectory = simulate(line)
    assert [c.object_ids for c in trajectory.collisions] == [(0, 1), (1, 2), (0, 1)]
    scenes = [(line, trajectory), *sampled]
    repeats = 0
    for scene, trajectory in scenes:
        distances = surface_distances(scene, trajectory, range(len(trajectory.position)))
        for pair in {c.object_ids for c in trajectory.collisions}:
            frames = [c.frame for c in trajectory.collisions if c.object_ids == pair]
            for first, second in zip(frames, frames[1:]):
                assert distances[first + 1 : second, pair[0], pair[1]].max() > 0.015  # clearly parted in between, not chattering
                repeats += 1
    assert repeats >= 3  # the line, and sampled scenes too


def test_enter_and_exit_events_are_the_changes_of_the_in_view_flags(sampled):
    kinds = set()
    for scene, trajectory in sampled:
        events = view_events(trajectory.in_view)
        flags = trajectory.in_view[0].copy()
        by_frame = {}
        for e in events:
            by_frame.setdefault(e["frame_id"], []).append(e)
        for frame in range(1, len(trajectory.in_view)):
            for e in by_frame.get(frame, []):
                assert flags[e["object_id"]] == (e["type"] == "exit")
                flags[e["object_id"]] = e["type"] == "enter"
                kinds.add(e["type"])
            np.testing.assert_array_equal(flags, trajectory.in_view[frame])
    assert kinds == {"enter", "exit"}


def test_in_view_flags_agree_with_the_picture():
    for x, y, visible in ((0.0, 0.3, True), (1.5, 1.5, True), (-1.2, -0.8, True), (4.0, 0.3, False), (0.0, -3.0, False)):
        scene = Scene((SceneObject("cube", "red", "rubber", x, y),))
        trajectory = simulate(scene, frames=1)
        assert bool(trajectory.in_view[0, 0]) == visible
        picture = render(scene, resolution=(64, 96)).astype(int)
        red = (picture[..., 0] > picture[..., 1] + 40) & (picture[..., 0] > picture[..., 2] + 40)
        assert red.any() == visible
        if visible:
            column, row = CAMERA.project(trajectory.position[0, 0]) * [96 / 480, 64 / 320]
            assert red[int(row), int(column)]


def test_a_pixel_goes_back_to_the_table_point_it_shows():
    points = np.array([[0.0, 0.3, 0.15], [1.5, 1.5, 0.12], [-1.2, -0.8, 0.15]])
    for height in (0.12, 0.15):
        at_height = points[points[:, 2] == height]
        np.testing.assert_allclose(CAMERA.ground_point(CAMERA.project(at_height), height), at_height, atol=1e-9)
    assert np.isnan(CAMERA.ground_point([240.0, -2000.0], 0.15)).all()  # far above the frame, the ray looks above the horizon


def hit_and_bystander() -> Scene:
    """Object 0 slides into object 1 (at rest); object 2 slides far from both."""
    return Scene(
        (
            SceneObject("cube", "red", "metal", -1.2, 0.2, vx=1.5),
            SceneObject("cylinder", "blue", "rubber", 0.3, 0.2),
            SceneObject("sphere", "green", "rubber", -1.0, 1.6, vx=0.8),
        )
    )


def test_counterfactual_without_the_hitter_the_target_never_moves():
    scene = hit_and_bystander()
    full = simulate(scene)
    assert [c.object_ids for c in full.collisions] == [(0, 1)]
    assert np.linalg.norm(full.position[-1, 1, :2] - [0.3, 0.2]) > 0.3  # the hit moved it

    without_hitter = simulate(scene, removed={0})
    assert without_hitter.collisions == ()
    np.testing.assert_allclose(without_hitter.position[:, 1, :2], [[0.3, 0.2]] * scene.frames, atol=1e-9)
    assert np.isnan(without_hitter.position[:, 0]).all() and not without_hitter.in_view[:, 0].any()

    cf = counterfactuals(scene)
    assert cf[0] == [] and cf[1] == []
    same = cf[2]  # the bystander was involved in nothing: removing it changes no event
    assert [(c["object_ids"], c["frame_id"]) for c in same] == [([0, 1], full.collisions[0].frame)]
    np.testing.assert_allclose(same[0]["location"], full.collisions[0].location, atol=1e-6)


def test_metal_bounces_more_and_rubber_slides_less_far():
    def head_on(material):
        scene = Scene((SceneObject("cube", "red", material, -0.6, 0.0, vx=1.0), SceneObject("cube", "blue", material, 0.6, 0.0, vx=-1.0)))
        trajectory = simulate(scene, frames=60)
        frame = trajectory.collisions[0].frame
        closing = trajectory.velocity[frame - 2, 0, 0] - trajectory.velocity[frame - 2, 1, 0]
        parting = trajectory.velocity[frame + 2, 1, 0] - trajectory.velocity[frame + 2, 0, 0]
        return parting / closing

    def slide(material):
        return simulate(Scene((SceneObject("cylinder", "red", material, 0.0, 0.0, vx=1.0),))).position[-1, 0, 0]

    assert head_on("metal") > head_on("rubber") + 0.2
    assert slide("rubber") < 0.7 * slide("metal")


def test_annotation_has_clevrers_layout_and_is_json(sampled):
    scene = sample_scene(7)
    truth = annotate(scene, scene_index=7)
    assert json.loads(json.dumps(truth)) == truth  # plain Python types only
    assert truth["video_filename"] == "video_00007.mp4"
    assert truth["object_property"][0].keys() == {"object_id", "color", "material", "shape"}
    assert len(truth["motion_trajectory"]) == scene.frames
    frame = truth["motion_trajectory"][5]
    assert frame["frame_id"] == 5 and len(frame["objects"]) == len(scene.objects)
    assert frame["objects"][0].keys() == {"object_id", "location", "orientation", "velocity", "inside_camera_view"}

    observed, longer = simulate(scene), simulate(scene, frames=scene.frames + PREDICTIVE_FRAMES)
    assert [(c["object_ids"], c["frame_id"]) for c in truth["collision"]] == [(list(c.object_ids), c.frame) for c in observed.collisions]
    assert truth["collision"] and truth["counterfactual"][0]["removed_object_id"] == 0
    later = [(list(c.object_ids), c.frame) for c in longer.collisions if c.frame >= scene.frames]
    assert [(c["object_ids"], c["frame_id"]) for c in truth["predictive"]["collision"]] == later
    assert truth["predictive"]["frames"] == [scene.frames, scene.frames + PREDICTIVE_FRAMES]
    assert truth["events"] == view_events(observed.in_view)
    np.testing.assert_array_equal(longer.position[: scene.frames], observed.position)  # a longer run extends, never changes, the video
