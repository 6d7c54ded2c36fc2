"""The ``wmbench`` command line: argument parsing and printing; the work is done by the modules it calls.

``wmbench --help`` lists every command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

import numpy as np

import wmbench
from wmbench.envs import ENVS, GOAL_ENVS, short_name
from wmbench.envs.base import MAX_RESOLUTION, MIN_RESOLUTION
from wmbench.files import atomic_write, write_json
from wmbench.media import contact_sheet, save_gif
from wmbench.policies import make_policy, play, policy_names
from wmbench.protocol import GOAL_REACHING, ORACLE, ORACLE_BUDGETS, PUZZLES, VOE

LEADERBOARD = Path("leaderboard/leaderboard.json")
QUICK_EPISODES = 10  # wmbench eval --quick: enough to catch a broken model, too few to rank one
LOCAL_RAY = "local"  # `--ray` without an address: a Ray instance started on this machine
RAY_ORACLE_ENVS = ("pusht", "cube")  # the oracles whose rollouts run in worker processes, which Ray can replace


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (the problem, then where the options are listed), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def bounded(convert: type, kind: str, low, high):
    """An argparse type: ``convert(text)`` (a ``kind``) in [low, high], refused with the range otherwise."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind}") from None
        if not low <= value <= high:  # NaN fails this too
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    parse.__name__ = kind  # what argparse names in its message
    return parse


def whole_number(low: int, high: int):
    return bounded(int, "whole number", low, high)


def real_number(low: float, high: float):
    return bounded(float, "number", low, high)


SEED = whole_number(0, 2**32 - 1)
MAX_STEPS = 1_000_000  # env steps of one episode or trajectory


def check_file_path(path: Path) -> None:
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; give the file to write")


def check_folder_path(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path} is a file; give a folder to write into")


def output_folder(out: Path, marker: str, overwrite: bool) -> Path:
    """``out``, checked before any work: a folder, and not one holding an earlier run unless ``--overwrite``."""
    check_folder_path(out)
    if not overwrite and (out / marker).exists():
        raise ValueError(f"{out} holds an earlier run ({marker}); pass --overwrite to replace it, or --out to write elsewhere")
    return out


