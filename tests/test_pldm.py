"""The PLDM baseline: the VICReg terms, the model's protocol and export, and a few training steps end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch

from baselines.pldm import PLDM, covariance, variance
from baselines.pldm import train as pldm_train
from wmbench.checkpoint import export, load_model
from wmbench.data import WindowDataset

# ----------------------------------------------------------------------------------------------
# VICReg terms


def gaussian(samples=4096, dim=16, scale=1.0, seed=0):
    return scale * torch.randn(samples, dim, generator=torch.Generator().manual_seed(seed))


def test_variance_is_zero_for_spread_out_samples_and_the_full_hinge_when_collapsed():
    assert variance(gaussian(scale=2.0)).item() == 0.0  # every std ~2, above the target 1
    # std 1: each feature's sample std is within ~1.1% (1 / sqrt(2N)) of 1, so the hinge is tiny
    assert variance(gaussian()).item() < 0.02
    collapsed = torch.full((512, 16), 0.3)
    assert variance(collapsed).item() == pytest.approx(1 - math.sqrt(1e-4), abs=1e-6)  # relu(1 - sqrt(0 + eps))
    assert variance(gaussian(scale=0.5)).item() == pytest.approx(0.5, abs=0.02)


def test_covariance_is_about_zero_for_independent_features_and_large_when_low_rank():
    # independent unit features: each off-diagonal covariance has variance 1/N, so the term is ~(D - 1)/N
    independent = covariance(gaussian()).item()
    assert independent < 3 * 15 / 4096, independent
    # every feature the same unit variable: all D(D - 1) off-diagonals are 1, divided by D -> D - 1
    rank_one = gaussian(dim=1).expand(-1, 16)
    assert covariance(rank_one).item() == pytest.approx(15, rel=0.05)
    assert covariance(rank_one).item() > 1000 * independent


def test_the_terms_over_time_average_per_trajectory_statistics_and_have_finite_gradients():
    latents = torch.randn(6, 5, 8, requires_grad=True)  # [B, T, D]
    for term in (variance, covariance):
        together = term(latents, dim=1)
        alone = torch.stack([term(latents[b], dim=0) for b in range(6)]).mean()
        assert torch.allclose(together, alone, rtol=1e-5), term.__name__
        together.backward()
        assert torch.isfinite(latents.grad).all() and latents.grad.abs().sum() > 0
        latents.grad = None
    collapsed = torch.zeros(64, 8, requires_grad=True)
    (variance(collapsed) + covariance(collapsed)).backward()
    assert torch.isfinite(collapsed.grad).all()


# ----------------------------------------------------------------------------------------------
# the model

TINY = dict(channels=[8, 16], latent_dim=16, predictor_hidden=32, inverse_hidden=32, groups=4)


def tiny_model() -> PLDM:
    torch.manual_seed(0)
    return PLDM(image_size=32, history=1, action_block=5, action_dim=2, **TINY).eval()


def test_model_shapes_parameter_count_and_history_check():
    model = tiny_model()
    latents = model.encode(torch.randint(0, 256, (3, 4, 3, 32, 32), dtype=torch.uint8))
    assert latents.shape == (3, 4, 16)
    assert model.unroll(latents[:, 0], torch.randn(3, 6, 10)).shape == (3, 6, 16)
    assert model.inverse(latents[:, :-1], latents[:, 1:]).shape == (3, 3, 10)
    assert model.rollout(latents[:, :1], torch.randn(3, 1 + 5, 10)).shape == (3, 5, 16)
    counts = model.parameter_summary()
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match="history = 1"):
        PLDM(image_size=32, history=3, action_block=5, action_dim=2, **TINY)
    with pytest.raises(ValueError, match="multiple of 4"):
        PLDM(image_size=30, history=1, action_block=5, action_dim=2, **TINY)


def test_rollout_is_causal_in_the_action_blocks(check_causal_rollout):
    model = tiny_model()
    check_causal_rollout(model, model.encode(torch.randint(0, 256, (2, 1, 3, 32, 32), dtype=torch.uint8)), steps=5)


def test_export_round_trip_gives_the_same_outputs(tmp_path):
    model = tiny_model()
    export(model, tmp_path / "pldm.wmb", horizon=5)
    loaded = load_model(tmp_path / "pldm.wmb")
    pixels = torch.randint(0, 256, (4, 1, 3, 32, 32), dtype=torch.uint8)
    actions = torch.randn(4, 1 + 5, 10)
    with torch.no_grad():
        latents = model.encode(pixels)
        assert torch.allclose(loaded.encode(pixels), latents, atol=1e-5)
        assert torch.allclose(loaded.rollout(latents, actions), model.rollout(latents, actions), atol=1e-5)
    assert loaded.meta == model.meta


# ----------------------------------------------------------------------------------------------
# training

CONFIG = """
[data]
dataset = "tiny-tworoom-v0"
resolution = 32
history = 1
predictions = 3
frameskip = 5
val_fraction = 0.25
workers = 0

