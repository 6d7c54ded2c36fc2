"""Results documents: the JSON schemas every evaluation's file is checked against, and their shared header."""

from __future__ import annotations

import json
import time
from importlib import resources
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
