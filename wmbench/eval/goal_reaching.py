"""The evaluation harness: model-predictive control from frozen start/goal pairs, all episodes at once.

For each episode the env is reset to a start state of the env's frozen evaluation set
(``datasets/eval``) with the pair's goal state; the goal image is drawn at the model's
resolution. Every ``replan_every`` model steps, the planner optimizes the next ``horizon`` action
blocks of every unfinished episode in one batch; the plan is executed block by block (``action_block``
env steps each) until the budget of env steps is spent. An episode succeeds when the env's
success rule holds at any env step within the budget (REFERENCE.md section 1). Three kinds of
controller plan:

- a world model (``LatentController``): the cost of a candidate is the model's cost between the
  last latent it predicts and the goal image's latent;
- ``oracle`` (``SimulatorController``): the true simulator rolls each candidate out from the
  episode's state, and the cost is the env's ``goal_cost``, the ceiling of the env and planner;
- ``random`` (``RandomController``): uniform random action blocks, the floor.
"""

from __future__ import annotations

import platform
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import wmbench
from wmbench.data.evalset import EvalSet, load_eval_set
from wmbench.envs import ENVS, goal_env
from wmbench.planning import make_planner, shift_plan
from wmbench.results import RESULTS_FORMAT, wilson_interval
from wmbench.world_model import squared_l2_to_goal

ORACLE_ACTION_BLOCK = 5  # env steps per planned block for the oracle and random controllers (the papers' frameskip)
ORACLE_RESOLUTION = 64  # the oracle does not look at pixels; frames are only drawn for videos
ORACLE_CEM = {"samples": 64, "iterations": 5, "elites": 8}  # the true simulator is costly to sample on a CPU


