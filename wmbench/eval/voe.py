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
effect size                Cohen's d_z at step ``p``: mean(perturbed - normal) / sd(perturbed -
                           normal) over the paired episodes; free of the latent's scale
null                       the same curves from a model that learned nothing (below), on the
                           same trajectories
AUROC over null            the model's AUROC minus the null's
effect size over null      the model's effect size minus the null's
=========================  =====================================================================

The null says what a surprise is worth: a teleport or a recolor changes many pixels, so a model
that learned nothing can already be surprised by it. The scores over the null are what training
added.

- ``untrained`` (the model's code is at hand: an ``nn.Module``, or a checkpoint loaded from research
  code): a deep copy of the model, every submodule re-initialized by its own ``reset_parameters()``
  and any parameter no submodule resets (a model's own tokens and position embeddings) drawn from
  N(0, 0.02^2), seeded with the run's seed. That is PyTorch's default init of each layer; an
  architecture's custom init (e.g. zero-initialized gates) is not reproduced. BatchNorm running
  statistics, estimates rather than weights, are re-estimated on the normal runs' frames, as the
  trained model's were on its data (``estimate_batch_norm``).
- ``random-encoder`` (an exported checkpoint holds programs, not the code that initializes its
  weights; or a model has no parameters): frames scaled to [0, 1], averaged to 16 x 16 per
  channel and projected to the model's latent size D by a seeded Gaussian matrix (entries
  N(0, 1/D)); it predicts that the last latent persists. Its surprise is the squared change of
  the projected pixels between consecutive frames: what is visible without learning anything. It
  is a fair null because it sees the same frames at the same steps through a latent of the same
  size, the projection keeps squared distances in expectation (Johnson-Lindenstrauss), and AUROC
  and effect size do not depend on the latent's scale. It is a strict one: a teleport or recolor
  that changes many pixels scores high against it.

Seeds: episode ``i`` resets the env and seeds the policy from ``episode_seeds(seed, i)`` (as
datasets do); the perturbation draws (a teleport's position, a recolor's color) come from their
own stream, seeded by ``(seed, i, kind)``, lent to the env for the ``perturb`` call only, so the
env's own stream runs on exactly as in the paired normal run.

    result = run_voe(model, "pusht", episodes=50)
    result["summary"]["teleport"]      # jump, p-value, AUROC, effect size at the perturbation step
    result["null"]["summary"]["teleport"], result["normalized"]["teleport"]
    plot_voe(result, "voe.png")
