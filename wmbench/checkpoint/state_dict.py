"""Weights files: reading a state_dict from safetensors or a ``torch.save`` file, and loading it
strictly into a model with every difference listed.

A state_dict read here never runs code: safetensors holds only tensors, and a ``torch.save`` file
is read with ``weights_only=True`` (torch's restricted unpickler, which refuses any object but
tensors and plain containers).
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmbench.checkpoint.errors import CheckpointError, first_line

SAFETENSORS_MAX_HEADER = 100_000_000  # bytes: the safetensors format refuses longer headers
LISTED = 20  # keys shown per kind of difference; the count says how many more there are
WRAPPER_PREFIXES = {"module.": "torch.nn.DataParallel or DistributedDataParallel", "_orig_mod.": "torch.compile"}


def weights_format(path: Path) -> str | None:
    """'safetensors' or 'torch' from the file's first bytes, or None for anything else."""
    with open(path, "rb") as file:
        head = file.read(9)
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= SAFETENSORS_MAX_HEADER:
        return "safetensors"  # an 8-byte header length, then the JSON header (a truncated file is still recognized)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # torch.save's zip, or a legacy pickle
        return "torch"
    return None


def read_weights(path: Path, where: str) -> dict[str, torch.Tensor]:
    """The state_dict in ``path`` (safetensors, or a ``torch.save``d state_dict), on the CPU."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise CheckpointError(f"{where}: the weights file {path} {what}: give the file model.state_dict() was saved to")
    kind = weights_format(path)
    if kind == "safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as error:
            raise CheckpointError(f"{where}: {path} is truncated or corrupted ({first_line(error)}): save the weights again") from error
    if kind is None:
        raise CheckpointError(
            f"{where}: {path} is neither a safetensors file nor a torch.save file: save the weights with "
            f"safetensors.torch.save_file(model.state_dict(), path) or torch.save(model.state_dict(), path)"
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # weights_only met an object it may not build
        raise CheckpointError(
            f"{where}: {path} is a torch.save file that holds objects, not only tensors (a whole model, an optimizer?): "
            f"save only the weights, torch.save(model.state_dict(), path)"
        ) from error
    except Exception as error:
        raise CheckpointError(f"{where}: {path} is truncated or corrupted ({first_line(error)}): save the weights again") from error
    return as_state_dict(loaded, f"{where}: {path}")


def as_state_dict(value: Any, where: str) -> dict[str, torch.Tensor]:
    """``value`` as a state_dict (names -> tensors), or an error that says where the weights are."""
    if not isinstance(value, Mapping):
        raise CheckpointError(f"{where} is a {type(value).__name__}, not a state_dict (names -> tensors): use model.state_dict()")
    if all(isinstance(key, str) and isinstance(tensor, torch.Tensor) for key, tensor in value.items()):
        return dict(value)
    nested = [key for key, entry in value.items() if isinstance(entry, Mapping) and entry and
              all(isinstance(tensor, torch.Tensor) for tensor in entry.values())]
    if nested:
        shown_keys = ", ".join(repr(key) for key in list(value)[:8])
        raise CheckpointError(
            f"{where} holds a training checkpoint (keys {shown_keys}), not a state_dict; its weights are probably under "
            f"{nested[0]!r}: save that entry alone, torch.save(checkpoint[{nested[0]!r}], path)"
        )
    others = [f"{key} ({type(entry).__name__})" for key, entry in value.items() if not isinstance(entry, torch.Tensor)]
    raise CheckpointError(
        f"{where} holds entries that are not tensors: {', '.join(map(str, others[:LISTED]))}: save model.state_dict(), "
        f"which holds only tensors"
    )


def count_state_dict_tensors(path: Path) -> int:
    """How many tensors ``path`` holds if it is a state_dict (safetensors or ``torch.save``); 0 otherwise.

    Reading is safe on any file: safetensors holds data only, and ``weights_only`` refuses every object
    but tensors and plain containers.
    """
    kind = weights_format(path)
    if kind is None:
        return 0
    try:
        if kind == "safetensors":
            from safetensors import safe_open

            with safe_open(path, "pt") as file:
                return len(list(file.keys()))
        with open(path, "rb") as file:
            zipped = file.read(4) == b"PK\x03\x04"  # torch maps only its zip format into memory
        with warnings.catch_warnings():  # torch warns about pickles it is about to refuse anyway
            warnings.simplefilter("ignore")
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=zipped)
        return len(as_state_dict(loaded, str(path)))
    except Exception:  # not a state_dict (a pickled model, a damaged file): the caller's own message applies
        return 0


def load_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], where: str) -> None:
    """Load ``state_dict`` into ``model``: every key and shape must match, and every difference is listed."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    mismatched = [f"{key} is {list(state_dict[key].shape)} in the weights, {list(expected[key].shape)} in the model"
                  for key in expected if key in state_dict and state_dict[key].shape != expected[key].shape]
    if missing or unexpected or mismatched:
        lines = [f"{where}: the weights do not fit the model (strict loading: every key and shape must match):"]
        for title, items, separator in (("missing from the weights", missing, ", "), ("unexpected in the weights", unexpected, ", "),
                                        ("shape mismatch", mismatched, "; ")):
            if items:
                more = f"{separator}... and {len(items) - LISTED} more" if len(items) > LISTED else ""
                lines.append(f"  {title} ({len(items)}): {separator.join(items[:LISTED])}{more}.")
        lines.append(f"  fix: {difference_fix(missing, unexpected, mismatched)}")
        raise CheckpointError("\n".join(lines))
    try:
        model.load_state_dict(state_dict, strict=True)
    except Exception as error:
        raise CheckpointError(f"{where}: loading the weights failed: {first_line(error)}") from error


def difference_fix(missing: list[str], unexpected: list[str], mismatched: list[str]) -> str:
    """What to do about a key diff: a prefix left by a wrapper, a different config, or different code."""
    for have, lack, whose in ((unexpected, missing, "the weights'"), (missing, unexpected, "the model's")):
        prefix = have[0].split(".")[0] + "." if have and lack else None
        if prefix and all(key.startswith(prefix) for key in have) and {key[len(prefix):] for key in have} == set(lack):
            source = f" (left by {WRAPPER_PREFIXES[prefix]})" if prefix in WRAPPER_PREFIXES else ""
            if whose == "the weights'":
                return (f"{whose} keys carry the prefix {prefix!r}{source}: save the inner model's state_dict, or strip "
                        f"it: {{key.removeprefix({prefix!r}): value for key, value in state_dict.items()}}")
            return f"{whose} keys carry the prefix {prefix!r} that the weights lack: build the outer model, or the weights of the whole model"
    if mismatched and not missing and not unexpected:
        return "the same layers with other sizes: give the config (factory(**config)) the weights were trained with"
    return "the weights come from another model or config: build the model the weights were saved from (same class, same config)"
