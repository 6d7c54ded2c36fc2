"""wmbench: environments, datasets and MPC evaluation for action-conditioned world models.

Importing the package registers every environment with gymnasium (``wmbench/<Name>-v0``) and
sets headless rendering defaults, so nothing needs a display::

    import gymnasium as gym
    import wmbench

    env = gym.make("wmbench/PushT-v0", resolution=96)
    obs, info = env.reset(seed=0)
"""

import os

# Headless by default: these must be set before MuJoCo or SDL (pygame) load, and a user's own
# setting always wins.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # silences ALSA errors on machines with no sound card
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from wmbench.envs import ENVS, env_id, make, register_envs  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ENVS", "env_id", "make", "register_envs", "export", "load_model", "__version__"]

register_envs()


def __getattr__(name):
    # The checkpoint functions need torch (the 'torch' extra): imported on first use, so that
    # making envs and collecting data never import it.
    if name in ("export", "load_model"):
        from wmbench import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'wmbench' has no attribute {name!r}")
