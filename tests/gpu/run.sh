#!/usr/bin/env bash
# The GPU check in one command, on a machine with a CUDA GPU (about 5 minutes on one H100):
#   bash tests/gpu/run.sh [OUT_DIR]
# 1. the CUDA tests (tests/gpu/test_cuda.py): planners, a checkpoint on the GPU, autocast, compile, the eval loop;
# 2. the planning benchmarks at LeWM size (tests/benchmarks/test_bench_planning.py): a 50-episode replanning round
#    (CEM 300 x 30, bf16) batched against one episode at a time, FLOP/s against the device's peak; and the paper
#    LeWM config's training throughput, 200 steps at batch 128 in bf16 (tests/benchmarks/test_bench_training.py);
# 3. one JSON, OUT_DIR/gpu-check.json (default test-artifacts/), with the device, the test outcomes and every
#    benchmark's figures.
# It needs wmbench installed with its test extras (pip install -e ".[dev]"); where pip cannot reach the network,
# point WMBENCH_WHEELS at a folder of wheels and they are installed first (--no-index).
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:-test-artifacts}"
mkdir -p "$out"
if [[ -n "${WMBENCH_WHEELS:-}" ]]; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/wmbench-site "$WMBENCH_WHEELS"/*.whl || exit 2
  export PYTHONPATH="/tmp/wmbench-site:${PYTHONPATH:-}"
fi
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU here: tests/gpu/run.sh checks the GPU paths')" || exit 2
export PYTHONUNBUFFERED=1
python3 -m pytest -q -p no:cacheprovider tests/gpu --junitxml="$out/gpu-tests.xml" 2>&1 | tee "$out/gpu-tests.log"
tests_status=${PIPESTATUS[0]}
python3 -m pytest -q -p no:cacheprovider -m benchmark tests/benchmarks/test_bench_planning.py tests/benchmarks/test_bench_training.py 2>&1 | tee "$out/gpu-bench.log"
bench_status=${PIPESTATUS[0]}
python3 tests/gpu/record.py "$out" "$tests_status" "$bench_status"
exit $(( tests_status || bench_status ))
