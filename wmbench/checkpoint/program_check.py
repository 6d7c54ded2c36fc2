"""The check an untrusted exported program passes before ``torch.export.load`` reads it.

``check_program`` accepts only what a plain program written by ``torch.export.save`` holds: its
usual members laid out as torch writes a zip, pickles that load with ``weights_only=True``,
ATen/higher-order operators and symbolic-shape builtins, shape expressions and guards from a small
token grammar, and plain names everywhere else.
"""

from __future__ import annotations

import functools
import io
import json
import math
import operator
import re
import struct
import tokenize
import zipfile
from pathlib import Path
from typing import Any

import torch

from wmbench.checkpoint.errors import CheckpointError, corrupted, first_line

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


def check_program(path: Path, name: str, data: bytes) -> None:
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
        raise corrupted(path, f"{name}: {error}") from error
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
            reason = f"it calls {found.group(1)}" if found else first_line(error)
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
