"""What plans in the goal-reaching loop: one interface, four controllers.

A controller receives a ``PlanRequest`` for the unfinished episodes of an evaluation and returns
their next ``horizon`` action blocks, ``[B, H, action_block * action_dim]`` env actions in [-1, 1]:

=======================  ===========================================================================
``LatentController``     a world model: the cost of a candidate is the model's cost between the last
                         latent it predicts and the goal image's latent
``SimulatorController``  ``oracle``: the true simulator rolls each candidate out from the episode's
                         state (``simulators.py``, batched), and the cost is the smallest of the env's
                         ``goal_cost`` along the rollout: the ceiling of env and planner
``ExpertController``     ``expert``: the env's scripted data policy, without its action noise, steered
                         to the episode's goal state (Two-Room's door expert, Cube's ogbench oracle);
                         its plan is what the policy does in a copy of the env from the episode's state
``RandomController``     ``random``: uniform random action blocks, the floor
=======================  ===========================================================================
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import wmbench
from wmbench.eval.simulators import goal_costs
from wmbench.planning import Planner, episode_seed
from wmbench.policies import Policy, make_policy
from wmbench.protocol import ORACLE
from wmbench.world_model import WorldModel, squared_l2_to_goal

ORACLE_RESOLUTION = 64  # the oracle and random controllers do not look at pixels; frames are only drawn for videos
# Candidates per rollout call on a CPU: a plan's 15,000 in one call spill their activations out of the caches,
# while chunks of 1,024 stay in them (the shipped LeWM: 1.5x faster, the same bits)
CPU_ROLLOUT_CHUNK = 1024


@dataclass(frozen=True)
class PlanRequest:
    """What a controller sees of the ``B`` episodes it plans for."""

    episodes: np.ndarray  # [B] positions of the episodes in the evaluation (each keeps its own noise stream)
    frames: np.ndarray  # uint8 [B, T, H, W, 3]: the last T frames, T = the controller's history
    past_blocks: torch.Tensor  # [B, T - 1, D]: the env action blocks executed between those frames
    states: np.ndarray  # [B, S]: the envs' exact states (only the oracle reads them)
    warm_start: torch.Tensor  # [B, H, D]: the previous plan without its executed blocks, padded with zeros


class Controller(ABC):
    """Plans the next action blocks of a batch of episodes; the loop feeds it what it asks for."""

    action_block: int  # env steps per planned block
    history: int  # frames a plan looks at
    image_size: tuple[int, int]  # the resolution frames and goals are drawn at
    device: torch.device  # where it computes (timed with synchronization)

    def begin(self, goal_frames: np.ndarray) -> None:
        """Called once, before the first plan, with the goal images ``[N, H, W, 3]`` of every episode."""

    compiles = False  # whether its first plan does one-off work (torch.compile) that ``warm_up`` does untimed

    def warm_up(self, request: PlanRequest) -> None:
        """Do the one-off work of the first plan (called only when ``compiles``)."""

    @abstractmethod
    def plan(self, request: PlanRequest) -> torch.Tensor:
        """The next blocks ``[B, H, D]`` of the requested episodes, on any device."""

    @abstractmethod
    def describe_model(self) -> dict[str, Any]:
        """The ``model`` block of the results."""

    @abstractmethod
    def describe_planner(self) -> dict[str, Any]:
        """The planner's name and settings, for the results' ``planner`` block."""


class LatentController(Controller):
    """Plans in a world model's latent space: encode history and goal, roll candidates out, compare."""

    def __init__(self, model: WorldModel, planner: Planner, device: torch.device, description: dict[str, Any] | None = None):
        self.model, self.planner, self.device = model, planner, device
        self.meta = model.meta
        self.cost = getattr(model, "cost", None) or squared_l2_to_goal  # cost is optional in the protocol
        self.action_block, self.history = self.meta.action_block, self.meta.history
        self.image_size = tuple(self.meta.image_size)
        self.description = description or {"name": self.meta.name}

    def begin(self, goal_frames: np.ndarray) -> None:
        with torch.no_grad():
            self.goals = self._encode(goal_frames[:, None])[:, -1]

    def _encode(self, frames: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 1, 4, 2, 3)
        return self.model.encode(pixels)

    @property
    def compiles(self) -> bool:
        return self.planner.hp.compile

    def warm_up(self, request: PlanRequest) -> None:
        self.planner.warm_up(self.cost_of(request), len(request.episodes))

    def plan(self, request: PlanRequest) -> torch.Tensor:
        return self.planner.plan(self.cost_of(request), len(request.episodes), init=request.warm_start.to(self.device),
                                 episode_ids=request.episodes)

    def imagine(self, request: PlanRequest, plans: torch.Tensor) -> torch.Tensor:
        """The latents ``[B, H, ...]`` the model predicts for executing ``plans`` ``[B, H, D]`` from the requested history."""
        with torch.no_grad():
            past = self.meta.normalize_actions(request.past_blocks.to(self.device))
            return self.model.rollout(self._encode(request.frames), self._blocks(past, plans.to(self.device)))

    def _blocks(self, past: torch.Tensor, plans: torch.Tensor) -> torch.Tensor:
        """A rollout's action blocks: the executed ``past`` (normalized), the ``plans`` in [-1, 1] normalized, and the
        zero block after the last frame."""
        return torch.cat([past, self.meta.normalize_actions(plans), plans.new_zeros(len(plans), 1, plans.shape[-1])], dim=1)

    def cost_of(self, request: PlanRequest):
        """The cost of candidate action blocks for the requested episodes: roll out from their history, compare with their goals."""
        meta, model = self.meta, self.model
        with torch.no_grad():
            latents = self._encode(request.frames)
        goals = self.goals[torch.as_tensor(request.episodes, device=self.device)]
        past = meta.normalize_actions(request.past_blocks.to(self.device))

        def cost(actions: torch.Tensor) -> torch.Tensor:  # [B, N, H, D] env actions in [-1, 1] -> [B, N]
            batch, samples, horizon, size = actions.shape
            flat = lambda x: x.unsqueeze(1).expand(batch, samples, *x.shape[1:]).reshape(batch * samples, *x.shape[1:])
            starts, blocks = flat(latents), self._blocks(flat(past), actions.reshape(batch * samples, horizon, size))
            predicted = rollout_in_chunks(model, starts, blocks) if self.device.type == "cpu" else model.rollout(starts, blocks)
            return self.cost(predicted, flat(goals)).reshape(batch, samples)

        return cost

    def describe_model(self) -> dict[str, Any]:
        return self.description

    def describe_planner(self) -> dict[str, Any]:
        return self.planner.config()