@dataclass
class EvalSettings:
    episodes: int = 50
    budget: int = 50  # env steps
    seed: int = 42  # which pairs are drawn, and the planner's seed
    planner: str = "cem"
    horizon: int = 5  # model steps planned
    replan_every: int | None = None  # model steps executed between plans; None: the whole horizon (receding horizon 5)
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


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device is available here; use --device cpu or auto")
    return torch.device(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def draw_pairs(evalset: EvalSet, episodes: int, seed: int) -> np.ndarray:
    """Which pairs of the set an evaluation uses: ``episodes`` distinct ones drawn with ``seed``."""
    if episodes > len(evalset):
        raise ValueError(f"--episodes {episodes}: the evaluation set has {len(evalset)} pairs")
    return np.sort(np.random.default_rng(seed).choice(len(evalset), size=episodes, replace=False))


# ---------------------------------------------------------------------- controllers
class LatentController:
    """Plans in a world model's latent space: encode history and goal, roll candidates out, compare."""

    def __init__(self, model, planner, device: torch.device):
        self.model, self.planner, self.device = model, planner, device
        self.meta = model.meta
        self.cost = getattr(model, "cost", None) or squared_l2_to_goal  # cost is optional in the protocol
        self.action_block, self.history = self.meta.action_block, self.meta.history
        self.image_size = tuple(self.meta.image_size)

    def begin(self, goal_frames: np.ndarray) -> None:
        frames = getattr(self.model, "encode_frames", None) or 1  # an export may fix how many frames encode takes
        with torch.no_grad():
            self.goals = self._encode(np.repeat(goal_frames[:, None], frames, axis=1))[:, -1]

    def _encode(self, frames: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 1, 4, 2, 3)
        return self.model.encode(pixels)

    def plan(self, episodes: np.ndarray, frames: np.ndarray, past_blocks: np.ndarray, states, init: np.ndarray) -> np.ndarray:
        """Plans [B, H, D] for the episodes at positions ``episodes``: ``frames`` uint8 [B, T, H, W, 3]
        (the last T frames), ``past_blocks`` [B, T - 1, D] (the env actions executed between them)."""
        meta, model = self.meta, self.model
        with torch.no_grad():
            latents = self._encode(frames)
        goals = self.goals[torch.as_tensor(episodes, device=self.device)]
        past = meta.normalize_actions(torch.as_tensor(past_blocks, dtype=torch.float32, device=self.device))

        def cost(actions: torch.Tensor) -> torch.Tensor:  # [B, N, H, D] env actions in [-1, 1] -> [B, N]
            batch, samples, horizon, size = actions.shape
            flat = lambda x: x.unsqueeze(1).expand(batch, samples, *x.shape[1:]).reshape(batch * samples, *x.shape[1:])
            blocks = torch.cat([flat(past), meta.normalize_actions(actions.reshape(batch * samples, horizon, size)),
                                actions.new_zeros(batch * samples, 1, size)], dim=1)
            predicted = model.rollout(flat(latents), blocks)
            return self.cost(predicted, flat(goals)).reshape(batch, samples)

        init = torch.as_tensor(init, dtype=torch.float32, device=self.device)
        return self.planner.plan(cost, len(episodes), init=init, episode_ids=episodes).cpu().numpy()


class SimulatorController:
    """The oracle: plans with the true simulator and the env's ``goal_cost`` (same planner, same budget)."""

    def __init__(self, env_name: str, planner, goal_states: np.ndarray):
        self.planner, self.goal_states = planner, goal_states
        self.action_block, self.history, self.image_size = ORACLE_ACTION_BLOCK, 1, (ORACLE_RESOLUTION, ORACLE_RESOLUTION)
        self.sim = wmbench.make(env_name, obs_type="state", terminate_on_success=False).unwrapped
        self.sim.reset(seed=0)

    def begin(self, goal_frames) -> None:
        pass

    def plan(self, episodes, frames, past_blocks, states: np.ndarray, init: np.ndarray) -> np.ndarray:
        sim, action_dim = self.sim, self.sim.action_space.shape[0]

        def cost(actions: torch.Tensor) -> torch.Tensor:
            blocks = actions.detach().cpu().numpy()
            costs = np.empty(blocks.shape[:2])
            for b, episode in enumerate(episodes):
                for n in range(blocks.shape[1]):
                    sim.set_state(states[b])
                    best = np.inf
                    for action in blocks[b, n].reshape(-1, action_dim):
                        sim.step(action)
                        best = min(best, sim.goal_cost(sim.get_state(), self.goal_states[episode]))
                    costs[b, n] = best
            return torch.as_tensor(costs, dtype=torch.float32)

        return self.planner.plan(cost, len(episodes), init=torch.as_tensor(init, dtype=torch.float32), episode_ids=episodes).cpu().numpy()


class RandomController:
    """The floor: uniform random action blocks, no planning."""

    def __init__(self, horizon: int, action_dim: int, seed: int):
        self.action_block, self.history, self.image_size = ORACLE_ACTION_BLOCK, 1, (ORACLE_RESOLUTION, ORACLE_RESOLUTION)
        self.size, self.horizon, self.rng = ORACLE_ACTION_BLOCK * action_dim, horizon, np.random.default_rng(seed)

    def begin(self, goal_frames) -> None:
        pass

    def plan(self, episodes, frames, past_blocks, states, init) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, (len(episodes), self.horizon, self.size)).astype(np.float32)


# ---------------------------------------------------------------------- the loop
@dataclass
class Episode:
    pair: int
    frames: deque  # the last T frames
    past_blocks: deque  # the last T - 1 executed action blocks
    success_step: int | None = None
    video: list | None = None


