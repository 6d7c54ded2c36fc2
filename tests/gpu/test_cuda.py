"""The CUDA paths: planners, a checkpoint moved onto the GPU, autocast, compile and the evaluation loop.

Each test here has a CPU twin in the default suite (tests/test_planning.py, test_checkpoint.py,
test_evaluation.py, test_eval_cli_conveniences.py); this file checks that the same code gives the
same answers on a GPU. Without one, every test is skipped with the reason. ``bash tests/gpu/run.sh``
runs it on a GPU machine together with the planning benchmarks.
"""

from __future__ import annotations

import pytest
import torch

from wmbench.planning import PLANNERS, make_planner

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run `bash tests/gpu/run.sh` on one")
CUDA = torch.device("cuda")
B, H, D = 6, 5, 4


def quadratic(targets: torch.Tensor):
    return lambda actions: (actions - targets[: actions.shape[0], None]).square().sum(dim=(2, 3))


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_planners_on_cuda_plan_each_episode_as_if_alone_and_reach_the_target(name):
    targets = torch.rand(B, H, D, device=CUDA) * 1.6 - 0.8
    batched = make_planner(name, H, D, device="cuda").plan(quadratic(targets), B)
    assert batched.device.type == "cuda" and batched.dtype == torch.float32
    for episode in range(B):
        alone = make_planner(name, H, D, device="cuda").plan(quadratic(targets[episode : episode + 1]), 1, episode_ids=[episode])
        torch.testing.assert_close(alone[0], batched[episode])  # one generator per episode, on the GPU too
    assert (batched - targets).abs().max() < 0.2


def test_autocast_on_cuda_evaluates_in_bfloat16_and_compile_changes_no_plan():
    layer = torch.nn.Linear(D, 1).to(CUDA)
    seen = []

    def cost(actions):
        out = layer(actions)
        seen.append(out.dtype)
        return out.sum((-1, -2))

    plan = make_planner("cem", H, D, device="cuda", iterations=2, autocast=True).plan(cost, B)
    assert plan.dtype == torch.float32 and set(seen) == {torch.bfloat16}
    targets = torch.rand(B, H, D, device=CUDA) * 1.6 - 0.8
    eager = make_planner("cem", H, D, device="cuda", iterations=3).plan(quadratic(targets), B)
    compiled = make_planner("cem", H, D, device="cuda", iterations=3, compile=True).plan(quadratic(targets), B)
    torch.testing.assert_close(compiled, eager)


def test_a_checkpoint_loads_onto_cuda_and_gives_the_cpu_outputs(tmp_path):
    from wmbench.checkpoint import export, load_model
    from wmbench.testing import TinyWorldModel

    path = export(TinyWorldModel(image_size=32, action_dim=2), tmp_path / "tiny.wmb")
    on_cpu, on_gpu = load_model(path, device="cpu"), load_model(path, device="cuda")
    pixels = torch.randint(0, 256, (3, 1, 3, 32, 32), dtype=torch.uint8)
    latents = on_gpu.encode(pixels.to(CUDA))
    assert latents.device.type == "cuda"
    torch.testing.assert_close(latents.cpu(), on_cpu.encode(pixels), rtol=1e-3, atol=1e-3)  # TF32 on the GPU
    blocks = torch.zeros(3, 1 + 5, on_cpu.meta.action_block * on_cpu.meta.action_dim)
    torch.testing.assert_close(on_gpu.rollout(latents, blocks.to(CUDA)).cpu(), on_cpu.rollout(on_cpu.encode(pixels), blocks),
                               rtol=1e-3, atol=1e-3)


def test_the_evaluation_loop_runs_on_cuda_and_says_so(tmp_path):
    from wmbench.checkpoint import export
    from wmbench.eval.goal_reaching import EvalSettings, evaluate
    from wmbench.eval.results import validate
    from wmbench.testing import TinyWorldModel

    path = export(TinyWorldModel(image_size=32, action_dim=2), tmp_path / "tiny.wmb")
    settings = EvalSettings(episodes=4, budget=10, device="cuda", planner_options={"samples": 32, "iterations": 3, "elites": 4})
    results, _ = evaluate(str(path), "tworoom", settings, progress=False)
    validate(results)
    assert results["device"]["type"] == "cuda" and results["planner"]["device"].startswith("cuda")
    assert results["timing"]["planning_calls"] >= 1 and len(results["episodes"]) == 4
