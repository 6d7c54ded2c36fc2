"""Models that need their author's code, loaded only behind ``trust_code``; models evaluated in
memory; and the protocol check every model passes, whether it is loaded from code or exported.

A research spec ``model.json`` is ``{"factory": "package.module:function", "config": {...},
"weights": "model.safetensors"}``: loading it imports ``package.module`` (from the Python path:
an installed package or a folder on ``PYTHONPATH``), builds the model with ``function(**config)``
and loads the weights strictly (every key and shape must match). ``weights`` is relative to the
spec's folder; it may be a safetensors file or a ``torch.save``d state_dict, read without running
code. ``save_spec`` writes both files and checks that they load. A pickle is ``torch.save`` of the
whole module.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmbench.checkpoint.errors import CheckpointError, first_line
from wmbench.checkpoint.loaded import LoadedModel
from wmbench.checkpoint.state_dict import as_state_dict, load_strict, read_weights
from wmbench.files import atomic_write
from wmbench.world_model import ModelMeta

SPEC_KEYS = ("factory", "config", "weights")
SPEC_SHAPE = '{"factory": "package.module:function", "config": {...}, "weights": "model.safetensors"}'
GUIDE = "docs/bring-your-own-model.md"


def check_protocol(model: Any, where: str) -> None:
    if isinstance(model, Mapping):
        raise CheckpointError(
            f"{where} needs a torch.nn.Module implementing the world-model protocol; got a state_dict "
            f"({type(model).__name__} of {len(model)} entries): weights without the model that uses them. Load them into "
            f"the model (model.load_state_dict(state_dict)) and pass the model, or write a spec that names the code "
            f"that builds it: wmbench.save_spec(\"model.json\", factory=\"package.module:Class\", config={{...}}, "
            f"weights=state_dict), then pass model.json with --trust-code ({GUIDE})"
        )
    if not isinstance(model, nn.Module):
        raise CheckpointError(f"{where} needs a torch.nn.Module implementing the world-model protocol; got {type(model).__name__} ({GUIDE})")
    if not isinstance(getattr(model, "meta", None), ModelMeta):
        raise CheckpointError(
            f"{where}: model.meta must be a wmbench.world_model.ModelMeta (image size, history, action block, "
            f"action_dim, latent shape); got {type(getattr(model, 'meta', None)).__name__}"
        )
    for method in ("encode", "rollout"):
        if not callable(getattr(model, method, None)):
            raise CheckpointError(f"{where}: the model has no {method}() method; see wmbench/world_model.py for the protocol")


def check_outputs(model: nn.Module, device: torch.device, where: str) -> None:
    """Call the model once on a batch of 2 built from its ``meta``; refuse outputs of other shapes than it declares."""
    meta = model.meta
    latent = list(meta.latent_shape)
    pixels = torch.zeros(2, meta.history, 3, *meta.image_size, dtype=torch.uint8, device=device)
    actions = torch.zeros(2, meta.history + 1, meta.block_size, device=device)

    def call(method: str, expected: list[int], convention: str, *args: torch.Tensor) -> torch.Tensor:
        try:
            output = getattr(model, method)(*args)
        except Exception as error:
            shapes = ", ".join(f"{arg.dtype} {list(arg.shape)}" for arg in args)
            raise CheckpointError(f"{where}: model.{method}({shapes}), inputs built from model.meta, failed: {first_line(error)}") from error
        if not isinstance(output, torch.Tensor) or list(output.shape) != expected:
            got = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise CheckpointError(f"{where}: model.{method} returned {got}; model.meta says {convention} = {expected}: "
                                  f"make them agree (meta.latent_shape is one frame's latent)")
        return output

    with torch.no_grad():
        latents = call("encode", [2, meta.history, *latent], "[B, T, *latent_shape]", pixels)
        predicted = call("rollout", [2, 1, *latent], "[B, K, *latent_shape]", latents, actions)
        if callable(getattr(model, "cost", None)):
            call("cost", [2], "[B]", predicted, latents[:, -1])


# ---------------------------------------------------------------------- research specs
def resolve_factory(factory: Any, where: str, near: Path | None = None) -> Callable[..., Any]:
    """The function or class a spec's ``"package.module:function"`` names, imported from the Python path.

    ``near``: the spec's folder, where a module left off the path is looked for to name the fix.
    """
    if not isinstance(factory, str) or factory.count(":") != 1 or not all(factory.split(":")):
        raise CheckpointError(f"{where}: the factory must be \"package.module:function\" (a class or a function); got {factory!r}")
    module_name, attribute = factory.split(":")
    try:
        function: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):  # the factory's own module (or its package) is not on the path
            top = module_name.split(".")[0]
            folder = next((str(folder) for folder in (near, Path.cwd()) if folder is not None and
                           ((folder / f"{top}.py").is_file() or (folder / top).is_dir())), "/path/to/folder")
            raise CheckpointError(
                f"{where}: cannot import the factory's module {module_name!r} ({error}): install the model's code "
                f"(pip install -e .) or add the folder that holds {top!r} to PYTHONPATH (PYTHONPATH={folder} wmbench ...)"
            ) from error
        raise CheckpointError(f"{where}: importing the factory's module {module_name!r} failed ({error}): install what it imports") from error
    except Exception as error:
        raise CheckpointError(f"{where}: importing the factory's module {module_name!r} failed: {first_line(error)}") from error
    for part in attribute.split("."):
        if not hasattr(function, part):
            raise CheckpointError(f"{where}: module {module_name!r} has no {attribute!r} (the factory {factory!r}): check the name after the colon")
        function = getattr(function, part)
    if not callable(function):
        raise CheckpointError(f"{where}: the factory {factory!r} is a {type(function).__name__}, not a class or function")
    return function


def factory_name(factory: Any) -> str:
    """``"package.module:Class"`` for a class or function, which must be importable by that name."""
    if isinstance(factory, str):
        return factory
    module, name = getattr(factory, "__module__", None), getattr(factory, "__qualname__", None)
    if not callable(factory) or not module or not name:
        raise CheckpointError(f"factory={factory!r}: give the class or function that builds the model, or its \"package.module:Class\"")
    if module == "__main__" or "<locals>" in name:
        where = "in the script or notebook being run (__main__)" if module == "__main__" else "inside a function"
        raise CheckpointError(
            f"factory {name} is defined {where}, where a spec cannot import it: move it into a module file (e.g. "
            f"my_models.py) on the Python path and import it from there ({GUIDE})"
        )
    return f"{module}:{name}"


def build(factory: str, config: dict[str, Any], where: str, near: Path | None = None) -> nn.Module:
    """``factory(**config)``, checked against the protocol."""
    function = resolve_factory(factory, where, near)
    try:
        model = function(**config)
    except Exception as error:
        raise CheckpointError(f"{where}: {factory}(**config) failed: {first_line(error)}: config holds the keyword arguments the factory takes") from error
    check_protocol(model, f"{where}: {factory}(**config)")
    return model


def load_spec(path: Path) -> tuple[nn.Module, list[Path]]:
    """The model a research spec builds, and the files that define it (the spec, its weights)."""
    spec = json.loads(path.read_text())
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    factory, config, weights = spec.get("factory"), spec.get("config", {}), spec.get("weights")
    if unknown or not isinstance(config, dict) or not (weights is None or isinstance(weights, str)):
        problem = f"unknown key(s) {unknown}" if unknown else f"config of type {type(config).__name__}" if not isinstance(config, dict) else f"weights={weights!r}"
        raise CheckpointError(f"{path}: a research spec is {SPEC_SHAPE} (weights is optional); got {problem}")
    model = build(factory, config, str(path), path.parent.resolve())
    if weights is None:
        return model, [path]
    weights_path = path.parent / weights  # relative to the spec; an absolute path stays as it is
    if not weights_path.is_file():
        raise CheckpointError(f"{path}: its weights {weights_path} do not exist (\"weights\" is a path relative to the spec's folder)")
    load_strict(model, read_weights(weights_path, str(path)), f"{path}: {factory}(**config) with {weights_path.name}")
    return model, [path, weights_path]


def save_spec(path: str | Path, factory: str | Callable[..., Any], config: Mapping[str, Any] | None,
              weights: nn.Module | Mapping[str, torch.Tensor] | str | Path) -> Path:
    """Write the research spec ``path`` (``.json``) and its weights beside it (``.safetensors``), checked to load.

    ``factory`` is the class or function that builds the model, or its ``"package.module:Class"``; it
    must be importable from a module file (not ``__main__`` or a notebook). ``config`` holds its
    keyword arguments, JSON values only: loading calls ``factory(**config)``. ``weights`` is the
    trained model, its state_dict, or a weights file (safetensors, or ``torch.save(model.state_dict())``).

    Before anything is written, the model is built from the spec as it will be read and the weights
    are loaded into it strictly, and it is called once on inputs built from its ``meta``. Returns the
    spec's path: ``wmbench export --model spec.json --trust-code`` makes it a self-contained checkpoint.
    """
    path = Path(path)
    if path.suffix != ".json":
        raise CheckpointError(f"{path}: a spec is a JSON file: name it model.json (its weights go beside it, model.safetensors)")
    name = factory_name(factory)
    if config is not None and not isinstance(config, Mapping):
        raise CheckpointError(f"config is a {type(config).__name__}: give the factory's keyword arguments as a dict (factory(**config))")
    config = dict(config or {})
    try:
        config = json.loads(json.dumps(config, allow_nan=False))  # what factory(**config) will get when the spec is read
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"config must hold only JSON values (numbers, strings, lists, dicts; tuples become lists): {error}") from error
    if isinstance(weights, nn.Module):
        state_dict = as_state_dict(weights.state_dict(), "wmbench.save_spec: the model's state_dict")
    elif isinstance(weights, (str, Path)):
        state_dict = read_weights(Path(weights), "wmbench.save_spec")
    else:
        state_dict = as_state_dict(weights, "wmbench.save_spec(weights=...)")
    where = f"wmbench.save_spec: {name}(**config)"
    model = build(name, config, "wmbench.save_spec")
    load_strict(model, state_dict, where)
    model.eval()
    check_outputs(model, next(model.parameters(), torch.empty(0)).device, where)

    from safetensors.torch import save_file

    weights_path = path.with_suffix(".safetensors")
    tensors = {key: tensor.detach().to("cpu", copy=True).contiguous() for key, tensor in state_dict.items()}  # copies: tied weights share memory
    atomic_write(weights_path, lambda tmp: save_file(tensors, str(tmp)))
    spec = {"factory": name, "config": config, "weights": weights_path.name}
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(spec, indent=2) + "\n"))
    load_spec(path)  # the files read back as written
    return path


def load_pickle(path: Path, device: torch.device) -> nn.Module:
    try:
        model = torch.load(path, map_location=device, weights_only=False)
    except Exception as error:
        raise CheckpointError(f"{path}: torch.load failed ({first_line(error)}): the model's code must be importable here") from error
    check_protocol(model, f"the pickle {path.name}")
    return model


# ---------------------------------------------------------------------- models the harness plans with
def trusted_model(model: nn.Module, files: list[Path], device: torch.device) -> LoadedModel:
    """The author's module as a LoadedModel on ``device``, identified by the sha256 of ``files``."""
    model.to(device).eval().requires_grad_(False)
    check_outputs(model, device, str(files[0]))
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return code_model(model, "trusted-code", digest.hexdigest(), device, files[0])


def in_memory_model(model: nn.Module, device: torch.device) -> LoadedModel:
    """A module in memory as a LoadedModel, identified by the sha256 of its weights.

    The caller puts it in eval mode without gradients for the weights (and back afterwards):
    ``wmbench.evaluate`` does.
    """
    check_protocol(model, "wmbench.evaluate")
    check_outputs(model, device, "wmbench.evaluate")
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(f"{key} {tensor.dtype} {list(tensor.shape)}\n".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return code_model(model, "in-memory", digest.hexdigest(), device, None)


def code_model(model: nn.Module, source: str, sha256: str, device: torch.device, path: Path | None) -> LoadedModel:
    cost = getattr(model, "cost", None)
    return LoadedModel(
        model.meta,
        model.encode,
        model.rollout,
        cost if callable(cost) else None,
        source=source,
        sha256=sha256,
        device=device,
        horizon=None,
        parameters_count=sum(p.numel() for p in model.parameters()),
        path=path,
        module=model,
    )
