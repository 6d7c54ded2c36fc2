"""Violation of expectation (VoE): is a world model surprised when the world does something impossible?

For each episode the env is reset from the episode's seed and driven by the env's data policy;
its actions are recorded on this normal run and replayed, from the same seed, once for every
perturbation the env offers (``env.unwrapped.PERTURBATIONS``: at least ``teleport`` and
``recolor``), applied right after env step ``perturb_step``. So each perturbed trajectory is
paired with the normal one: the same start, the same actions, the same frames until the
perturbation.

=========================  =====================================================================
frames                     the model's resolution; one kept every ``action_block`` env steps,
                           ``f_0`` (the reset frame) to ``f_M``, ``M = steps / action_block``
action block ``j``         the env actions between ``f_j`` and ``f_(j+1)``, concatenated and
                           normalized with ``meta.normalize_actions``
surprise at model step t   ``|| rollout(encode(f_(t-T) .. f_(t-1)), blocks (t-T) .. (t-1), zeros)
                           - encode(f_t) ||^2``: the squared L2 distance, summed over the latent's
                           elements, between the predicted and the encoded latent of frame t
                           (T = ``meta.history``; t = T .. M)
perturbation               after env step ``perturb_step``; the first perturbed frame is
                           ``f_p``, ``p = ceil(perturb_step / action_block)`` (the perturbation
                           model step), at least T so that the model has seen T normal frames
band                       mean +- 1.96 standard errors of the mean over episodes (a normal
                           approximation of the 95% interval of the mean)
jump                       mean over episodes of (perturbed - normal surprise) at step ``p``,
                           with the same band of the paired differences
p-value                    two-sided paired t-test of the surprise at step ``p``, perturbed
                           vs normal (``scipy.stats.ttest_rel``; without scipy, the Student t
                           tail from the regularized incomplete beta function)
AUROC                      the chance that a perturbed episode's surprise at step ``p`` beats a
                           normal one's (ties count half): Mann-Whitney U / (n * n), midranks
=========================  =====================================================================

Seeds: episode ``i`` resets the env and seeds the policy from ``episode_seeds(seed, i)`` (as
datasets do); the perturbation draws (a teleport's position, a recolor's color) come from their
own stream, seeded by ``(seed, i, kind)``, lent to the env for the ``perturb`` call only, so the
env's own stream runs on exactly as in the paired normal run.

    result = run_voe(model, "pusht", episodes=50)
    result["summary"]["teleport"]   # jump, p-value, AUROC at the perturbation step
    plot_voe(result, "voe.png")
"""

from __future__ import annotations

import json
import math
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import wmbench
from wmbench.data.recipe import episode_seeds
from wmbench.envs import ENVS, short_name
from wmbench.files import atomic_write
from wmbench.policies import make_policy
from wmbench.protocol import VOE
from wmbench.stats import auroc, mean_band, paired_t_test, t_test_method

VOE_FORMAT = 1  # bump when a field changes meaning

DEFINITIONS = {
    "surprise": "squared L2 distance, summed over latent elements, between the latent the model predicts for frame t "
    "(from the T frames before it and their action blocks) and the encoded frame t",
    "band": "mean +- 1.96 * standard error of the mean over episodes (normal approximation of a 95% interval)",
    "jump": "mean over episodes of (perturbed - normal surprise) at the perturbation model step; its band is that "
    "of the paired differences",
    "auroc": "Mann-Whitney U / (n_perturbed * n_normal) of the surprise at the perturbation model step: the chance "
    "that a perturbed episode's surprise exceeds a normal one's, ties counting half",
}


