"""``wmbench.evaluate``: the goal-reaching evaluation as one Python call, on a model in memory or a file.

A training loop calls it every N steps on the module it trains. The module is evaluated where its
weights are, in eval mode and with its weights frozen, and handed back as it came: every
submodule's train/eval mode and every parameter's ``requires_grad`` are restored, and no gradient
reaches the weights. Nothing is written unless ``out`` is given::

    result = wmbench.evaluate(model, env="pusht", episodes=10, samples=64, iterations=3)
    print(result)  # pusht: 4/10 = 40.0% (95% Wilson interval 16.8-68.7%)
    result.success_rate, result.ci95, result.outcomes, result.timing, result.results

A checkpoint path (``.wmb``, or a research spec with ``trust_code=True``) and a model from
``wmbench.load_model`` are evaluated the same way. The run is the one ``wmbench eval`` makes
(``goal_reaching.evaluate``), so the results document is the same as the command's for the same
weights, settings and pairs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmbench.checkpoint import CheckpointError, LoadedModel
from wmbench.checkpoint.research_code import in_memory_model
from wmbench.devices import resolve_device
from wmbench.eval import goal_reaching
from wmbench.eval.goal_reaching import EvalSettings, summary_text, write_outputs
from wmbench.eval.models import frozen
from wmbench.eval.results import validate


@dataclass(frozen=True)
class EvalResult:
    """What ``wmbench.evaluate`` returns: the headline numbers, and the whole results document."""

    env: str
    success_rate: float
    ci95: tuple[float, float]  # Wilson 95% interval of the success rate
    successes: int
    episodes: int
    outcomes: list[dict[str, Any]]  # per episode: its pair of the eval set, success, steps_to_success
    timing: dict[str, Any]  # planning per call and per episode-plan, env stepping, wall time (seconds)
    results: dict[str, Any]  # the results document, as `wmbench eval` writes it (results.schema.json)
    files: list[Path] = field(default_factory=list)  # what was written to ``out``

    @classmethod
    def from_results(cls, results: dict[str, Any], files: list[Path]) -> EvalResult:
        success = results["success"]
        return cls(env=results["env"]["name"], success_rate=success["rate"], ci95=tuple(success["ci95"]),
                   successes=success["successes"], episodes=success["episodes"], outcomes=results["episodes"],
                   timing=results["timing"], results=results, files=files)

    def summary(self) -> str:
        """The one-screen summary `wmbench eval` prints."""
        return summary_text(self.results)

    def __str__(self) -> str:
        lo, hi = self.ci95
        return (f"{self.env}: {self.successes}/{self.episodes} = {100 * self.success_rate:.1f}% "
                f"(95% Wilson interval {100 * lo:.1f}-{100 * hi:.1f}%)")


def evaluate(model: nn.Module | LoadedModel | str | os.PathLike, env: str, *, episodes: int | None = None,
             budget: int | None = None, seed: int | None = None, planner: str | None = None, samples: int | None = None,
             iterations: int | None = None, horizon: int | None = None, replan_every: int | None = None,
             planner_options: Mapping[str, Any] | None = None, device: str | torch.device | None = None,
             settings: EvalSettings | None = None, trust_code: bool = False, out: str | os.PathLike | None = None,
             videos: int = 0, progress: bool = False) -> EvalResult:
    """Evaluate ``model`` on ``env`` by MPC from the frozen start/goal pairs; every setting left out is the protocol's.

    ``model``: an ``nn.Module`` keeping the world-model protocol (``meta``, ``encode``, ``rollout``,
    optionally ``cost``), a model from ``wmbench.load_model``, or a checkpoint path. A module is
    evaluated on the device its weights are on (``device``, if given, must be that one).
    ``samples`` and ``iterations`` set the planner's budget (as ``--samples``, ``--iterations``);
    ``planner_options`` any other hyperparameter; ``settings`` replaces all of these at once.
    ``out``: a folder for ``results.json``, ``summary.png`` and ``videos`` GIFs; None writes nothing.
    Raises ``ValueError`` (``CheckpointError`` for the model) naming the problem and the fix.
    """
    given = {"episodes": episodes, "budget": budget, "seed": seed, "planner": planner, "samples": samples,
             "iterations": iterations, "horizon": horizon, "replan_every": replan_every, "planner_options": planner_options}
    given = {key: value for key, value in given.items() if value is not None}
    if settings is not None and (given or device is not None):
        separate = [*given, *(["device"] if device is not None else [])]
        raise ValueError(f"wmbench.evaluate: give settings= or the separate settings ({', '.join(separate)}), not both")
    if videos and out is None:
        raise ValueError(f"wmbench.evaluate: videos={videos} are GIFs written to a folder: give out=\"runs/eval/...\"")
    if isinstance(model, Mapping):
        raise CheckpointError("wmbench.evaluate got a state_dict: load it into the model (model.load_state_dict(state_dict)) "
                              "and pass the model")
    if not isinstance(model, (nn.Module, LoadedModel, str, os.PathLike)):
        raise CheckpointError(f"wmbench.evaluate: model is of type {type(model).__name__}; pass an nn.Module keeping the world-model "
                              f"protocol, a model from wmbench.load_model, or a checkpoint path")

    where = None
    device = None if device == "auto" else device  # for a model in memory, "auto" is where it is
    if isinstance(model, nn.Module):
        where = next((t.device for t in [*model.parameters(), *model.buffers()]), torch.device("cpu"))
    elif isinstance(model, LoadedModel):
        where = model.device
    if where is not None and device is not None and not same_device(resolve_device(device), where):
        raise ValueError(f"wmbench.evaluate: device={str(device)!r}, but the model is on {where}: leave device out to "
                         f"evaluate it where it is, or move it first (model.to({str(device)!r}))")
    if settings is None:
        options = {**(planner_options or {}), **{key: given.pop(key) for key in ("samples", "iterations") if key in given}}
        given["planner_options"] = options
        settings = EvalSettings(**given, device=str(where) if where is not None else str(device or "auto"))
    elif where is not None and settings.device == "auto":
        settings = replace(settings, device=str(where))
    elif where is not None and not same_device(resolve_device(settings.device), where):
        raise ValueError(f"wmbench.evaluate: settings.device is {settings.device!r}, but the model is on {where}: "
                         f"set settings.device={str(where)!r} or leave it \"auto\"")

    if isinstance(model, nn.Module):
        with frozen(model):
            results, run = goal_reaching.evaluate(in_memory_model(model, where), env, settings, progress=progress, videos=videos)
    else:
        results, run = goal_reaching.evaluate(model if isinstance(model, LoadedModel) else str(model), env, settings,
                                              trust_code=trust_code, progress=progress, videos=videos)
    validate(results)
    files = write_outputs(results, run, out, videos=videos) if out is not None else []
    return EvalResult.from_results(results, files)


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are one; a device without an index (``cuda``) stands for any of its kind."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)
