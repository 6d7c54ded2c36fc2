"""The ``wmbench`` command line: ``wmbench --help`` lists every command."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

import wmbench
from wmbench.envs import ENVS, short_name
from wmbench.media import contact_sheet, save_gif
from wmbench.policies import make_policy, policy_names


@dataclass
class Rollout:
    frames: list[np.ndarray] = field(default_factory=list)
    goal: np.ndarray | None = None
    succeeded_at: int | None = None  # first step at which the success rule held
    steps: int = 0
    seconds: float = 0.0
    final_info: dict = field(default_factory=dict)


def run_rollout(env, policy, steps: int, seed: int, progress: bool = False) -> Rollout:
    """One seeded episode of ``policy``, at most ``steps`` steps, keeping every frame."""
    obs, info = env.reset(seed=seed)
    policy.reset()
    rollout = Rollout(frames=[obs["pixels"]], goal=info["goal"], succeeded_at=0 if info["success"] else None)
    start = time.perf_counter()
    for t in tqdm(range(1, steps + 1), desc="rollout", unit="step", disable=not progress, leave=False):
        obs, _, terminated, truncated, info = env.step(policy.act())
        rollout.frames.append(obs["pixels"])
        rollout.steps = t
        if info["success"] and rollout.succeeded_at is None:
            rollout.succeeded_at = t
        if terminated or truncated:
            break
    rollout.seconds = time.perf_counter() - start
    rollout.final_info = info
    return rollout


def parse_variation(text: str | None):
    """A preset name or a JSON object of factors."""
    if text is None or not text.strip().startswith("{"):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--variation is neither a preset name nor valid JSON: {error}") from None


def make_env_and_policy(args):
    env = wmbench.make(args.env, resolution=args.resolution, variation=parse_variation(args.variation))
    policy_name = args.policy or ENVS[short_name(args.env)].default_policy
    return env, make_policy(env, policy_name, seed=args.seed), policy_name


def atomic_output(path: Path, write) -> None:
    """Write through a temporary file and rename, so an interrupted run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------- commands
def cmd_envs(args) -> None:
    rows = []
    for entry in ENVS.values():
        try:
            env = wmbench.make(entry.short_name, resolution=64).unwrapped
        except ImportError:  # an env whose optional dependencies are not installed
            missing = f"not installed: pip install 'wmbench[{entry.extra}]'"
            blank = dict.fromkeys(("state", "proprio", "policies"), "")
            rows.append({"name": entry.short_name, "id": entry.id, "action": missing, **blank,
                         "steps": str(entry.max_episode_steps), "success": missing})
            continue
        rows.append(
            {
                "name": entry.short_name,
                "id": entry.id,
                "action": f"Box(-1,1,{env.action_space.shape}) {','.join(env.action_names)}",
                "state": f"{len(env.state_names)}: {','.join(env.state_names[:7])}{',...' if len(env.state_names) > 7 else ''}",
                "proprio": f"{len(env.proprio_names)}",
                "steps": str(entry.max_episode_steps),
                "policies": ",".join(sorted(policy_names(entry.short_name), key=lambda p: p != entry.default_policy)),
                "success": env.success_text,
            }
        )
        env.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("pixels: uint8 (height, width, 3), default 224 x 224; `resolution=` changes it. Policies: the default first.\n")
    widths = {key: max(len(key), *(len(row[key]) for row in rows)) for key in rows[0] if key != "success"}
    print("  ".join(key.ljust(w) for key, w in widths.items()))
    for row in rows:
        print("  ".join(row[key].ljust(w) for key, w in widths.items()))
    print("\nsuccess rules:")
    for row in rows:
        print(f"  {row['name']}: {row['success']}")


def cmd_render(args) -> None:
    env, policy, policy_name = make_env_and_policy(args)
    rollout = run_rollout(env, policy, args.steps, args.seed)
    picks = np.unique(np.linspace(0, len(rollout.frames) - 1, args.frames).round().astype(int))
    sheet = contact_sheet([rollout.frames[i] for i in picks], [f"t={i}" for i in picks], goal=rollout.goal)
    atomic_output(args.out, lambda tmp: sheet.save(tmp, format="PNG"))
    print(f"wrote {args.out} ({len(picks)} frames of {env.spec.id} under the {policy_name} policy, seed {args.seed}; goal at right)")


def cmd_rollout(args) -> None:
    env, policy, policy_name = make_env_and_policy(args)
    rollout = run_rollout(env, policy, args.steps, args.seed, progress=True)
    atomic_output(args.out, lambda tmp: save_gif(rollout.frames, tmp, fps=args.fps))
    diagnostics = {k: v for k, v in rollout.final_info.items() if isinstance(v, (bool, int, float))}
    summary = {
        "env": env.spec.id,
        "policy": policy_name,
        "seed": args.seed,
        "resolution": args.resolution,
        "steps": rollout.steps,
        "success": rollout.succeeded_at is not None,
        "first_success_step": rollout.succeeded_at,
        "final": diagnostics,
        "steps_per_second": round(rollout.steps / max(rollout.seconds, 1e-9), 1),
        "clip": str(args.out),
        "wmbench_version": wmbench.__version__,
    }
    summary_path = args.out.with_suffix(".json")
    atomic_output(summary_path, lambda tmp: tmp.write_text(json.dumps(summary, indent=2) + "\n"))
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out} and {summary_path}")


# ---------------------------------------------------------------------- parser
def add_rollout_options(parser: argparse.ArgumentParser, steps: int) -> None:
    names = ", ".join(ENVS)
    parser.add_argument("--env", required=True, help=f"environment: {names} (or a full id)")
    parser.add_argument("--policy", help="data policy (default: the env's own; see `wmbench envs`)")
    parser.add_argument("--steps", type=int, default=steps, help=f"at most this many steps (default {steps})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the env reset and the policy (default 0)")
    parser.add_argument("--resolution", type=int, default=224, help="pixel size of the frames (default 224)")
    parser.add_argument("--variation", help="a preset name or a JSON object of factors, e.g. '{\"block_scale\": 36}'")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wmbench", description="Environments, datasets and MPC evaluation for action-conditioned world models."
    )
    parser.add_argument("--version", action="version", version=f"wmbench {wmbench.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    envs = commands.add_parser("envs", help="table of the registered environments, their spaces and success rules")
    envs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    envs.set_defaults(run=cmd_envs)

    render = commands.add_parser("render", help="a PNG sheet of frames from a policy rollout, the goal beside")
    add_rollout_options(render, steps=40)
    render.add_argument("--frames", type=int, default=6, help="frames on the sheet (default 6)")
    render.add_argument("--out", type=Path, required=True, help="PNG file to write")
    render.set_defaults(run=cmd_render)

    rollout = commands.add_parser("rollout", help="run a data policy, write a GIF clip and a JSON summary")
    add_rollout_options(rollout, steps=100)
    rollout.add_argument("--fps", type=int, default=10, help="GIF frame rate (default 10, the control rate)")
    rollout.add_argument("--out", type=Path, required=True, help="GIF file to write (the summary goes beside it, .json)")
    rollout.set_defaults(run=cmd_rollout)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "steps", 1) < 1 or getattr(args, "frames", 1) < 1:
        raise SystemExit("error: --steps and --frames must be at least 1")
    try:
        args.run(args)
    except (ValueError, ImportError) as error:  # bad names and options, a missing extra: one clear line
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
