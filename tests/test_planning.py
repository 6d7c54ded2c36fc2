"""The MPC planners (wmbench.planning) on problems with known optima.

Two synthetic problems, each for a batch of episodes with different optima:

- a quadratic in the actions, ||a - target||^2 (target inside the box: the planner must find it;
  far outside: the answer must lie on the bound);
- a linear latent system z_{k+1} = A z_k + B a_k with cost ||z_H - goal||^2, the goal reached from
  z_0 by a known action sequence inside [-0.8, 0.8]^(HxD), so the optimal cost is 0.

Tolerances are per planner and follow from what the algorithm resolves with its default
hyperparameters: CEM's std collapses onto the optimum; iCEM shrinks its population to 60 and
draws smooth (colored) noise, a poor fit to targets that jump between steps; GD is Adam with a
step of 0.1, which keeps oscillating around the optimum by a fraction of that; MPPI keeps its
noise at sigma 1 and averages samples about 1 apart, so it resolves the optimum only to a few
hundredths of the cost scale.
"""

from __future__ import annotations

import json

import pytest
import torch

from wmbench.planning import PLANNERS, colored_noise, EpisodeNoise, make_planner, shift_plan

B, H, D = 8, 5, 2
ALL = sorted(PLANNERS)

# largest allowed |plan - target| for a target inside the box, per planner (measured: cem 2e-7,
# icem 0.06, gd 0.11, mppi 0.18, over 80 numbers)
INSIDE_TOLERANCE = {"cem": 1e-3, "icem": 0.15, "gd": 0.2, "mppi": 0.35}
# largest allowed distance from the bound for a target far outside it (measured over 4 sign
# patterns: cem 1.5e-6, gd 0 (projection), icem 0.03-0.07 (0.003 with white noise), mppi 0.07-0.09)
BOUND_TOLERANCE = {"cem": 1e-4, "icem": 0.15, "gd": 1e-6, "mppi": 0.15}
# largest allowed final cost of the linear system, as a fraction of the cost of doing nothing
# (measured over seeds 0-2: cem 1e-5, icem 9e-4, gd 2e-3, mppi 4e-2)
LINEAR_TOLERANCE = {"cem": 1e-3, "icem": 1e-2, "gd": 1e-2, "mppi": 0.1}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are small: extra torch threads only contend with the other test worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def quadratic(target: torch.Tensor):
    """cost(a) = ||a - target||^2 per episode; target [B, H, D]."""
    return lambda actions: (actions - target[:, None]).pow(2).sum((-1, -2))


def inside_targets(seed=0) -> torch.Tensor:
    return torch.rand(B, H, D, generator=torch.Generator().manual_seed(seed)) * 1.6 - 0.8


