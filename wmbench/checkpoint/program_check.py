"""The check an untrusted exported program passes before ``torch.export.load`` reads it.

``check_program`` accepts only what a plain program written by ``torch.export.save`` holds: its
usual members laid out as torch writes a zip, stored uncompressed and read within size bounds,
pickles in torch.save's zip format, stored likewise, that load with ``weights_only=True``, an
empty weight payload only for an empty tensor, shape expressions and guards from a small token
grammar, and plain names everywhere else.
It also refuses a program that could act when called: every call must be a pure tensor operator
(``wmbench.checkpoint.operators``) and the program may return nothing but its outputs (no
updated weights or inputs). It returns the shapes of the program's inputs and outputs, which the
loader checks the manifest against.
"""

from __future__ import annotations

import functools
import io
import json
import math
import re
import struct
import tokenize
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch._export.serde.schema import ScalarType

from wmbench.checkpoint.bounded_zip import read_members
from wmbench.checkpoint.errors import CheckpointError, corrupted, first_line
from wmbench.checkpoint.operators import refused_call

# What a program written by torch.export.save may hold (the archive of one program named "model").
_PROGRAM_MEMBER = re.compile(
    r"archive/(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id|models/model\.json"
    r"|data/sample_inputs/model\.pt|data/weights/model_weights_config\.json|data/weights/weight_\d+"
    r"|data/constants/model_constants_config\.json|data/constants/tensor_\d+)"
)
_PROGRAM_JSON = "archive/models/model.json"
# Parsing JSON takes several times its size in memory. The paper LeWM's rollout program is 1.5 MB
# of JSON at horizon 5, so about 75 MB at the longest horizon wmbench loads (256).
MAX_PROGRAM_JSON_BYTES = 256 << 20
_PAYLOADS = {  # config member -> (folder, file names it may point to)
    "archive/data/weights/model_weights_config.json": ("archive/data/weights/", re.compile(r"weight_\d+")),
    "archive/data/constants/model_constants_config.json": ("archive/data/constants/", re.compile(r"tensor_\d+")),
}
_INPUT_KINDS = {"user_input", "parameter", "buffer", "tensor_constant", "constant_input"}
_OUTPUT_KINDS = {"user_output"}  # not updated buffers, parameters or inputs: a call changes nothing
_NAME = re.compile(r"[A-Za-z0-9_.:@+\-]*")  # node, tensor, parameter and module names, versions, devices
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # what could end a line of generated code
_FREE_TEXT = {"stack_trace", "nn_module_stack", "torch_fn", "source_fn_stack", "as_string", "as_strings"}
_JSON_TEXT = {"in_spec", "out_spec", "custom", "from_node"}  # parsed with json by torch, never compiled
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
UINT8 = ScalarType.BYTE.value  # how a program's JSON writes the dtype of pixels


@dataclass(frozen=True)
class TensorShape:
    """A program input's or output's dtype (torch.export's code) and sizes, None for a free dimension."""

    dtype: int
    sizes: tuple[int | None, ...]


@dataclass(frozen=True)
class ProgramShapes:
    """What a program takes and returns, in the order of its signature."""

    inputs: tuple[TensorShape | None, ...]  # None: an input that is not a tensor
    outputs: tuple[TensorShape | None, ...]


