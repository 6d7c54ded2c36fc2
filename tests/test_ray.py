"""Scale-out on a real local Ray cluster: collection, the oracle's rollouts and sweeps give the local runs' outputs;
a task whose worker is killed is run again without a missing or duplicated episode; a bad address is one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import ray

from wmbench import cluster
from wmbench.cli import main
from wmbench.data import storage
from wmbench.data.collect import collect
from wmbench.data.recipe import Recipe
from wmbench.envs import ENVS
from wmbench.eval.goal_reaching import EvalSettings, evaluate
from wmbench.eval.simulators import on_ray
from wmbench.eval.sweep import runs_of, sweep

# a loopback-only test cluster: Ray's token authentication is for clusters others can reach
NO_TOKEN = {"RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def recipe(name="scaled-v0", env="tworoom", episodes=4, steps=12) -> Recipe:
    return Recipe(name=name, env=env, policy=ENVS[env].default_policy, episodes=episodes, steps=steps, resolution=32)


def dataset_files(root: Path, name: str) -> dict[str, bytes]:
    folder = root / name / "data"
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def collect_into(root: Path, monkeypatch, **options) -> dict[str, bytes]:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    collect(options.pop("recipe", recipe()), progress=False, **options)
    return dataset_files(root, "scaled-v0")


def test_collection_on_ray_is_byte_identical_to_a_local_one(local_ray, tmp_path, monkeypatch):
    here = collect_into(tmp_path / "here", monkeypatch, workers=1)
    on_cluster = collect_into(tmp_path / "ray", monkeypatch, on_ray=True)
    assert set(here) == {"main_data.hdf5", "metadata.json", storage.MANIFEST_FILE}
    assert on_cluster == here


def ray_task_processes(title: str) -> list[int]:
    """Processes whose title Ray set to ``ray::<title>``: workers running that task now."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(f"ray::{title}".encode()):
                found.append(int(proc.name))
        except OSError:
            continue  # gone meanwhile
    return found


def test_a_task_whose_worker_is_killed_is_retried_without_duplication(local_ray, tmp_path, monkeypatch):
    slow = recipe(env="pusht", episodes=4, steps=150)  # long enough episodes to be caught running
    expected = collect_into(tmp_path / "here", monkeypatch, recipe=slow, workers=1)
    killed = []

    def kill_one_running_task():
        deadline = time.time() + 60
        while not killed and time.time() < deadline:
            for pid in ray_task_processes("recorded_episode_file"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one_running_task)
    killer.start()
    try:
        on_cluster = collect_into(tmp_path / "ray", monkeypatch, recipe=slow, on_ray=True)
    finally:
        killer.join()
    assert killed, "no running collection task was found to kill"
    assert on_cluster == expected


def test_oracle_rollouts_on_ray_plan_as_the_local_workers_do(local_ray):
    settings = EvalSettings(episodes=3, budget=15, planner_options={"samples": 24, "iterations": 2, "elites": 4})
    here, _ = evaluate("oracle", "pusht", settings, progress=False)
    with on_ray():
        on_cluster, _ = evaluate("oracle", "pusht", settings, progress=False)
    assert on_cluster["episodes"] == here["episodes"]
    assert on_cluster["planner"] == here["planner"]


SPEC = {"models": ["random", "oracle", {"path": "missing.wmb", "envs": ["tworoom"]}], "envs": ["tworoom"], "seeds": [0, 3],
        "episodes": [2], "budget": 10}


