"""The package as a user installs it: a wheel built from this tree, installed into a fresh virtual
environment, evaluates from outside the repository; `python -m wmbench`; a cheap `import wmbench`
with its public API; output piped into `head`.

The fresh environment gets only the wheel. Its dependencies (torch, gymnasium, ...) come from the
interpreter running the tests through a `.pth` line: installing them afresh would take minutes, and
what is under test is what the wheel itself carries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import wmbench
from wmbench.envs import GOAL_ENVS

ROOT = Path(__file__).parents[1]
SCHEMAS = sorted(p.name for p in (ROOT / "wmbench" / "schemas").glob("*.json"))


def run(command: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    # no PYTHONPATH: the installed wheel, not this checkout, must be what runs
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """The wheel built from a copy of the sources (the build writes build/ and *.egg-info beside them), and the build log."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "wmbench", source / "wmbench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    build = run([sys.executable, "-m", "pip", "wheel", "--verbose", "--no-deps", "--no-build-isolation", "--no-index",
                 str(source), "-w", str(out)], cwd=source)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (built,) = out.glob("wmbench-*.whl")
    return built, build.stdout + build.stderr


def test_the_wheel_carries_what_evaluation_needs_and_complete_metadata(wheel):
    path, log = wheel
    names = set(zipfile.ZipFile(path).namelist())
    for env in GOAL_ENVS:
        assert {f"wmbench/data/eval_sets/{env}.npz", f"wmbench/data/eval_sets/{env}.json"} <= names, env
    assert {f"wmbench/schemas/{schema}" for schema in SCHEMAS} <= names
    assert {"wmbench/py.typed", "wmbench/__main__.py", f"wmbench-{wmbench.__version__}.dist-info/licenses/LICENSE"} <= names
    assert not any(name.startswith(("tests/", "baselines/", "datasets/", "leaderboard/")) for name in names)

    metadata = Parser().parsestr(zipfile.ZipFile(path).read(f"wmbench-{wmbench.__version__}.dist-info/METADATA").decode())
    assert metadata["License-Expression"] == "MIT" and metadata["License-File"] == "LICENSE"
    assert metadata["Author"] == "the wmbench authors" and metadata["Requires-Python"] == ">=3.10"
    classifiers = metadata.get_all("Classifier")
    assert {f"Programming Language :: Python :: 3.{minor}" for minor in (10, 11, 12)} <= set(classifiers)
    assert "Typing :: Typed" in classifiers
    assert "deprecat" not in log.lower(), [line for line in log.splitlines() if "deprecat" in line.lower()]


def test_a_wheel_install_evaluates_from_outside_the_repository(wheel, tmp_path):
    path, _ = wheel
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(path)], cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-3000:]
    where = run([str(python), "-c", "import wmbench; print(wmbench.__file__)"], cwd=tmp_path).stdout.strip()
    assert Path(where).is_relative_to(site), where

    # `wmbench evalset` writes where `wmbench eval` reads: into the installed package (Two-Room regenerates bit for bit)
    shipped = json.loads((site / "wmbench/data/eval_sets/tworoom.json").read_text())["sha256"]
    regenerated = run([str(venv / "bin" / "wmbench"), "evalset", "--env", "tworoom"], cwd=tmp_path)
    assert regenerated.returncode == 0, regenerated.stderr[-3000:]
    assert str(site / "wmbench/data/eval_sets") in regenerated.stdout and shipped in regenerated.stdout

    evaluation = run([str(python), "-m", "wmbench", "eval", "--model", "oracle", "--env", "tworoom", "--episodes", "2",
                      "--out", "run"], cwd=tmp_path)
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["protocol"]["eval_set"]["sha256"] == shipped and results["success"]["episodes"] == 2


def test_importing_wmbench_is_cheap_and_shows_its_public_api():
    probe = "import json, sys, wmbench; print(json.dumps([sorted(dir(wmbench)), 'torch' in sys.modules]))"
    names, torch_loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert not torch_loaded
    assert names == sorted(wmbench.__all__) and "os" not in names
    assert {"make", "ENVS", "export", "save_spec", "load_model", "evaluate", "EvalResult", "EvalSettings", "ModelMeta"} <= set(names)


def test_every_public_name_resolves():
    pytest.importorskip("torch")
    from wmbench.checkpoint import save_spec
    from wmbench.eval.api import EvalResult, evaluate
    from wmbench.eval.goal_reaching import EvalSettings
    from wmbench.world_model import ModelMeta

    assert (wmbench.evaluate, wmbench.EvalResult, wmbench.EvalSettings, wmbench.ModelMeta, wmbench.save_spec) == (
        evaluate, EvalResult, EvalSettings, ModelMeta, save_spec)
    assert all(getattr(wmbench, name) is not None for name in wmbench.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        wmbench.nothing  # noqa: B018


def test_python_dash_m_runs_the_command_line():
    help_text = subprocess.run([sys.executable, "-m", "wmbench", "--help"], capture_output=True, text=True, check=True).stdout
    assert "evalset" in help_text and "eval" in help_text


@pytest.mark.parametrize("reader", ["head -n 1", "head -n 0"])  # -n 0 leaves before anything is written
def test_output_piped_into_head_ends_quietly(reader):
    piped = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m wmbench envs | {reader}"],
                           capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # one write per line
    assert piped.returncode == 0 and piped.stderr == ""
    assert len(piped.stdout.splitlines()) == int(reader.split()[-1])
