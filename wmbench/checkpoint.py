"""World-model checkpoints: one file that loads without the author's code and runs no pickled object.

``export(model, "model.wmb")`` writes a zip of

================  =================================================================================
``wmbench.json``  format version, the :class:`~wmbench.world_model.ModelMeta`, the rollout horizon,
                  the wmbench and torch versions, and the sha256 of every other member
``encode.pt2``    ``model.encode(pixels)`` as a ``torch.export`` program, free in the batch (and in
                  the number of frames when the encoder allows it)
``rollout.pt2``   ``model.rollout(latents, actions)`` at the maximum horizon ``H`` (a Python loop
                  over steps is unrolled when traced); free in the batch
``cost.pt2``      ``model.cost(predicted, goal)``, only when the model defines one
================  =================================================================================

``load_model(path)`` turns it back into a :class:`LoadedModel`. A plan of ``K < H`` steps is
padded with zero action blocks up to ``H`` and the first ``K`` predictions are returned: valid
because predictions are causal (prediction ``k`` depends on the action blocks up to ``T + k``
only), which ``export`` checks on the model before it writes the file.

Loading is safe on an untrusted file. ``torch.export.load`` alone is not: it unpickles members
with ``weights_only=False`` when the safe loader fails, resolves graph operators by attribute
lookup on ``torch`` (``torch.os.system`` resolves), ``eval``s shape expressions through sympy and
compiles the stored shape guards into Python. So every program is checked before torch reads it:
only the members a plain exported program has, every pickled member loadable with
``weights_only=True``, every operator an ATen/higher-order operator or a symbolic-shape builtin,
shape expressions and guards from a small token grammar, and every other string a plain name.

Models that need their own code load only with ``trust_code=True`` (``--trust-code``): a research
spec ``model.json`` ``{"factory": "package.module:function", "config": {...}, "weights":
"model.safetensors"}`` or a ``torch.save`` pickle of the whole module.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import importlib
import io
import json
import math
import operator
import re
import struct
import tokenize
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.export import Dim
from torch.export.graph_signature import ExportGraphSignature, InputKind
from torch.export.passes import move_to_device_pass

from wmbench.files import atomic_write
from wmbench.world_model import ModelMeta, squared_l2_to_goal

SUFFIX = ".wmb"
FORMAT = "wmbench-checkpoint"
FORMAT_VERSION = 1
MANIFEST = "wmbench.json"
MAX_BATCH = 1 << 20  # the batch dimension of every program is free up to this
RTOL, ATOL = 1e-4, 1e-5  # how closely the exported programs must reproduce the model


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or loaded; the message names the problem and the fix."""


