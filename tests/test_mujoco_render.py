"""The MuJoCo renderer: what its shortcuts leave out is invisible, renderers share one context safely."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import wmbench  # noqa: F401  (headless defaults)
from wmbench.envs import mujoco_render
from wmbench.envs.cube import CubeEnv
from wmbench.envs.reacher import ReacherEnv


@pytest.mark.parametrize("make", [lambda: CubeEnv(resolution=96), lambda: ReacherEnv(resolution=96)], ids=["cube", "reacher"])
def test_leaving_out_geoms_outside_the_view_changes_no_pixel(make):
    env = make()
    renderer, culled = env._renderer, 0
    for seed in range(4):
        env.reset(seed=seed)
        for action in np.random.default_rng(seed).uniform(-1, 1, (10, *env.action_space.shape)):
            env.step(action)
        state = env.get_state()
        renderer._cull = True
        with_culling = env.render_state(state)
        culled += int((~renderer._in_view(env._scratch)).sum())
        renderer._cull = False
        np.testing.assert_array_equal(with_culling, env.render_state(state))
    if isinstance(env, CubeEnv):
        assert culled > 0  # the arm's base is out of the front camera's view: the test did compare something


def test_meshes_simplified_to_half_a_pixel_keep_the_picture():
    fast, full = CubeEnv(resolution=128), CubeEnv(resolution=128, full_meshes=True)
    assert full.render_model.mesh_facenum.sum() == full.sim.model.mesh_facenum.sum()  # every triangle
    assert fast.render_model.mesh_facenum.sum() < 0.7 * full.render_model.mesh_facenum.sum()
    for seed in range(3):
        fast.reset(seed=seed)
        for _ in range(8):
            fast.step(np.array([0.0, 0.0, -1.0, 0.0, 1.0]))  # the gripper comes down, nearer the camera
        state = fast.get_state()
        difference = np.abs(fast.render_state(state).astype(int) - full.render_state(state))
        assert difference.mean() < 0.25  # under a quarter of one intensity step, on average


def test_renderers_sharing_the_context_draw_the_same_frames_interleaved_as_alone():
    envs = [ReacherEnv(resolution=32), CubeEnv(resolution=40), ReacherEnv(resolution=(24, 48), variation="recolored")]
    alone = []
    for env in envs:
        env.reset(seed=1)
        alone.append([env.step(np.full(env.action_space.shape, 0.5))[0]["pixels"] for _ in range(3)])
    for env in envs:
        env.reset(seed=1)
    interleaved = [[], [], []]
    for _ in range(3):
        for i, env in enumerate(envs):
            interleaved[i].append(env.step(np.full(env.action_space.shape, 0.5))[0]["pixels"])
    for solo, mixed in zip(alone, interleaved):
        np.testing.assert_array_equal(np.stack(solo), np.stack(mixed))
    assert mujoco_render.gl_context() is mujoco_render.gl_context()  # one context for all of them


def test_one_renderer_serves_every_step_and_reset():
    env = ReacherEnv(resolution=32)
    renderer = env._renderer
    for seed in range(3):
        env.reset(seed=seed, options={"variation": "recolored" if seed % 2 else "standard"})
        env.step(np.zeros(2))
        env.perturb("recolor")
    assert env._renderer is renderer


def test_closed_envs_free_their_renderer_and_new_ones_work():
    for _ in range(3):
        env = ReacherEnv(resolution=32)
        frame = env.reset(seed=0)[0]["pixels"]
        env.close()
        env.close()  # twice is harmless
    assert frame.std() > 0


def run(code: str, **env_vars) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**environment, **env_vars})


def test_mujoco_imported_before_wmbench_still_renders_headless():
    out = run("import mujoco, dm_control.suite, wmbench; print(wmbench.make('reacher', resolution=32).reset(seed=0)[0]['pixels'].std() > 0)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
    assert "Exception ignored" not in out.stderr  # the context is released cleanly at exit


def test_a_backend_that_cannot_start_is_a_clear_error():
    out = run("import wmbench; wmbench.make('reacher', resolution=32).reset(seed=0)", MUJOCO_GL="glfw")
    assert out.returncode != 0
    assert "cannot create an OpenGL context for MuJoCo (MUJOCO_GL=glfw)" in out.stderr
    assert "MUJOCO_GL=egl" in out.stderr
