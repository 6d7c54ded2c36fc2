"""The LeWM baseline: SIGReg, the model's protocol and export, and a few training steps end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch

from baselines.lewm import LeWM, sigreg
from baselines.lewm import train as lewm_train
from wmbench.checkpoint import export, load_model
from wmbench.data import WindowDataset

# ----------------------------------------------------------------------------------------------
# SIGReg

# Under the null, E|phi_N(t) - phi(t)|^2 = (1 - exp(-t^2)) / N, so the statistic's expectation is
# 2 * integral_0^3 exp(-t^2 / 2) (1 - exp(-t^2)) dt whatever N (~1.06).
NULL_MEAN = 2 * (math.sqrt(math.pi / 2) * math.erf(3 / math.sqrt(2)) - math.sqrt(math.pi / 6) * math.erf(3 * math.sqrt(1.5)))


def gaussian_scores(seeds=range(8), samples=2048, dim=32, scale=1.0):
    scores = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        scores.append(sigreg(scale * torch.randn(samples, dim, generator=generator), generator=generator).item())
    return torch.tensor(scores)


def test_sigreg_is_about_its_null_expectation_on_gaussian_samples():
    scores = gaussian_scores()
    # measured over 40 seeds: mean 1.06, std 0.13, max 1.37 (the 1024 projections of 32-d data are
    # correlated, so a draw varies by ~0.13). The mean of 8 draws has std ~0.05: 0.2 is 4 of them.
    # 2.0 is > 7 stds above the mean, while collapse and mis-scaling score O(N) (~1000 here).
    assert abs(scores.mean().item() - NULL_MEAN) < 0.2, (scores, NULL_MEAN)
    assert scores.max().item() < 2.0


def test_sigreg_is_large_for_collapsed_low_rank_and_misscaled_samples():
    null = 2.0  # the bound Gaussian samples stay under (above)
    generator = torch.Generator().manual_seed(0)
    collapsed = torch.full((2048, 32), 0.3)
    rank_one = torch.randn(2048, 1, generator=generator) * torch.nn.functional.normalize(torch.randn(1, 32, generator=generator), dim=1)
    assert sigreg(collapsed, generator=generator).item() > 100 * null
    assert sigreg(rank_one, generator=generator).item() > 50 * null
    assert gaussian_scores(range(3), scale=3.0).min() > 50 * gaussian_scores(range(3)).max()


def test_sigreg_gradient_is_finite_and_time_steps_are_averaged():
    latents = torch.randn(256, 3, 16, requires_grad=True)
    value = sigreg(latents, projections=64)
    value.backward()
    assert value.dim() == 0 and torch.isfinite(latents.grad).all() and latents.grad.abs().sum() > 0
    collapsed = torch.zeros(256, 16, requires_grad=True)
    sigreg(collapsed, projections=64).backward()
    assert torch.isfinite(collapsed.grad).all()
    # [B, T, D]: the mean of the per-time-step statistics, with the same directions
    per_step = [sigreg(latents[:, t], projections=64, generator=torch.Generator().manual_seed(1)) for t in range(3)]
    together = sigreg(latents, projections=64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(together, torch.stack(per_step).mean(), rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# the model

TINY = dict(
    patch_size=8, encoder_layers=2, encoder_heads=2, encoder_dim=32, projector_hidden=64, latent_dim=16,
    predictor_layers=2, predictor_heads=2, predictor_dim=32, predictor_head_dim=16, predictor_mlp_dim=64, dropout=0.1,
)


def tiny_model(history=2) -> LeWM:
    torch.manual_seed(0)
    model = LeWM(image_size=32, history=history, action_block=5, action_dim=2, **TINY)
    for block in model.predictor:  # AdaLN-zero starts as the identity; perturb it so that actions matter
        torch.nn.init.normal_(block.modulation[1].weight, std=0.1)
    return model.eval()


def test_model_shapes_and_parameter_count():
    model = tiny_model(history=2)
    pixels = torch.randint(0, 256, (3, 2, 3, 32, 32), dtype=torch.uint8)
    latents = model.encode(pixels)
    assert latents.shape == (3, 2, 16)
    assert model.predict(latents, torch.randn(3, 2, 10)).shape == (3, 2, 16)
    assert model.rollout(latents, torch.randn(3, 2 + 4, 10)).shape == (3, 4, 16)
    counts = model.parameter_summary()
    assert counts["total"] == sum(p.numel() for p in model.parameters()) == counts["encoder"] + counts["predictor"]


def test_rollout_is_causal_in_the_action_blocks(check_causal_rollout):
    model = tiny_model(history=2)
    check_causal_rollout(model, model.encode(torch.randint(0, 256, (2, 2, 3, 32, 32), dtype=torch.uint8)), steps=5)


@pytest.mark.parametrize("history", [1, 3])
def test_rollout_predicts_what_predict_gives_on_each_sliding_window(history):
    """The rollout computes each block's modulation and each latent's projection once and only the newest token in
    the last layer: its predictions must be those of the teacher-forced predictor on every window."""
    model = tiny_model(history=history)
    latents = model.encode(torch.randint(0, 256, (4, history, 3, 32, 32), dtype=torch.uint8))
    actions = torch.randn(4, history + 5, 10)
    with torch.no_grad():
        rolled = model.rollout(latents, actions)
        window, expected = latents, []
        for k in range(5):
            expected.append(model.predict(window, actions[:, k : k + history])[:, -1])
            window = torch.cat([window[:, 1:], expected[-1][:, None]], dim=1)
    assert torch.allclose(rolled, torch.stack(expected, dim=1), atol=1e-5)


def test_export_round_trip_gives_the_same_outputs(tmp_path):
    model = tiny_model(history=2)
    export(model, tmp_path / "lewm.wmb", horizon=5)
    loaded = load_model(tmp_path / "lewm.wmb")
    pixels = torch.randint(0, 256, (4, 2, 3, 32, 32), dtype=torch.uint8)
    actions = torch.randn(4, 2 + 5, 10)
    with torch.no_grad():
        assert torch.allclose(loaded.encode(pixels), model.encode(pixels), atol=1e-5)
        latents = model.encode(pixels)
        assert torch.allclose(loaded.rollout(latents, actions), model.rollout(latents, actions), atol=1e-5)
    assert loaded.meta == model.meta


# ----------------------------------------------------------------------------------------------
# training

CONFIG = """
[data]
dataset = "tiny-tworoom-v0"
resolution = 32
history = 1
predictions = 1
frameskip = 5
val_fraction = 0.25
workers = 0