def read_json(path: Path):
    """A user's JSON file; ValueError naming the file if it is not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a JSON file ({error})") from None


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
    check_file_path(args.out)
    env, policy, policy_name = make_env_and_policy(args)
    rollout = play(env, policy, args.steps, args.seed)
    picks = np.unique(np.linspace(0, len(rollout.frames) - 1, args.frames).round().astype(int))
    sheet = contact_sheet([rollout.frames[i] for i in picks], [f"t={i}" for i in picks], goal=rollout.goal)
    atomic_write(args.out, lambda tmp: sheet.save(tmp, format="PNG"))
    print(f"wrote {args.out} ({len(picks)} frames of {env.spec.id} under the {policy_name} policy, seed {args.seed}; goal at right)")


def cmd_rollout(args) -> None:
    check_file_path(args.out)
    env, policy, policy_name = make_env_and_policy(args)
    rollout = play(env, policy, args.steps, args.seed, progress=True)
    atomic_write(args.out, lambda tmp: save_gif(rollout.frames, tmp, fps=args.fps))
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
    write_json(summary_path, summary)
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out} and {summary_path}")


def cmd_collect(args) -> None:
    from wmbench.data.collect import collect
    from wmbench.data.recipe import Recipe

    if args.recipe:
        given = [flag for flag in ("env", "policy", "episodes", "steps", "seed", "resolution", "variation") if getattr(args, flag) is not None]
        if given:
            raise ValueError(f"--recipe fixes the dataset; drop --{', --'.join(given)} (or write your own recipe)")
        recipe = Recipe.load(args.recipe)
        if args.out:
            recipe = Recipe.from_dict({**recipe.to_dict(), "name": args.out})
    else:
        missing = [flag for flag in ("env", "episodes", "steps", "out") if getattr(args, flag) is None]
        if missing:
            raise ValueError(f"give --recipe FILE, or at least --{', --'.join(missing)}")
        fields = {key: getattr(args, key) for key in ("env", "policy", "episodes", "steps", "seed", "resolution") if getattr(args, key) is not None}
        fields.setdefault("policy", ENVS[short_name(args.env)].default_policy)
        recipe = Recipe.from_dict({"name": args.out, **fields, "variation": parse_variation(args.variation)}, source="collect")
    if args.ray is not None:
        connect_ray(args.ray)
    path = collect(recipe, workers=args.workers, resume=args.resume, on_ray=args.ray is not None)
    print(f"wrote {recipe.name} ({recipe.episodes} episodes x {recipe.steps} steps) to {path}")
    print(f"open it with: minari.load_dataset({recipe.name!r})")


def cmd_datasets(args) -> None:
    from wmbench.data import catalog

    if args.action == "combine":
        from wmbench.data.combine import combine

        path = combine([args.name, *args.more], str(args.out))
        print(f"wrote {args.out} to {path}: the episodes of {', '.join([args.name, *args.more])}, in that order")
        print(f"open it with: minari.load_dataset({str(args.out)!r})")
        return
    if args.name is None:
        rows = catalog.local_datasets()
        if not rows:
            print("no local datasets; make one with `wmbench collect --recipe datasets/pusht-weak-mini.toml`")
            return
        header = ("name", "env", "policy", "episodes", "steps", "size_mb", "status")
        table = [header] + [tuple(str(row[key]) for key in header) for row in rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(header))]
        for line in table:
            print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)))
        return
    print(json.dumps(catalog.summary(args.name), indent=2))
    if args.verify:
        problems = catalog.verify(args.name)
        if problems:
            raise ValueError(f"{args.name} does not match its checksum manifest: {', '.join(problems)}")
        print("verified: every episode and the HDF5 file match the checksum manifest")
    out = args.out or Path("runs/datasets") / f"{args.name.replace('/', '_')}.png"
    sheet = catalog.preview(args.name, episodes=args.episodes, seed=args.seed)
    atomic_write(out, lambda tmp: sheet.save(tmp, format="PNG"))
    print(f"wrote {out} (frames of {args.episodes} random episodes, one per row)")


def cmd_evalset(args) -> None:
    from wmbench.data.evalset import EVAL_DIR, generate_eval_set, save_eval_set

    evalset = generate_eval_set(short_name(args.env))
    out = args.out or EVAL_DIR
    save_eval_set(evalset, out)
    print(f"wrote {len(evalset.start_states)} start/goal pairs of {evalset.meta['env_id']} to {out} (sha256 {evalset.meta['sha256']})")


def parse_options(pairs: list[str]) -> dict:
    """``["samples=300", "temperature=0.5"]`` -> ``{"samples": 300, "temperature": 0.5}`` (values parsed as JSON)."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option {pair!r}: write KEY=VALUE, e.g. --option elites=30")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def cmd_eval(args) -> None:
    from wmbench.eval.goal_reaching import EvalSettings, evaluate, summary_text, write_outputs
    from wmbench.eval.results import model_label, validate

    if args.list_options:
        print(planner_options_text(args.planner))
        return
    missing = [flag for flag in ("--model", "--env") if getattr(args, flag[2:]) is None]
    if missing:
        raise ValueError(f"wmbench eval needs {' and '.join(missing)} (e.g. --model oracle --env tworoom)")
    if args.quick:
        if args.episodes is not None:
            raise ValueError(f"--quick evaluates {QUICK_EPISODES} pairs; drop --episodes {args.episodes} or --quick")
        args.episodes = QUICK_EPISODES
    options = parse_options(args.option)
    for key in ("samples", "iterations"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    settings = EvalSettings(episodes=args.episodes or GOAL_REACHING.episodes, budget=args.budget, seed=args.seed, planner=args.planner,
                            horizon=args.horizon, replan_every=args.replan_every, planner_options=options, device=args.device)
    default_out = Path("runs/eval") / f"{short_name(args.env)}_{model_label(args.model)}_{args.planner}_seed{args.seed}"
    out = output_folder(args.out or default_out, "results.json", args.overwrite)
    with distributed_oracle(args.ray, args.model, short_name(args.env)):
        results, run = evaluate(args.model, args.env, settings, trust_code=args.trust_code, videos=args.videos, plan_view=args.plan_view)
    validate(results)
    written = write_outputs(results, run, out, videos=args.videos)
    print(summary_text(results))
    print("wrote " + ", ".join(str(p) for p in written))


def connect_ray(address: str) -> None:
    from wmbench.cluster import connect

    connect(None if address == LOCAL_RAY else address)


@contextlib.contextmanager
def distributed_oracle(address: str | None, model: str, env: str):
    """With ``--ray``, the oracle's simulator rollouts run as tasks on the cluster; the planner stays here."""
    if address is None:
        yield
        return
    if model != "oracle":
        raise ValueError(f"--ray spreads the oracle's simulator rollouts over a cluster; --model {model} plans here "
                         "(to spread whole evaluations, use `wmbench sweep SPEC.toml --ray`)")
    if env not in RAY_ORACLE_ENVS:
        raise ValueError(f"--ray: the {env} oracle simulates in this process ({RAY_ORACLE_ENVS[0]} and {RAY_ORACLE_ENVS[1]} "
                         "use worker processes, which --ray replaces); drop --ray")
    from wmbench.eval.simulators import on_ray

    with on_ray(None if address == LOCAL_RAY else address):
        yield


def planner_options_text(planner: str) -> str:
    from wmbench.planning import planner_options

    rows = [(f"--option {name}=", kind, json.dumps(default), meaning) for name, kind, default, meaning in planner_options(planner)]
    width = max(len(row[0]) + len(row[1]) for row in rows) + 4
    return "\n".join([f"{planner} planner options (--samples and --iterations set the first two):"] +
                     [f"  {flag}{kind:<{width - len(flag)}}default {default:<7} {meaning}" for flag, kind, default, meaning in rows])


def cmd_voe(args) -> None:
    from wmbench.devices import resolve_device
    from wmbench.eval.models import load_for_env
    from wmbench.eval.results import model_label, validate
    from wmbench.eval.voe import plot_voe, run_voe, summary_text

    default_out = Path("runs/voe") / f"{short_name(args.env)}_{model_label(args.model)}_seed{args.seed}"
    out = output_folder(args.out or default_out, "voe.json", args.overwrite)
    device = resolve_device(args.device)
    model = load_for_env(args.model, short_name(args.env), device, args.trust_code)
    kwargs = {k: getattr(args, k) for k in ("steps", "perturb_step") if getattr(args, k) is not None}
    result = run_voe(model, short_name(args.env), episodes=args.episodes, seed=args.seed, device=device,
                     model_info={"name": model.meta.name, "sha256": model.sha256}, **kwargs)
    validate(result, "voe")
    write_json(out / "voe.json", result)
    plotted = plot_voe(result, out / "voe.png")
    print(summary_text(result))
    print(f"wrote {out / 'voe.json'}" + (f" and {plotted}" if plotted else ""))


def cmd_compare(args) -> None:
    from wmbench.eval.comparison import compare_runs, comparison_text

    comparison = compare_runs(read_json(args.first), read_json(args.second), (str(args.first), str(args.second)))
    print(json.dumps(comparison, indent=2) if args.json else comparison_text(comparison))


def cmd_sweep(args) -> None:
    from wmbench.eval.sweep import load_spec, sweep, table

    runs = load_spec(args.spec)
    out = output_folder(args.out or Path("runs/sweep") / args.spec.stem, "sweep.json", args.overwrite)
    if args.ray is not None:
        connect_ray(args.ray)
    rows = sweep(runs, out, on_ray=args.ray is not None)
    print(table(rows))
    failed = [row for row in rows if row["status"] == "failed"]
    print(f"wrote {out / 'sweep.json'} and {out / 'sweep.md'}: {len(rows) - len(failed)} runs done, {len(failed)} failed"
          + (" (each failed run's traceback is in its error.txt)" if failed else ""))
    if args.submit:
        submit_standard_runs(rows, out, args.leaderboard)


def submit_standard_runs(rows: list[dict], out: Path, board: Path) -> None:
    """Submit each finished run on the standard protocol to the leaderboard; say why any other is left out."""
    from wmbench.leaderboard import SubmissionError, deviations, place, submit

    for row in rows:
        if row["status"] != "ok":
            continue
        path = out / row["results"]
        off = deviations(read_json(path))
        if off:
            print(f"not submitted: {row['run']} is off the standard protocol ({', '.join(sorted(off))})")
            continue
        try:
            entry = submit(path, board)
        except SubmissionError as refused:
            print(f"not submitted: {row['run']}: {one_line(refused)}")
            continue
        print(f"submitted: {row['run']} to the {entry['table']} table of {board} ({place(entry)})")


def cmd_export(args) -> None:
    from wmbench.checkpoint import export, load_model

    model = load_model(args.model, trust_code=args.trust_code)
    if model.module is None:
        raise ValueError(f"{args.model} is already a self-contained wmbench checkpoint; nothing to export")
    path = export(model.module, args.out, horizon=args.horizon)
    print(f"wrote {path}: loads with `wmbench eval --model {path}` and no author code")


def cmd_submit(args) -> None:
    from wmbench.leaderboard import place, submit
    from wmbench.leaderboard_page import score_text

    authors = [name.strip() for name in args.authors.split(",") if name.strip()] if args.authors else []
    entry = submit(args.results, args.leaderboard, name=args.name, authors=authors, links=args.url, custom=args.custom,
                   replace_bound=args.replace_bound)
    score = f"AUCCESS {score_text(entry)}" if entry["env"] == "phyre" else score_text(entry)
    print(f"accepted into the {entry['table']} table of {args.leaderboard}: {entry['model']} on {place(entry)}, {score}; "
          "render it with `wmbench leaderboard`")


def cmd_verify(args) -> None:
    from wmbench.leaderboard import place, verify
    from wmbench.leaderboard_page import reproduction_text

    entry, differing = verify(args.results, args.leaderboard, model=args.model, device=args.device)
    print(f"{entry['model']} on {place(entry)}: {reproduction_text(entry)}; recorded in {args.leaderboard}")
    if entry["reproduction"]["status"] != "reproduced":
        unit = "tasks" if entry["env"] == "phyre" else "pairs"
        raise ValueError(f"not reproduced: the outcomes of {unit} {', '.join(map(str, differing))} differ from the results'")


def cmd_leaderboard(args) -> None:
    from wmbench.leaderboard import load_board
    from wmbench.leaderboard_page import render_html, render_markdown, with_markdown_block

    if not args.leaderboard.is_file():
        raise ValueError(f"--leaderboard {args.leaderboard} does not exist: give the leaderboard.json to render")
    board = load_board(args.leaderboard)
    markdown = render_markdown(board)
    readme = with_markdown_block(args.readme.read_text(), markdown, str(args.readme)) if args.readme else None  # before writing anything
    out = args.out or args.leaderboard.parent
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "index.html", lambda tmp: tmp.write_text(render_html(board)))
    atomic_write(out / "leaderboard.md", lambda tmp: tmp.write_text(markdown))
    print(f"wrote {out / 'index.html'} (open it in a browser) and {out / 'leaderboard.md'}: {len(board['entries'])} entries")
    if readme is not None:
        atomic_write(args.readme, lambda tmp: tmp.write_text(readme))
        print(f"updated the leaderboard table in {args.readme}")


