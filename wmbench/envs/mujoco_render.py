"""Offscreen MuJoCo rendering, fast on a CPU (Mesa's llvmpipe) and reused for a whole process.

What costs time on a software renderer is drawing the scene more than once per frame. By
default the renderer therefore switches off the shadow pass, multisampling and the floor
reflection (each can be switched back on), and then leaves out of the scene every geom whose
bounding sphere lies outside the camera's view (with no shadows and no reflections such a geom
cannot change a pixel; the frame is identical, tested). High-poly meshes can be simplified to
the detail a pixel can show (``nearest_mesh``, see ``simplify_meshes``). A 224 px dm_control
Reacher frame then takes about 1 ms instead of 14-24 ms, an ogbench cube-single step about 20 ms
instead of 130-150, and nothing a world model needs to see is lost.

One OpenGL context serves every renderer of the process, so the context and shader set-up (the
"first-render cost", 0.3-1 s) is paid once per process, not once per environment or reset.
It is made on the first frame, not when an environment is built: a process may build
environments and then fork (gymnasium's ``AsyncVectorEnv`` builds one to read its spaces), and
each child draws with its own. OpenGL does not survive a fork made after that first frame, so a
child of such a process refuses to draw (a clear error instead of a hang); a ``spawn`` child is
fine. A renderer is copied (``copy.deepcopy``, ``pickle``) without its OpenGL objects: the copy
makes its own on its first frame.
"""

from __future__ import annotations

import atexit
import os

import mujoco
import numpy as np

HIDDEN_GROUP = 5  # a geom group the default visual options do not draw
_context: mujoco.GLContext | None = None
_context_pid: int | None = None


def gl_context() -> mujoco.GLContext:
    """The process's OpenGL context, created on first use and made current.

    The backend is the one ``MUJOCO_GL`` names now (wmbench sets ``egl`` unless you chose), even
    if mujoco was imported earlier, with no ``MUJOCO_GL``, and picked its windowed default.
    """
    global _context, _context_pid
    if _context is not None and _context_pid != os.getpid():
        raise RuntimeError(
            f"this process was forked from process {_context_pid} after that one had drawn a MuJoCo frame; "
            "OpenGL cannot be used in such a child (it would hang). Start child processes with 'spawn' "
            "(gym.make_vec(..., vectorization_mode='async', vector_kwargs={'context': 'spawn'}), or "
            "multiprocessing.get_context('spawn')), or fork before the parent draws its first frame"
        )
    if _context is None:
        backend = os.environ.get("MUJOCO_GL", "egl").lower()
        try:
            if backend == "egl":
                from mujoco.egl import GLContext
            elif backend == "osmesa":
                from mujoco.osmesa import GLContext
            elif os.environ.get("DISPLAY"):
                GLContext = mujoco.GLContext
            else:
                raise RuntimeError("a windowed backend needs a display and there is none")
            # The size only matters to OSMesa's default buffer; we draw into an offscreen one.
            _context, _context_pid = GLContext(64, 64), os.getpid()
            atexit.register(_release_context)  # runs before the EGL display's own exit handler (LIFO)
        except Exception as error:  # EGL and OSMesa fail with different types
            raise RuntimeError(
                f"cannot create an OpenGL context for MuJoCo (MUJOCO_GL={backend}): {error}. "
                "MUJOCO_GL=egl needs Mesa's EGL (Debian: libegl1 libgl1-mesa-dri); "
                "MUJOCO_GL=osmesa needs libosmesa6"
            ) from error
    _context.make_current()
    return _context


def _clear_gl_errors() -> None:
    """Drop errors an earlier frame left, so MuJoCo does not report them against a new context.

    OpenGL refuses a spotlight cutoff above 90 degrees (ogbench's cube scene has 100) with
    GL_INVALID_VALUE and keeps drawing, as ogbench's own renderer does.
    """
    from OpenGL import GL  # imported after the backend chose PyOpenGL's platform

    while GL.glGetError() != GL.GL_NO_ERROR:
        pass


def _release_context() -> None:
    global _context
    _context = None  # freed now, while the display is still up, not at interpreter teardown