class LoadedModel:
    """A world model ready to plan with: the protocol's three calls and what the harness needs to know.

    ``encode(pixels)``: uint8 ``[B, T, 3, H, W]`` -> ``[B, T, *latent_shape]``; ``rollout(latents,
    actions)``: ``[B, history, ...]``, ``[B, history + K, block]`` -> ``[B, K, ...]`` with ``K <=
    horizon``; ``cost(predicted, goal)`` -> ``[B]``. Inputs are moved to ``device``; gradients
    flow to the inputs (for gradient planners), never to the weights: wrap sampling planners in
    ``torch.no_grad()``.
    """

    def __init__(
        self,
        meta: ModelMeta,
        encode: Callable,
        rollout: Callable,
        cost: Callable | None,
        *,
        source: str,
        sha256: str,
        device: torch.device,
        horizon: int | None,
        parameters_count: int | None,
        encode_frames: int | None = None,
        cost_steps: int | None = None,
        path: Path | None = None,
        module: nn.Module | None = None,
    ):
        self.meta = meta
        self.source = source  # "export": the self-contained format; "trusted-code": the author's code ran
        self.sha256 = sha256
        self.device = device
        self.horizon = horizon  # the most predictions one rollout gives; None: any
        self.parameters_count = parameters_count
        self.encode_frames = encode_frames  # the only number of frames encode takes; None: any
        self.cost_steps = cost_steps  # the only K the exported cost takes; None: any
        self.path = path
        self.module = module  # the author's nn.Module (trusted code only; what `wmbench export` re-exports)
        self.has_cost = cost is not None
        self._encode, self._rollout, self._cost = encode, rollout, cost

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        height, width = self.meta.image_size
        if pixels.dim() != 5 or tuple(pixels.shape[2:]) != (3, height, width) or pixels.dtype != torch.uint8:
            raise ValueError(
                f"{self.meta.name}.encode takes uint8 pixels [B, T, 3, {height}, {width}]; got {pixels.dtype} {list(pixels.shape)}"
            )
        if self.encode_frames is not None and pixels.shape[1] != self.encode_frames:
            raise ValueError(
                f"{self.meta.name}.encode was exported for exactly {self.encode_frames} frame(s) per sample; got {pixels.shape[1]}"
            )
        return self._encode(pixels.to(self.device))

    def rollout(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        history, block = self.meta.history, self.meta.block_size
        steps = actions.shape[1] - latents.shape[1] if actions.dim() == 3 else 0
        if latents.shape[1:2] != (history,) or actions.dim() != 3 or actions.shape[2] != block or steps < 1:
            raise ValueError(
                f"{self.meta.name}.rollout takes latents [B, {history}, ...] and actions [B, {history} + K, {block}] "
                f"with K >= 1; got latents {list(latents.shape)} and actions {list(actions.shape)}"
            )
        latents, actions = latents.to(self.device), actions.to(self.device)
        if self.horizon is None or steps == self.horizon:
            return self._rollout(latents, actions)
        if steps > self.horizon:
            raise CheckpointError(
                f"{self.meta.name} was exported with a rollout horizon of {self.horizon} model steps; "
                f"{steps} were asked for: plan over at most {self.horizon} steps, or re-export with "
                f"wmbench.export(model, path, horizon={steps})"
            )
        padding = actions.new_zeros(actions.shape[0], self.horizon - steps, block)
        return self._rollout(latents, torch.cat([actions, padding], dim=1))[:, :steps]

    def cost(self, predicted: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        if self._cost is None:
            return squared_l2_to_goal(predicted, goal)
        if self.cost_steps is not None and predicted.shape[1] != self.cost_steps:
            raise CheckpointError(
                f"{self.meta.name}'s exported cost takes exactly {self.cost_steps} predictions; got {predicted.shape[1]}: "
                f"plan over {self.cost_steps} steps"
            )
        return self._cost(predicted.to(self.device), goal.to(self.device))

    def __repr__(self) -> str:
        horizon = "any" if self.horizon is None else self.horizon
        return f"LoadedModel({self.meta.name!r}, source={self.source}, horizon={horizon}, device={self.device}, sha256={self.sha256[:12]})"


# ----------------------------------------------------------------------------------------------
# export


class _Encode(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels):
        return self.model.encode(pixels)


class _Rollout(_Encode):
    def forward(self, latents, actions):
        return self.model.rollout(latents, actions)


class _Cost(_Encode):
    def forward(self, predicted, goal):
        return self.model.cost(predicted, goal)


def export(model: nn.Module, path: str | Path, *, horizon: int = 5, example_batch: int = 2) -> Path:
    """Write ``model`` as a self-contained checkpoint at ``path`` (``.wmb`` by convention) and return it.

    ``model`` is an ``nn.Module`` with ``meta`` (a ``ModelMeta``), ``encode``, ``rollout`` and
    optionally ``cost``, on the CPU. Its rollout is exported for ``horizon`` model steps (plans of
    fewer steps are served by padding). The file is loaded back and checked against the model on
    fresh inputs before it replaces ``path``; the model's train/eval mode is left as it was.
    """
    _check_protocol(model, "wmbench.export")
    meta = model.meta
    if not isinstance(horizon, int) or horizon < 1:
        raise CheckpointError(f"horizon={horizon!r}: the rollout horizon is a positive number of model steps")
    if not isinstance(example_batch, int) or example_batch < 2:
        raise CheckpointError(f"example_batch={example_batch!r}: export needs a batch of at least 2 to keep the batch size free")
    try:
        meta_fields = json.loads(json.dumps(dataclasses.asdict(meta)))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"model.meta.extra must hold only JSON values (numbers, strings, lists, dicts): {error}") from error
    devices = {tensor.device.type for tensor in [*model.parameters(), *model.buffers()]}
    if devices - {"cpu"}:
        raise CheckpointError(f"export runs on the CPU; the model has tensors on {sorted(devices - {'cpu'})}: call model.cpu() first")

    was_training = model.training
    model.eval()
    try:
        programs, shapes = _export_programs(model, horizon, example_batch)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "meta": meta_fields,
            "rollout_horizon": horizon,
            **shapes,
            "parameters": sum(p.numel() for p in model.parameters()),
            "wmbench_version": _wmbench_version(),
            "torch_version": torch.__version__,
            "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in programs.items()},
        }

        def write(tmp: Path) -> None:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
                archive.writestr(MANIFEST, json.dumps(manifest, indent=2))  # first: it tells a checkpoint apart
                for name, data in programs.items():
                    archive.writestr(name, data)
            _verify(model, load_model(tmp), horizon, example_batch + 1)

        return atomic_write(path, write)
    finally:
        model.train(was_training)