def cmd_clevrer_generate(args) -> None:
    from wmbench.data.clevrer_split import SPLITS, check_folder
    from wmbench.data.clevrer_videos import generate

    if args.split is None and args.full:
        raise ValueError("--full is CLEVRER's size of a --split; add --split train|val|test, or drop --full")
    if args.split is None and args.videos is None:
        raise ValueError("give --videos N (with --seed), or --split train|val|test (--full for CLEVRER's size)")
    if args.split is not None and (args.videos is not None or args.seed is not None):
        raise ValueError(f"--split {args.split} fixes the videos and the seed; drop --videos and --seed")
    videos, seed = (args.videos, args.seed or 0) if args.split is None else (SPLITS[args.split]["full" if args.full else "videos"], SPLITS[args.split]["seed"])
    size = args.resolution if isinstance(args.resolution, tuple) else (args.resolution, args.resolution)
    manifest = generate(videos, args.out, seed=seed, workers=args.workers, resolution=size, resume=args.resume)
    rate = f", {manifest['videos_per_minute']:.1f} videos per minute" if manifest["videos_per_minute"] else ""
    print(f"wrote {videos} videos, their annotations and {manifest['questions']} questions to {args.out}{rate}")
    if args.split is not None:
        print(f"the annotations and questions of the first {check_folder(args.out, args.split)} videos match the frozen {args.split} split")


def cmd_clevrer_eval(args) -> None:
    from wmbench.devices import resolve_device
    from wmbench.eval.models import load_for_env
    from wmbench.eval.videos import evaluate_scenes

    check_file_path(args.out)
    model = load_for_env(args.model, "clevrer", resolve_device(args.device), args.trust_code)
    report = evaluate_scenes(model, videos=args.videos, horizons=args.horizons, seed=args.seed)
    write_json(args.out, report)
    for row in report["prediction_error"]:
        print(f"horizon {row['horizon']}: latent error {row['error']:.4g} (relative {row['relative']:.3f})")
    probe = report["probe"]
    print(f"linear probe: position RMSE {probe['position_rmse']:.3f} m (R^2 {probe['position_r2']:.2f}), "
          f"velocity RMSE {probe['velocity_rmse']:.3f} m/s (R^2 {probe['velocity_r2']:.2f})")
    if "slot_probe" in report:
        probe = report["slot_probe"]
        print(f"slot probe: position RMSE {probe['position_rmse']:.3f} m (R^2 {probe['position_r2']:.2f}, null {probe['null_position_r2']:.2f}), "
              f"velocity RMSE {probe['velocity_rmse']:.3f} m/s (R^2 {probe['velocity_r2']:.2f}, null {probe['null_velocity_r2']:.2f})")
    print(f"wrote {args.out}")


def cmd_clevrer_answer(args) -> None:
    from wmbench.devices import resolve_device
    from wmbench.eval.models import load_for_env
    from wmbench.eval.videos import answer_questions

    report = answer_questions(load_for_env(args.model, "clevrer", resolve_device(args.device), args.trust_code), args.generated)
    print(json.dumps(report, indent=2))


