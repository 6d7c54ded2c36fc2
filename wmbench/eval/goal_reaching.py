"""Goal reaching: model-predictive control from frozen start/goal pairs, all episodes at once.

For each episode the env is reset to a start state of the env's frozen evaluation set
(``wmbench/data/eval_sets``) with the pair's goal state; the goal image is drawn at the controller's
resolution. Every ``replan_every`` model steps, the controller plans the next ``horizon`` action
blocks of every unfinished episode in one batch; the plan is executed block by block
(``action_block`` env steps each) until the budget of env steps is spent. An episode succeeds when
the env's success rule holds at any env step within the budget. The numbers of the standard run
are ``wmbench.protocol.GOAL_REACHING``; the controllers are in ``controllers.py``.

At an episode's start the controller's history is the start frame repeated, with zero action
blocks between the repeats; the goal is one frame, encoded alone.

    results, run = evaluate("model.wmb", "pusht", EvalSettings())
    write_outputs(results, run, "runs/eval/pusht", videos=2)
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

import wmbench
from wmbench.data.evalset import EvalSet, draw_pairs, load_eval_set
from wmbench.devices import device_info, keep_freed_memory, resolve_device, synchronize
from wmbench.envs import ENVS, goal_env
from wmbench.eval.controllers import (Controller, ExpertController, LatentController, PlanRequest, RandomController,
                                      SimulatorController)
from wmbench.eval.plan_view import FrameIndex, frame_index
from wmbench.eval.results import document_header, validate
from wmbench.files import atomic_write, write_json
from wmbench.media import contact_sheet, save_gif
from wmbench.planning import Planner, make_planner, shift_plan
from wmbench.progress import progress_bar
from wmbench.protocol import GOAL_REACHING, oracle_budget
from wmbench.stats import mcnemar_exact, wilson_interval

if TYPE_CHECKING:
    from wmbench.checkpoint import LoadedModel

RESULTS_FORMAT = 1  # bump when a field changes meaning
CANDIDATE_COPIES = 4  # a planner's iteration holds the candidates, their noise, the clipped copy and the elites
ACTIVATIONS = 8  # a model's activations, in latents per frame and candidate: a rough allowance
ORACLE_RUNS = Path(wmbench.__file__).parents[1] / "baselines" / "results"  # committed oracle runs on all pairs: oracle-<env>.json


@dataclass
class EvalSettings:
    episodes: int = GOAL_REACHING.episodes
    budget: int = GOAL_REACHING.budget  # env steps
    seed: int = GOAL_REACHING.seed  # which pairs are drawn, and the planner's seed
    planner: str = GOAL_REACHING.planner
    horizon: int = GOAL_REACHING.horizon  # model steps planned
    replan_every: int | None = None  # model steps executed between plans; None: the whole horizon (receding horizon)
    planner_options: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"

    def __post_init__(self):
        for key in ("episodes", "budget", "horizon"):
            if getattr(self, key) < 1:
                raise ValueError(f"--{key} {getattr(self, key)}: must be at least 1")
        if self.replan_every is None:
            self.replan_every = self.horizon
        if not 1 <= self.replan_every <= self.horizon:
            raise ValueError(f"--replan-every {self.replan_every}: must be between 1 and the horizon ({self.horizon})")
        resolve_device(self.device)  # a device that does not exist here is refused before any work


# ---------------------------------------------------------------------- the episodes
@dataclass
class Episode:
    pair: int
    env: Any
    frames: deque  # the last T frames
    past_blocks: deque  # the last T - 1 executed action blocks
    success_step: int | None = None
    video: list | None = None  # every frame, for the first ``videos`` episodes
    imagined: list | None = None  # (env step planned at, predicted latents [H, ...]) of every plan, for the plan view
    expected: list | None = None  # per video frame: (nearest dataset frame, squared distance) to what the model predicted


class EpisodeBatch:
    """The envs of an evaluation, each reset to its pair, and what a controller needs to see of them."""

    def __init__(self, env_name: str, evalset: EvalSet, pairs: np.ndarray, controller: Controller, videos: int,
                 plan_view: bool = False):
        history = controller.history
        self.episodes: list[Episode] = []
        goal_frames = []
        for i, pair in enumerate(pairs):
            env = wmbench.make(env_name, resolution=controller.image_size, terminate_on_success=False)
            obs, info = env.reset(options={"state": evalset.start_states[pair], "goal_state": evalset.goal_states[pair]})
            goal_frames.append(info["goal"])
            block = np.zeros(controller.action_block * env.action_space.shape[0], np.float32)
            self.episodes.append(Episode(int(pair), env, deque([obs["pixels"]] * history, maxlen=history),
                                         deque([block] * (history - 1), maxlen=history - 1),
                                         video=[obs["pixels"]] if i < videos else None,
                                         imagined=[] if plan_view and i < videos else None))
        self.goal_frames = np.stack(goal_frames)
        self.action_dim = self.episodes[0].env.action_space.shape[0]

    def unfinished(self) -> np.ndarray:
        return np.array([i for i, episode in enumerate(self.episodes) if episode.success_step is None])

    def request(self, active: np.ndarray, warm_start: torch.Tensor) -> PlanRequest:
        chosen = [self.episodes[i] for i in active]
        past = np.array([list(e.past_blocks) for e in chosen], np.float32).reshape(len(chosen), chosen[0].past_blocks.maxlen, warm_start.shape[-1])
        return PlanRequest(episodes=active, frames=np.stack([np.stack(e.frames) for e in chosen]),
                           past_blocks=torch.from_numpy(past), states=np.stack([e.env.unwrapped.get_state() for e in chosen]),
                           warm_start=warm_start)

    def execute(self, active: np.ndarray, blocks: torch.Tensor, step: int, budget: int) -> int:
        """Step every active episode through its block ``[B, D]`` (stopping at the budget); the env step reached."""
        actions = blocks.numpy().reshape(len(active), -1, self.action_dim)
        last_frames = {}
        for j in range(actions.shape[1]):
            if step >= budget:
                break
            step += 1
            for row, i in enumerate(active):
                episode = self.episodes[i]
                if episode.success_step is not None:
                    continue
                obs, _, _, _, info = episode.env.step(actions[row, j])
                last_frames[i] = obs["pixels"]
                if episode.video is not None:
                    episode.video.append(obs["pixels"])
                if info["success"]:
                    episode.success_step = step
        for row, i in enumerate(active):
            self.episodes[i].frames.append(last_frames[i])
            self.episodes[i].past_blocks.append(blocks[row].numpy())
        return step

    def close(self) -> None:
        for episode in self.episodes:
            episode.env.close()
            episode.env = None  # a Cube env holds about 250 MB: free it before the random run alongside makes 50 more


@dataclass
class MPCRun:
    """What a run of the loop leaves: the episodes (outcomes, video frames), goals and timings."""

    episodes: list[Episode]
    goal_frames: np.ndarray  # [N, H, W, 3]
    plan_times: list[tuple[float, int]]  # (seconds, episodes planned) of every planning call
    env_seconds: float
    wall_seconds: float
    compile_seconds: float | None  # the untimed warm-up that compiled the cost (None: nothing compiled)
    load_average: tuple[float, float]  # the machine's 1-minute load at the start and the end: others' work slows planning


def run_mpc(env_name: str, controller: Controller, settings: EvalSettings, evalset: EvalSet, pairs: np.ndarray,
            videos: int = 0, progress: bool = True, plan_view: bool = False) -> MPCRun:
    """Run every episode to success or budget; with ``plan_view``, keep what the model predicted for each video
    episode's executed plans (a ``LatentController`` only)."""
    keep_freed_memory()  # each plan iteration's tensors reuse the last one's pages
    batch = EpisodeBatch(env_name, evalset, pairs, controller, videos, plan_view and isinstance(controller, LatentController))
    controller.begin(batch.goal_frames)
    device = controller.device
    plans = torch.zeros(len(pairs), settings.horizon, controller.action_block * batch.action_dim)
    plan_times, env_seconds, step, next_block = [], 0.0, 0, settings.horizon
    # One tick per replanning round (plan, then execute it): rounds cost about the same, so the ETA holds.
    rounds = -(-settings.budget // (controller.action_block * settings.replan_every))
    bar = progress_bar(total=rounds, desc=f"eval {env_name}", unit="round", disable=not progress, leave=False)
    load_at_start, compile_seconds = os.getloadavg()[0], None
    if controller.compiles:
        began = time.perf_counter()
        controller.warm_up(batch.request(batch.unfinished(), plans))
        synchronize(device)
        compile_seconds = time.perf_counter() - began
    start = time.perf_counter()
    while step < settings.budget:
        active = batch.unfinished()
        if active.size == 0:
            break
        if next_block >= settings.replan_every:
            bar.set_postfix_str(f"planning {active.size} episodes at env step {step}", refresh=True)  # a round can take minutes
            request = batch.request(active, shift_plan(plans[active], next_block))
            synchronize(device)
            began = time.perf_counter()
            plans[active] = controller.plan(request).cpu()
            synchronize(device)
            plan_times.append((time.perf_counter() - began, int(active.size)))
            record_imagined(batch, controller, request, plans, active, step)
            next_block = 0
            bar.update()
        began = time.perf_counter()
        step = batch.execute(active, plans[active, next_block], step, settings.budget)
        env_seconds += time.perf_counter() - began
        next_block += 1
        solved = sum(e.success_step is not None for e in batch.episodes)
        bar.set_postfix_str(f"env step {step}/{settings.budget}, solved {solved}/{len(batch.episodes)}")
    wall = time.perf_counter() - start
    bar.close()
    batch.close()
    return MPCRun(batch.episodes, batch.goal_frames, plan_times, env_seconds, wall, compile_seconds, (load_at_start, os.getloadavg()[0]))


# ---------------------------------------------------------------------- a whole evaluation
def make_controller(model: str | LoadedModel, env_name: str, settings: EvalSettings, evalset: EvalSet, pairs: np.ndarray,
                    trust_code: bool = False) -> Controller:
    """The controller of ``model``: a checkpoint path, a loaded model (on ``settings.device``), ``oracle``, ``expert`` or ``random``."""
    action_dim = len(evalset.actions[0, 0])

    def planner(block: int, device: torch.device, defaults: dict | None = None):
        options = {**(defaults or {}), **settings.planner_options}
        return make_planner(settings.planner, settings.horizon, block * action_dim, seed=settings.seed, device=device, **options)

    if model == "random":
        if settings.planner_options:
            raise ValueError(f"--model random plans nothing: drop the planner settings {sorted(settings.planner_options)}")
        return RandomController(settings.horizon, action_dim, settings.seed)
    if model == "oracle":
        oracle = oracle_budget(env_name)
        budget = {"samples": oracle.samples, "iterations": oracle.iterations, "elites": oracle.elites}
        chosen = planner(oracle.action_block, torch.device("cpu"), budget if settings.planner == "cem" else None)
        check_planning_memory(settings.episodes, chosen, chosen.device)
        return SimulatorController(env_name, chosen, evalset.goal_states[pairs])
    if model == "expert":
        if settings.planner_options:
            raise ValueError(f"--model expert plans nothing: drop the planner settings {sorted(settings.planner_options)}")
        return ExpertController(env_name, settings.horizon, evalset.goal_states[pairs], settings.seed)
    from wmbench.eval.models import describe, load_for_env

    device = resolve_device(settings.device)
    loaded = load_for_env(model, env_name, device, trust_code)
    chosen = planner(loaded.meta.action_block, device)
    # per candidate, the rollout holds its action blocks and a latent per frame, with room for the model's activations
    frames = loaded.meta.history + settings.horizon
    check_planning_memory(settings.episodes, chosen, device, frames * (loaded.meta.block_size + ACTIVATIONS * math.prod(loaded.meta.latent_shape)))
    return LatentController(loaded, chosen, device, describe(loaded))


def check_planning_memory(episodes: int, planner: Planner, device: torch.device, floats_per_candidate: int = 0) -> None:
    """Refuse a plan whose tensors would not fit: an estimate made before anything is allocated."""
    candidates = episodes * planner.hp.samples
    needed = 4 * candidates * (CANDIDATE_COPIES * planner.horizon * planner.action_size + floats_per_candidate)
    available = memory_bytes(device)
    if needed > available / 2:
        raise ValueError(
            f"--samples {planner.hp.samples} for {episodes} episodes needs about {needed / 2**30:.1f} GiB to plan, more than half "
            f"of the {available / 2**30:.1f} GiB of {device.type.upper()} memory here: lower --samples or --episodes")


def memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def evaluate(model: str | LoadedModel, env_name: str, settings: EvalSettings, *, trust_code: bool = False, videos: int = 0,
             progress: bool = True, plan_view: str | None = None) -> tuple[dict[str, Any], MPCRun]:
    """Evaluate ``model`` (a checkpoint path, a loaded model, ``oracle``, ``expert`` or ``random``) on ``env_name``.

    Returns the results document (see ``wmbench/schemas/results.schema.json``) and the run
    (episode frames for videos, goal frames). ``plan_view``: a dataset whose frames show, in the
    videos, what the model expected its plans to do (``wmbench/eval/plan_view.py``).
    """
    name = goal_env(env_name)
    evalset = load_eval_set(name)
    pairs = draw_pairs(evalset, settings.episodes, settings.seed)
    controller = make_controller(model, name, settings, evalset, pairs, trust_code)
    if plan_view is not None:
        if not isinstance(controller, LatentController):
            raise ValueError(f"--plan-view shows what a world model predicted; --model {model} predicts nothing")
        if videos < 1:
            raise ValueError("--plan-view draws into the episode videos: add --videos N")
        index = frame_index(controller.model, plan_view, controller.device)  # before the run: a bad dataset fails fast
    run = run_mpc(name, controller, settings, evalset, pairs, videos=videos, progress=progress, plan_view=plan_view is not None)
    if plan_view is not None:
        for episode in run.episodes[:videos]:
            episode.expected = expected_frames(episode, index, controller.action_block)
    return results_document(name, controller, settings, evalset, run), run


def record_imagined(batch: EpisodeBatch, controller: Controller, request: PlanRequest, plans: torch.Tensor, active: np.ndarray,
                    step: int) -> None:
    """Keep what the model predicts for the plans just made, for the video episodes that want a plan view."""
    rows = [row for row, i in enumerate(active) if batch.episodes[i].imagined is not None]
    if not rows:
        return
    chosen = PlanRequest(episodes=request.episodes[rows], frames=request.frames[rows], past_blocks=request.past_blocks[rows],
                         states=request.states[rows], warm_start=request.warm_start[rows])
    predicted = controller.imagine(chosen, plans[active[rows]]).cpu()
    for row, latents in zip(rows, predicted):
        batch.episodes[active[row]].imagined.append((step, latents))


def expected_frames(episode: Episode, index: FrameIndex, action_block: int) -> list[tuple[np.ndarray, float] | None]:
    """For each video frame (env step), the dataset frame nearest to the latent the model predicted for the end of the
    action block it falls in, with the squared distance; None before the first prediction."""
    expected: list[tuple[np.ndarray, float] | None] = [None] * len(episode.video)
    for planned_at, latents in episode.imagined:
        frames, distances = index.nearest(latents)
        for k, (frame, distance) in enumerate(zip(frames, distances)):
            for step in range(planned_at + k * action_block + 1, planned_at + (k + 1) * action_block + 1):
                if step < len(expected):
                    expected[step] = (frame, float(distance))
    return expected


def results_document(env_name: str, controller: Controller, settings: EvalSettings, evalset: EvalSet, run: MPCRun) -> dict[str, Any]:
    env_id = ENVS[env_name].id
    outcomes = episode_outcomes(run)
    successes = sum(o["success"] for o in outcomes)
    calls = run.plan_times
    planning_total = sum(seconds for seconds, _ in calls)
    return {
        **document_header(RESULTS_FORMAT),
        "env": {"name": env_name, "id": env_id, "version": int(env_id.rsplit("-v", 1)[1])},
        "protocol": {
            "budget": settings.budget,
            "episodes": settings.episodes,
            "seed": settings.seed,
            "goal_offset": evalset.meta["goal_offset"],
            "eval_set": {"env": env_name, "sha256": evalset.meta["sha256"], "pairs": len(evalset)},
        },
        "model": controller.describe_model(),
        "planner": {**controller.describe_planner(), "horizon": settings.horizon, "replan_every": settings.replan_every,
                    "action_block": controller.action_block},
        "device": device_info(controller.device),
        "success": {"rate": successes / len(outcomes), "successes": successes, "episodes": len(outcomes),
                    "ci95": list(wilson_interval(successes, len(outcomes))), "interval": "wilson"},
        "episodes": outcomes,
        "references": reference_outcomes(env_name, controller, settings, evalset, run),
        "timing": {
            "planning_calls": len(calls),
            "planning_call_s": [seconds for seconds, _ in calls],
            "planning_call_episodes": [count for _, count in calls],
            "planning_call_mean_s": planning_total / max(len(calls), 1),
            "episode_plan_mean_s": planning_total / max(sum(count for _, count in calls), 1),
            "planning_total_s": planning_total,
            "env_step_total_s": run.env_seconds,
            "wall_s": run.wall_seconds,
            "compile_s": run.compile_seconds,
            "threads": torch.get_num_threads(),
            "precision": "bf16 autocast" if controller.describe_planner().get("autocast") else "float32",
            "load_average_1min": {"start": run.load_average[0], "end": run.load_average[1]},
        },
    }


# ---------------------------------------------------------------------- the floor and the ceiling of the same pairs
def reference_outcomes(env_name: str, controller: Controller, settings: EvalSettings, evalset: EvalSet, run: MPCRun) -> dict[str, Any]:
    """What random actions and the oracle did on this run's pairs, for the ``references`` block.

    Random is cheap, so it runs here on the same pairs, budget and seed (exactly `wmbench eval
    --model random` with this run's settings). The oracle is too costly to run alongside every
    evaluation: its outcomes are read from a committed run covering these pairs
    (``ORACLE_RUNS/oracle-<env>.json``), else it is reported as not measured on these pairs.
    """
    pairs = np.array([e.pair for e in run.episodes])
    own = episode_outcomes(run)
    if isinstance(controller, RandomController):
        random = reference(own, "this run")
    else:
        chosen = EvalSettings(episodes=len(pairs), budget=settings.budget, seed=settings.seed, device="cpu")
        random_run = run_mpc(env_name, RandomController(chosen.horizon, len(evalset.actions[0, 0]), chosen.seed), chosen, evalset,
                             pairs, progress=False)
        random = reference(episode_outcomes(random_run), f"run alongside: wmbench eval --model random "
                           f"--env {env_name} --episodes {settings.episodes} --seed {settings.seed} --budget {settings.budget}")
    oracle = reference(own, "this run") if isinstance(controller, SimulatorController) else committed_oracle(env_name, evalset, settings.budget, pairs)
    return {"random": random, "oracle": oracle}


def committed_oracle(env_name: str, evalset: EvalSet, budget: int, pairs: np.ndarray) -> dict[str, Any]:
    """The oracle's outcomes on ``pairs`` from its committed run, or why there are none."""
    path = ORACLE_RUNS / f"oracle-{env_name}.json"
    if not path.is_file():
        return {"measured": False, "reason": f"not measured on these pairs (no committed oracle run {path.name})"}
    try:
        document = json.loads(path.read_text())
        validate(document)
    except ValueError as error:  # JSONDecodeError is a ValueError
        return {"measured": False, "reason": f"not measured on these pairs ({path.name} is unreadable: {error})"}
    protocol = document["protocol"]
    mismatch = ("it is not an oracle run" if document["model"]["source"] != "oracle"
                else "it used another evaluation set" if protocol["eval_set"]["sha256"] != evalset.meta["sha256"]
                else f"its budget is {protocol['budget']} env steps, this run's {budget}" if protocol["budget"] != budget
                else None)
    by_pair = {e["pair"]: e for e in document["episodes"]}
    missing = [int(pair) for pair in pairs if pair not in by_pair]
    if mismatch is None and missing:
        mismatch = f"it does not cover {len(missing)} of these pairs"
    if mismatch:
        return {"measured": False, "reason": f"not measured on these pairs ({path.name}: {mismatch})"}
    planner = document["planner"]
    return reference([by_pair[int(pair)] for pair in pairs],
                     f"{path.name}: the oracle's committed {protocol['episodes']}-pair run (CEM {planner.get('samples')} x "
                     f"{planner.get('iterations')}), read on these pairs")


def episode_outcomes(run: MPCRun) -> list[dict[str, Any]]:
    return [{"pair": e.pair, "success": e.success_step is not None, "steps_to_success": e.success_step} for e in run.episodes]


def reference(outcomes: list[dict[str, Any]], source: str) -> dict[str, Any]:
    successes = sum(o["success"] for o in outcomes)
    return {"measured": True, "source": source, "successes": successes, "episodes": len(outcomes), "rate": successes / len(outcomes),
            "ci95": list(wilson_interval(successes, len(outcomes))), "outcomes": outcomes}


# ---------------------------------------------------------------------- outputs
def write_outputs(results: dict[str, Any], run: MPCRun | None, out: str | Path, videos: int = 0) -> list[Path]:
    """``results.json``, ``summary.png`` (when matplotlib is installed) and a GIF of each of the first
    ``videos`` episodes of ``run`` in ``out``; returns the paths written."""
    out = Path(out)
    written = [write_json(out / "results.json", results)]
    if importlib.util.find_spec("matplotlib"):  # the 'plots' extra
        written.append(atomic_write(out / "summary.png", lambda tmp: plot_summary(results, tmp)))
    for i, episode in enumerate(run.episodes[:videos] if videos else []):
        path = out / f"episode_{i:02d}_pair{episode.pair}.gif"
        written.append(atomic_write(path, lambda tmp: save_gif(episode_clip(episode.video, run.goal_frames[i], episode.success_step, episode.expected), tmp)))
    return written


def summary_text(results: dict[str, Any]) -> str:
    """The one-screen summary printed at the end of ``wmbench eval``."""
    success, timing = results["success"], results["timing"]
    lo, hi = success["ci95"]
    reached = [e["steps_to_success"] for e in results["episodes"] if e["success"]]
    lines = [
        f"{results['env']['id']}  model {results['model']['name']} ({results['model']['source']})  "
        f"planner {results['planner']['name']}  device {results['device']['name']}",
        f"success      {success['successes']}/{success['episodes']} = {100 * success['rate']:.1f}%  "
        f"(95% Wilson interval {100 * lo:.1f}-{100 * hi:.1f}%) on {success['episodes']} of the "
        f"{results['protocol']['eval_set']['pairs']} pairs (seed {results['protocol']['seed']})",
        f"steps        {sum(reached) / len(reached):.1f} env steps to success on average" if reached else "steps        no episode succeeded",
        f"planning     {timing['planning_call_mean_s']:.3f} s per call ({timing['planning_calls']} calls), "
        f"{timing['episode_plan_mean_s']:.4f} s per episode-plan",
        f"time         {timing['wall_s']:.1f} s in all: planning {timing['planning_total_s']:.1f} s, "
        f"env stepping {timing['env_step_total_s']:.1f} s",
    ]
    if "precision" in timing:  # results written before these fields have none
        load = timing["load_average_1min"]
        compiled = f"; torch.compile took {timing['compile_s']:.1f} s before planning, not counted" if timing["compile_s"] is not None else ""
        lines.append(f"conditions   {timing['precision']}, {timing['threads']} threads, machine load {load['start']:.1f} -> "
                     f"{load['end']:.1f}{compiled}")
    references = results.get("references", {})
    lines += [f"{kind:<12} {reference_text(references[kind])}" for kind in ("random", "oracle") if kind in references]
    note = random_like_note(results)
    return "\n".join(lines + ([f"note         {note}"] if note else []))


def random_like_note(results: dict[str, Any]) -> str | None:
    """A warning when the run cannot be told apart from random actions on the same pairs (exact McNemar, 5%)."""
    random = results.get("references", {}).get("random")
    if results["model"]["source"] == "random" or not random or not random["measured"]:
        return None
    solved_by_random = {o["pair"]: o["success"] for o in random["outcomes"]}
    only_model = sum(e["success"] and not solved_by_random[e["pair"]] for e in results["episodes"])
    only_random = sum(solved_by_random[e["pair"]] and not e["success"] for e in results["episodes"])
    p_value = mcnemar_exact(only_model, only_random)
    if p_value < 0.05:
        return None
    more = f" (--episodes {GOAL_REACHING.pairs} evaluates every pair)" if results["protocol"]["episodes"] < GOAL_REACHING.pairs else ""
    return (f"not distinguishable from random actions on these pairs (exact McNemar p = {p_value:.2f}, "
            f"{only_model} pairs solved only by the model, {only_random} only by random); more pairs would tell{more}")


def reference_text(reference: dict[str, Any]) -> str:
    if not reference["measured"]:
        return reference["reason"]
    return f"{reference['successes']}/{reference['episodes']} = {100 * reference['rate']:.1f}% on the same pairs ({reference['source']})"


def episode_clip(frames: list[np.ndarray], goal: np.ndarray, success_step: int | None,
                 expected: list[tuple[np.ndarray, float] | None] | None = None) -> list[np.ndarray]:
    """Agent | goal side by side (with a plan view: agent | expected | goal), scaled up to at least 128 px high,
    each panel labelled: the env step, and from the step it succeeded on, that it did."""
    scale = max(1, int(np.ceil(128 / goal.shape[0])))
    enlarge = lambda image: image.repeat(scale, 0).repeat(scale, 1)
    blank = np.full_like(goal, 255)
    clip = []
    for step, frame in enumerate(frames):  # frame k: after k env steps
        label = f"step {step}" + (f", solved at {success_step}" if success_step is not None and step >= success_step else "")
        panels, labels = [enlarge(frame)], [label]
        if expected is not None:
            seen = expected[step]
            panels.append(enlarge(blank if seen is None else seen[0]))
            labels.append("expected" if seen is None else f"expected, d2 {seen[1]:.3g}")
        clip.append(np.asarray(contact_sheet(panels, labels, enlarge(goal))))
    return clip


def plot_summary(results: dict[str, Any], path) -> None:
    """Cumulative success against env steps, with the Wilson interval at the budget (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget, episodes = results["protocol"]["budget"], results["episodes"]
    steps = np.arange(budget + 1)

    def solved_by_step(outcomes: list[dict[str, Any]]) -> list[float]:
        reached = np.array([e["steps_to_success"] if e["success"] else budget + 1 for e in outcomes])
        return [(reached <= s).mean() for s in steps]

    lo, hi = results["success"]["ci95"]
    figure, axis = plt.subplots(figsize=(5, 3.2), dpi=120)
    axis.plot(steps, solved_by_step(episodes), color="tab:blue", label=results["model"]["name"])
    references = results.get("references", {})
    for kind, color in (("oracle", "tab:green"), ("random", "tab:gray")):
        if references.get(kind, {}).get("measured"):
            axis.plot(steps, solved_by_step(references[kind]["outcomes"]), color=color, linestyle="--", linewidth=1,
                      label=f"{kind}, same pairs ({100 * references[kind]['rate']:.0f}%)")
        elif kind in references:
            axis.plot([], [], " ", label=f"{kind}: not measured on these pairs")
    rate = results["success"]["rate"]
    axis.errorbar([budget], [rate], yerr=[[max(rate - lo, 0.0)], [max(hi - rate, 0.0)]],
                  fmt="o", color="tab:blue", capsize=3, label="95% Wilson interval")
    axis.set(xlabel="env steps", ylabel="fraction of episodes solved", ylim=(0, 1.02), xlim=(0, budget + 1),
             title=f"{results['env']['id']}: {results['planner']['name']}, {len(episodes)} of "
                   f"{results['protocol']['eval_set']['pairs']} pairs")
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
