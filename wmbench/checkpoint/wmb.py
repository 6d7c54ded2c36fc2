"""The ``.wmb`` format: ``export`` writes a model and checks the file against it; ``load_model``
reads it back, or with ``trust_code`` a research spec or a pickle.

Reading an exported file is bounded before anything runs: the zip within the size limits below
(``bounded_zip``), the manifest within sane limits and in agreement with the shapes its programs
take and return, each program checked (``program_check``) before torch reads it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.export import Dim
from torch.export.graph_signature import ExportGraphSignature, InputKind
from torch.export.passes import move_to_device_pass
from torch.fx.experimental.symbolic_shapes import is_concrete_int

from wmbench.checkpoint.bounded_zip import read_members
from wmbench.checkpoint.errors import CheckpointError, corrupted, first_line
from wmbench.checkpoint.loaded import LoadedModel
from wmbench.checkpoint.program_check import UINT8, ProgramShapes, check_program
from wmbench.checkpoint.research_code import GUIDE, check_protocol, load_pickle, load_spec, trusted_model
from wmbench.checkpoint.state_dict import count_state_dict_tensors, weights_format
from wmbench.files import atomic_write
from wmbench.world_model import ModelMeta

SUFFIX = ".wmb"
FORMAT = "wmbench-checkpoint"
FORMAT_VERSION = 1
MANIFEST = "wmbench.json"
PROGRAMS = ("encode.pt2", "rollout.pt2", "cost.pt2")
MAX_BATCH = 1 << 20  # the batch dimension of every program is free up to this
RTOL, ATOL = 1e-4, 1e-5  # how closely the exported programs must reproduce the model

# What a file may unpack to. The paper LeWM (15M parameters) exports to 72 MB; this allows ~1e9
# float32 parameters.
MAX_CHECKPOINT_BYTES = 4 << 30
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few kB, meta.extra included
# export stores members uncompressed; deflated, the measured programs shrink 1.1x (weights) to 10x
# (JSON of tiny models), zeros 1000x. At 20x a 1 MB file unpacks to at most 20 MB.
MAX_COMPRESSION_RATIO = 20
# Sane limits on what a manifest declares: the harness sizes frames, plans and latents by them.
MAX_IMAGE_SIDE = 1024  # frames are rendered at the model's resolution; the protocol's is 224
MAX_HISTORY = 64  # frames of context; the baselines use 1 and 3
MAX_ACTION_BLOCK = 100  # env steps per model step; the standard datasets use 1 and 5
MAX_ACTION_DIM = 64  # the envs' actions have 2 to 5 components
MAX_LATENT_NUMBERS = 1 << 20  # per frame; DINO-WM's patch latents are 196 x 384
MAX_ROLLOUT_HORIZON = 256  # model steps, each unrolled in the rollout program; CEM plans 5


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
    fewer steps are served by padding); in-place calls (``nn.ReLU(inplace=True)``, ``x += y``) are
    rewritten out of place. The file is loaded back, through every check ``load_model`` makes, and
    compared with the model on fresh inputs before it replaces ``path``; the model's train/eval
    mode is left as it was.
    """
    check_protocol(model, "wmbench.export")
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
                f"torch.export could not export model.{name}: {first_line(error)}\n"
                f"The method must be traceable by torch.export: no branches on tensor values, no Python-side "
                f"state, shapes derived from the inputs; the batch dimension must not be fixed."
            ) from error
        program = _without_unused_weights(_out_of_place(program))
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        programs[f"{name}.pt2"] = buffer.getvalue()
        if name == "encode":
            shapes["encode_frames"] = _fixed_size(program, 0, 1)
        if name == "cost":
            shapes["cost_steps"] = _fixed_size(program, 0, 1)
    return programs, shapes


