"""The one JSON of ``tests/gpu/run.sh``: the device, each CUDA test's outcome and the figures of every planning and
training benchmark.

``python tests/gpu/record.py OUT_DIR TESTS_STATUS BENCHMARKS_STATUS`` reads ``OUT_DIR/gpu-tests.xml`` (pytest's
JUnit report) and the benchmarks' JSONs, and writes ``OUT_DIR/gpu-check.json``.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

BENCHMARK_RESULTS = Path("tests/benchmarks/results")
GPU_BENCHMARKS = ("tests/benchmarks/test_bench_planning.py", "tests/benchmarks/test_bench_training.py")


def test_outcomes(junit_xml: Path) -> dict[str, str]:
    """passed, failed or skipped, by test name."""
    root = ET.parse(junit_xml).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")

    def outcome(case) -> str:
        if case.find("failure") is not None or case.find("error") is not None:
            return "failed"
        return "skipped" if case.find("skipped") is not None else "passed"

    return {case.get("name"): outcome(case) for case in suite.iter("testcase")}


def benchmark_figures(results: Path) -> dict[str, dict]:
    """Each planning and training benchmark's JSON, by test name."""
    figures = [json.loads(path.read_text()) for path in sorted(results.glob("*.json"))]
    return {f["benchmark"].split("::")[-1]: f for f in figures if f.get("benchmark", "").startswith(GPU_BENCHMARKS)}


def gpu_check(out: Path, tests_status: int, benchmarks_status: int, device: dict, results: Path = BENCHMARK_RESULTS) -> dict:
    return {**device, "tests": test_outcomes(out / "gpu-tests.xml"), "tests_exit_status": tests_status,
            "benchmarks": benchmark_figures(results), "benchmarks_exit_status": benchmarks_status}


def main(argv: list[str]) -> None:
    import torch

    out, tests_status, benchmarks_status = Path(argv[0]), int(argv[1]), int(argv[2])
    device = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda}
    record = gpu_check(out, tests_status, benchmarks_status, device)
    (out / "gpu-check.json").write_text(json.dumps(record, indent=2) + "\n")
    passed = sum(outcome == "passed" for outcome in record["tests"].values())
    print(f"wrote {out / 'gpu-check.json'}: {passed}/{len(record['tests'])} CUDA tests passed, benchmarks exit {benchmarks_status}")


if __name__ == "__main__":
    main(sys.argv[1:])
