"""The training loop of the baselines, read top to bottom: from a Minari dataset to a checkpoint ``wmbench eval`` loads.

A baseline is its model class: ``from_config(config, facts)`` builds it, ``loss(pixels, blocks,
train)`` returns its loss terms on a batch of windows (the total under "loss"), and
``parameter_summary()`` counts its parameters by part. ``main`` is the rest, in the order it runs:

- data: windows of ``history + predictions`` frames from ``wmbench.data.WindowDataset``, with a
  seeded ``val_fraction`` of the episodes held out for the validation loss;
- the loop: the loss under bf16 autocast on CUDA, backward, gradient clipping, an AdamW step, a
  progress bar and a loss curve; every ``val_every`` steps the validation loss, every
  ``checkpoint_every`` steps the checkpoint;
- ``--out`` (default ``runs/<baseline>/<config name>``) receives ``checkpoint.pt`` (model,
  optimizer, step, RNG state and curves, rewritten atomically; ``--resume`` continues from it
  exactly, because the batch order is a function of the step alone), ``model.wmb`` (the
  self-contained checkpoint) and ``train.json`` (config, losses, throughput, time, parameter
  counts, device and dataset).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

import wmbench
from wmbench.data import WindowDataset, split_episodes, storage
from wmbench.devices import resolve_device, synchronize
from wmbench.files import atomic_write
from wmbench.progress import progress_bar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def parse_args(name: str, argv: list[str] | None, description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m baselines.{name}.train", description=description)
    parser.add_argument("--config", required=True, type=Path, help=f"a TOML config, e.g. baselines/{name}/configs/cpu.toml")
    parser.add_argument("--dataset", help="Minari dataset id or path (default: the config's)")
    parser.add_argument("--out", type=Path, help=f"output folder (default: runs/{name}/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--steps", type=int, help="train until this step (default: the config's)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    return parser.parse_args(argv)


def batch_order(windows: int, batch_size: int, seed: int, start: int) -> Iterator[list[int]]:
    """The window indices of every batch from step ``start`` on: each epoch a permutation seeded by
    (seed, epoch), so the batch of a step never depends on the steps before it (exact resume)."""
    per_epoch = max(windows // batch_size, 1)
    epoch, order = None, None
    for step in range(start, sys.maxsize):
        if step // per_epoch != epoch:
            epoch = step // per_epoch
            order = np.random.default_rng((seed, epoch)).permutation(windows)
        first = (step % per_epoch) * batch_size
        yield order[first : first + batch_size].tolist()


def fixed_windows(dataset: WindowDataset, indices: np.ndarray, batch_size: int, workers: int) -> DataLoader:
    """The same windows, in the same order, every time it is read: for validation and BatchNorm calibration."""
    # its own generator: a loader must not draw from the global RNG, which the checkpoint restores for dropout and SIGReg
    subset = Subset(dataset, sorted(indices.tolist()))
    return DataLoader(subset, batch_size=batch_size, num_workers=workers, generator=torch.Generator())


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, loader: DataLoader, device: torch.device) -> None:
    """Recompute BatchNorm's running statistics from fixed training windows with the current weights.

    LeWM's projector features before BatchNorm have a tiny variance (about 5e-4) and drift while the
    encoder learns, so the running averages lag them by many standard deviations, and the eval-mode
    model (the one exported and planned with) sees shifted latents. Measured on Push-T after 300
    steps: eval-mode prediction MSE 2.2 against 0.09 in train mode; 0.08 after recalibrating.
    """
    norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the calibration batches
    model.train()
    for batch in loader:
        model.encode(batch["pixels"].to(device))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum


def mean_terms(terms: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([term[key] for term in terms])) for key in terms[0]}


@torch.no_grad()
def validate(model: nn.Module, loader: DataLoader, train: dict, device: torch.device) -> dict[str, float]:
    """Mean loss terms on the held-out windows in eval mode and float32, with the same random draws
    (SIGReg's directions, say) at every validation."""
    model.eval()
    terms = []
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(0)
        for batch in loader:
            losses = model.loss(batch["pixels"].to(device), model.meta.normalize_actions(batch["actions"].to(device)), train)
            terms.append({key: value.item() for key, value in losses.items()})
    model.train()
    return mean_terms(terms)


def main(name: str, model_class: type[nn.Module], argv: list[str] | None = None, description: str = "") -> int:
    """Train the baseline ``name`` (the default output folder and the exported model's name prefix),
    whose model is a ``model_class``, as the command line ``argv`` says."""
    args = parse_args(name, argv, description)
    config = tomllib.loads(args.config.read_text())
    config["data"]["dataset"] = args.dataset or config["data"]["dataset"]
    config["train"]["steps"] = args.steps or config["train"]["steps"]
    data, train = config["data"], config["train"]
    out = args.out or Path("runs") / name / args.config.stem
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    bf16 = train["bf16"] and device.type == "cuda"
    torch.manual_seed(train["seed"])

    # data: windows of history + predictions frames; a seeded fraction of the episodes held out
    metadata = storage.read_metadata(storage.find_data(data["dataset"]))
    train_episodes, val_episodes = split_episodes(metadata["total_episodes"], data["val_fraction"], train["seed"])
    window = dict(history=data["history"], predictions=data["predictions"], frameskip=data["frameskip"], resolution=data["resolution"])
    train_set = WindowDataset(data["dataset"], episodes=train_episodes, keys=("pixels",), **window)
    val_set = WindowDataset(data["dataset"], episodes=val_episodes, keys=("pixels",), **window)
    actions = np.concatenate(train_set.actions)  # every env action of the training episodes: [steps, A]
    fixed = train["val_batches"] * train["batch_size"]
    val_indices = np.linspace(0, len(val_set) - 1, min(len(val_set), fixed)).astype(int)
    calibration_indices = np.random.default_rng(train["seed"]).choice(len(train_set), min(len(train_set), fixed), replace=False)
    val_loader = fixed_windows(val_set, val_indices, train["batch_size"], data["workers"])
    calibration_loader = fixed_windows(train_set, calibration_indices, train["batch_size"], data["workers"])

    # model and optimizer
    facts = dict(
        image_size=data["resolution"],
        history=data["history"],
        action_block=data["frameskip"],
        action_dim=actions.shape[1],
        action_mean=tuple(actions.mean(0).tolist()),
        action_std=tuple(np.maximum(actions.std(0), 1e-3).tolist()),
        name=f"{name}-{args.config.stem}",
        env=metadata.get("wmbench", {}).get("env"),
    )
    model = model_class.from_config(config, facts).to(device)
    parameters = model.parameter_summary()
    parts = ", ".join(f"{part} {count:,}" for part, count in parameters.items() if part != "total")
    print(f"{name}: {parameters['total']:,} parameters ({parts}) on {device}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=train["lr"], weight_decay=train["weight_decay"])

    # the state a checkpoint carries, from the checkpoint with --resume
    start, curve, validation, train_seconds, earlier_wall_seconds = 0, [], [], 0.0, 0.0
    checkpoint_path = out / "checkpoint.pt"
    if args.resume:
        if not checkpoint_path.is_file():
            raise SystemExit(f"--resume: no checkpoint at {checkpoint_path}; start without --resume")
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if {**state["config"], "train": {**state["config"]["train"], "steps": train["steps"]}} != config:
            raise SystemExit(f"--resume: {checkpoint_path} was written with another config or dataset; use another --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, curve, validation = state["step"], state["curve"], state["validation"]
        train_seconds, earlier_wall_seconds = state["train_seconds"], state["wall_seconds"]
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        print(f"resumed from {checkpoint_path} at step {start}")

    # the loop, from the step after the checkpoint's
    loader = DataLoader(
        train_set, batch_sampler=batch_order(len(train_set), train["batch_size"], train["seed"], start),
        num_workers=data["workers"], pin_memory=device.type == "cuda", generator=torch.Generator(),
    )
    batches = iter(loader)

    model.train()
    run_start = time.perf_counter()
    interval = []  # loss terms of the steps since the last curve point
    bar = progress_bar(total=train["steps"], initial=start, desc=f"train {name}", unit="step")
    tick = time.perf_counter()
    for step in range(start + 1, train["steps"] + 1):  # step = updates done at the end of the iteration
        batch = next(batches)
        pixels = batch["pixels"].to(device, non_blocking=True)
        blocks = model.meta.normalize_actions(batch["actions"].to(device, non_blocking=True))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            losses = model.loss(pixels, blocks, train)

        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train["grad_clip"])
        optimizer.step()

        interval.append({key: value.item() for key, value in losses.items()})
        bar.update()
        bar.set_postfix({key: f"{value:.4g}" for key, value in interval[-1].items()})
        if step % train["log_every"] == 0 or step == train["steps"]:
            curve.append({"step": step, **mean_terms(interval)})
            interval = []
        validating = step % train["val_every"] == 0 or step == train["steps"]
        checkpointing = step % train["checkpoint_every"] == 0 or step == train["steps"]
        if validating or checkpointing:
            synchronize(device)
            train_seconds += time.perf_counter() - tick
            if validating:
                recalibrate_batchnorm(model, calibration_loader, device)  # validate the model as it will be exported
                validation.append({"step": step, **validate(model, val_loader, train, device)})
                bar.write(f"step {step}: train loss {curve[-1]['loss']:.4f}, val loss {validation[-1]['loss']:.4f}")
            if checkpointing:
                state = {
                    "config": config, "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "curve": curve, "validation": validation, "train_seconds": train_seconds,
                    "wall_seconds": earlier_wall_seconds + time.perf_counter() - run_start, "rng": torch.get_rng_state(),
                }
                if device.type == "cuda":
                    state["cuda_rng"] = torch.cuda.get_rng_state(device)
                atomic_write(checkpoint_path, lambda tmp: torch.save(state, tmp))
            tick = time.perf_counter()
    bar.close()

    # export for the harness (CPU, eval mode: BatchNorm on its running statistics, no dropout)
    model = model.cpu().eval()
    model.meta.extra.update(parameters=parameters["total"], dataset=data["dataset"], dataset_sha256=metadata.get("wmbench", {}).get("sha256"),
                            steps=train["steps"], config=args.config.name)
    wmbench.export(model, out / "model.wmb", horizon=5)
    summary = {
        "config": config,
        "steps": train["steps"],
        "final_train_loss": curve[-1] if curve else None,
        "final_val_loss": validation[-1] if validation else None,
        "samples_per_second": train["steps"] * train["batch_size"] / train_seconds if train_seconds else None,
        "train_seconds": train_seconds,
        "wall_seconds": earlier_wall_seconds + time.perf_counter() - run_start,
        "parameters": parameters,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "bf16": bf16,
        "dataset": {"id": metadata.get("dataset_id", data["dataset"]), "sha256": metadata.get("wmbench", {}).get("sha256"),
                    "train_windows": len(train_set), "val_windows": len(val_set)},
        "curve": curve,
        "validation": validation,
        "torch": torch.__version__,
        "wmbench": wmbench.__version__,
    }
    atomic_write(out / "train.json", lambda tmp: tmp.write_text(json.dumps(summary, indent=2)))
    print(f"wrote {out / 'model.wmb'} and {out / 'train.json'}: final val loss {summary['final_val_loss']}")
    return 0
