"""The README's main job, timed against the harness without its CPU rollout chunks, in the same run:
``python tests/benchmarks/main_job.py`` (about 8 minutes on 2 cores).

Runs the main job (the shipped LeWM on the 50 standard Push-T pairs, CEM 300 x 30, torch's default
threads) twice: as ``wmbench eval`` runs it, and with each cost evaluation's candidates rolled out
in one call on torch's threads (the harness before chunking). Writes ``main_job.json`` beside this
file: both wall times, their ratio, the target, and whether each run's 50 outcomes equal the
committed run's (``baselines/results/lewm-cpu-pusht.json``).
"""

import json
import time
from pathlib import Path

import torch

from wmbench.eval import controllers
from wmbench.eval.goal_reaching import EvalSettings, evaluate

ROOT = Path(__file__).parents[2]
CHECKPOINT = ROOT / "baselines/lewm/checkpoints/pusht-cpu.wmb"
COMMITTED = ROOT / "baselines/results/lewm-cpu-pusht.json"
TARGET_S = 120


def run() -> tuple[float, list[dict]]:
    began = time.perf_counter()
    results, _ = evaluate(str(CHECKPOINT), "pusht", EvalSettings(), progress=False)
    return time.perf_counter() - began, results["episodes"]


def main() -> None:
    committed = json.loads(COMMITTED.read_text())["episodes"]
    chunked_s, chunked = run()
    print(f"main job as wmbench eval runs it: {chunked_s:.1f} s", flush=True)
    in_chunks = controllers.rollout_in_chunks
    controllers.rollout_in_chunks = lambda model, starts, blocks: model.rollout(starts, blocks)
    try:
        whole_s, whole = run()
    finally:
        controllers.rollout_in_chunks = in_chunks
    print(f"main job with one rollout call per cost evaluation: {whole_s:.1f} s", flush=True)
    figures = {
        "run": "wmbench eval --model baselines/lewm/checkpoints/pusht-cpu.wmb --env pusht (50 pairs, CEM 300 x 30)",
        "threads": torch.get_num_threads(),
        "wall_s": chunked_s,
        "wall_s_one_rollout_call": whole_s,
        "speedup": whole_s / chunked_s,
        "target_wall_s": TARGET_S,
        "successes": sum(episode["success"] for episode in chunked),
        "outcomes_equal_committed": chunked == committed,
        "outcomes_equal_one_rollout_call": chunked == whole,
        "committed": str(COMMITTED.relative_to(ROOT)),
    }
    (Path(__file__).parent / "main_job.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
