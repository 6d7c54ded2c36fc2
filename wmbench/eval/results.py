"""Results of an evaluation run: the JSON every run writes, its schema, and the one-screen summary."""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

RESULTS_FORMAT = 1  # bump when a field changes meaning


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a success rate: sound at 0%, 100% and small n."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    center = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, center - half), min(1.0, center + half)


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


def summary_text(results: dict[str, Any]) -> str:
    """The one-screen summary printed at the end of ``wmbench eval``."""
    success, timing = results["success"], results["timing"]
    lo, hi = success["ci95"]
    reached = [e["steps_to_success"] for e in results["episodes"] if e["success"]]
    lines = [
        f"{results['env']['id']}  model {results['model']['name']} ({results['model']['source']})  "
        f"planner {results['planner']['name']}  device {results['device']['name']}",
        f"success      {success['successes']}/{success['episodes']} = {100 * success['rate']:.1f}%  "
        f"(95% Wilson interval {100 * lo:.1f}-{100 * hi:.1f}%)",
        f"steps        {sum(reached) / len(reached):.1f} env steps to success on average" if reached else "steps        no episode succeeded",
        f"planning     {timing['planning_call_mean_s']:.3f} s per call ({timing['planning_calls']} calls), "
        f"{timing['episode_plan_mean_s']:.4f} s per episode-plan",
        f"time         {timing['wall_s']:.1f} s in all: planning {timing['planning_total_s']:.1f} s, "
        f"env stepping {timing['env_step_total_s']:.1f} s",
    ]
    return "\n".join(lines)