[model]
channels = [8, 16]
latent_dim = 16
predictor_hidden = 32
inverse_hidden = 32
groups = 4

[train]
steps = 30
batch_size = 32
lr = 3e-3
weight_decay = 1e-3
grad_clip = 1.0
bf16 = true
val_every = 10
val_batches = 2
checkpoint_every = 10
log_every = 1
seed = 0

[train.weights]
prediction = 1.0
variance = 1.0
covariance = 0.04
time_variance = 0.1
time_covariance = 0.004
inverse_dynamics = 1.0
"""


@pytest.fixture(scope="module")
def trained(tiny_tworoom_root, train_tiny):
    out = train_tiny(pldm_train.main, CONFIG, tiny_tworoom_root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(tiny_tworoom_root))  # the collapse check reads the dataset's frames
        yield out


def test_training_lowers_the_loss_without_collapse(trained):
    summary = json.loads((trained / "train.json").read_text())
    curve = summary["curve"]
    assert len(curve) == 30 and all(math.isfinite(point["loss"]) for point in curve)
    assert set(curve[0]) == {"step", "loss", "prediction", "variance", "covariance", "time_variance", "time_covariance", "inverse_dynamics"}
    early, late = (sum(point["loss"] for point in points) / 5 for points in (curve[:5], curve[-5:]))
    assert late < 0.7 * early, (early, late)
    assert summary["final_val_loss"]["step"] == 30 and summary["parameters"]["total"] > 0

    # Collapse sends every latent dimension's spread to 0; the variance term pulls each to 1. Every
    # dimension's std over the dataset's frames must stay above 0.1, a tenth of the target and far
    # above a collapsed encoder's ~0. Measured: min 0.45 as configured; 0.008 with every anti-collapse
    # weight at 0 and 0.003 with the variance term's sign flipped. GroupNorm has no running
    # statistics, so the exported model is the trained one.
    model = load_model(trained / "model.wmb")
    frames = WindowDataset("tiny-tworoom-v0", history=1, predictions=0, frameskip=5, keys=("pixels",))
    pixels = torch.stack([frames[i]["pixels"] for i in range(0, len(frames), 2)])
    with torch.no_grad():
        latents = model.encode(pixels).flatten(0, 1)
    assert latents.std(0).min().item() > 0.1, latents.std(0)


def test_the_exported_model_runs_through_wmbench_eval(trained, tmp_path):
    from wmbench.cli import main

    arguments = ["eval", "--model", str(trained / "model.wmb"), "--env", "tworoom", "--episodes", "3"]
    assert main([*arguments, "--samples", "40", "--iterations", "2", "--out", str(tmp_path)]) == 0
    results = list(tmp_path.rglob("results.json"))
    assert len(results) == 1 and len(json.loads(results[0].read_text())["episodes"]) == 3