def rollout_in_chunks(model: WorldModel, starts: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """``model.rollout`` of many candidates on a CPU: in chunks of ``CPU_ROLLOUT_CHUNK``, one Python thread per torch
    thread, each computing its chunks with one torch thread. A chunk's small operations split poorly across cores; whole
    chunks side by side keep every core busy (1.25x faster than two torch threads per chunk on the shipped LeWM), and
    each row's numbers are those of one call within float32's rounding."""
    chunks = list(zip(starts.split(CPU_ROLLOUT_CHUNK), blocks.split(CPU_ROLLOUT_CHUNK)))
    threads = torch.get_num_threads()
    if threads == 1 or len(chunks) == 1:
        return torch.cat([model.rollout(*chunk) for chunk in chunks])
    # grad mode and autocast are per thread: the workers take the caller's
    grad, autocast = torch.is_grad_enabled(), torch.is_autocast_enabled("cpu")

    def roll(chunk):
        with torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=torch.get_autocast_dtype("cpu"), enabled=autocast):
            return model.rollout(*chunk)

    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(threads) as pool:
            return torch.cat(list(pool.map(roll, chunks)))
    finally:
        torch.set_num_threads(threads)


class SimulatorController(Controller):
    """The oracle: plans with the true simulator and the env's ``goal_cost`` (same planner, same budget)."""

    action_block, history, image_size = ORACLE.action_block, 1, (ORACLE_RESOLUTION, ORACLE_RESOLUTION)
    device = torch.device("cpu")

    def __init__(self, env_name: str, planner: Planner, goal_states: np.ndarray):
        if planner.differentiable:
            raise ValueError(f"--planner {planner.name} needs a differentiable cost; the oracle's simulator is not: use cem, mppi or icem")
        self.env_name, self.planner, self.goal_states = env_name, planner, goal_states
        self.action_dim = planner.action_size // self.action_block

    def plan(self, request: PlanRequest) -> torch.Tensor:
        goals = self.goal_states[request.episodes]

        def cost(actions: torch.Tensor) -> torch.Tensor:  # [B, N, H, D] action blocks -> [B, N]
            steps = actions.detach().cpu().numpy().reshape(*actions.shape[:2], -1, self.action_dim)
            return torch.as_tensor(goal_costs(self.env_name, request.states, steps, goals), dtype=torch.float32)

        return self.planner.plan(cost, len(request.episodes), init=request.warm_start, episode_ids=request.episodes)

    def describe_model(self) -> dict[str, Any]:
        return {"name": "oracle", "source": "oracle", "sha256": None, "parameters": 0}

    def describe_planner(self) -> dict[str, Any]:
        return self.planner.config()