class MujocoRenderer:
    """Draws one camera of a model into uint8 (height, width, 3) frames, reusing its buffers.

    The renderer owns ``model`` (its copy of the scene: colors, lights and camera may be
    changed between frames; call ``upload_texture`` after changing a texture's pixels). Its
    OpenGL objects are made on its first frame, in the process that draws.
    """

    _DRAWING = ("_context", "_scene", "_option", "_camera", "_viewport")

    def __init__(
        self,
        model: mujoco.MjModel,
        height: int,
        width: int,
        camera: str,
        *,
        shadows: bool = False,
        multisample: bool = False,
        reflection: bool = False,
        nearest_mesh: float | None = None,
    ):
        self.model = model
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        if not shadows:
            model.vis.quality.shadowsize = 0  # no shadow map: the shadow pass is skipped
        if not multisample:
            model.vis.quality.offsamples = 0
        self._camera_id = model.camera(camera).id
        half_height = np.tan(np.radians(model.cam_fovy[self._camera_id]) / 2)
        if nearest_mesh is not None:
            pixel = 2 * nearest_mesh * half_height / height  # a pixel's footprint where meshes come closest
            simplify_meshes(model, cell=pixel / 2)
        self._shadows, self._reflection = shadows, reflection
        self._cull = not shadows and not reflection  # off-view geoms can still cast shadows or reflect
        self._half_tangents = np.array([half_height * width / height, half_height])
        self._buffer = np.empty((height, width, 3), np.uint8)
        # OpenGL and scene objects: made on the first frame (`_start`), never copied
        self._context: mujoco.MjrContext | None = None
        self._scene = self._option = self._camera = self._viewport = None

    def __getstate__(self) -> dict:
        """What ``copy.deepcopy`` and ``pickle`` copy: everything but the drawing objects, which the
        copy makes on its own first frame (OpenGL objects cannot be copied or pickled)."""
        return {**self.__dict__, **dict.fromkeys(self._DRAWING)}

    def _start(self) -> None:
        """Make the OpenGL context of this model and the scene objects it draws with."""
        _clear_gl_errors()
        self._context = mujoco.MjrContext(self.model, mujoco.mjtFontScale.mjFONTSCALE_100)
        self._scene = mujoco.MjvScene(self.model, maxgeom=max(1000, 2 * self.model.ngeom))
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = self._shadows
        self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = self._reflection
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._camera.fixedcamid = self._camera_id
        self._viewport = mujoco.MjrRect(0, 0, self._buffer.shape[1], self._buffer.shape[0])

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """A new frame of ``data`` (positions must be current: ``mj_forward`` or a step)."""
        gl_context()
        if self._context is None:
            self._start()
        if self._cull:
            groups = self.model.geom_group.copy()
            self.model.geom_group[~self._in_view(data)] = HIDDEN_GROUP
        mujoco.mjv_updateScene(self.model, data, self._option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL, self._scene)
        if self._cull:
            self.model.geom_group[:] = groups
        # Renderers share the process's context, so bind this one's framebuffer every time.
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        mujoco.mjr_render(self._viewport, self._scene, self._context)
        mujoco.mjr_readPixels(self._buffer, None, self._viewport, self._context)
        return self._buffer[::-1].copy()  # OpenGL's rows run bottom-up

    def _in_view(self, data: mujoco.MjData) -> np.ndarray:
        """Per geom: whether its bounding sphere reaches into the camera's view frustum."""
        cam = self._camera_id
        # geom centers in the camera frame: x right, y up, looking down -z
        local = (data.geom_xpos - data.cam_xpos[cam]) @ data.cam_xmat[cam].reshape(3, 3)
        depth = -local[:, 2]
        radius = self.model.geom_rbound
        # signed distance beyond each side plane (|x| = tan * depth), normalized
        beyond = (np.abs(local[:, :2]) - self._half_tangents * depth[:, None]) / np.sqrt(1 + self._half_tangents**2)
        outside = (depth < -radius) | np.any(beyond > radius[:, None], axis=1)
        return ~outside | (radius == 0)  # planes have no bounding sphere: always drawn

    def upload_texture(self, texture_id: int) -> None:
        if self._context is not None:  # a context made later loads every texture as it is then
            gl_context()
            mujoco.mjr_uploadTexture(self.model, self._context, texture_id)

    def close(self) -> None:
        if self._context is not None:
            gl_context()
            self._context.free()
            self._context = None


def simplify_meshes(model: mujoco.MjModel, cell: float) -> None:
    """Merge the mesh vertices of ``model`` that share a cube of side ``cell`` (metres), in place.

    Each vertex moves to one vertex of its cell (at most ``cell * sqrt(3)`` away); faces that
    collapse are dropped and the others keep their normals. With ``cell`` under a pixel's
    footprint the picture keeps its shapes while a high-poly mesh loses most of its faces, which
    is what a software renderer spends its time on (ogbench's arm: 185k faces).
    """
    for mesh in range(model.nmesh):
        first_vert, first_face = model.mesh_vertadr[mesh], model.mesh_faceadr[mesh]
        verts = model.mesh_vert[first_vert : first_vert + model.mesh_vertnum[mesh]]
        _, representative, cell_of = np.unique(np.floor(verts / cell).astype(np.int64), axis=0, return_index=True, return_inverse=True)
        faces = slice(first_face, first_face + model.mesh_facenum[mesh])
        merged = representative[cell_of.ravel()][model.mesh_face[faces]]
        keep = np.flatnonzero((merged[:, 0] != merged[:, 1]) & (merged[:, 1] != merged[:, 2]) & (merged[:, 0] != merged[:, 2]))
        kept = slice(first_face, first_face + len(keep))
        model.mesh_face[kept] = merged[keep]
        model.mesh_facenormal[kept] = model.mesh_facenormal[faces][keep]
        if model.mesh_texcoordnum[mesh] > 0:
            model.mesh_facetexcoord[kept] = model.mesh_facetexcoord[faces][keep]
        model.mesh_facenum[mesh] = len(keep)


def texture_pixels(model: mujoco.MjModel, name: str) -> np.ndarray:
    """A writable (height, width, channels) view of texture ``name``'s pixels in ``model``."""
    tex = model.texture(name)
    size = int(tex.height[0] * tex.width[0] * tex.nchannel[0])
    start = int(tex.adr[0])
    return model.tex_data[start : start + size].reshape(int(tex.height[0]), int(tex.width[0]), int(tex.nchannel[0]))


def tint(pixels: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """``pixels`` scaled per channel so that their mean color is ``rgb``; the pattern is kept."""
    mean = pixels[..., :3].reshape(-1, 3).mean(axis=0)
    out = pixels.astype(np.float64)
    out[..., :3] *= np.asarray(rgb, np.float64) / np.maximum(mean, 1.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