[model]
patch_size = 8
encoder_layers = 2
encoder_heads = 2
encoder_dim = 32
projector_hidden = 64
latent_dim = 16
predictor_layers = 2
predictor_heads = 2
predictor_dim = 32
predictor_head_dim = 16
predictor_mlp_dim = 64
dropout = 0.1

[train]
steps = 30
batch_size = 32
lr = 1e-3
weight_decay = 1e-3
grad_clip = 1.0
sigreg_weight = 0.09
sigreg_projections = 256
bf16 = true
val_every = 10
val_batches = 2
checkpoint_every = 10
log_every = 1
seed = 0
"""


@pytest.fixture(scope="module")
def tiny_dataset(tiny_tworoom_root):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(tiny_tworoom_root))
        config = tiny_tworoom_root / "lewm.toml"
        config.write_text(CONFIG)
        yield config


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("lewm-run")
    assert lewm_train.main(["--config", str(tiny_dataset), "--out", str(out), "--device", "cpu"]) == 0
    return out


def test_training_lowers_the_loss_without_collapse(trained):
    summary = json.loads((trained / "train.json").read_text())
    losses = [point["loss"] for point in summary["curve"]]
    assert len(losses) == 30 and all(math.isfinite(loss) for loss in losses)
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5, losses
    assert summary["final_val_loss"]["step"] == 30 and summary["dataset"]["sha256"]
    assert summary["parameters"]["total"] > 0 and summary["samples_per_second"] > 0

    # Collapse sends every latent dimension's spread to 0; SIGReg pulls each towards 1 (N(0, I)).
    # Measured as training sees it (BatchNorm on batch statistics): every dimension's std over the
    # dataset's frames stays above 0.1, a tenth of the target and far above a collapsed encoder's ~0.
    # (The exported eval-mode model uses BatchNorm's running statistics, which after 30 steps still
    # carry their initial variance of 1 and shrink the latents; they converge in a real run.)
    checkpoint = torch.load(trained / "checkpoint.pt", weights_only=True)
    model = LeWM(image_size=32, history=1, action_block=5, action_dim=2, max_frames=1, **checkpoint["config"]["model"])
    model.load_state_dict(checkpoint["model"])
    frames = WindowDataset("tiny-tworoom-v0", history=1, predictions=0, frameskip=5, keys=("pixels",))
    pixels = torch.stack([frames[i]["pixels"] for i in range(0, len(frames), 2)])
    with torch.no_grad():
        latents = model.train().encode(pixels).flatten(0, 1)
    assert latents.std(0).min().item() > 0.1, latents.std(0)


def test_resume_reproduces_the_uninterrupted_run(tiny_dataset, trained, tmp_path):
    arguments = ["--config", str(tiny_dataset), "--out", str(tmp_path), "--device", "cpu"]
    assert lewm_train.main([*arguments, "--steps", "15"]) == 0  # stopped at 15 (its last checkpoint: 15)
    assert lewm_train.main([*arguments, "--resume"]) == 0
    resumed = json.loads((tmp_path / "train.json").read_text())
    uninterrupted = json.loads((trained / "train.json").read_text())
    assert resumed["curve"] == uninterrupted["curve"]
    # the interrupted run also validated at its last step, 15
    assert [point for point in resumed["validation"] if point["step"] != 15] == uninterrupted["validation"]


def test_the_exported_model_runs_through_wmbench_eval(trained, tmp_path):
    from wmbench.cli import main

    arguments = ["eval", "--model", str(trained / "model.wmb"), "--env", "tworoom", "--episodes", "3"]
    assert main([*arguments, "--samples", "40", "--iterations", "2", "--out", str(tmp_path)]) == 0
    results = list(tmp_path.rglob("results.json"))
    assert len(results) == 1 and len(json.loads(results[0].read_text())["episodes"]) == 3