def _export_programs(model: nn.Module, horizon: int, batch: int) -> tuple[dict[str, bytes], dict[str, Any]]:
    meta = model.meta
    pixels, actions = _example_inputs(meta, horizon, batch, seed=0)
    with torch.no_grad():
        latents = _call(model, "encode", pixels)
        _check_shape("encode", latents, (batch, meta.history, *meta.latent_shape), "[B, T, *latent_shape]")
        predicted = _call(model, "rollout", latents, actions)
        _check_shape("rollout", predicted, (batch, horizon, *meta.latent_shape), "[B, K, *latent_shape]")
        has_cost = callable(getattr(model, "cost", None))
        if has_cost:
            _check_shape("cost", _call(model, "cost", predicted, latents[:, -1]), (batch,), "[B]")

    batch_dim = Dim("batch", min=1, max=MAX_BATCH)
    # The number of frames (and of predictions a cost takes) stays free where the code allows;
    # with a single example frame torch would fix it anyway.
    frames = Dim.AUTO if meta.history > 1 else Dim.STATIC
    steps = Dim.AUTO if horizon > 1 else Dim.STATIC
    exports = {
        "encode": (_Encode(model), (pixels,), ({0: batch_dim, 1: frames},)),
        "rollout": (_Rollout(model), (latents, actions), ({0: batch_dim}, {0: batch_dim})),
    }
    if has_cost:
        exports["cost"] = (_Cost(model), (predicted, latents[:, -1]), ({0: batch_dim, 1: steps}, {0: batch_dim}))

    programs, shapes = {}, {"encode_frames": None}
    for name, (wrapper, args, dynamic_shapes) in exports.items():
        try:
            program = torch.export.export(wrapper, args, dynamic_shapes=dynamic_shapes)
        except Exception as error:
            raise CheckpointError(
                f"torch.export could not export model.{name}: {_first_line(error)}\n"
                f"The method must be traceable by torch.export: no branches on tensor values, no Python-side "
                f"state, shapes derived from the inputs; the batch dimension must not be fixed."
            ) from error
        program = _without_unused_weights(program)
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        programs[f"{name}.pt2"] = buffer.getvalue()
        if name == "encode":
            shapes["encode_frames"] = _fixed_size(program, 0, 1)
        if name == "cost":
            shapes["cost_steps"] = _fixed_size(program, 0, 1)
    return programs, shapes