def _out_of_place(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """The program with its in-place calls (``nn.ReLU(inplace=True)``, ``x += y``) made out of place:
    a checkpoint may not hold an operator that writes into its argument."""
    graphs = [module.graph for module in program.graph_module.modules() if isinstance(module, torch.fx.GraphModule)]
    calls = [node.target for graph in graphs for node in graph.nodes if isinstance(node.target, torch._ops.OpOverload)]
    return program.run_decompositions({}) if any(call._schema.is_mutable for call in calls) else program


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
        raise CheckpointError(f"model.{method}({shapes}) failed on example inputs built from model.meta: {first_line(error)}") from error


def _check_shape(method: str, output: Any, expected: tuple[int, ...], convention: str) -> None:
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        got = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise CheckpointError(f"model.{method} returned {got}; the protocol and model.meta say {convention} = {list(expected)}")


def _fixed_size(program: torch.export.ExportedProgram, input_index: int, dim: int) -> int | None:
    """The size the program fixed for a dimension of a user input, or None if it stayed free."""
    name = program.graph_signature.user_inputs[input_index]
    node = next(node for node in program.graph.nodes if node.op == "placeholder" and node.name == name)
    size = node.meta["val"].shape[dim]
    return int(size) if is_concrete_int(size) else None  # a size the code specialized is a constant SymInt


def _verify(model: nn.Module, loaded: LoadedModel, horizon: int, batch: int) -> None:
    """The written file must reproduce the model on inputs it was not traced with."""
    meta = model.meta
    pixels, actions = _example_inputs(meta, horizon, batch, seed=1)

    def check(what: str, method: str, *args: torch.Tensor, causal_hint: bool = False) -> torch.Tensor:
        expected = _call(model, method, *args)
        try:
            got = getattr(loaded, method)(*args)
        except Exception as error:
            raise CheckpointError(f"the exported {what} fails on a batch of {batch}: {first_line(error)}") from error
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


def _wmbench_version() -> str:
    from wmbench import __version__

    return __version__


# ----------------------------------------------------------------------------------------------
# loading


def load_model(path: str | Path, device: str | torch.device = "cpu", trust_code: bool = False) -> LoadedModel:
    """Load a checkpoint written by :func:`export` (any file name), or with ``trust_code`` a research
    spec (``.json``) or a ``torch.save`` pickle of the whole module. Raises :class:`CheckpointError`;
    a file of weights alone (a state_dict) is refused with the way to write a spec for it."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a checkpoint file" if path.is_dir() else "does not exist"
        raise CheckpointError(f"{path} {what}: pass the file written by wmbench.export(model, path) (e.g. model{SUFFIX})")
    device = torch.device(device)
    kind = _kind(path)
    if kind == "export":
        return _load_exported(path, device)
    if kind in ("pickle", "weights") and (tensors := count_state_dict_tensors(path)):
        what = "a safetensors file" if weights_format(path) == "safetensors" else "a torch.save pickle"
        raise CheckpointError(
            f"{path} is {what} of weights only (a state_dict of {tensors} tensors), without the code that builds the model: "
            f"write a spec that names that code, wmbench.save_spec(\"model.json\", factory=\"package.module:Class\", "
            f"config={{...}}, weights=\"{path}\"), then pass model.json with --trust-code ({GUIDE})"
        )
    if kind == "weights":
        raise corrupted(path, "a safetensors file whose tensors cannot be read")
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
    model, files = load_spec(path) if kind == "spec" else (load_pickle(path, device), [path])
    return trusted_model(model, files, device)


def _kind(path: Path) -> str:
    """'export', 'pickle', 'spec' or 'weights' (safetensors), from the bytes (the name is free: ckpt.pt is fine)."""
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
            raise corrupted(path, error) from error
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
    if weights_format(path) == "safetensors":
        return "weights"
    raise CheckpointError(
        f"{path} is not a model checkpoint wmbench knows: expected a file written by wmbench.export (model{SUFFIX}), "
        f"or, with --trust-code, a research spec (.json with a factory) or a torch.save pickle"
    )


def _load_exported(path: Path, device: torch.device) -> LoadedModel:
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{path} is {size / 2**30:.1f} GiB; wmbench loads checkpoints of at most {MAX_CHECKPOINT_BYTES / 2**30:.0f} GiB")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if MANIFEST not in names:  # the directory found belongs to a program inside: the file is cut short
                raise zipfile.BadZipFile("the zip directory is missing")
            if len(names) != len(set(names)) or not set(names) <= {MANIFEST, *PROGRAMS}:
                raise corrupted(path, f"it holds {sorted(names)}; expected {MANIFEST}, encode.pt2, rollout.pt2 and optionally cost.pt2")
            members = read_members(
                archive, {MANIFEST: MAX_MANIFEST_BYTES}, budget=MAX_CHECKPOINT_BYTES, max_ratio=MAX_COMPRESSION_RATIO, where=str(path)
            )
        manifest = json.loads(members.pop(MANIFEST))
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:  # zipfile reports a bad CRC as BadZipFile
        raise corrupted(path, error) from error

    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise corrupted(path, f"{MANIFEST} does not describe a {FORMAT}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is format version {manifest.get('format_version')!r}; this wmbench reads version {FORMAT_VERSION}: "
            f"use the wmbench version that wrote it ({manifest.get('wmbench_version')}) or export the model again"
        )
    digests = manifest.get("sha256")
    if not isinstance(digests, dict) or set(members) != set(digests):
        raise corrupted(path, f"its members {sorted(names)} do not match the list in {MANIFEST}")
    for name, member in members.items():
        if hashlib.sha256(member).hexdigest() != digests[name]:
            raise corrupted(path, f"{name} does not match its sha256 in {MANIFEST}")
    if not {"encode.pt2", "rollout.pt2"} <= set(members):
        raise corrupted(path, f"it holds {sorted(members)}; expected encode.pt2, rollout.pt2 and optionally cost.pt2")
    try:
        meta = ModelMeta.from_dict(manifest["meta"])
        horizon, frames, steps = (manifest.get(key) for key in ("rollout_horizon", "encode_frames", "cost_steps"))
        for key, value, free in (("rollout_horizon", horizon, False), ("encode_frames", frames, True), ("cost_steps", steps, True)):
            if not (free and value is None) and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{key}={value!r}")
    except (KeyError, TypeError, ValueError) as error:
        raise corrupted(path, f"its metadata is invalid: {error}") from error
    _check_limits(path, meta, horizon, frames, steps)

    shapes = {name.removesuffix(".pt2"): check_program(path, name, member) for name, member in members.items()}
    _check_agreement(path, meta, horizon, frames, steps, shapes)
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
        sha256=_file_sha256(path),
        device=device,
        horizon=horizon,
        parameters_count=manifest.get("parameters"),
        encode_frames=frames,
        cost_steps=steps,
        path=path,
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_limits(path: Path, meta: ModelMeta, horizon: int, frames: int | None, steps: int | None) -> None:
    """Refuse a manifest whose sizes are out of all proportion, before anything is sized by them."""
    for field, shown, value, limit, allowed in (
        ("meta.image_size", list(meta.image_size), max(meta.image_size), MAX_IMAGE_SIDE, f"frames of at most {MAX_IMAGE_SIDE} px a side"),
        ("meta.history", meta.history, meta.history, MAX_HISTORY, f"at most {MAX_HISTORY} frames of history"),
        ("meta.action_block", meta.action_block, meta.action_block, MAX_ACTION_BLOCK, f"action blocks of at most {MAX_ACTION_BLOCK} env steps"),
        ("meta.action_dim", meta.action_dim, meta.action_dim, MAX_ACTION_DIM, f"actions of at most {MAX_ACTION_DIM} components"),
        ("meta.latent_shape", list(meta.latent_shape), math.prod(meta.latent_shape), MAX_LATENT_NUMBERS, f"latents of at most {MAX_LATENT_NUMBERS} numbers a frame"),
        ("rollout_horizon", horizon, horizon, MAX_ROLLOUT_HORIZON, f"rollouts of at most {MAX_ROLLOUT_HORIZON} model steps"),
        ("encode_frames", frames, frames or 0, MAX_HISTORY, f"encoders of at most {MAX_HISTORY} frames at once"),
        ("cost_steps", steps, steps or 0, MAX_ROLLOUT_HORIZON, f"costs of at most {MAX_ROLLOUT_HORIZON} predictions"),
    ):
        if value > limit:
            raise CheckpointError(
                f"{path}: its manifest declares {field} = {shown}; wmbench loads {allowed}: export a model within "
                f"these limits (they are listed in wmbench/checkpoint/wmb.py)"
            )


def _check_agreement(path: Path, meta: ModelMeta, horizon: int, frames: int | None, steps: int | None, shapes: dict[str, ProgramShapes]) -> None:
    """Refuse a manifest that does not describe its programs: the harness sizes what it feeds them by it.

    ``frames`` and ``steps`` are the manifest's ``encode_frames`` and ``cost_steps`` (None: free).
    """
    latent = tuple(meta.latent_shape)
    expected = {  # program -> (inputs, outputs), each (what, sizes with None for a free dimension, the fields that say so)
        "encode": (
            [("pixels", (None, frames, 3, *meta.image_size), "meta.image_size and encode_frames")],
            [("latents", (None, frames, *latent), "meta.latent_shape and encode_frames")],
        ),
        "rollout": (
            [
                ("latents", (None, meta.history, *latent), "meta.history and meta.latent_shape"),
                ("actions", (None, meta.history + horizon, meta.block_size), "meta.history, rollout_horizon, meta.action_block and meta.action_dim"),
            ],
            [("predictions", (None, horizon, *latent), "rollout_horizon and meta.latent_shape")],
        ),
        "cost": (
            [("predictions", (None, steps, *latent), "cost_steps and meta.latent_shape"), ("goal", (None, *latent), "meta.latent_shape")],
            [("costs", (None,), "the protocol")],
        ),
    }
    for program, program_shapes in shapes.items():
        inputs, outputs = expected[program]
        for verb, declared, found in (("takes", inputs, program_shapes.inputs), ("returns", outputs, program_shapes.outputs)):
            if len(found) != len(declared):
                raise CheckpointError(
                    f"{path}: {program}.pt2 {verb} {len(found)} tensors; the protocol's {program} {verb} {len(declared)}: "
                    f"export the model again with wmbench.export"
                )
            for (what, sizes, fields), shape in zip(declared, found):
                if shape is None or shape.sizes != sizes:
                    got = "something other than a tensor" if shape is None else f"{what} {_shown(shape.sizes)}"
                    raise CheckpointError(
                        f"{path}: {program}.pt2 {verb} {got}, but its manifest's {fields} say {what} {_shown(sizes)}: the "
                        f"manifest does not describe its programs; export the model again with wmbench.export"
                    )
    if shapes["encode"].inputs[0].dtype != UINT8:
        raise CheckpointError(f"{path}: encode.pt2 takes pixels that are not uint8; the protocol's encode takes uint8 pixels: export the model again with wmbench.export")


def _shown(sizes: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("B" if index == 0 and size is None else "?" if size is None else str(size) for index, size in enumerate(sizes)) + "]"


def _load_program(path: Path, name: str, data: bytes, device: torch.device, torch_version: str | None) -> nn.Module:
    check_program(path, name, data)
    try:
        program = torch.export.load(io.BytesIO(data))
    except Exception as error:
        versions = f"; it was exported with torch {torch_version}, this is torch {torch.__version__}"
        versions = "" if torch_version == torch.__version__ else versions
        raise CheckpointError(f"{path}: torch could not load {name} ({first_line(error)}){versions}: export the model again") from error
    try:
        if device.type != "cpu":  # tested on the meta device; no GPU in the test suite
            program = move_to_device_pass(program, device)
        module = program.module()
    except Exception as error:
        raise CheckpointError(f"{path}: {name} could not be placed on {device} ({first_line(error)})") from error
    module.requires_grad_(False)
    return module