"""

from __future__ import annotations

import copy
import json
import math
import sys
import zlib
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import wmbench
from wmbench.data.recipe import episode_seeds
from wmbench.envs import ENVS, short_name
from wmbench.eval.models import frozen
from wmbench.files import atomic_write
from wmbench.policies import make_policy
from wmbench.progress import progress_bar
from wmbench.protocol import VOE
from wmbench.stats import auroc, mean_band, paired_effect_size, paired_t_test, t_test_method

VOE_FORMAT = 1  # bump when a field changes meaning
POOLED_SIDE = 16  # the random-encoder null averages each frame to 16 x 16 pixels per channel
TOKEN_STD = 0.02  # parameters no submodule resets are redrawn as ViTs draw tokens and position embeddings

DEFINITIONS = {
    "surprise": "squared L2 distance, summed over latent elements, between the latent the model predicts for frame t "
    "(from the T frames before it and their action blocks) and the encoded frame t",
    "band": "mean +- 1.96 * standard error of the mean over episodes (normal approximation of a 95% interval)",
    "jump": "mean over episodes of (perturbed - normal surprise) at the perturbation model step; its band is that "
    "of the paired differences",
    "auroc": "Mann-Whitney U / (n_perturbed * n_normal) of the surprise at the perturbation model step: the chance "
    "that a perturbed episode's surprise exceeds a normal one's, ties counting half",
    "effect_size": "Cohen's d_z of the surprise at the perturbation model step: mean(perturbed - normal) / sd(perturbed - "
    "normal) over the paired episodes (ddof 1); null when every difference is the same nonzero number",
    "auroc_over_null": "the model's AUROC minus the null's, on the same trajectories: 0 when training added nothing to "
    "what the null sees; at most 1 - the null's AUROC",
    "effect_size_over_null": "the model's effect size minus the null's, on the same trajectories: the standard deviations "
    "of the paired differences that training added",
}

NULLS = {
    "untrained": "the same architecture with untrained weights: a deep copy of the model, every submodule re-initialized "
    "by its reset_parameters() and parameters no submodule resets drawn from N(0, 0.02^2), seeded with the run's seed "
    "(PyTorch's default init of each layer; custom inits such as zero-initialized gates are not reproduced); BatchNorm "
    "running statistics re-estimated while it encodes the normal runs' frames",
    "random-encoder": "a fixed random encoder of the model's latent size D: frames scaled to [0, 1], averaged to 16 x 16 "
    "per channel, projected by a Gaussian matrix with N(0, 1/D) entries seeded with the run's seed; it predicts that the "
    "last latent persists, so its surprise is the projected squared pixel change between consecutive frames. Used where "
    "the weights cannot be re-initialized (an exported checkpoint holds programs, not the code that initializes them) "
    "or the model has none",
}


def run_voe(model, env_name: str, *, episodes: int = VOE.episodes, steps: int | None = None, perturb_step: int | None = None,
            seed: int = VOE.seed, device: str | torch.device = "cpu", policy: str | None = None,
            model_info: dict[str, Any] | None = None, batch_size: int = 256, progress: bool = True) -> dict[str, Any]:
    """Surprise curves of ``model`` on paired normal and perturbed trajectories of ``env_name``.

    ``model`` has ``meta`` (a ``ModelMeta``), ``encode`` and ``rollout`` and already lives on
    ``device``. ``steps`` (env steps, a multiple of ``action_block``) defaults to ``action_block
    * (history + 16)`` and ``perturb_step`` to ``action_block * (history + 8)``; ``policy``
    defaults to the env's data policy. ``model_info`` (e.g. ``{"sha256": ...}``) is merged into
    the result's ``model``. Frames and windows go through the model ``batch_size`` at a time. The
    same curves are measured for the model's null (``null_model``), seeded with ``seed``.
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
    for i in progress_bar(range(episodes), desc=f"voe {name}", unit="ep", disable=not progress, leave=False):
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
    null_kind, null = null_model(model, seed, device)
    if null_kind == "untrained":
        with torch.no_grad():
            estimate_batch_norm(null, np.stack(frames["normal"]), device, batch_size)
    # dropout and batch norm off, as in evaluation; each submodule's mode put back as it was afterwards
    with frozen(model) if isinstance(model, torch.nn.Module) else nullcontext(), torch.no_grad():
        curves = {condition: surprise_curves(model, np.stack(kept), actions, device, batch_size)
                  for condition, kept in frames.items()}
        null_curves = {condition: surprise_curves(null, np.stack(kept), actions, device, batch_size)
                       for condition, kept in frames.items()}

    at = perturb_model_step - history  # index of the perturbation model step in the curves
    conditions, summary = curve_figures(curves, at, perturb_model_step)
    null_conditions, null_summary = curve_figures(null_curves, at, perturb_model_step)
    for kind in kinds:
        conditions[kind]["perturbations"] = details[kind]
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
        "definitions": {**DEFINITIONS, "p_value": f"two-sided paired t-test, perturbed vs normal surprise ({t_test_method()})",
                        "null": NULLS[null_kind]},
        "model_steps": list(range(history, steps // block + 1)),
        "conditions": conditions,
        "summary": summary,
        "null": {"kind": null_kind, "name": null.meta.name, "seed": seed, "conditions": null_conditions, "summary": null_summary},
        "normalized": {kind: normalized_scores(summary[kind], null_summary[kind]) for kind in kinds},
    }


def curve_figures(curves: dict[str, np.ndarray], at: int, model_step: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each condition's curves with their mean and band, and each perturbation's figures at index ``at``."""
    conditions, summary = {}, {}
    for condition, curve in curves.items():
        mean, low, high = mean_band(curve)
        conditions[condition] = {"curves": curve.tolist(), "mean": mean.tolist(), "band_low": low.tolist(), "band_high": high.tolist()}
        if condition != "normal":
            summary[condition] = perturbation_summary(curve[:, at], curves["normal"][:, at], model_step)
    return conditions, summary


# ---------------------------------------------------------------------- the null
def null_model(model, seed: int, device: torch.device) -> tuple[str, nn.Module]:
    """The model that learned nothing that ``model`` is measured against: ``untrained`` or ``random-encoder``."""
    code = model if isinstance(model, nn.Module) else getattr(model, "module", None)  # a LoadedModel keeps research code here
    if code is not None and any(True for _ in code.parameters()):
        null = untrained_copy(code, seed)
        null.meta = replace(code.meta, name=f"{code.meta.name} untrained")
        return "untrained", null.to(device).eval()
    return "random-encoder", RandomPixelEncoder(model.meta, seed).to(device)


def untrained_copy(module: nn.Module, seed: int) -> nn.Module:
    """A deep copy of ``module`` on the CPU with every parameter drawn afresh from ``seed``."""
    fresh = copy.deepcopy(module).cpu()
    reset = set()
    with torch.random.fork_rng(devices=[]):  # the caller's random stream runs on untouched
        torch.random.default_generator.manual_seed(seed)
        for submodule in fresh.modules():
            if callable(getattr(submodule, "reset_parameters", None)):
                submodule.reset_parameters()
                reset.update(id(parameter) for parameter in submodule.parameters())
        with torch.no_grad():
            for parameter in fresh.parameters():
                if id(parameter) not in reset:
                    parameter.normal_(0.0, TOKEN_STD)
    return fresh


def estimate_batch_norm(model: nn.Module, frames: np.ndarray, device: torch.device, batch_size: int) -> None:
    """Set every BatchNorm's running statistics to the average of its batch statistics while the
    model encodes the normal runs' ``frames``, then put the model in eval mode.

    Running statistics are estimates, not learned weights; left at their defaults (mean 0, variance
    1) they squash an untrained encoder's small features to a nearly constant latent, a null that
    sees nothing (LeWM's architecture: AUROC 0.5 on Push-T). A BatchNorm the encoder does not pass
    through (one in a predictor) keeps the defaults.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches
        norm.train()
    flat = frames.reshape(-1, *frames.shape[2:])
    if norms:
        for chunk in np.array_split(flat, -(-len(flat) // batch_size)):  # near-equal chunks: none of one frame
            model.encode(torch.from_numpy(np.ascontiguousarray(chunk)).to(device).permute(0, 3, 1, 2)[:, None])
    model.eval()


class RandomPixelEncoder(nn.Module):
    """The ``random-encoder`` null: pooled pixels through a fixed random projection; the last latent persists."""

    def __init__(self, meta, seed: int):
        super().__init__()
        self.meta = replace(meta, name="random-encoder")
        size = math.prod(meta.latent_shape)
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(3 * POOLED_SIDE**2, size, generator=generator) / math.sqrt(size))

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        batch, frames = pixels.shape[:2]
        pooled = F.adaptive_avg_pool2d(pixels.flatten(0, 1).float() / 255, POOLED_SIDE)
        return (pooled.flatten(1) @ self.projection).reshape(batch, frames, *self.meta.latent_shape)

    def rollout(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        steps = actions.shape[1] - latents.shape[1]
        return latents[:, -1:].repeat_interleave(steps, dim=1)


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
        "effect_size": paired_effect_size(perturbed, normal),
    }


def normalized_scores(model: dict[str, Any], null: dict[str, Any]) -> dict[str, Any]:
    """What training added at one perturbation: the model's AUROC and effect size minus the null's."""
    effect, null_effect = model["effect_size"], null["effect_size"]
    return {"auroc_over_null": model["auroc"] - null["auroc"],
            "effect_size_over_null": effect - null_effect if effect is not None and null_effect is not None else None}


def null_title(null: dict[str, Any]) -> str:
    return f"null: {null['kind']}" + (f" ({null['name']})" if null["name"] != null["kind"] else "")


def summary_text(result: dict[str, Any]) -> str:
    """The scores of each perturbation next to the null's, as ``wmbench voe`` prints them."""
    settings, null = result["settings"], result["null"]

    def number(value: float | None, form: str) -> str:
        return "n/a" if value is None else format(value, form)

    lines = [f"{result['model']['name']} on {result['env']['id']}: {settings['episodes']} paired episodes, perturbation at model "
             f"step {settings['perturb_model_step']}; {null_title(null)}",
             f"{'perturbation':<14}{'AUROC':>7}{'null':>7}{'over':>7}   {'effect size':>11}{'null':>7}{'over':>7}   "
             f"{'jump (95% band)':>24}{'null jump':>11}"]
    for kind, scores in result["summary"].items():
        null_scores, normalized = null["summary"][kind], result["normalized"][kind]
        low, high = scores["jump_band"]
        lines.append(f"{kind:<14}{scores['auroc']:>7.3f}{null_scores['auroc']:>7.3f}{normalized['auroc_over_null']:>+7.3f}   "
                     f"{number(scores['effect_size'], '.2f'):>11}{number(null_scores['effect_size'], '.2f'):>7}"
                     f"{number(normalized['effect_size_over_null'], '+.2f'):>7}   "
                     f"{scores['jump']:>+9.3g} ({low:.3g} to {high:.3g}){null_scores['jump']:>+11.3g}")
    lines.append("over: the model's score minus the null's (what training added); jumps are in each model's own latent units")
    return "\n".join(lines)


# ---------------------------------------------------------------------- picture
def plot_voe(result: dict[str, Any], path: str | Path) -> Path | None:
    """A PNG of the mean surprise and its 95% band per condition against the model step: the model
    on the left, its null on the right, the normal curve drawn on top in black.

    Returns the path, or ``None`` (with a one-line note on stderr) when matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        print("note: matplotlib is not installed; skipping the VoE plot (pip install matplotlib)", file=sys.stderr)
        return None
    steps, settings, null = result["model_steps"], result["settings"], result["null"]
    figure = Figure(figsize=(12, 4.4), layout="constrained")
    FigureCanvasAgg(figure)  # draw with Agg, whatever backend pyplot uses in this process
    model_axes, null_axes = figure.subplots(1, 2)
    panels = ((model_axes, result["conditions"], result["summary"], result["model"]["name"]),
              (null_axes, null["conditions"], null["summary"], null_title(null)))
    for axes, conditions, summary, title in panels:
        for condition, curves in conditions.items():
            label, style = condition, {"marker": "o", "markersize": 3}
            if condition in summary:
                scores = summary[condition]
                effect = "n/a" if scores["effect_size"] is None else f"{scores['effect_size']:.2f}"
                label += f": AUROC {scores['auroc']:.2f}, effect size {effect}, jump {scores['jump']:+.3g}"
            else:  # the unperturbed runs: on top of the bands, so a large perturbed curve cannot hide them
                style = {"color": "black", "linewidth": 2, "zorder": 5}
            line, = axes.plot(steps, curves["mean"], label=label, **style)
            axes.fill_between(steps, curves["band_low"], curves["band_high"], color=line.get_color(), alpha=0.2, linewidth=0)
        if min(min(curves["mean"]) for curves in conditions.values()) > 0:
            axes.set_yscale("log")  # a recolor can be 100x a normal surprise; a log axis keeps both readable
        axes.axvline(settings["perturb_model_step"], color="gray", linestyle="--", linewidth=1,
                     label=f"perturbation (env step {settings['perturb_step']})")
        axes.set_xlabel(f"model step ({result['model']['action_block']} env steps each)")
        axes.set_ylabel("surprise (squared L2 in latent space)")
        axes.set_title(title, fontsize=10)
        axes.legend(fontsize=7)
        axes.grid(alpha=0.3)
    over = ", ".join(f"{kind} AUROC {scores['auroc_over_null']:+.2f}" for kind, scores in result["normalized"].items())
    figure.suptitle(f"{result['model']['name']} on {result['env']['id']}: mean and 95% band, {settings['episodes']} episodes; "
                    f"over the null: {over}", fontsize=10)
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120))
