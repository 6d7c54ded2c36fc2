"""What the MuJoCo environments share: any state drawn by a renderer built once per environment.

The picture side keeps its own copy of the compiled model and its own ``MjData``: drawing a
state (the current one, a goal, any state of a dataset) writes it there, never into the
simulation, and visual variations (colors, lights, camera) are made on that copy only, so the
simulator's own bookkeeping cannot undo them. Nothing touches OpenGL before the first frame (see
``mujoco_render``), so an environment can be built in one process and used in a forked one, and
it is copied (``copy.deepcopy``, ``pickle``) with its renderer's model but not its OpenGL objects.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import mujoco
import numpy as np

from wmbench.envs.base import Flag, WorldModelEnv
from wmbench.envs.mujoco_render import MujocoRenderer, texture_pixels, tint


class MujocoEnv(WorldModelEnv):
    """Base of the MuJoCo environments; rendering options are keyword arguments.

    ``shadows``, ``multisample`` and ``reflection`` (all off by default) switch back on the
    render passes that cost most on a CPU; ``full_meshes`` draws every triangle of the meshes
    instead of the detail half a pixel can show. The scene is otherwise the package's own.
    """

    camera_name: ClassVar[str]  # the model camera the pixels come from
    nearest_mesh: ClassVar[float | None] = None  # metres: how close a mesh comes to that camera

    def __init__(
        self, *, shadows: bool = False, multisample: bool = False, reflection: bool = False, full_meshes: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        self._render_options = {
            "shadows": self._argument("shadows", Flag(), shadows),
            "multisample": self._argument("multisample", Flag(), multisample),
            "reflection": self._argument("reflection", Flag(), reflection),
            "nearest_mesh": None if self._argument("full_meshes", Flag(), full_meshes) else self.nearest_mesh,
        }
        self._renderer: MujocoRenderer | None = None
        self._scratch: mujoco.MjData | None = None

    def _pose(self, model: mujoco.MjModel, data: mujoco.MjData, state: np.ndarray) -> None:
        """Write ``state`` into ``data`` (and its markers into ``model``) for drawing."""
        raise NotImplementedError

    def _build_renderer(self, physics_model: mujoco.MjModel) -> None:
        """(Re)build the picture side from the simulation's compiled model."""
        self.close()
        render_model = copy.copy(physics_model)  # a deep copy (mj_copyModel)
        self._scratch = mujoco.MjData(render_model)
        self._renderer = MujocoRenderer(render_model, self.height, self.width, self.camera_name, **self._render_options)
        self._standard_looks: dict[str, np.ndarray] = {}  # the model's own colors and textures, before any variation
        self._texture_colors: dict[str, tuple] = {}

    def _paint(self, name: str, rgba: np.ndarray, value: tuple, default: tuple) -> None:
        """Color ``rgba`` (a view into the render model, called ``name``) ``value``; the default
        is the model's own color, bit for bit."""
        standard = self._standard_looks.setdefault(name, rgba.copy())
        rgba[:3] = standard[:3] if value == default else np.asarray(value) / 255.0

    def _tint_texture(self, name: str, value: tuple, default: tuple) -> None:
        """Scale texture ``name`` to mean color ``value``, keeping its pattern; the default restores it exactly."""
        if self._texture_colors.get(name, default) == value:
            return
        standard = self._standard_looks.setdefault(f"texture:{name}", texture_pixels(self.render_model, name).copy())
        texture_pixels(self.render_model, name)[...] = standard if value == default else tint(standard, value)
        self._renderer.upload_texture(self.render_model.texture(name).id)
        self._texture_colors[name] = value

    @property
    def render_model(self) -> mujoco.MjModel:
        """The model the pixels are drawn from (visual variations live here)."""
        return self._renderer.model

    def _draw(self, state):
        self._pose(self.render_model, self._scratch, state)
        mujoco.mj_forward(self.render_model, self._scratch)
        return self._renderer.render(self._scratch)

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