def cmd_clevrer_score(args) -> None:
    from wmbench.data.clevrer_split import check_questions
    from wmbench.eval.videos import score

    questions = read_json(args.questions)
    if args.split is not None:
        check_questions(questions, args.split)
    result = score(questions, read_json(args.predictions))
    print(json.dumps(result, indent=2))


def cmd_clevrer_bounds(args) -> None:
    from wmbench.eval.question_bounds import bounds

    print(json.dumps(bounds(args.generated, trajectories=args.trajectories), indent=2))


def cmd_phyre_eval(args) -> None:
    from wmbench.eval.puzzles import evaluate_agent, evaluate_folds, fold_text, parse_folds, summary_text
    from wmbench.eval.results import validate

    options = {key: value for key in ("candidates", "probe_samples", "horizon") if (value := getattr(args, key)) is not None}
    dqn_names = {"dqn_samples": "samples_per_task", "dqn_steps": "steps", "dqn_weights": "weights", "dqn_cache": "cache_dir"}
    dqn_options = {key: value for name, key in dqn_names.items() if (value := getattr(args, name)) is not None}
    if args.agent == "dqn" and "candidates" in options:
        dqn_options["candidates"] = options.pop("candidates")
    if options and args.agent != "world-model":
        raise ValueError(f"--{next(iter(options)).replace('_', '-')} is a setting of the world-model agent; drop it for --agent {args.agent}")
    if dqn_options and args.agent != "dqn":
        name = next(name for name, key in dqn_names.items() if key in dqn_options)
        raise ValueError(f"--{name.replace('_', '-')} is a setting of the dqn agent; drop it for --agent {args.agent}")
    folds = parse_folds(args.folds) if args.folds is not None else None
    if folds and len(folds) > 1 and "weights" in dqn_options:
        raise ValueError("--dqn-weights names one network, but --folds trains one per fold; pass --dqn-cache DIR to keep them")
    where = f"folds{fold_text(folds).replace(',', '_')}" if folds else f"fold{args.fold}"
    out = args.out or Path("runs/phyre") / f"{args.agent}_{args.split}_{where}_seed{args.seed}.json"
    check_file_path(out)
    settings = dict(model=args.model, device=args.device, trust_code=args.trust_code, dqn_options=dqn_options, **options)
    if folds:
        results = evaluate_folds(args.agent, args.split, folds, args.seed, args.tasks, **settings)
    else:
        results = evaluate_agent(args.agent, args.split, args.fold, args.seed, args.tasks, **settings)
    validate(results, "phyre_results")
    write_json(out, results)
    print(summary_text(results))
    print(f"wrote {out}")


