"""wmbench: environments, datasets and MPC evaluation for action-conditioned world models.

Importing the package registers every environment with gymnasium (``wmbench/<Name>-v0``) and
sets headless rendering defaults, so nothing needs a display::

    import gymnasium as gym
    import wmbench

    env = gym.make("wmbench/PushT-v0", resolution=96)
    obs, info = env.reset(seed=0)

The public API:

=================  ===========================================================================
``make``           ``make("pusht", **kwargs)``: an environment by short name, class name or id
``ENVS``           the registered environments: short name -> id, entry point, data policy, extra
``env_id``         any accepted name -> ``wmbench/<Name>-v0``
``register_envs``  register them with gymnasium again (importing wmbench already does)
``ModelMeta``      what a world model declares: image size, history, action block, latent shape
``export``         ``export(model, "model.wmb")``: a self-contained checkpoint, no author code
``save_spec``      ``save_spec("model.json", factory, config, weights)``: a research spec and its
                   safetensors weights, for a model class and a state_dict, checked to load
``load_model``     ``load_model("model.wmb")``: a checkpoint, checked before anything runs
``evaluate``       ``evaluate(model, env="pusht", episodes=10)``: goal reaching by MPC from the
                   frozen evaluation set, for a module in memory (during training) or a
                   checkpoint path -> ``EvalResult``; writes files only with ``out=``
``EvalResult``     what ``evaluate`` returns: success rate, interval, outcomes, timing, results
``EvalSettings``   the settings of a goal-reaching evaluation (the standard protocol's defaults)
=================  ===========================================================================

The last seven need torch (the ``torch`` extra) and are imported on first use: making envs and
collecting data never import torch.
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
__all__ = ["ENVS", "env_id", "make", "register_envs", "ModelMeta", "export", "save_spec", "load_model", "EvalSettings", "evaluate",
           "EvalResult", "__version__"]

# name -> the module it lives in, imported on first use
_LAZY_MODULES = {
    "ModelMeta": "wmbench.world_model",
    "export": "wmbench.checkpoint",
    "save_spec": "wmbench.checkpoint",
    "load_model": "wmbench.checkpoint",
    "EvalSettings": "wmbench.eval.goal_reaching",
    "evaluate": "wmbench.eval.api",
    "EvalResult": "wmbench.eval.api",
}

register_envs()


def __getattr__(name):
    if name in _LAZY_MODULES:
        import importlib

        return getattr(importlib.import_module(_LAZY_MODULES[name]), name)
    raise AttributeError(f"module 'wmbench' has no attribute {name!r}")


def __dir__():
    return __all__
