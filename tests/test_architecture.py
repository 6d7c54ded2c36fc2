"""The package's layout keeps its promises: environments import nothing of the harness, and no module
imports itself back through others (at import time or inside a function)."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import wmbench

PACKAGE = Path(wmbench.__file__).parent
HARNESS = ("wmbench.eval", "wmbench.data", "wmbench.leaderboard", "wmbench.leaderboard_page", "wmbench.checkpoint",
           "wmbench.planning", "wmbench.policies", "wmbench.cli")


def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    found = {"wmbench": PACKAGE / "__init__.py"}
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="wmbench."):
        path = PACKAGE.joinpath(*info.name.split(".")[1:])
        found[info.name] = path / "__init__.py" if info.ispkg else path.with_suffix(".py")
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The wmbench modules ``name`` imports anywhere in its file (function-level imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in known}
    # importing a module runs its parent packages first; that edge is not a cycle to report
    return {target for target in found if not name.startswith(target + ".") and target != name}


def test_importing_the_environments_loads_no_harness_module():
    envs = sorted(name for name in modules() if name.startswith("wmbench.envs"))
    script = f"import importlib, json, sys\nfor name in {envs!r}: importlib.import_module(name)\nprint(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout)
    offending = [name for name in loaded if name.startswith(HARNESS)]
    assert not offending, f"importing wmbench.envs loads harness modules: {offending}"


def test_there_is_no_import_cycle():
    found = modules()
    graph = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    cycles, state = [], {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)