def cmd_phyre_maps(args) -> None:
    from wmbench.envs.phyre.splits import split_tasks
    from wmbench.envs.phyre.templates import parse_task_id, task
    from wmbench.eval.puzzle_agent import plot_score_maps, score_map
    from wmbench.eval.puzzles import world_model_agent

    check_file_path(args.out)
    train, test = split_tasks(args.split, args.fold, args.seed)
    options = {key: value for key in ("probe_samples", "horizon") if (value := getattr(args, key)) is not None}
    agent, description, _ = world_model_agent(args.model, train, args.seed, True, args.device, args.trust_code, options)
    chosen = test[:: max(len(test) // args.tasks, 1)][: args.tasks]  # spread over the fold's templates
    maps = [score_map(agent, task_id, task(*parse_task_id(task_id)), args.grid, args.radius) for task_id in chosen]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot_score_maps(maps, args.out, f"{description['model']['name']}: probe score vs the simulator, {args.split} fold {args.fold} test tasks")
    for found in maps:
        separation = "n/a (one class)" if found.auroc is None else f"{found.auroc:.2f}"
        print(f"{found.task:26s} {int(found.truth.sum()):4d} of {int(found.valid.sum())} valid cells solve it; score AUROC {separation}")
    print(f"wrote {args.out}")


# ---------------------------------------------------------------------- parser
def add_rollout_options(parser: argparse.ArgumentParser, steps: int) -> None:
    names = ", ".join(ENVS)
    parser.add_argument("--env", required=True, help=f"environment: {names} (or a full id)")
    parser.add_argument("--policy", help="data policy (default: the env's own; see `wmbench envs`)")
    parser.add_argument("--steps", type=whole_number(1, MAX_STEPS), default=steps, help=f"at most this many steps (default {steps})")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the env reset and the policy (default 0)")
    parser.add_argument("--resolution", type=frame_size, default=224, help="frame size: N for N x N, or WIDTHxHEIGHT (default 224)")
    parser.add_argument("--variation", help="a preset name or a JSON object of factors, e.g. '{\"block_scale\": 36}'")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="wmbench", description="Environments, datasets and MPC evaluation for action-conditioned world models."
    )
    parser.add_argument("--version", action="version", version=f"wmbench {wmbench.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    envs = commands.add_parser("envs", help="table of the registered environments, their spaces and success rules")
    envs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    envs.set_defaults(run=cmd_envs)

    render = commands.add_parser("render", help="a PNG sheet of frames from a policy rollout, the goal beside")
    add_rollout_options(render, steps=40)
    render.add_argument("--frames", type=whole_number(1, 100), default=6, help="frames on the sheet (default 6)")
    render.add_argument("--out", type=Path, required=True, help="PNG file to write")
    render.set_defaults(run=cmd_render)

    rollout = commands.add_parser("rollout", help="run a data policy, write a GIF clip and a JSON summary")
    add_rollout_options(rollout, steps=100)
    rollout.add_argument("--fps", type=whole_number(1, 100), default=10, help="GIF frame rate (default 10, the control rate)")
    rollout.add_argument("--out", type=Path, required=True, help="GIF file to write (the summary goes beside it, .json)")
    rollout.set_defaults(run=cmd_rollout)

    collect = commands.add_parser(
        "collect",
        help="collect a dataset (Minari format) with a data policy, in parallel, resumable",
        description="Collect a Minari dataset from a recipe file or from flags. Every episode runs exactly --steps "
        "steps; episode i is seeded from (--seed, i), so a recipe reproduces its dataset bit for bit.",
        epilog=policy_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    collect.add_argument("--recipe", type=Path, help="a recipe file (datasets/*.toml); fixes everything but --out and --workers")
    collect.add_argument("--env", help=f"environment: {', '.join(ENVS)}")
    collect.add_argument("--policy", help="data policy (default: the env's own; listed below)")
    collect.add_argument("--episodes", type=whole_number(1, 10_000_000), help="number of episodes")
    collect.add_argument("--steps", type=whole_number(1, MAX_STEPS), help="env steps per episode")
    collect.add_argument("--seed", type=SEED, help="dataset seed (default 0)")
    collect.add_argument("--resolution", type=whole_number(MIN_RESOLUTION, MAX_RESOLUTION), help="pixel size of the frames (default 224)")
    collect.add_argument("--variation", help="a preset name or a JSON object of factors")
    collect.add_argument("--out", help="Minari dataset id to write, (namespace/)name-vN, e.g. pusht-weak-mini-v0")
    collect.add_argument("--workers", type=whole_number(1, 1024), default=os.cpu_count() or 1, help="worker processes (default: one per core)")
    collect.add_argument("--resume", action="store_true", help="continue an interrupted collection of the same recipe")
    add_ray_option(collect, "episodes as Ray tasks (instead of --workers)")
    collect.set_defaults(run=cmd_collect)

    datasets = commands.add_parser("datasets", help="list local datasets, summarize one and write a preview sheet, or combine some")
    datasets.add_argument("action", nargs="?", choices=["show", "combine"],
                          help="show NAME: summary and preview; combine NAME NAME ... --out NEW: their episodes as one new dataset")
    datasets.add_argument("name", nargs="?", help="dataset id (or path) for show")
    datasets.add_argument("more", nargs="*", metavar="NAME", help="combine: the datasets after the first")
    datasets.add_argument("--episodes", type=whole_number(1, 64), default=4, help="random episodes on the preview (default 4)")
    datasets.add_argument("--seed", type=SEED, default=0, help="which random episodes (default 0)")
    datasets.add_argument("--out", type=Path, help="show: preview PNG (default runs/datasets/NAME.png); combine: the new dataset's id")
    datasets.add_argument("--verify", action="store_true", help="recompute every checksum against the manifest")
    datasets.set_defaults(run=cmd_datasets)

    evaluation = commands.add_parser(
        "eval", help="evaluate a world model by MPC on the frozen evaluation set: success, planning time, results JSON",
        description="Plan with a world model (or the true simulator: --model oracle; random actions: --model random) "
        "from the env's frozen start/goal pairs, all episodes in one batch, and write results.json, summary.png and "
        "optional GIFs.")
    evaluation.add_argument("--model", help="required: a wmbench checkpoint (wmbench export), a research spec JSON (with --trust-code), oracle (CEM with the true simulator), expert (the scripted data policy aimed at the goal: tworoom, cube) or random")
    evaluation.add_argument("--env", help=f"required: the goal-reaching environment, one of {', '.join(GOAL_ENVS)}")
    standard = GOAL_REACHING
    evaluation.add_argument("--episodes", type=whole_number(1, 100_000), help=f"pairs drawn from the evaluation set (default {standard.episodes}; "
                            f"{standard.pairs}, every pair, is standard too, with four times the statistical power)")
    evaluation.add_argument("--quick", action="store_true", help=f"a smoke test: {QUICK_EPISODES} pairs, random actions on the same pairs "
                            "beside, and a note when the two cannot be told apart")
    evaluation.add_argument("--budget", type=whole_number(1, MAX_STEPS), default=standard.budget, help=f"env steps per episode (default {standard.budget})")
    evaluation.add_argument("--seed", type=SEED, default=standard.seed, help=f"which pairs, and the planner's seed (default {standard.seed})")
    evaluation.add_argument("--planner", default=standard.planner, choices=["cem", "mppi", "icem", "gd"], help=f"default {standard.planner}")
    evaluation.add_argument("--horizon", type=whole_number(1, 1000), default=standard.horizon, help=f"model steps planned (default {standard.horizon})")
    evaluation.add_argument("--replan-every", type=whole_number(1, 1000), help="model steps executed between plans (default: the horizon)")
    evaluation.add_argument("--samples", type=whole_number(1, 1_000_000), help=f"candidates per episode (default: the planner's; the oracle's CEM: {ORACLE.samples}, Cube {ORACLE_BUDGETS['cube'].samples})")
    evaluation.add_argument("--iterations", type=whole_number(1, 100_000), help=f"optimizer iterations (default: the planner's; the oracle's CEM: {ORACLE.iterations}, Cube {ORACLE_BUDGETS['cube'].iterations})")
    evaluation.add_argument("--option", action="append", metavar="KEY=VALUE", help="any other planner hyperparameter, repeatable")
    evaluation.add_argument("--videos", type=whole_number(0, 1000), default=0, help="write a GIF (agent | goal) of the first N episodes")
    evaluation.add_argument("--plan-view", metavar="DATASET", help="in the GIFs, beside each real frame, the frame of DATASET (the "
                            "model's training data, at its resolution) nearest to the latent the model predicted for it")
    evaluation.add_argument("--out", type=Path, help="output folder (default runs/eval/ENV_MODEL-SHA8_PLANNER_seedSEED)")
    evaluation.add_argument("--overwrite", action="store_true", help="replace an earlier run in the output folder (refused otherwise)")
    evaluation.add_argument("--list-options", action="store_true", help="list the --planner's options, their types and defaults, and exit")
    add_model_options(evaluation)
    add_ray_option(evaluation, "--model oracle on pusht or cube: its simulator rollouts as Ray tasks")
    evaluation.set_defaults(run=cmd_eval)

    voe = commands.add_parser("voe", help="violation of expectation: a model's surprise at teleports and recolors, next to an untrained null's")
    voe.add_argument("--model", required=True, help="a wmbench checkpoint (or a research spec with --trust-code)")
    voe.add_argument("--env", required=True, help=f"environment: {', '.join(ENVS)}")
    voe.add_argument("--episodes", type=whole_number(2, 100_000), default=VOE.episodes, help=f"paired trajectories per perturbation (default {VOE.episodes})")
    voe.add_argument("--steps", type=whole_number(1, MAX_STEPS), help="env steps per trajectory")
    voe.add_argument("--perturb-step", type=whole_number(1, MAX_STEPS), help="env step at which the perturbation happens")
    voe.add_argument("--seed", type=SEED, default=VOE.seed, help=f"default {VOE.seed}")
    voe.add_argument("--out", type=Path, help="output folder (default runs/voe/ENV_MODEL-SHA8_seedSEED)")
    voe.add_argument("--overwrite", action="store_true", help="replace an earlier run in the output folder (refused otherwise)")
    add_model_options(voe)
    voe.set_defaults(run=cmd_voe)

    sweeping = commands.add_parser(
        "sweep", help="a grid of evaluations (models x envs x seeds x planners x episode counts) from a TOML spec, here or on Ray",
        description="Evaluate every combination of a sweep spec as `wmbench eval` would, one after another here or as Ray "
        "tasks (--ray), and write each run's results.json and summary.png, then sweep.json and sweep.md with every run's "
        "success, interval and planning time. A failed run is listed with its error; the others go on.",
        epilog="spec example (runs = models x envs x seeds x planners x episodes):\n"
        "  models = [\"baselines/lewm/checkpoints/pusht-cpu.wmb\", \"random\"]  # or {path = \"...\", envs = [\"pusht\"]}\n"
        "  envs = [\"pusht\"]\n  seeds = [0, 1]\n  planners = [\"cem\"]        # default\n  episodes = [50]           # default\n"
        "  device = \"auto\"           # a run on cuda asks Ray for a GPU\n  [planner_options]\n  samples = 300",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sweeping.add_argument("spec", type=Path, help="the sweep spec (TOML)")
    sweeping.add_argument("--out", type=Path, help="output folder (default runs/sweep/SPEC-NAME)")
    sweeping.add_argument("--overwrite", action="store_true", help="replace an earlier sweep in the output folder (refused otherwise)")
    sweeping.add_argument("--submit", action="store_true", help="submit every finished run on the standard protocol to the leaderboard")
    sweeping.add_argument("--leaderboard", type=Path, default=LEADERBOARD, help=f"with --submit (default {LEADERBOARD})")
    add_ray_option(sweeping, "the runs as Ray tasks (put --ray after the spec)")
    sweeping.set_defaults(run=cmd_sweep)

    compare = commands.add_parser(
        "compare", help="paired comparison of two goal-reaching runs on the same pairs (or two PHYRE runs on the same tasks)",
        description="Compare two results JSONs of `wmbench eval` on the same env, evaluation set, budget and pairs: the success "
        "of each, the paired difference A - B with its bootstrap interval, the discordant pairs and an exact McNemar test. "
        "Or two of `wmbench phyre eval` on the same split, fold, seed and test tasks: the AUCCESS of each, the difference "
        "with its bootstrap interval over tasks, which run solved each task earlier and a paired t-test. "
        "Runs on different pairs (tasks) are refused.")
    compare.add_argument("first", type=Path, metavar="A.json", help="a results JSON of `wmbench eval` or `wmbench phyre eval`")
    compare.add_argument("second", type=Path, metavar="B.json", help="another of the same kind, on the same pairs (tasks)")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare.set_defaults(run=cmd_compare)

    export = commands.add_parser("export", help="turn a research checkpoint into the self-contained format (no author code)")
    export.add_argument("--model", required=True, help="a research spec JSON or pickle (needs --trust-code)")
    export.add_argument("--out", type=Path, required=True, help="the checkpoint file to write")
    export.add_argument("--horizon", type=whole_number(1, 1000), default=5, help="longest rollout the export supports, in model steps (default 5)")
    export.add_argument("--trust-code", action="store_true", help="required: loading a research checkpoint runs its code")
    export.set_defaults(run=cmd_export)

    evalset = commands.add_parser("evalset", help="regenerate a frozen evaluation set (start/goal pairs) bit for bit")
    evalset.add_argument("--env", required=True, help=f"goal-reaching environment: {', '.join(GOAL_ENVS)}")
    evalset.add_argument("--out", type=Path, help="directory (default: the package's wmbench/data/eval_sets, where `wmbench eval` reads)")
    evalset.set_defaults(run=cmd_evalset)

    submit = commands.add_parser("submit", help="check a results JSON (goal-reaching or PHYRE) against its outcomes and the standard protocol; add it to the leaderboard")
    submit.add_argument("results", type=Path, help="the results JSON that `wmbench eval` or `wmbench phyre eval` wrote")
    submit.add_argument("--name", help="the model's name on the leaderboard (default: the checkpoint's, or the agent's)")
    submit.add_argument("--authors", help="comma-separated author names")
    submit.add_argument("--url", action="append", default=[], help="a link to the paper or code (repeatable)")
    submit.add_argument("--custom", action="store_true", help="accept non-standard settings into the separate custom-protocol table")
    submit.add_argument("--replace-bound", action="store_true",
                        help="a reference bound (oracle, expert, random, largest-ball, dqn) measured again: it replaces the old bound of its place")
    submit.add_argument("--leaderboard", type=Path, default=LEADERBOARD, help=f"the board to merge into (default {LEADERBOARD})")
    submit.set_defaults(run=cmd_submit)

    verify = commands.add_parser(
        "verify", help="run a leaderboard entry again on this machine and record whether its per-episode outcomes reproduce",
        description="Run the checkpoint (or reference agent) of a submitted results JSON again, with its protocol and planner "
        "settings, compare the outcomes episode by episode (PHYRE: task by task) and record on its leaderboard entry where, "
        "when and how many agreed: 'reproduced' or 'not-reproduced' (the rule is in leaderboard/README.md).")
    verify.add_argument("results", type=Path, help="the submitted results JSON (e.g. leaderboard/results/NAME.json)")
    verify.add_argument("--model", type=Path, help="the checkpoint the results name (its sha256 must match); reference agents need none")
    verify.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda[:N]")
    verify.add_argument("--leaderboard", type=Path, default=LEADERBOARD, help=f"the board the entry is on (default {LEADERBOARD})")
    verify.set_defaults(run=cmd_verify)

    leaderboard = commands.add_parser("leaderboard", help="render the leaderboard: a static HTML page and a Markdown table")
    leaderboard.add_argument("--leaderboard", type=Path, default=LEADERBOARD, help=f"the board to render (default {LEADERBOARD})")
    leaderboard.add_argument("--out", type=Path, help="folder for index.html and leaderboard.md (default: the board's)")
    leaderboard.add_argument("--readme", type=Path, help="also replace the table between <!-- leaderboard:start/end --> in this file")
    leaderboard.set_defaults(run=cmd_leaderboard)

    phyre = commands.add_parser("phyre", help="PHYRE-style puzzles: evaluate an agent by AUCCESS; map a world model's scores")
    phyre_commands = phyre.add_subparsers(dest="phyre_command", required=True, metavar="ACTION")
    phyre_eval = phyre_commands.add_parser("eval", help="up to 100 ranked valid attempts per test task, scored by AUCCESS")
    phyre_eval.add_argument("--agent", required=True,
                            help="random (PHYRE's random agent), oracle (simulator search, the ceiling), largest-ball (random valid "
                                 "balls, largest first: size alone), dqn (a network trained on the training tasks, PHYRE's learned "
                                 "baseline) or world-model (needs --model)")
    phyre_eval.add_argument("--model", help="world-model agent: a checkpoint trained on PHYRE frames and 3-d actions")
    phyre_eval.add_argument("--split", default="within", choices=["within", "cross"], help="within- or cross-template (default within)")
    which_folds = phyre_eval.add_mutually_exclusive_group()
    which_folds.add_argument("--fold", type=whole_number(0, 4), default=0, help="fold 0-4 of the 80/20 split (default 0)")
    which_folds.add_argument("--folds", help="several folds, as 0-4 or 0,2,3: each evaluated, then the mean AUCCESS over them "
                                             "and its spread (standard deviation), as PHYRE reports")
    phyre_eval.add_argument("--seed", type=SEED, default=PUZZLES.seed, help=f"seed of the folds and of the agent (default {PUZZLES.seed})")
    phyre_eval.add_argument("--tasks", type=whole_number(1, 100_000), help="only the first N test tasks (default all)")
    phyre_eval.add_argument("--out", type=Path, help="results JSON (default runs/phyre/AGENT_SPLIT_foldF_seedS.json, or _folds0-4_)")
    ranking = phyre_eval.add_argument_group("world-model agent")
    ranking.add_argument("--candidates", type=whole_number(1, 1_000_000), help=f"random valid placements ranked per task (default {PUZZLES.candidates})")
    ranking.add_argument("--probe-samples", type=whole_number(1, 10_000_000), help=f"placements on training tasks the success probe is fitted on (default {PUZZLES.probe_samples})")
    ranking.add_argument("--horizon", type=whole_number(1, 1000), help=f"model steps predicted before the probe reads the latent (default: {PUZZLES.horizon_seconds} s of physics)")
    add_model_options(ranking)
    dqn = phyre_eval.add_argument_group("dqn agent (--candidates too)")
    dqn.add_argument("--dqn-samples", type=whole_number(1, 100_000), help=f"simulator-labelled random placements per training task (default {PUZZLES.dqn_samples_per_task})")
    dqn.add_argument("--dqn-steps", type=whole_number(1, 10_000_000), help=f"training steps of 64 placements, half solving (default {PUZZLES.dqn_steps})")
    dqn.add_argument("--dqn-weights", type=Path, help="the trained network: loaded if it exists (trained on the same tasks and settings), "
                                                       "else trained and saved there (default: in --dqn-cache, one file per fold)")
    dqn.add_argument("--dqn-cache", type=Path, help="folder of labelled training data and trained networks, reused by reruns (default runs/phyre/dqn)")
    phyre_eval.set_defaults(run=cmd_phyre_eval)
    maps = phyre_commands.add_parser("maps", help="where a ball solves a test task vs a world model's probe score, over a grid (PNG)")
    maps.add_argument("--model", required=True, help="a checkpoint trained on PHYRE frames and 3-d actions")
    maps.add_argument("--split", default="within", choices=["within", "cross"], help="within- or cross-template (default within)")
    maps.add_argument("--fold", type=whole_number(0, 4), default=0, help="fold 0-4 (default 0): the probe fits on its training tasks")
    maps.add_argument("--seed", type=SEED, default=PUZZLES.seed, help=f"seed of the folds and of the probe's data (default {PUZZLES.seed})")
    maps.add_argument("--tasks", type=whole_number(1, 100), default=4, help="test tasks shown, spread over the fold (default 4)")
    maps.add_argument("--grid", type=whole_number(2, 256), default=32, help="cells a side (default 32; each cell is one simulation)")
    maps.add_argument("--radius", type=real_number(0.0, 1.0), default=PUZZLES.map_radius,
                      help=f"the ball's radius as PHYRE's r in 0..1, a ball of 2 + 30 r px (default {PUZZLES.map_radius}: "
                           f"{2 + 30 * PUZZLES.map_radius:.0f} px, among the sizes that solve most often)")
    maps.add_argument("--probe-samples", type=whole_number(1, 10_000_000), help=f"placements on training tasks the probe is fitted on (default {PUZZLES.probe_samples})")
    maps.add_argument("--horizon", type=whole_number(1, 1000), help=f"model steps predicted (default: {PUZZLES.horizon_seconds} s of physics)")
    add_model_options(maps)
    maps.add_argument("--out", type=Path, default=Path("phyre_maps.png"), help="PNG to write (default phyre_maps.png)")
    maps.set_defaults(run=cmd_phyre_maps)

    clevrer = commands.add_parser("clevrer", help="CLEVRER-style collision videos: generate videos, ground truth and questions; score answers")
    clevrer_commands = clevrer.add_subparsers(dest="clevrer_command", required=True, metavar="ACTION")
    generate = clevrer_commands.add_parser("generate", help="seeded videos (MP4), annotations and questions, in parallel")
    generate.add_argument("--videos", type=whole_number(1, 10_000_000), help="how many videos (or --split)")
    generate.add_argument("--split", choices=("train", "val", "test"), help="the frozen split: fixed seed and size, checked against its sha256 digests")
    generate.add_argument("--full", action="store_true", help="with --split: CLEVRER's size (10,000 / 5,000 / 5,000); the first videos are the frozen ones")
    generate.add_argument("--out", type=Path, required=True, help="output folder")
    generate.add_argument("--seed", type=SEED, help="video i comes from SeedSequence(seed, spawn_key=(i,)) (default 0)")
    generate.add_argument("--workers", type=whole_number(1, 1024), default=2, help="processes (default 2)")
    generate.add_argument("--resolution", type=frame_size, default=(320, 480), help="WIDTHxHEIGHT of the videos (default 480x320, as CLEVRER)")
    generate.add_argument("--resume", action="store_true", help="finish an interrupted run in --out")
    generate.set_defaults(run=cmd_clevrer_generate)
    scorer = clevrer_commands.add_parser("score", help="accuracy per option and per question, by question type")
    scorer.add_argument("--questions", type=Path, required=True, help="questions.json written by `clevrer generate`")
    scorer.add_argument("--predictions", type=Path, required=True,
                        help="JSON: question_id -> answer (descriptive) or {choice_id: correct|wrong} (multiple choice)")
    scorer.add_argument("--split", choices=("train", "val", "test"), help="refuse questions that are not the frozen split's (sha256)")
    scorer.set_defaults(run=cmd_clevrer_score)
    reference = clevrer_commands.add_parser("bounds", help="the scorer's floor (most frequent answer, random choice) and ceiling (the ground truth), by question type")
    reference.add_argument("--generated", type=Path, required=True, help="the folder `wmbench clevrer generate` wrote")
    reference.add_argument("--trajectories", action="store_true",
                           help="add the floor and ceiling of answering through object trajectories (velocity extrapolation, "
                                "re-simulation; about 2 s per video)")
    reference.set_defaults(run=cmd_clevrer_bounds)
    scene_eval = clevrer_commands.add_parser("eval", help="a world model on passive videos: latent prediction error by horizon, linear probes")
    scene_eval.add_argument("--model", required=True, help="a wmbench checkpoint taking CLEVRER frames and 4-d actions")
    scene_eval.add_argument("--videos", type=whole_number(2, 100_000), default=20, help="passive videos recorded (default 20; the probe trains on 80%%)")
    scene_eval.add_argument("--horizons", type=whole_number(1, 100), default=5, help="model steps predicted (default 5)")
    scene_eval.add_argument("--seed", type=SEED, default=0, help="first reset seed (default 0)")
    scene_eval.add_argument("--out", type=Path, default=Path("clevrer_eval.json"), help="the report (default clevrer_eval.json)")
    add_model_options(scene_eval)
    scene_eval.set_defaults(run=cmd_clevrer_eval)
    answer = clevrer_commands.add_parser("answer", help="score a model's answering head on the questions of a `clevrer generate` folder")
    answer.add_argument("--model", required=True, help="research code with an answer(pixels, question) method (needs --trust-code)")
    answer.add_argument("--generated", type=Path, required=True, help="the folder `wmbench clevrer generate` wrote")
    add_model_options(answer)
    answer.set_defaults(run=cmd_clevrer_answer)
    return parser


def frame_size(text: str) -> int | tuple[int, int]:
    """``96`` -> 96 (square); ``480x320`` (width x height) -> (320, 480), the (height, width) envs take."""
    try:
        sides = [int(n) for n in text.lower().split("x")]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2) or not all(MIN_RESOLUTION <= side <= MAX_RESOLUTION for side in sides):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give N or WIDTHxHEIGHT, each side {MIN_RESOLUTION}..{MAX_RESOLUTION} px, e.g. 224 or 480x320")
    return sides[0] if len(sides) == 1 else (sides[1], sides[0])


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda[:N]")
    parser.add_argument("--trust-code", action="store_true",
                        help="allow a checkpoint that runs its author's code (a module:factory spec or a pickle)")


def add_ray_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--ray", nargs="?", const=LOCAL_RAY, metavar="ADDRESS",
                        help=f"{what}: on the Ray cluster at ADDRESS (auto: the one `ray start` made on this machine), or, "
                        "with no ADDRESS, on a Ray instance started here (pip install 'wmbench[ray]')")


def policy_help() -> str:
    from wmbench.policies import POLICIES, POLICY_DOCS

    lines = ["data policies (--policy), the env's default first:"]
    for env, policies in POLICIES.items():
        default = ENVS[env].default_policy
        lines.append(f"  {env}:")
        lines += [f"    {name:<11} {POLICY_DOCS[name]}" for name in sorted(policies, key=lambda p: p != default)]
    return "\n".join(lines)


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


FILE_FIXES = {
    FileNotFoundError: "does not exist: check the path",
    IsADirectoryError: "is a folder: give a file's path",
    NotADirectoryError: "goes through a file as if it were a folder: check the path",
    PermissionError: "is not accessible (permission denied): choose a path you can read and write",
}


def file_problem(error: OSError) -> str:
    """One line naming the file and what to do about it."""
    fix = next((text for kind, text in FILE_FIXES.items() if isinstance(error, kind)), error.strerror or one_line(error))
    return f"{error.filename} {fix}" if error.filename else fix


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` on ``parser`` and every command under it."""
    parser.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars (as TQDM_DISABLE=1 does)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in set(action.choices.values()):
                add_quiet(command)


def main(argv: list[str] | None = None) -> int:
    from wmbench.cluster import ClusterError
    from wmbench.data.collect import CollectionStopped

    parser = build_parser()
    add_quiet(parser)
    args = parser.parse_args(argv)
    if getattr(args, "quiet", False):
        os.environ["TQDM_DISABLE"] = "1"  # every progress bar reads it (wmbench/progress.py)
    if args.command == "datasets" and args.action == "show" and (args.name is None or args.more):
        parser.error("`wmbench datasets` lists; `wmbench datasets show NAME` shows one")
    if args.command == "datasets" and args.action == "combine" and (not args.more or args.out is None):
        parser.error("`wmbench datasets combine NAME NAME ... --out NEW` writes the episodes of two or more datasets as the dataset NEW")
    try:
        args.run(args)
        sys.stdout.flush()  # so that a reader who left early (`wmbench envs | head`) is noticed here, not at exit
    except BrokenPipeError:  # not an error: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit would fail again
        return 0
    except (ValueError, ImportError) as error:  # bad names and options, a missing extra: one clear line
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # a file that is missing, unreadable, or a folder where a file was meant
        print(f"error: {file_problem(error)}", file=sys.stderr)
        return 2
    except CollectionStopped as stopped:
        print(f"stopped: {stopped}", file=sys.stderr)
        return stopped.exit_code
    except ClusterError as error:  # not the user's input: the cluster lost a task on every try
        print(f"stopped: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
