"""Models that need their author's code, loaded only behind ``trust_code``, and the protocol check
every model passes, whether it is loaded from code or exported.

A research spec ``model.json`` is ``{"factory": "package.module:function", "config": {...},
"weights": "model.safetensors"}``; a pickle is ``torch.save`` of the whole module.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmbench.checkpoint.errors import CheckpointError, first_line
from wmbench.checkpoint.loaded import LoadedModel
from wmbench.world_model import ModelMeta


def check_protocol(model: Any, where: str) -> None:
    if not isinstance(model, nn.Module):
        raise CheckpointError(f"{where} needs a torch.nn.Module implementing the world-model protocol; got {type(model).__name__}")
    if not isinstance(getattr(model, "meta", None), ModelMeta):
        raise CheckpointError(
            f"{where}: model.meta must be a wmbench.world_model.ModelMeta (image size, history, action block, "
            f"action_dim, latent shape); got {type(getattr(model, 'meta', None)).__name__}"
        )
    for method in ("encode", "rollout"):
        if not callable(getattr(model, method, None)):
            raise CheckpointError(f"{where}: the model has no {method}() method; see wmbench/world_model.py for the protocol")


def load_spec(path: Path) -> tuple[nn.Module, list[Path]]:
    """The model a research spec builds, and the files that define it (the spec, its weights)."""
    spec = json.loads(path.read_text())
    factory, config, weights = spec.get("factory"), spec.get("config", {}), spec.get("weights")
    if not isinstance(factory, str) or factory.count(":") != 1 or not isinstance(config, dict):
        raise CheckpointError(
            f"{path}: a research spec is {{\"factory\": \"package.module:function\", \"config\": {{...}}, \"weights\": "
            f"\"model.safetensors\"}}; got factory={factory!r}, config of type {type(config).__name__}"
        )
    module_name, attribute = factory.split(":")
    try:
        function: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            function = getattr(function, part)
    except ImportError as error:
        raise CheckpointError(
            f"{path}: cannot import the factory's module {module_name!r} ({error}): install the model's code "
            f"(pip install it, or add its folder to PYTHONPATH)"
        ) from error
    except AttributeError as error:
        raise CheckpointError(f"{path}: module {module_name!r} has no {attribute!r} (the spec's factory {factory!r})") from error
    try:
        model = function(**config)
    except Exception as error:
        raise CheckpointError(f"{path}: the factory {factory}(**config) failed: {first_line(error)}") from error
    check_protocol(model, f"the factory {factory}")
    if weights is None:
        return model, [path]
    from safetensors.torch import load_file

    weights_path = path.parent / weights
    if not weights_path.is_file():
        raise CheckpointError(f"{path}: its weights {weights_path} do not exist (the path is relative to the spec)")
    try:
        model.load_state_dict(load_file(weights_path), strict=True)
    except Exception as error:
        raise CheckpointError(
            f"{path}: the weights {weights_path.name} do not fit the model {factory}(**config): {first_line(error)}"
        ) from error
    return model, [path, weights_path]


def load_pickle(path: Path, device: torch.device) -> nn.Module:
    try:
        model = torch.load(path, map_location=device, weights_only=False)
    except Exception as error:
        raise CheckpointError(f"{path}: torch.load failed ({first_line(error)}): the model's code must be importable here") from error
    check_protocol(model, f"the pickle {path.name}")
    return model


def trusted_model(model: nn.Module, files: list[Path], device: torch.device) -> LoadedModel:
    """The author's module as a LoadedModel on ``device``, identified by the sha256 of ``files``."""
    model.to(device).eval().requires_grad_(False)
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    cost = getattr(model, "cost", None)
    return LoadedModel(
        model.meta,
        model.encode,
        model.rollout,
        cost if callable(cost) else None,
        source="trusted-code",
        sha256=digest.hexdigest(),
        device=device,
        horizon=None,
        parameters_count=sum(p.numel() for p in model.parameters()),
        path=files[0],
        module=model,
    )