def run_mpc(env_name: str, controller, settings: EvalSettings, evalset: EvalSet, pairs: np.ndarray,
            device: torch.device, videos: int = 0, progress: bool = True) -> dict[str, Any]:
    """Run every episode to success or budget; returns outcomes and timings."""
    block, history = controller.action_block, controller.history
    envs = [wmbench.make(env_name, resolution=controller.image_size, terminate_on_success=False) for _ in pairs]
    action_dim = envs[0].action_space.shape[0]
    size = block * action_dim
    episodes, goal_frames = [], []
    for i, (env, pair) in enumerate(zip(envs, pairs)):
        obs, info = env.reset(options={"state": evalset.start_states[pair], "goal_state": evalset.goal_states[pair]})
        goal_frames.append(info["goal"])
        episodes.append(Episode(int(pair), deque([obs["pixels"]] * history, maxlen=history),
                                deque([np.zeros(size, np.float32)] * (history - 1), maxlen=history - 1),
                                video=[obs["pixels"]] if i < videos else None))
    controller.begin(np.stack(goal_frames))

    plans = np.zeros((len(pairs), settings.horizon, size), np.float32)
    plan_times, env_seconds, step, next_block = [], 0.0, 0, settings.horizon
    # One tick per replanning round (plan, then execute it): rounds cost about the same, so the ETA holds.
    rounds = -(-settings.budget // (block * settings.replan_every))
    bar = tqdm(total=rounds, desc=f"eval {env_name}", unit="round", disable=not progress, leave=False)
    start = time.perf_counter()
    while step < settings.budget:
        active = np.array([i for i, e in enumerate(episodes) if e.success_step is None])
        if active.size == 0:
            break
        if next_block >= settings.replan_every:
            init = shift_plan(torch.from_numpy(plans[active]), next_block).numpy()
            frames = np.stack([np.stack(episodes[i].frames) for i in active])
            past = np.array([list(episodes[i].past_blocks) for i in active], np.float32).reshape(len(active), history - 1, size)
            states = np.stack([envs[i].unwrapped.get_state() for i in active])
            synchronize(device)
            began = time.perf_counter()
            plans[active] = controller.plan(active, frames, past, states, init)
            synchronize(device)
            plan_times.append((time.perf_counter() - began, int(active.size)))
            next_block = 0
            bar.update()
        began, last_frames = time.perf_counter(), {}
        for j in range(block):
            if step >= settings.budget:
                break
            step += 1
            for i in active:
                if episodes[i].success_step is not None:
                    continue
                obs, _, _, _, info = envs[i].step(plans[i, next_block, j * action_dim : (j + 1) * action_dim])
                last_frames[i] = obs["pixels"]
                if episodes[i].video is not None:
                    episodes[i].video.append(obs["pixels"])
                if info["success"]:
                    episodes[i].success_step = step
        for i in active:
            episodes[i].frames.append(last_frames[i])
            episodes[i].past_blocks.append(plans[i, next_block])
        env_seconds += time.perf_counter() - began
        next_block += 1
        solved = sum(e.success_step is not None for e in episodes)
        bar.set_postfix_str(f"env step {step}/{settings.budget}, solved {solved}/{len(episodes)}")
    wall = time.perf_counter() - start
    bar.close()
    for env in envs:
        env.close()
    return {"episodes": episodes, "goal_frames": goal_frames, "plan_times": plan_times, "env_seconds": env_seconds, "wall": wall}


# ---------------------------------------------------------------------- a whole evaluation
def evaluate(model: str, env_name: str, settings: EvalSettings, *, trust_code: bool = False, videos: int = 0,
             progress: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evaluate ``model`` (a checkpoint path, ``oracle`` or ``random``) on ``env_name``.

    Returns the results document (see ``wmbench/schemas/results.schema.json``) and the run's
    artifacts (episode frames for videos, goal frames).
    """
    name = goal_env(env_name)
    device = resolve_device(settings.device)
    evalset = load_eval_set(name)
    pairs = draw_pairs(evalset, settings.episodes, settings.seed)
    env_id = ENVS[name].id
    action_dim = len(evalset.actions[0, 0])

    def planner(block: int, device: torch.device, defaults: dict | None = None):
        options = {**(defaults or {}), **settings.planner_options}
        return make_planner(settings.planner, settings.horizon, block * action_dim, seed=settings.seed, device=device, **options)

    if model == "random":
        controller = RandomController(settings.horizon, action_dim, settings.seed)
        model_info = {"name": "random", "source": "random", "sha256": None, "parameters": 0}
        planner_config = {"name": "random", "horizon": settings.horizon}
        device = torch.device("cpu")
    elif model == "oracle":
        chosen = planner(ORACLE_ACTION_BLOCK, torch.device("cpu"), ORACLE_CEM if settings.planner == "cem" else None)
        if chosen.differentiable:
            raise ValueError(f"--planner {settings.planner} needs a differentiable cost; the oracle's simulator is not: use cem, mppi or icem")
        controller = SimulatorController(name, chosen, evalset.goal_states[pairs])
        model_info = {"name": "oracle", "source": "oracle", "sha256": None, "parameters": 0}
        planner_config = chosen.config()
        device = torch.device("cpu")
    else:
        from wmbench.checkpoint import check_compatible, load_model

        loaded = load_model(model, device=device, trust_code=trust_code)
        check_compatible(loaded.meta, wmbench.make(name, obs_type="state"))
        chosen = planner(loaded.meta.action_block, device)
        controller = LatentController(loaded, chosen, device)
        model_info = {"name": loaded.meta.name, "source": loaded.source, "sha256": loaded.sha256,
                      "parameters": getattr(loaded, "parameters_count", None), "meta": json_meta(loaded.meta)}
        planner_config = chosen.config()

    run = run_mpc(name, controller, settings, evalset, pairs, device, videos=videos, progress=progress)
    outcomes = [{"pair": e.pair, "success": e.success_step is not None, "steps_to_success": e.success_step}
                for e in run["episodes"]]
    successes = sum(o["success"] for o in outcomes)
    calls = run["plan_times"]
    planning_total = sum(seconds for seconds, _ in calls)
    results = {
        "format": RESULTS_FORMAT,
        "wmbench_version": wmbench.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "env": {"name": name, "id": env_id, "version": int(env_id.rsplit("-v", 1)[1])},
        "protocol": {
            "budget": settings.budget,
            "episodes": settings.episodes,
            "seed": settings.seed,
            "goal_offset": evalset.meta["goal_offset"],
            "eval_set": {"env": name, "sha256": evalset.meta["sha256"], "pairs": len(evalset)},
        },
        "model": model_info,
        "planner": {**planner_config, "horizon": settings.horizon, "replan_every": settings.replan_every,
                    "action_block": controller.action_block},
        "device": device_info(device),
        "success": {"rate": successes / len(outcomes), "successes": successes, "episodes": len(outcomes),
                    "ci95": list(wilson_interval(successes, len(outcomes))), "interval": "wilson"},
        "episodes": outcomes,
        "timing": {
            "planning_calls": len(calls),
            "planning_call_s": [seconds for seconds, _ in calls],
            "planning_call_episodes": [count for _, count in calls],
            "planning_call_mean_s": planning_total / max(len(calls), 1),
            "episode_plan_mean_s": planning_total / max(sum(count for _, count in calls), 1),
            "planning_total_s": planning_total,
            "env_step_total_s": run["env_seconds"],
            "wall_s": run["wall"],
        },
    }
    return results, run


def json_meta(meta) -> dict[str, Any]:
    import json

    return json.loads(meta.to_json())


def device_info(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), platform.machine())
    return {"type": device.type, "name": name, "torch": torch.__version__,
            "threads": torch.get_num_threads() if device.type == "cpu" else None}


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo") as file:
            return file.read().splitlines()
    except OSError:
        return []


def episode_clip(frames: list[np.ndarray], goal: np.ndarray) -> list[np.ndarray]:
    """Agent | goal side by side, scaled up to at least 128 px high, for a GIF."""
    scale = max(1, int(np.ceil(128 / goal.shape[0])))
    gap = np.full((goal.shape[0], 2, 3), 255, np.uint8)
    clip = [np.concatenate([frame, gap, goal], axis=1) for frame in frames]
    return [c.repeat(scale, 0).repeat(scale, 1) for c in clip]


def plot_summary(results: dict[str, Any], path) -> None:
    """Cumulative success against env steps, with the Wilson interval at the budget (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget, episodes = results["protocol"]["budget"], results["episodes"]
    steps = np.arange(budget + 1)
    reached = np.array([e["steps_to_success"] if e["success"] else budget + 1 for e in episodes])
    curve = [(reached <= s).mean() for s in steps]
    lo, hi = results["success"]["ci95"]
    figure, axis = plt.subplots(figsize=(5, 3.2), dpi=120)
    axis.plot(steps, curve, color="tab:blue", label=results["model"]["name"])
    rate = results["success"]["rate"]
    axis.errorbar([budget], [rate], yerr=[[max(rate - lo, 0.0)], [max(hi - rate, 0.0)]],
                  fmt="o", color="tab:blue", capsize=3, label="95% Wilson interval")
    axis.set(xlabel="env steps", ylabel="episodes solved", ylim=(0, 1.02), xlim=(0, budget + 1),
             title=f"{results['env']['id']}: {results['planner']['name']}, {len(episodes)} episodes")
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