def check_program(path: Path, name: str, data: bytes) -> ProgramShapes:
    """Refuse a program that torch.export.load would read with anything that can run code, or that
    could act when called; return the shapes of its inputs and outputs."""

    def refuse(problem: str) -> CheckpointError:
        return CheckpointError(
            f"{path}: {name} {problem}. wmbench loads only plain exported programs, so that no code stored in a "
            f"checkpoint ever runs: export the model again with wmbench.export(model, path)"
        )

    def refuse_effect(problem: str) -> CheckpointError:
        return CheckpointError(
            f"{path}: {name} {problem}. A checkpoint may only compute its outputs from its inputs: export a model "
            f"whose methods use only tensor operators and change no weights or inputs (the allowed operators are "
            f"listed in wmbench/checkpoint/operators.py)"
        )

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except zipfile.BadZipFile as error:
        raise corrupted(path, f"{name}: {error}") from error
    if len({member.lower() for member in names}) != len(names):
        raise refuse("has duplicate members")
    if not _contiguous(data, archive):
        raise refuse("is not laid out as torch writes a zip (gaps, overlaps or bytes before the first member)")
    for member in names:
        if not _PROGRAM_MEMBER.fullmatch(member):
            raise refuse(f"has a member torch.export.save does not write for a plain program ({member!r})")
    if _PROGRAM_JSON not in names or "archive/data/sample_inputs/model.pt" not in names:
        raise refuse("has no program (archive/models/model.json) or no sample inputs")
    # torch.export.save stores every member uncompressed, so together they are smaller than the program
    members = read_members(archive, {_PROGRAM_JSON: MAX_PROGRAM_JSON_BYTES}, budget=len(data), max_ratio=1, where=f"{path}: {name}")

    pickled = ["archive/data/sample_inputs/model.pt"]
    for config_name, (folder, payload_name) in _PAYLOADS.items():
        if config_name not in members:
            continue
        try:
            payloads = {
                key: (entry["path_name"], entry["use_pickle"], entry.get("tensor_meta"))
                for key, entry in json.loads(members[config_name])["config"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise refuse(f"has an unreadable {config_name} ({error})") from error
        for key, (file_name, use_pickle, tensor_meta) in payloads.items():
            if not isinstance(file_name, str) or not _NAME.fullmatch(key) or not payload_name.fullmatch(file_name):
                raise refuse(f"names a payload {key!r} -> {file_name!r} that a plain program does not have")
            if use_pickle:
                pickled.append(folder + file_name)
            elif members.get(folder + file_name) == b"" and _elements(tensor_meta) != 0:
                # torch allocates an empty payload as zeros of the sizes its tensor_meta gives
                raise refuse(f"gives {key} an empty payload but sizes that are not empty")
    for member in pickled:
        saved = members[member]
        try:
            saved_archive = zipfile.ZipFile(io.BytesIO(saved))
        except zipfile.BadZipFile:
            saved_archive = None
        if saved_archive is None or not _contiguous(saved, saved_archive):
            raise refuse(f"holds a pickle that is not laid out as torch.save writes a zip ({member})")
        # torch allocates each tensor at the size the zip directory declares: stored, they fit in the pickle
        read_members(saved_archive, {}, budget=len(saved), max_ratio=1, where=f"{path}: {name}: {member}")
        try:
            torch.load(io.BytesIO(saved), weights_only=True)
        except Exception as error:
            found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
            reason = f"it calls {found.group(1)}" if found else first_line(error)
            raise refuse(f"holds a pickle that needs code to load ({member}: {reason})") from error

    try:
        program = json.loads(members[_PROGRAM_JSON])
        graph, signature = program["graph_module"]["graph"], program["graph_module"]["signature"]
        input_specs, output_specs = signature["input_specs"], signature["output_specs"]
    except (ValueError, KeyError, TypeError) as error:
        raise refuse(f"has an unreadable program ({first_line(error)})") from error
    problem = _check_program_json(program)
    if problem:
        raise refuse(problem)
    for call in _calls(program):
        problem = refused_call(call["target"], call.get("inputs"))
        if problem:
            raise refuse_effect(problem)
    for specs, kinds in ((input_specs, _INPUT_KINDS), (output_specs, _OUTPUT_KINDS)):
        for spec in specs:
            kind = next(iter(spec), None) if isinstance(spec, dict) and len(spec) == 1 else None
            if kind not in kinds:
                raise refuse_effect(f"has a {kind or 'malformed'} entry in its signature: it would change its weights or inputs")
    try:
        return ProgramShapes(
            tuple(_tensor_shape(graph, spec["user_input"]["arg"]) for spec in input_specs if "user_input" in spec),
            tuple(_tensor_shape(graph, spec["user_output"]["arg"]) for spec in output_specs),
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise refuse(f"has an unreadable signature ({first_line(error)})") from error


def _elements(tensor_meta: Any) -> int | None:
    """How many elements a payload's tensor_meta describes; None if its sizes are not plain numbers."""
    try:
        sizes = [size["as_int"] for size in tensor_meta["sizes"]]
    except (KeyError, TypeError):
        return None
    return math.prod(sizes) if all(isinstance(size, int) for size in sizes) else None


def _tensor_shape(graph: dict, argument: dict) -> TensorShape | None:
    if "as_tensor" not in argument:
        return None
    value = graph["tensor_values"][argument["as_tensor"]["name"]]
    sizes = tuple(size["as_int"] if "as_int" in size else None for size in value["sizes"])
    return TensorShape(value["dtype"], sizes)


def _calls(value: Any):
    """Every operator call in a program's JSON, in subgraphs too: the dicts that name a target."""
    if isinstance(value, dict):
        if "target" in value:
            yield value
        for child in value.values():
            yield from _calls(child)
    elif isinstance(value, list):
        for item in value:
            yield from _calls(item)


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
    if key == "target":
        return None  # checked against the operator allowlist
    if key == "as_operator":
        return f"passes the operator {value!r} as an argument"
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
