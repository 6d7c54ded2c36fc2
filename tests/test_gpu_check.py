"""The GPU check on a CPU: its script refuses to run without a GPU, its JSON reads pytest's report and the
benchmarks' figures right, and its training benchmark runs, so a lent GPU's few minutes are not lost to a bug
after the CUDA calls."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the GPU check needs the 'torch' extra")

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("gpu_record", ROOT / "tests/gpu/record.py")
record = importlib.util.module_from_spec(spec)
spec.loader.exec_module(record)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a CUDA GPU")
def test_run_sh_refuses_a_machine_without_a_gpu_in_one_line(tmp_path):
    done = subprocess.run(["bash", str(ROOT / "tests/gpu/run.sh"), str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "no CUDA GPU here: tests/gpu/run.sh checks the GPU paths"
    assert not (tmp_path / "out" / "gpu-check.json").exists()


def test_the_record_has_each_tests_outcome_and_only_the_planning_and_training_benchmarks(tmp_path):
    (tmp_path / "gpu-tests.xml").write_text(
        '<testsuites><testsuite name="pytest" tests="3">'
        '<testcase classname="tests.gpu.test_cuda" name="test_a"/>'
        '<testcase classname="tests.gpu.test_cuda" name="test_b"><failure message="x"/></testcase>'
        '<testcase classname="tests.gpu.test_cuda" name="test_c"><skipped message="y"/></testcase>'
        "</testsuite></testsuites>")
    results = tmp_path / "results"
    results.mkdir()
    planning = {"benchmark": "tests/benchmarks/test_bench_planning.py::test_round", "speedup": 25.0}
    (results / "test_round.json").write_text(json.dumps(planning))
    training = {"benchmark": "tests/benchmarks/test_bench_training.py::test_lewm_training_throughput", "samples_per_s": 900.0}
    (results / "test_lewm_training_throughput.json").write_text(json.dumps(training))
    (results / "test_decode.json").write_text(json.dumps({"benchmark": "tests/benchmarks/test_bench_datasets.py::test_decode"}))
    checked = record.gpu_check(tmp_path, 0, 1, {"device": "NVIDIA H100 80GB HBM3"}, results)
    assert checked["tests"] == {"test_a": "passed", "test_b": "failed", "test_c": "skipped"}
    assert checked["benchmarks"] == {"test_round": planning, "test_lewm_training_throughput": training}
    assert (checked["device"], checked["tests_exit_status"], checked["benchmarks_exit_status"]) == ("NVIDIA H100 80GB HBM3", 0, 1)


def test_the_training_throughput_benchmark_runs_its_steps_on_the_cpu():
    """The GPU check's training benchmark (paper config, bf16, on CUDA) with the cpu config and tiny sizes: the same code."""
    spec = importlib.util.spec_from_file_location("bench_training", ROOT / "tests/benchmarks/test_bench_training.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.training_throughput("cpu", batch=2, steps=2, warmup=1, device=torch.device("cpu"))
    assert figures["losses_finite"] and figures["samples_per_s"] > 0 and figures["parameters"] == 1_852_032
    assert (figures["frames"], figures["resolution"], figures["bf16"]) == (4, 64, False)