def run_voe(model, env_name: str, *, episodes: int = VOE.episodes, steps: int | None = None, perturb_step: int | None = None,
            seed: int = VOE.seed, device: str | torch.device = "cpu", policy: str | None = None,
            model_info: dict[str, Any] | None = None, batch_size: int = 256, progress: bool = True) -> dict[str, Any]:
    """Surprise curves of ``model`` on paired normal and perturbed trajectories of ``env_name``.

    ``model`` has ``meta`` (a ``ModelMeta``), ``encode`` and ``rollout`` and already lives on
    ``device``. ``steps`` (env steps, a multiple of ``action_block``) defaults to ``action_block
    * (history + 16)`` and ``perturb_step`` to ``action_block * (history + 8)``; ``policy``
    defaults to the env's data policy. ``model_info`` (e.g. ``{"sha256": ...}``) is merged into
    the result's ``model``. Frames and windows go through the model ``batch_size`` at a time.
    Returns a JSON-ready dict (schema: ``wmbench/schemas/voe.schema.json``).
    """
    meta = model.meta
    name = short_name(env_name)
    policy = policy or ENVS[name].default_policy
    block, history = meta.action_block, meta.history
    steps = block * (history + VOE.steps_before + VOE.steps_after) if steps is None else steps
    perturb_step = block * (history + VOE.steps_before) if perturb_step is None else perturb_step
    perturb_model_step = _check_settings(episodes, steps, perturb_step, block, history)

    env = wmbench.make(name, resolution=tuple(meta.image_size), terminate_on_success=False, max_episode_steps=steps)
    if env.action_space.shape != (meta.action_dim,):
        raise ValueError(f"model action_dim={meta.action_dim}, but {env.spec.id} takes actions of shape {env.action_space.shape}")
    kinds = tuple(env.unwrapped.PERTURBATIONS)
    frames = {condition: [] for condition in ("normal", *kinds)}
    actions, details, env_seeds = [], {kind: [] for kind in kinds}, []
    for i in tqdm(range(episodes), desc=f"voe {name}", unit="ep", disable=not progress, leave=False):
        env_seed, policy_seed = episode_seeds(seed, i)
        env_seeds.append(env_seed)
        normal, recorded, _ = _play(env, env_seed, steps, block, policy=make_policy(env, policy, seed=policy_seed))
        frames["normal"].append(normal)
        actions.append(recorded)
        for kind in kinds:
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i, zlib.crc32(kind.encode()))))
            perturbed, _, detail = _play(env, env_seed, steps, block, actions=recorded, perturb=(perturb_step, kind, rng))
            frames[kind].append(perturbed)
            details[kind].append(_plain(detail))
    env.close()

    device = torch.device(device)
    actions = np.stack(actions)
    module = isinstance(model, torch.nn.Module)
    training = module and model.training
    if module:
        model.eval()  # dropout and batch norm off, as in evaluation; put back as it was below
    try:
        with torch.no_grad():
            curves = {condition: surprise_curves(model, np.stack(kept), actions, device, batch_size)
                      for condition, kept in frames.items()}
    finally:
        if module:
            model.train(training)

    at = perturb_model_step - history  # index of the perturbation model step in the curves
    conditions, summary = {}, {}
    for condition, curve in curves.items():
        mean, low, high = mean_band(curve)
        conditions[condition] = {"curves": curve.tolist(), "mean": mean.tolist(),
                                 "band_low": low.tolist(), "band_high": high.tolist()}
        if condition != "normal":
            conditions[condition]["perturbations"] = details[condition]
            summary[condition] = perturbation_summary(curve[:, at], curves["normal"][:, at], perturb_model_step)
    return {
        "format": VOE_FORMAT,
        "env": {"id": env.spec.id, "name": name, "resolution": list(meta.image_size)},
        "model": {
            "name": meta.name,
            "image_size": list(meta.image_size),
            "history": history,
            "action_block": block,
            "latent_shape": list(meta.latent_shape),
            **(model_info or {}),
        },
        "settings": {
            "episodes": episodes,
            "steps": steps,
            "perturb_step": perturb_step,
            "perturb_model_step": perturb_model_step,
            "seed": seed,
            "policy": policy,
            "perturbations": list(kinds),
            "env_seeds": env_seeds,
            "device": str(device),
        },
        "definitions": {**DEFINITIONS, "p_value": f"two-sided paired t-test, perturbed vs normal surprise ({t_test_method()})"},
        "model_steps": list(range(history, steps // block + 1)),
        "conditions": conditions,
        "summary": summary,
    }


def _check_settings(episodes: int, steps: int, perturb_step: int, block: int, history: int) -> int:
    """Validate the run's lengths; return the model step of the first perturbed frame."""
    if episodes < 2:
        raise ValueError(f"episodes={episodes}: a paired test and a band need at least 2 episodes")
    if steps < block or steps % block:
        raise ValueError(f"steps={steps}: must be a positive multiple of the model's action block ({block} env steps), "
                         f"e.g. {max(block, steps - steps % block)}")
    perturb_model_step = -(-perturb_step // block)
    if not history <= perturb_model_step <= steps // block or perturb_step < 1:
        raise ValueError(
            f"perturb_step={perturb_step}: the first perturbed frame (model step {perturb_model_step}) must come after "
            f"the model's {history}-frame history and within the trajectory: perturb_step in "
            f"[{block * (history - 1) + 1}, {steps}] for steps={steps}, action block {block}"
        )
    return perturb_model_step


def _play(env, env_seed: int, steps: int, block: int, *, policy=None, actions=None, perturb=None):
    """One episode: ``policy``'s actions (recorded) or ``actions`` replayed, optionally perturbed.

    ``perturb`` is ``(env step, kind, rng)``: the perturbation happens right after that env step.
    Returns the kept frames ``[steps / block + 1, H, W, 3]``, the actions and what the perturbation changed.
    """
    obs, _ = env.reset(seed=env_seed)
    if policy is not None:
        policy.reset()
        actions = np.empty((steps, *env.action_space.shape), np.float32)
    kept, detail = [obs["pixels"]], None
    for step in range(1, steps + 1):
        if policy is not None:
            actions[step - 1] = policy.act()
        obs, *_ = env.step(actions[step - 1])
        if perturb is not None and step == perturb[0]:
            obs, detail = _perturb(env.unwrapped, *perturb[1:])
        if step % block == 0:
            kept.append(obs["pixels"])
    return np.stack(kept), actions, detail


def _perturb(env, kind: str, rng: np.random.Generator):
    """``env.perturb(kind)`` drawing from ``rng``; the env's own stream is put back untouched."""
    own = env.np_random
    env.np_random = rng
    try:
        obs, info = env.perturb(kind)
    finally:
        env.np_random = own
    return obs, info["perturbation"]


def _plain(value):
    """``value`` with tuples and numpy values turned into JSON lists and numbers."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def encode_frames(model, frames: np.ndarray, device: torch.device, batch_size: int) -> torch.Tensor:
    """uint8 frames ``[E, F, H, W, 3]`` -> latents ``[E, F, *latent_shape]``, ``batch_size`` frames per call."""
    flat = frames.reshape(-1, *frames.shape[2:])
    latents = []
    for start in range(0, len(flat), batch_size):
        pixels = torch.from_numpy(np.ascontiguousarray(flat[start : start + batch_size])).to(device)
        latents.append(model.encode(pixels.permute(0, 3, 1, 2)[:, None])[:, 0])
    latents = torch.cat(latents)
    return latents.reshape(*frames.shape[:2], *latents.shape[1:])


def surprise_curves(model, frames: np.ndarray, actions: np.ndarray, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """Surprise ``[E, M + 1 - T]`` at model steps T..M from kept frames ``[E, M + 1, H, W, 3]`` and env actions ``[E, steps, A]``.

    Every (episode, step) window is one row of a batch: ``batch_size`` windows per ``rollout`` call.
    """
    meta = model.meta
    episodes, kept = frames.shape[:2]
    history = meta.history
    latents = encode_frames(model, frames, device, batch_size)
    blocks = torch.as_tensor(actions[:, : (kept - 1) * meta.action_block], dtype=torch.float32, device=device)
    blocks = meta.normalize_actions(blocks.reshape(episodes, kept - 1, meta.block_size))
    width = kept - history  # surprise steps per episode
    window = torch.arange(history, device=device)
    surprise = []
    for start in range(0, episodes * width, batch_size):
        index = torch.arange(start, min(start + batch_size, episodes * width), device=device)
        episode, step = index // width, history + index % width
        rows, past = episode[:, None], step[:, None] - history + window  # the T frames before each target, their blocks
        zeros = blocks.new_zeros(len(index), 1, meta.block_size)  # the block after the predicted frame
        predicted = model.rollout(latents[rows, past], torch.cat([blocks[rows, past], zeros], 1))[:, 0]
        surprise.append((predicted.float() - latents[episode, step].float()).flatten(1).pow(2).sum(1))
    curves = torch.cat(surprise).reshape(episodes, width).double().cpu().numpy()
    if not np.all(np.isfinite(curves)):
        raise ValueError("the model's latents or predictions are not finite (NaN or inf); no surprise can be measured")
    return curves


# ---------------------------------------------------------------------- statistics
def perturbation_summary(perturbed: np.ndarray, normal: np.ndarray, model_step: int) -> dict[str, Any]:
    """The headline figures of one perturbation: paired surprises ``[episodes]`` at its model step."""
    jump, low, high = mean_band(perturbed - normal)
    t, p = paired_t_test(perturbed, normal)
    return {
        "model_step": model_step,
        "normal_mean": float(normal.mean()),
        "perturbed_mean": float(perturbed.mean()),
        "jump": float(jump),
        "jump_band": [float(low), float(high)],
        "t_statistic": t if math.isfinite(t) else None,  # infinite when every paired difference is the same
        "p_value": p,
        "auroc": auroc(perturbed, normal),
    }


# ---------------------------------------------------------------------- picture
def plot_voe(result: dict[str, Any], path: str | Path) -> Path | None:
    """A PNG of the mean surprise and its 95% band per condition against the model step.

    Returns the path, or ``None`` (with a one-line note on stderr) when matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        print("note: matplotlib is not installed; skipping the VoE plot (pip install matplotlib)", file=sys.stderr)
        return None
    steps, settings = result["model_steps"], result["settings"]
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    FigureCanvasAgg(figure)  # draw with Agg, whatever backend pyplot uses in this process
    axes = figure.subplots()
    for condition, curves in result["conditions"].items():
        label = condition
        if condition in result["summary"]:
            s = result["summary"][condition]
            label += f": jump {s['jump']:+.3g}, p = {s['p_value']:.2g}, AUROC {s['auroc']:.2f}"
        line, = axes.plot(steps, curves["mean"], marker="o", markersize=3, label=label)
        axes.fill_between(steps, curves["band_low"], curves["band_high"], color=line.get_color(), alpha=0.2, linewidth=0)
    axes.axvline(settings["perturb_model_step"], color="gray", linestyle="--", linewidth=1,
                 label=f"perturbation (env step {settings['perturb_step']})")
    axes.set_xlabel(f"model step ({result['model']['action_block']} env steps each)")
    axes.set_ylabel("surprise (squared L2 in latent space)")
    axes.set_title(f"{result['model']['name']} on {result['env']['id']}: mean and 95% band, "
                   f"{settings['episodes']} episodes", fontsize=10)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120))