def _without_unused_weights(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """The program without the parameters and buffers its graph never reads.

    torch.export keeps every weight of the wrapped model, so without this the encoder's weights
    would be stored again in the rollout program and the predictor's in the encode program.
    """
    graph_module = copy.deepcopy(program.graph_module)
    graph = graph_module.graph
    read = {node.name for node in graph.nodes if node.op == "placeholder" and node.users}
    weights = (InputKind.PARAMETER, InputKind.BUFFER)
    unused = [spec for spec in program.graph_signature.input_specs if spec.kind in weights and spec.arg.name not in read]
    if not unused:
        return program
    unused_names = {spec.arg.name for spec in unused}
    for node in [node for node in graph.nodes if node.op == "placeholder" and node.name in unused_names]:
        graph.erase_node(node)
    graph_module.recompile()
    unused_targets = {spec.target for spec in unused}
    return torch.export.ExportedProgram(
        root=graph_module,
        graph=graph,
        graph_signature=ExportGraphSignature(
            [spec for spec in program.graph_signature.input_specs if spec.arg.name not in unused_names],
            program.graph_signature.output_specs,
        ),
        state_dict={name: value for name, value in program.state_dict.items() if name not in unused_targets},
        range_constraints=program.range_constraints,
        module_call_graph=program.module_call_graph,
        example_inputs=program.example_inputs,
        constants=program.constants,
        verifiers=program.verifiers,
    )


def _example_inputs(meta: ModelMeta, horizon: int, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    height, width = meta.image_size
    pixels = torch.randint(0, 256, (batch, meta.history, 3, height, width), dtype=torch.uint8, generator=generator)
    actions = torch.randn(batch, meta.history + horizon, meta.block_size, generator=generator)
    return pixels, actions


def _call(model: nn.Module, method: str, *args: torch.Tensor) -> torch.Tensor:
    try:
        return getattr(model, method)(*args)
    except Exception as error:
        shapes = ", ".join(f"{arg.dtype} {list(arg.shape)}" for arg in args)
        raise CheckpointError(f"model.{method}({shapes}) failed on example inputs built from model.meta: {_first_line(error)}") from error


def _check_shape(method: str, output: Any, expected: tuple[int, ...], convention: str) -> None:
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        got = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise CheckpointError(f"model.{method} returned {got}; the protocol and model.meta say {convention} = {list(expected)}")


def _fixed_size(program: torch.export.ExportedProgram, input_index: int, dim: int) -> int | None:
    """The size the program fixed for a dimension of a user input, or None if it stayed free."""
    name = program.graph_signature.user_inputs[input_index]
    node = next(node for node in program.graph.nodes if node.op == "placeholder" and node.name == name)
    size = node.meta["val"].shape[dim]
    return size if isinstance(size, int) else None


def _verify(model: nn.Module, loaded: LoadedModel, horizon: int, batch: int) -> None:
    """The written file must reproduce the model on inputs it was not traced with."""
    meta = model.meta
    pixels, actions = _example_inputs(meta, horizon, batch, seed=1)

    def check(what: str, method: str, *args: torch.Tensor, causal_hint: bool = False) -> torch.Tensor:
        expected = _call(model, method, *args)
        try:
            got = getattr(loaded, method)(*args)
        except Exception as error:
            raise CheckpointError(f"the exported {what} fails on a batch of {batch}: {_first_line(error)}") from error
        _compare(what, got, expected, causal_hint)
        return expected

    with torch.no_grad():
        latents = check("encode", "encode", pixels)
        if loaded.encode_frames is None and meta.history > 1:
            check("encode of a single frame", "encode", pixels[:, :1])
        predicted = check(f"rollout at K={horizon}", "rollout", latents, actions)
        if horizon > 1:
            check("rollout at K=1", "rollout", latents, actions[:, : meta.history + 1], causal_hint=True)
        if loaded.has_cost:
            goal = latents[:, -1]
            check("cost", "cost", predicted, goal)
            if loaded.cost_steps is None and horizon > 1:
                check("cost of one prediction", "cost", predicted[:, :1], goal)


def _compare(what: str, got: torch.Tensor, expected: torch.Tensor, causal_hint: bool = False) -> None:
    if got.shape == expected.shape and torch.allclose(got, expected, rtol=RTOL, atol=ATOL):
        return
    detail = f"shape {list(got.shape)} instead of {list(expected.shape)}" if got.shape != expected.shape else (
        f"largest difference {(got - expected).abs().max().item():.3g}"
    )
    hint = (
        " model.rollout is not causal: its first prediction changes with the later action blocks. The exported "
        "rollout pads shorter plans with zero actions, which needs prediction k to depend only on the actions up "
        "to block T + k."
        if causal_hint
        else " The model probably depends on something torch.export cannot capture (Python state, randomness, "
        "a size fixed at the example batch)."
    )
    raise CheckpointError(f"the exported {what} does not reproduce the model ({detail}).{hint}")


# ----------------------------------------------------------------------------------------------
# loading


def load_model(path: str | Path, device: str | torch.device = "cpu", trust_code: bool = False) -> LoadedModel:
    """Load a checkpoint written by :func:`export` (any file name), or with ``trust_code`` a research
    spec (``.json``) or a ``torch.save`` pickle of the whole module. Raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a checkpoint file" if path.is_dir() else "does not exist"
        raise CheckpointError(f"{path} {what}: pass the file written by wmbench.export(model, path) (e.g. model{SUFFIX})")
    device = torch.device(device)
    kind = _kind(path)
    if kind == "export":
        return _load_exported(path, device)
    if not trust_code:
        if kind == "pickle":
            raise CheckpointError(
                f"{path} is a plain torch pickle (torch.save); loading it runs code stored in the file, so wmbench "
                f"refuses it. Export the model to the self-contained format with `wmbench export` / "
                f"wmbench.export(model, path), or pass --trust-code (trust_code=True) if you trust the file and its author."
            )
        raise CheckpointError(
            f"{path} is a research-code spec: loading it imports and runs the model's own code, so it needs "
            f"--trust-code (trust_code=True); pass it only for code you trust, or export the model with "
            f"wmbench.export(model, path) to get a checkpoint that loads without code."
        )
    model, files = _load_spec(path) if kind == "spec" else (_load_pickle(path, device), [path])
    return _trusted(model, files, device)


def _kind(path: Path) -> str:
    """'export', 'pickle' or 'spec', from the bytes (the name is free: ckpt.pt is fine)."""
    with open(path, "rb") as file:
        head = file.read(30 + len(MANIFEST))
    if head.startswith(b"PK\x03\x04"):
        # export writes the manifest first; reading the first member's name from its local header
        # recognizes a truncated checkpoint, where zipfile may find the directory of a program inside.
        if head[30:] == MANIFEST.encode() and int.from_bytes(head[26:28], "little") == len(MANIFEST):
            return "export"
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as error:
            raise _corrupted(path, error) from error
        if MANIFEST in names:
            return "export"
        if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
            return "pickle"
        raise CheckpointError(f"{path} is a zip archive but not a wmbench checkpoint (no {MANIFEST}): write one with wmbench.export(model, path)")
    if head[:1] == b"\x80":  # a pickle of protocol 2 or later: torch.save's legacy format or pickle.dump
        return "pickle"
    if head.lstrip()[:1] == b"{" and path.stat().st_size < 1 << 20:
        try:
            spec = json.loads(path.read_text())
        except (UnicodeDecodeError, ValueError) as error:
            raise CheckpointError(
                f"{path} is not valid JSON ({error}); a research spec is {{\"factory\": ..., \"config\": ..., \"weights\": ...}}"
            ) from error
        if isinstance(spec, dict) and "factory" in spec:
            return "spec"
    raise CheckpointError(
        f"{path} is not a model checkpoint wmbench knows: expected a file written by wmbench.export (model{SUFFIX}), "
        f"or, with --trust-code, a research spec (.json with a factory) or a torch.save pickle"
    )


def _corrupted(path: Path, problem: Any) -> CheckpointError:
    return CheckpointError(f"{path} is truncated or corrupted ({problem}): download or export it again")


def _load_exported(path: Path, device: torch.device) -> LoadedModel:
    data = path.read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if MANIFEST not in names:  # the directory found belongs to a program inside: the file is cut short
                raise zipfile.BadZipFile("the zip directory is missing")
            manifest = json.loads(archive.read(MANIFEST))
            members = {name: archive.read(name) for name in names if name != MANIFEST}
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as error:  # zipfile reports a bad CRC as BadZipFile
        raise _corrupted(path, error) from error

    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _corrupted(path, f"{MANIFEST} does not describe a {FORMAT}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is format version {manifest.get('format_version')!r}; this wmbench reads version {FORMAT_VERSION}: "
            f"use the wmbench version that wrote it ({manifest.get('wmbench_version')}) or export the model again"
        )
    digests = manifest.get("sha256")
    if not isinstance(digests, dict) or len(names) != len(set(names)) or set(members) != set(digests):
        raise _corrupted(path, f"its members {sorted(names)} do not match the list in {MANIFEST}")
    for name, member in members.items():
        if hashlib.sha256(member).hexdigest() != digests[name]:
            raise _corrupted(path, f"{name} does not match its sha256 in {MANIFEST}")
    if not {"encode.pt2", "rollout.pt2"} <= set(members) <= {"encode.pt2", "rollout.pt2", "cost.pt2"}:
        raise _corrupted(path, f"it holds {sorted(members)}; expected encode.pt2, rollout.pt2 and optionally cost.pt2")
    try:
        meta = ModelMeta.from_dict(manifest["meta"])
        horizon = manifest["rollout_horizon"]
        if not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"rollout_horizon={horizon!r}")
    except (KeyError, TypeError, ValueError) as error:
        raise _corrupted(path, f"its metadata is invalid: {error}") from error

    programs = {
        name.removesuffix(".pt2"): _load_program(path, name, member, device, manifest.get("torch_version"))
        for name, member in members.items()
    }
    return LoadedModel(
        meta,
        programs["encode"],
        programs["rollout"],
        programs.get("cost"),
        source="export",
        sha256=hashlib.sha256(data).hexdigest(),
        device=device,
        horizon=horizon,
        parameters_count=manifest.get("parameters"),
        encode_frames=manifest.get("encode_frames"),
        cost_steps=manifest.get("cost_steps"),
        path=path,
    )


def _load_program(path: Path, name: str, data: bytes, device: torch.device, torch_version: str | None) -> nn.Module:
    _check_program(path, name, data)
    try:
        program = torch.export.load(io.BytesIO(data))
    except Exception as error:
        versions = f"; it was exported with torch {torch_version}, this is torch {torch.__version__}"
        versions = "" if torch_version == torch.__version__ else versions
        raise CheckpointError(f"{path}: torch could not load {name} ({_first_line(error)}){versions}: export the model again") from error
    try:
        if device.type != "cpu":  # tested on the meta device; no GPU in the test suite
            program = move_to_device_pass(program, device)
        module = program.module()
    except Exception as error:
        raise CheckpointError(f"{path}: {name} could not be placed on {device} ({_first_line(error)})") from error
    module.requires_grad_(False)
    return module


# What a program written by torch.export.save may hold (the archive of one program named "model").
_PROGRAM_MEMBER = re.compile(
    r"archive/(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id|models/model\.json"
    r"|data/sample_inputs/model\.pt|data/weights/model_weights_config\.json|data/weights/weight_\d+"
    r"|data/constants/model_constants_config\.json|data/constants/tensor_\d+)"
)
_PAYLOADS = {  # config member -> (folder, file names it may point to)
    "archive/data/weights/model_weights_config.json": ("archive/data/weights/", re.compile(r"weight_\d+")),
    "archive/data/constants/model_constants_config.json": ("archive/data/constants/", re.compile(r"tensor_\d+")),
}
_NAME = re.compile(r"[A-Za-z0-9_.:@+\-]*")  # node, tensor, parameter and module names, versions, devices
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # what could end a line of generated code
_FREE_TEXT = {"stack_trace", "nn_module_stack", "torch_fn", "source_fn_stack", "as_string", "as_strings"}
_JSON_TEXT = {"in_spec", "out_spec", "custom", "from_node"}  # parsed with json by torch, never compiled
_PYTHON_OPERATORS = {
    *(getattr(operator, name) for name in (
        "getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos", "eq", "ne", "lt", "le",
        "gt", "ge", "and_", "or_", "lshift", "rshift",
    )),
    math.trunc, math.floor, math.ceil, math.sqrt,
    torch.sym_int, torch.sym_float, torch.sym_max, torch.sym_min, torch.sym_not, torch.sym_ite, torch.sym_sqrt,
}
_SYMPY_NAMES = {
    "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Max", "Min", "Abs", "Mod", "floor", "ceiling",
    "oo", "zoo", "nan", "true", "false", "True", "False", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv", "LShift",
    "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator",
    "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity",
}
_GUARD_NAMES = {
    "L", "size", "stride", "storage_offset", "dim", "numel", "and", "or", "not", "True", "False", "max", "min", "abs",
    "math", "floor", "ceil", "trunc", "sqrt", "int", "float",
}
_EXPRESSION_OPERATORS = {"(", ")", "[", "]", ",", "=", "+", "-", "*", "/", "//", "**", "%", "<", ">", "<=", ">=", "==", "!="}


def _check_program(path: Path, name: str, data: bytes) -> None:
    """Refuse a program that torch.export.load would read with anything that can run code."""

    def refuse(problem: str) -> CheckpointError:
        return CheckpointError(
            f"{path}: {name} {problem}. wmbench loads only plain exported programs, so that no code stored in a "
            f"checkpoint ever runs: export the model again with wmbench.export(model, path)"
        )

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except zipfile.BadZipFile as error:
        raise _corrupted(path, f"{name}: {error}") from error
    if len({member.lower() for member in names}) != len(names):
        raise refuse("has duplicate members")
    if not _contiguous(data, archive):
        raise refuse("is not laid out as torch writes a zip (gaps, overlaps or bytes before the first member)")
    for member in names:
        if not _PROGRAM_MEMBER.fullmatch(member):
            raise refuse(f"has a member torch.export.save does not write for a plain program ({member!r})")
    if "archive/models/model.json" not in names or "archive/data/sample_inputs/model.pt" not in names:
        raise refuse("has no program (archive/models/model.json) or no sample inputs")

    pickled = ["archive/data/sample_inputs/model.pt"]
    for config_name, (folder, payload_name) in _PAYLOADS.items():
        if config_name not in names:
            continue
        try:
            payloads = {key: (entry["path_name"], entry["use_pickle"]) for key, entry in json.loads(archive.read(config_name))["config"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise refuse(f"has an unreadable {config_name} ({error})") from error
        for key, (file_name, use_pickle) in payloads.items():
            if not isinstance(file_name, str) or not _NAME.fullmatch(key) or not payload_name.fullmatch(file_name):
                raise refuse(f"names a payload {key!r} -> {file_name!r} that a plain program does not have")
            if use_pickle:
                pickled.append(folder + file_name)
    for member in pickled:
        try:
            torch.load(io.BytesIO(archive.read(member)), weights_only=True)
        except Exception as error:
            found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
            reason = f"it calls {found.group(1)}" if found else _first_line(error)
            raise refuse(f"holds a pickle that needs code to load ({member}: {reason})") from error

    try:
        program = json.loads(archive.read("archive/models/model.json"))
    except ValueError as error:
        raise refuse(f"has an unreadable program ({error})") from error
    problem = _check_program_json(program)
    if problem:
        raise refuse(problem)


def _contiguous(data: bytes, archive: zipfile.ZipFile) -> bool:
    """Whether the members follow one another from byte 0 up to the zip directory.

    Python's zipfile and torch's reader (miniz) then read the same bytes for every member: a zip
    with bytes prepended or members overlapping could show the check one thing and torch another.
    """
    position = 0
    for info in sorted(archive.infolist(), key=lambda info: info.header_offset):
        if info.header_offset != position or data[position : position + 4] != b"PK\x03\x04":
            return False
        name_length, extra_length = struct.unpack("<HH", data[position + 26 : position + 30])
        if data[position + 30 : position + 30 + name_length] != info.filename.encode():
            return False
        position += 30 + name_length + extra_length + info.compress_size
        if info.flag_bits & 0x08:  # a data descriptor follows: crc and sizes, with or without its signature
            position += 16 if data[position : position + 4] == b"PK\x07\x08" else 12
    return position == archive.start_dir


def _check_program_json(value: Any, key: str = "") -> str | None:
    """The first thing in an exported program's JSON that could run code, or None."""
    if isinstance(value, dict):
        for child_key, child in value.items():
            if not isinstance(child_key, str) or not _NAME.fullmatch(child_key):
                return f"has a field named {child_key!r}"
            problem = _check_program_json(child, child_key)
            if problem:
                return problem
        return None
    if isinstance(value, list):
        return next((problem for item in value if (problem := _check_program_json(item, key))), None)
    if not isinstance(value, str):
        return None
    if key in ("target", "as_operator"):
        return None if _is_plain_operator(value) else f"calls {value!r}, which is not an ATen or higher-order operator"
    if key == "expr_str":
        return None if _is_expression(value, "sympy") else f"has a shape expression outside the sympy grammar: {value!r}"
    if key == "guards_code":
        return None if _is_expression(value, "guard") else f"has a shape guard outside the guard grammar: {value!r}"
    if key in _JSON_TEXT:
        try:
            json.loads(value)
        except ValueError:
            return f"has a {key} that is not JSON"
        return None
    if key in _FREE_TEXT:
        return f"has a control character in its {key}" if _CONTROL.search(value) else None
    return None if _NAME.fullmatch(value) else f"has a {key or 'value'} that is not a plain name: {value!r}"


def _is_plain_operator(target: str) -> bool:
    root, _, rest = target.partition(".")
    value: Any = {"torch": torch, "_operator": operator, "math": math}.get(root)
    if value is None:
        return False
    for attribute in rest.split(".") if rest else ():
        value = getattr(value, attribute, None)
    if isinstance(value, (torch._ops.OpOverload, torch._ops.HigherOrderOperator)):
        return True
    return any(value is allowed for allowed in _PYTHON_OPERATORS)


@functools.lru_cache(maxsize=4096)  # a program repeats the same few shape expressions many times
def _is_expression(text: str, grammar: str) -> bool:
    """Whether ``text`` is built only from the grammar's names, numbers, quoted plain names and arithmetic;
    only guards may read attributes (``L['x'].size()``)."""
    names, attributes = (_SYMPY_NAMES, False) if grammar == "sympy" else (_GUARD_NAMES, True)
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type not in (tokenize.NEWLINE, tokenize.ENDMARKER)]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return False
    for token, following in zip(tokens, [*tokens[1:], None]):
        if token.type == tokenize.NAME:
            keyword_argument = following is not None and following.string == "=" and re.fullmatch(r"[a-z][a-z_]*", token.string)
            if token.string not in names and not keyword_argument:
                return False
        elif token.type == tokenize.STRING:
            if not re.fullmatch(r"'[A-Za-z0-9_.+\-]*'", token.string):
                return False
        elif token.type == tokenize.OP:
            if token.string == ".":
                if not attributes or following is None or following.type != tokenize.NAME:
                    return False
            elif token.string not in _EXPRESSION_OPERATORS:
                return False
        elif token.type != tokenize.NUMBER:
            return False
    return True


def _load_spec(path: Path) -> tuple[nn.Module, list[Path]]:
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
        raise CheckpointError(f"{path}: the factory {factory}(**config) failed: {_first_line(error)}") from error
    _check_protocol(model, f"the factory {factory}")
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
            f"{path}: the weights {weights_path.name} do not fit the model {factory}(**config): {_first_line(error)}"
        ) from error
    return model, [path, weights_path]


def _load_pickle(path: Path, device: torch.device) -> nn.Module:
    try:
        model = torch.load(path, map_location=device, weights_only=False)
    except Exception as error:
        raise CheckpointError(f"{path}: torch.load failed ({_first_line(error)}): the model's code must be importable here") from error
    _check_protocol(model, f"the pickle {path.name}")
    return model


def _trusted(model: nn.Module, files: list[Path], device: torch.device) -> LoadedModel:
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


# ----------------------------------------------------------------------------------------------
# checks


def _check_protocol(model: Any, where: str) -> None:
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


def _first_line(error: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # torch colours some messages
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def _wmbench_version() -> str:
    from wmbench import __version__

    return __version__
