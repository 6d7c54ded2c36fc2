"""Results documents: the JSON schemas every evaluation's file is checked against, their shared header, and run folder names."""

from __future__ import annotations

import hashlib
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

import wmbench


def document_header(format_version: int) -> dict[str, Any]:
    """The fields every results document starts with: its format, the wmbench that wrote it and when (UTC)."""
    return {"format": format_version, "wmbench_version": wmbench.__version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def schema(name: str = "results") -> dict[str, Any]:
    """A JSON Schema shipped with the package: ``results``, ``voe``, ``phyre_results`` or ``leaderboard``."""
    return json.loads(resources.files("wmbench").joinpath(f"schemas/{name}.schema.json").read_text())


def validate(document: dict[str, Any], name: str = "results") -> None:
    """Raise ``ValueError`` naming the first field that breaks the schema."""
    import jsonschema

    try:
        jsonschema.validate(document, schema(name))
    except jsonschema.ValidationError as error:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ValueError(f"{name} JSON does not match its schema at {where}: {error.message}") from None


def is_phyre(results: Any) -> bool:
    """PHYRE results (``wmbench phyre eval``) rather than goal-reaching ones (``wmbench eval``)."""
    return isinstance(results, dict) and isinstance(results.get("env"), dict) and results["env"].get("name") == "phyre"


def model_label(model: str) -> str:
    """A run folder's name for ``model``: the reference agent's name, or the file's stem and the start of its sha256
    (so two checkpoints both called model.wmb do not share a folder)."""
    path = Path(model)
    if model in ("oracle", "expert", "random") or not path.is_file():
        return model if model in ("oracle", "expert", "random") else path.stem
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return f"{path.stem}-{digest.hexdigest()[:8]}"
