"""A checkpoint made ready for an evaluation: loaded onto the device, checked against the env, described.

Every evaluation (goal reaching, puzzles, videos, violation of expectation) loads its model here,
so a model that cannot drive an env is refused the same way everywhere, and every results file
describes its model with the same fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

import wmbench
from wmbench.checkpoint import CheckpointError, LoadedModel, load_model
from wmbench.world_model import ModelMeta


def check_compatible(meta: ModelMeta, env: Any) -> None:
    """Raise CheckpointError if a model with ``meta`` cannot drive ``env`` (a wmbench environment).

    The env's own resolution does not matter: the harness renders frames at ``meta.image_size``.
    """
    env_name = getattr(getattr(env, "spec", None), "id", None) or type(env.unwrapped).__name__
    action_dim = env.unwrapped.action_space.shape[0]
    if meta.action_dim != action_dim:
        trained = f" (it was trained on {meta.env})" if meta.env else ""
        raise CheckpointError(
            f"model {meta.name!r} takes {meta.action_dim}-dimensional actions but {env_name} has {action_dim}{trained}: "
            f"evaluate it on the environment it was trained for"
        )
    if min(meta.image_size) < 8:
        raise CheckpointError(f"model {meta.name!r} takes {meta.image_size[0]}x{meta.image_size[1]} frames; wmbench renders at 8 px or more")


def load_for_env(path: str | Path | LoadedModel, env_name: str, device: torch.device, trust_code: bool = False) -> LoadedModel:
    """The checkpoint at ``path`` on ``device`` (or a model already loaded), refused unless it can drive ``env_name``."""
    loaded = path if isinstance(path, LoadedModel) else load_model(path, device=device, trust_code=trust_code)
    env = wmbench.make(env_name, obs_type="state")
    try:
        check_compatible(loaded.meta, env)
    finally:
        env.close()
    return loaded


def describe(loaded: LoadedModel) -> dict[str, Any]:
    """The ``model`` block of a results file: name, source, file digest, parameters and metadata."""
    return {"name": loaded.meta.name, "source": loaded.source, "sha256": loaded.sha256,
            "parameters": loaded.parameters_count, "meta": json.loads(loaded.meta.to_json())}


@contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode with its weights frozen while the block runs; then each submodule's mode and each
    parameter's ``requires_grad`` as they were (a submodule kept in eval mode, such as a frozen encoder, stays so)."""
    modes = [(module, module.training) for module in model.modules()]
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    model.eval().requires_grad_(False)
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
        for parameter, requires_grad in flags:
            parameter.requires_grad_(requires_grad)