def test_sweep_on_ray_gives_the_local_runs_and_lists_the_failed_ones(local_ray, tmp_path):
    runs = runs_of(SPEC)
    assert [run.name for run in runs] == [f"tworoom_{m}_cem_seed{s}_2ep" for m in ("random", "oracle", "missing") for s in (0, 3)]
    here = sweep(runs, tmp_path / "here", progress=False)
    on_cluster = sweep(runs, tmp_path / "ray", on_ray=True, progress=False)
    assert [row["status"] for row in on_cluster] == ["ok"] * 4 + ["failed"] * 2
    assert "missing.wmb does not exist" in on_cluster[-1]["error"]
    assert (tmp_path / "ray" / runs[-1].name / "error.txt").read_text().startswith("CheckpointError")
    for a, b in zip(here, on_cluster):
        assert {k: v for k, v in a.items() if k != "episode_plan_mean_s"} == {k: v for k, v in b.items() if k != "episode_plan_mean_s"}
        if a["status"] == "ok":
            first, second = (json.loads((tmp_path / side / a["results"]).read_text()) for side in ("here", "ray"))
            assert first["episodes"] == second["episodes"]
    summary = json.loads((tmp_path / "ray" / "sweep.json").read_text())["runs"]
    assert [row["run"] for row in summary] == [run.name for run in runs]
    assert "| tworoom_missing_cem_seed0_2ep | failed: CheckpointError" in (tmp_path / "ray" / "sweep.md").read_text()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_cli_joins_a_cluster_started_by_ray_start(tmp_path):
    port = free_port()
    environment = {**os.environ, **NO_TOKEN, "MINARI_DATASETS_PATH": str(tmp_path / "ray")}
    ray_command = Path(sys.executable).with_name("ray")
    session = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    head_log = tmp_path / "head.log"
    head = subprocess.Popen([str(ray_command), "start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1",
                             "--num-cpus", "2", "--include-dashboard", "false", "--temp-dir", session],
                            env=environment, stdout=head_log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        command = [sys.executable, "-m", "wmbench.cli", "collect", "--env", "tworoom", "--episodes", "4", "--steps", "12",
                   "--resolution", "32", "--policy", "expert", "--out", "scaled-v0", "--quiet", "--ray", f"127.0.0.1:{port}"]
        deadline = time.time() + 60
        while True:  # the head takes a few seconds to listen
            done = subprocess.run(command, env=environment, capture_output=True, text=True)
            if done.returncode == 0 or time.time() > deadline or "nothing answers" not in done.stderr:
                break
            time.sleep(1)
        assert done.returncode == 0, done.stderr + head_log.read_text()[-2000:]
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # the head and every Ray process it started: they share its session
        head.wait(30)
        shutil.rmtree(session, ignore_errors=True)
    os.environ["MINARI_DATASETS_PATH"], before = str(tmp_path / "here"), os.environ.get("MINARI_DATASETS_PATH")
    try:
        collect(recipe(), progress=False)
    finally:
        os.environ.pop("MINARI_DATASETS_PATH") if before is None else os.environ.update(MINARI_DATASETS_PATH=before)
    assert dataset_files(tmp_path / "ray", "scaled-v0") == dataset_files(tmp_path / "here", "scaled-v0")


@pytest.mark.parametrize("address, problem", [("127.0.0.1:1", "nothing answers there"), ("nohost", "give the cluster's HOST:PORT")])
def test_a_bad_address_is_one_line_before_anything_is_written(address, problem, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    code = main(["collect", "--env", "tworoom", "--episodes", "2", "--steps", "4", "--out", "x-v0", "--ray", address])
    err = capsys.readouterr().err
    assert code == 2 and problem in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x-v0").exists()


def test_ray_refuses_what_it_cannot_spread(capsys):
    assert main(["eval", "--model", "random", "--env", "pusht", "--ray"]) == 2
    assert "--model random plans here" in capsys.readouterr().err
    assert main(["eval", "--model", "oracle", "--env", "reacher", "--ray"]) == 2
    assert "simulates in this process" in capsys.readouterr().err


def test_sweep_specs_are_checked_before_any_run(tmp_path, capsys):
    bad = {'models = []\nenvs = ["pusht"]\nseeds = [0]': "non-empty list", 'models = ["random"]\nenvs = ["phyre"]\nseeds = [0]': "not a goal-reaching env",
           'models = ["random"]\nenvs = ["pusht"]\nseeds = [0, 0]': "with repeats",
           'models = ["random"]\nenvs = ["pusht"]\nseeds = [0]\ndevice = "tpu"': "device",
           'models = ["random"]\nenvs = ["pusht"]\nseeds = [0]\nbudgets = [1]': "unknown keys ['budgets']",
           'models = ["random"]\nenvs = ["pusht"]\nseeds = [-1]': "seeds must be", "models = [": "not valid TOML"}
    for text, problem in bad.items():
        (tmp_path / "s.toml").write_text(text)
        assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert problem in err and len(err.strip().splitlines()) == 1, (text, err)
    assert not (tmp_path / "out").exists()


def test_without_ray_the_message_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    assert main(["collect", "--env", "tworoom", "--episodes", "2", "--steps", "4", "--out", "x-v0", "--ray"]) == 2
    assert cluster.MISSING in capsys.readouterr().err


def test_the_sweep_table_reads_every_run(tmp_path):
    from wmbench.eval.sweep import table

    rows = [{"run": "a", "status": "ok", "successes": 1, "episodes": 2, "success_rate": 0.5, "ci95": [0.1, 0.9],
             "episode_plan_mean_s": 0.25}, {"run": "b", "status": "failed", "error": "ValueError: x | y"}]
    lines = table(rows).splitlines()
    assert lines[2] == "| a | 1/2 = 50.0% | 10.0-90.0% | 0.250 |"
    assert lines[3] == "| b | failed: ValueError: x / y | | |"


def test_sweep_submits_only_the_standard_protocol_runs(tmp_path, capsys):
    from wmbench.cli import submit_standard_runs
    from wmbench.leaderboard import empty_board, load_board, write_board

    board = tmp_path / "board" / "leaderboard.json"
    board.parent.mkdir()
    write_board(board, empty_board())
    standard = Path(__file__).parents[1] / "baselines" / "results" / "expert-tworoom.json"  # the committed expert bound
    (tmp_path / "standard").mkdir()
    shutil.copy(standard, tmp_path / "standard" / "results.json")
    short = json.loads(standard.read_text())
    short["protocol"]["budget"] = 10  # a sweep's short run: off the protocol
    (tmp_path / "short").mkdir()
    (tmp_path / "short" / "results.json").write_text(json.dumps(short))
    rows = [{"run": "standard", "status": "ok", "results": "standard/results.json"},
            {"run": "short", "status": "ok", "results": "short/results.json"},
            {"run": "broken", "status": "failed", "error": "ValueError: x"}]
    submit_standard_runs(rows, tmp_path, board)
    printed = capsys.readouterr().out
    assert "submitted: standard to the reference table" in printed
    assert "not submitted: short is off the standard protocol (budget)" in printed and "broken" not in printed
    assert [entry["model"] for entry in load_board(board)["entries"]] == [json.loads(standard.read_text())["model"]["name"]]
