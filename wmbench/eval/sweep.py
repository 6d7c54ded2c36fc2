"""Evaluation sweeps: a grid of goal-reaching evaluations from one TOML spec, here or as Ray tasks.

A spec names lists; the sweep evaluates every combination (models x envs x seeds x planners x
episode counts), each run as ``wmbench eval`` would, and writes each run's ``results.json`` and
``summary.png`` under ``<out>/<run>/``, then ``<out>/sweep.json`` and ``<out>/sweep.md`` with one
row per run: its success, interval and planning time, or the error that stopped it. A failed run
is listed and the others go on.

    models = ["baselines/lewm/checkpoints/pusht-cpu.wmb", "random"]  # or {path = "...", envs = ["pusht"]}
    envs = ["pusht"]
    seeds = [0, 1]
    planners = ["cem"]          # default ["cem"]
    episodes = [50]             # default [50]
    device = "auto"             # default "auto"; a run on cuda asks Ray for a GPU
    budget = 50                 # optional: env steps per episode (default: the protocol's)
    [planner_options]           # optional: as --samples, --iterations and --option, for the checkpoints
    samples = 300               # (random, expert and oracle keep their standard settings)

On Ray the runs are tasks that send their results back; this process writes every file. A model
path is read by the task, on whichever node runs it: give paths that every node can read (a shared
filesystem, or the working directory that ``ray job submit --working-dir`` ships).
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wmbench import cluster
from wmbench.envs import GOAL_ENVS, short_name
from wmbench.files import atomic_write, write_json
from wmbench.progress import progress_bar
from wmbench.protocol import GOAL_REACHING

PLANNERS = ("cem", "mppi", "icem", "gd")
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
MAX_SEED = 2**32 - 1
REFERENCE_AGENTS = ("random", "expert", "oracle")  # they plan with their own standard settings, not the spec's planner_options
PLANLESS = ("random", "expert")


@dataclass(frozen=True)
class Run:
    """One evaluation of a sweep."""

    model: str
    env: str
    seed: int
    planner: str
    episodes: int
    budget: int
    device: str
    planner_options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        from wmbench.eval.results import model_label

        return f"{self.env}_{model_label(self.model)}_{self.planner}_seed{self.seed}_{self.episodes}ep"

    @property
    def gpus(self) -> float:
        """What the run asks Ray for: a GPU when it plans on CUDA (``auto`` asks for one where the cluster has any)."""
        if self.model in REFERENCE_AGENTS:
            return 0
        if self.device.startswith("cuda"):
            return 1
        return 1 if self.device == "auto" and cluster.ray_module().cluster_resources().get("GPU", 0) >= 1 else 0


# ---------------------------------------------------------------------- the spec
def load_spec(path: str | Path) -> list[Run]:
    """The runs of the sweep spec at ``path``; ``ValueError`` naming the first problem and its fix."""
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"sweep spec {path} is not valid TOML ({error}); see `wmbench sweep --help` for an example") from None
    except UnicodeDecodeError:
        raise ValueError(f"sweep spec {path} is not a text file: give a TOML spec") from None
    return runs_of(spec, str(path))


SPEC_KEYS = {"models", "envs", "seeds", "planners", "episodes", "device", "budget", "planner_options"}


def runs_of(spec: dict[str, Any], source: str = "sweep spec") -> list[Run]:
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise ValueError(f"{source}: unknown keys {unknown}; a spec has {sorted(SPEC_KEYS)}")
    for key in ("models", "envs", "seeds"):
        if key not in spec:
            raise ValueError(f"{source}: no {key} = [...]; a sweep needs models, envs and seeds")

    envs = [check_env(env, source) for env in listed(spec, "envs", str, source)]
    seeds = listed(spec, "seeds", int, source)
    planners = listed(spec, "planners", str, source, default=["cem"])
    episodes = listed(spec, "episodes", int, source, default=[GOAL_REACHING.episodes])
    if any(not 0 <= s <= MAX_SEED for s in seeds):
        raise ValueError(f"{source}: seeds must be 0..{MAX_SEED}, got {seeds}")
    if any(p not in PLANNERS for p in planners):
        raise ValueError(f"{source}: planners {planners}: choose among {list(PLANNERS)}")
    if any(not 1 <= e <= 100_000 for e in episodes):
        raise ValueError(f"{source}: episodes {episodes}: each must be 1..100000")
    device = spec.get("device", "auto")
    if not isinstance(device, str) or not DEVICE.fullmatch(device):
        raise ValueError(f"{source}: device = {device!r}: give \"auto\", \"cpu\", \"cuda\" or \"cuda:N\"")
    budget = spec.get("budget", GOAL_REACHING.budget)
    if not isinstance(budget, int) or isinstance(budget, bool) or not 1 <= budget <= 1_000_000:
        raise ValueError(f"{source}: budget = {budget!r}: give env steps per episode, 1..1000000")
    options = spec.get("planner_options", {})
    if not isinstance(options, dict) or any(not isinstance(v, (int, float, str, bool)) or
                                            (isinstance(v, float) and not math.isfinite(v)) for v in options.values()):
        raise ValueError(f"{source}: [planner_options] holds KEY = number (or text) lines, e.g. samples = 300")

    runs = [Run(model, env, seed, planner, count, budget, device, dict(options))
            for model, model_envs in models_of(spec, envs, source)
            # random actions and the expert plan nothing: one run per seed and count, whatever the planners
            for env, seed, planner, count in itertools.product(model_envs, seeds, planners[:1] if model in PLANLESS else planners, episodes)]
    names = [run.name for run in runs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{source}: the runs {repeated} appear twice (a model listed twice?): list each model once")
    return runs


def listed(spec: dict[str, Any], key: str, kind: type, source: str, default: list | None = None) -> list:
    values = spec.get(key, default)
    if not isinstance(values, list) or not values or any(not isinstance(v, kind) or isinstance(v, bool) for v in values):
        raise ValueError(f"{source}: {key} must be a non-empty list of {kind.__name__}s, e.g. {key} = {example(kind)}")
    if len(set(values)) != len(values):
        raise ValueError(f"{source}: {key} lists {values}, with repeats: list each once")
    return values


def example(kind: type) -> str:
    return "[0, 1]" if kind is int else '["pusht"]'


def check_env(env: str, source: str) -> str:
    name = short_name(env)
    if name not in GOAL_ENVS:
        raise ValueError(f"{source}: env {env!r} is not a goal-reaching env; choose among {list(GOAL_ENVS)}")
    return name


def models_of(spec: dict[str, Any], envs: list[str], source: str) -> list[tuple[str, list[str]]]:
    """(model, the envs it runs on) for every entry of ``models``: a path or name, or a table ``{path, envs}``."""
    models = spec["models"]
    if not isinstance(models, list) or not models:
        raise ValueError(f"{source}: models must be a non-empty list of paths (or {{path = ..., envs = [...]}} tables)")
    chosen = []
    for entry in models:
        if isinstance(entry, str):
            chosen.append((entry, envs))
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or set(entry) - {"path", "envs"}:
            raise ValueError(f"{source}: a models entry is a path or a table {{path = \"...\", envs = [\"pusht\"]}}, got {entry!r}")
        own = [check_env(env, source) for env in listed(entry, "envs", str, source)] if "envs" in entry else envs
        chosen.append((entry["path"], own))
    return chosen


# ---------------------------------------------------------------------- running
def evaluate_run(run: Run) -> dict[str, Any]:
    """One run, as ``wmbench eval`` makes it: its results document, or ``{"error": one line, "traceback": ...}``."""
    from wmbench.eval.goal_reaching import EvalSettings, evaluate
    from wmbench.eval.results import validate

    try:
        options = {} if run.model in REFERENCE_AGENTS else dict(run.planner_options)
        settings = EvalSettings(episodes=run.episodes, budget=run.budget, seed=run.seed, planner=run.planner,
                                planner_options=options, device=run.device)
        results, _ = evaluate(run.model, run.env, settings, progress=False)
        validate(results)
        return results
    except Exception as error:  # one run's failure is listed; the sweep goes on
        return {"error": f"{type(error).__name__}: {' '.join(str(error).split())}", "traceback": traceback.format_exc()}


def sweep(runs: list[Run], out: Path, on_ray: bool = False, progress: bool = True) -> list[dict[str, Any]]:
    """Evaluate every run (here, one after another, or as Ray tasks), write their files; one summary row per run."""
    rows: list[dict[str, Any] | None] = [None] * len(runs)
    bar = progress_bar(total=len(runs), desc="sweep", unit="run", disable=not progress)
    try:
        if on_ray:
            outcomes = cluster.run_tasks(evaluate_run, [(run,) for run in runs], gpus=[run.gpus for run in runs], keep_going=True)
        else:
            outcomes = ((i, evaluate_run(run)) for i, run in enumerate(runs))
        for index, outcome in outcomes:
            if isinstance(outcome, cluster.ClusterError):
                outcome = {"error": str(outcome), "traceback": ""}
            rows[index] = record_run(runs[index], outcome, out)
            bar.update()
            failed = sum(row is not None and row["status"] == "failed" for row in rows)
            bar.set_postfix_str(f"{failed} failed" if failed else "")
    finally:
        bar.close()
    write_json(out / "sweep.json", {"runs": rows})
    atomic_write(out / "sweep.md", lambda tmp: tmp.write_text(table(rows) + "\n"))
    return rows


def record_run(run: Run, outcome: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write a run's files under ``out/<run>/``; its summary row."""
    from wmbench.eval.goal_reaching import write_outputs

    folder = out / run.name
    row = {"run": run.name, **asdict(run)}
    if "error" in outcome:
        atomic_write(folder / "error.txt", lambda tmp: tmp.write_text(outcome["error"] + "\n\n" + outcome["traceback"]))
        return {**row, "status": "failed", "error": outcome["error"]}
    write_outputs(outcome, None, folder)
    success, timing = outcome["success"], outcome["timing"]
    return {**row, "status": "ok", "results": f"{run.name}/results.json", "success_rate": success["rate"],
            "successes": success["successes"], "ci95": success["ci95"], "episode_plan_mean_s": timing["episode_plan_mean_s"]}


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the runs: success with its interval and planning time, or the error."""
    lines = ["| run | success | 95% interval | s per episode-plan |", "|---|---|---|---|"]
    for row in rows:
        if row["status"] == "failed":
            lines.append(f"| {row['run']} | failed: {row['error'].replace('|', '/')} | | |")
            continue
        lo, hi = row["ci95"]
        plan = "-" if row["episode_plan_mean_s"] is None else f"{row['episode_plan_mean_s']:.3f}"
        lines.append(f"| {row['run']} | {row['successes']}/{row['episodes']} = {100 * row['success_rate']:.1f}% "
                     f"| {100 * lo:.1f}-{100 * hi:.1f}% | {plan} |")
    return "\n".join(lines)