class ExpertController(Controller):
    """A scripted expert: the env's data policy without action noise, aimed at each episode's goal state.

    The policy acts on the exact state at every env step; to fit the loop's plans it acts in a copy
    of the env from the episode's state, and its actions there are the plan (the env is
    deterministic, so the episode follows them to the same states). Each episode keeps its policy
    across plans, so a policy with phases (grasp, carry, place) carries on where it was.
    """

    action_block, history, image_size = ORACLE.action_block, 1, (ORACLE_RESOLUTION, ORACLE_RESOLUTION)
    device = torch.device("cpu")
    POLICIES = {"tworoom": "expert", "cube": "oracle"}  # env -> its expert data policy

    def __init__(self, env_name: str, horizon: int, goal_states: np.ndarray, seed: int):
        if env_name not in self.POLICIES:
            raise ValueError(f"--model expert: {env_name} has no scripted expert; the envs with one: {', '.join(self.POLICIES)}")
        self.policy_name, self.horizon, self.goal_states, self.seed = self.POLICIES[env_name], horizon, goal_states, seed
        self.sim = wmbench.make(env_name, obs_type="state", resolution=8, terminate_on_success=False).unwrapped
        self.policies: dict[int, Policy] = {}

    def plan(self, request: PlanRequest) -> torch.Tensor:
        steps = self.horizon * self.action_block
        plans = np.empty((len(request.episodes), steps, self.sim.action_space.shape[0]), np.float32)
        for row, (episode, state) in enumerate(zip(request.episodes.tolist(), request.states)):
            self.sim.reset(options={"state": state, "goal_state": self.goal_states[episode]})
            policy = self.policies.get(episode)
            if policy is None:
                policy = self.policies[episode] = make_policy(self.sim, self.policy_name, seed=episode_seed(self.seed, episode, 0))
                policy.noise_sd = 0.0
                policy.reset()
            for step in range(steps):
                plans[row, step] = policy.act()
                self.sim.step(plans[row, step])
        return torch.from_numpy(plans.reshape(len(request.episodes), self.horizon, -1))

    def describe_model(self) -> dict[str, Any]:
        return {"name": "expert", "source": "expert", "sha256": None, "parameters": 0}

    def describe_planner(self) -> dict[str, Any]:
        return {"name": "expert", "policy": self.policy_name, "noise_sd": 0.0, "horizon": self.horizon}


class RandomController(Controller):
    """The floor: uniform random action blocks, no planning."""

    action_block, history, image_size = ORACLE.action_block, 1, (ORACLE_RESOLUTION, ORACLE_RESOLUTION)
    device = torch.device("cpu")

    def __init__(self, horizon: int, action_dim: int, seed: int):
        self.size, self.horizon, self.rng = ORACLE.action_block * action_dim, horizon, np.random.default_rng(seed)

    def plan(self, request: PlanRequest) -> torch.Tensor:
        return torch.from_numpy(self.rng.uniform(-1.0, 1.0, (len(request.episodes), self.horizon, self.size)).astype(np.float32))

    def describe_model(self) -> dict[str, Any]:
        return {"name": "random", "source": "random", "sha256": None, "parameters": 0}

    def describe_planner(self) -> dict[str, Any]:
        return {"name": "random", "horizon": self.horizon}