class LinearSystem:
    """z_{k+1} = A z_k + B a_k from a per-episode z_0; cost ||z_H - goal||^2, goal = z_H under ``solution``."""

    def __init__(self, episodes=B, latent=6, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.A = torch.linalg.qr(torch.randn(latent, latent, generator=g))[0] * 0.9  # a damped rotation
        self.B = torch.randn(latent, D, generator=g) / D**0.5
        self.start = torch.randn(episodes, latent, generator=g)
        self.solution = torch.rand(episodes, H, D, generator=g) * 1.6 - 0.8
        self.goal = self.final_latent(self.start, self.solution)

    def final_latent(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        for k in range(actions.shape[-2]):
            z = z @ self.A.T + actions[..., k, :] @ self.B.T
        return z

    def cost(self, actions: torch.Tensor, episodes=slice(None)) -> torch.Tensor:
        """Costs [b, N] of actions [b, N, H, D] for the given episodes of the system."""
        return (self.final_latent(self.start[episodes, None], actions) - self.goal[episodes, None]).pow(2).sum(-1)


@pytest.mark.parametrize("name", ALL)
def test_quadratic_target_inside_the_box_is_found(name):
    target = inside_targets()
    plan = make_planner(name, H, D).plan(quadratic(target), B)
    assert plan.shape == (B, H, D) and plan.dtype == torch.float32
    assert (plan - target).abs().max() < INSIDE_TOLERANCE[name]


@pytest.mark.parametrize("name", ALL)
def test_target_outside_the_box_gives_the_bound(name):
    signs = torch.where(inside_targets(seed=1) > 0, 1.0, -1.0)
    plan = make_planner(name, H, D).plan(quadratic(3 * signs), B)
    assert plan.abs().max() <= 1.0, "plans stay inside [-1, 1]"
    assert (plan - signs).abs().max() < BOUND_TOLERANCE[name]


@pytest.mark.parametrize("name", ALL)
def test_linear_latent_system_reaches_each_episodes_goal(name):
    system = LinearSystem()
    planner = make_planner(name, H, D)
    plan = planner.plan(system.cost, B)
    final = system.cost(plan[:, None])[:, 0]
    doing_nothing = system.cost(torch.zeros(B, 1, H, D))[:, 0]
    assert doing_nothing.min() > 1, "the goals must be away from where doing nothing leads"
    assert (final / doing_nothing).max() < LINEAR_TOLERANCE[name]


@pytest.mark.parametrize("name", ALL)
def test_batched_plans_equal_plans_made_one_episode_at_a_time(name):
    system = LinearSystem()
    batched = make_planner(name, H, D, seed=3).plan(system.cost, B)
    alone = torch.cat([
        make_planner(name, H, D, seed=3).plan(lambda a, e=e: system.cost(a, slice(e, e + 1)), 1, episode_ids=[e])
        for e in range(B)
    ])
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=0)
    subset = [6, 1, 4]  # a subset in any order, as an evaluation replanning its unfinished episodes
    some = make_planner(name, H, D, seed=3).plan(lambda a: system.cost(a, subset), len(subset), episode_ids=subset)
    torch.testing.assert_close(some, batched[subset], atol=1e-5, rtol=0)


def test_each_plan_of_an_episode_draws_new_noise_and_a_fresh_planner_repeats_them():
    system = LinearSystem()
    planner = make_planner("cem", H, D, iterations=2)
    first, second = planner.plan(system.cost, B), planner.plan(system.cost, B)
    assert not torch.equal(first, second)
    again = make_planner("cem", H, D, iterations=2)
    assert torch.equal(again.plan(system.cost, B), first) and torch.equal(again.plan(system.cost, B), second)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_plan_other_seed_other_plan(name):
    cost = LinearSystem().cost
    plans = [make_planner(name, H, D, seed=seed, iterations=3).plan(cost, B) for seed in (0, 0, 1)]
    assert torch.equal(plans[0], plans[1])
    assert not torch.allclose(plans[0], plans[2])


def test_shift_plan_drops_executed_blocks_and_pads_with_zeros():
    plan = torch.arange(1, 1 + 2 * H * D, dtype=torch.float32).reshape(2, H, D)
    shifted = shift_plan(plan, 2)
    assert shifted.shape == plan.shape
    torch.testing.assert_close(shifted[:, : H - 2], plan[:, 2:])
    assert (shifted[:, H - 2 :] == 0).all()
    assert torch.equal(shift_plan(plan, 0), plan)
    assert (shift_plan(plan, H) == 0).all() and (shift_plan(plan, H + 3) == 0).all()
    torch.testing.assert_close(shift_plan(plan[0], 1)[: H - 1], plan[0, 1:])  # one episode [H, D] works too
    with pytest.raises(ValueError, match="executed"):
        shift_plan(plan, -1)


def test_cem_warm_started_at_the_optimum_stays_there():
    target = inside_targets()
    warm = make_planner("cem", H, D).plan(quadratic(target), B, init=target)
    assert (warm - target).abs().max() < 1e-3
    # the init is always a candidate, so the best-sequence result keeps it exactly
    kept = make_planner("cem", H, D, result="best").plan(quadratic(target), B, init=target)
    assert torch.equal(kept, target)
    # after a warm start the next plan starts from the unexecuted tail: CEM keeps that tail too
    tail = shift_plan(target, 2)
    shifted_target = target.clone()
    shifted_target[:, : H - 2] = target[:, 2:]
    replanned = make_planner("cem", H, D).plan(quadratic(shifted_target), B, init=tail)
    assert (replanned - shifted_target).abs().max() < 1e-3


def test_gd_works_inside_no_grad_and_leaves_model_weights_alone():
    model = torch.nn.Linear(H * D, 1)
    target = inside_targets()

    def cost(actions):
        return (actions - target[:, None]).pow(2).sum((-1, -2)) + 0 * model(actions.flatten(2))[..., 0]

    with torch.no_grad():
        plan = make_planner("gd", H, D).plan(cost, B)
    assert (plan - target).abs().max() < INSIDE_TOLERANCE["gd"]
    assert model.weight.grad is None


def test_colored_noise_has_unit_variance_and_beta_sets_its_correlation_in_time():
    normal = EpisodeNoise([0, 1], torch.device("cpu"))
    for horizon in (5, 6):
        for beta, lag1_range in ((0.0, (-0.03, 0.03)), (2.0, (0.25, 0.8))):
            noise = colored_noise(normal, 20000, horizon, 3, beta)
            assert noise.shape == (2, 20000, horizon, 3)
            torch.testing.assert_close(noise.std(dim=(0, 1, 3)), torch.ones(horizon), atol=0.03, rtol=0)
            lag1 = (noise[:, :, 1:] * noise[:, :, :-1]).mean().item()
            assert lag1_range[0] < lag1 < lag1_range[1], (horizon, beta, lag1)
    assert colored_noise(normal, 10, 1, 3, 2.0).shape == (2, 10, 1, 3)  # horizon 1: no frequencies but the zero one


def test_autocast_evaluates_the_cost_in_bfloat16_and_plans_in_float32():
    seen = []
    layer = torch.nn.Linear(D, 1)

    def cost(actions):
        out = layer(actions)
        seen.append(out.dtype)
        return out.sum((-1, -2))

    plan = make_planner("cem", H, D, iterations=2, autocast=True).plan(cost, B)
    assert plan.dtype == torch.float32 and set(seen) == {torch.bfloat16}


def test_config_is_json_with_every_hyperparameter():
    planner = make_planner("icem", H, D, seed=7, device="auto", elites=20)
    config = json.loads(json.dumps(planner.config()))
    assert config["name"] == "icem" and config["seed"] == 7 and config["elites"] == 20
    assert {"samples", "iterations", "noise_beta", "keep_elites", "population_decay", "momentum", "init_std", "result", "autocast", "compile"} <= set(config)
    assert config["device"] in ("cpu", "cuda")
    assert make_planner("cem", H, D).config()["samples"] == 300 and make_planner("gd", H, D).config()["samples"] == 100


def test_last_stats_count_the_work_done():
    planner = make_planner("cem", H, D, samples=50, elites=5, iterations=4)
    planner.plan(quadratic(inside_targets()), B)
    # one cost call per iteration and nothing more: the final mean is returned unevaluated
    assert planner.last_stats == {"iterations": 4, "cost_calls": 4, "sequences_per_episode": 4 * 50}


def test_clear_errors():
    with pytest.raises(ValueError, match="unknown planner 'ppo'.*cem"):
        make_planner("ppo", H, D)
    with pytest.raises(ValueError, match="unknown hyperparameter.*'temprature'.*temperature"):
        make_planner("mppi", H, D, temprature=0.1)
    with pytest.raises(ValueError, match="elites"):
        make_planner("cem", H, D, samples=10, elites=20)
    with pytest.raises(ValueError, match="result"):
        make_planner("cem", H, D, result="median")
    with pytest.raises(ValueError, match="samples"):
        make_planner("gd", H, D, samples=0)
    planner = make_planner("cem", H, D, iterations=1)
    with pytest.raises(ValueError, match="init has shape"):
        planner.plan(quadratic(inside_targets()), B, init=torch.zeros(B, H + 1, D))
    with pytest.raises(ValueError, match="episode_ids"):
        planner.plan(quadratic(inside_targets()), B, episode_ids=[0] * B)
    with pytest.raises(ValueError, match="cost_fn returned shape"):
        planner.plan(lambda a: a.sum(-1), B)


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="the allocator setting is glibc's")
def test_an_evaluation_keeps_freed_memory_so_plan_iterations_reuse_their_pages():
    """``keep_freed_memory`` (called by every MPC evaluation) makes an iteration's temporaries reuse the last
    one's pages: in a fresh process, CEM-sized arrays allocated and freed 30 times fault in under a tenth of
    the pages they allocate. glibc's defaults faulted in about all of them (110k) in one measurement and none
    in another (its mmap threshold adapts), so they are printed, not compared."""
    import resource
    import subprocess
    import sys

    iterations = """
import resource, sys, torch
from wmbench.devices import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
candidates = torch.randn(50, 300, 5, 10)  # a 50-episode CEM iteration's candidates
def iterate():
    for _ in range(30):
        clipped = (candidates * 2).clamp(-1, 1)
        both = torch.cat([clipped, clipped - candidates])
        del clipped, both
iterate()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
iterate()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    faults = {mode: int(subprocess.run([sys.executable, "-c", iterations, mode], capture_output=True, text=True, check=True).stdout)
              for mode in ("keep", "default")}
    allocated_pages = 30 * 5 * 50 * 300 * 5 * 10 * 4 // resource.getpagesize()  # 5 candidate-sized float32 temporaries per iteration
    print(f"page faults over 30 iterations: {faults} of {allocated_pages} pages allocated")
    assert faults["keep"] < allocated_pages / 10, faults
