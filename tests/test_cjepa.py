"""The C-JEPA baseline: object masking, the model's protocol and export, and a few training steps end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from baselines.cjepa import CJEPA, draw_masked_slots, object_mask, reconstruction_error
from baselines.cjepa import train as cjepa_train
from baselines.training import tomllib
from wmbench.checkpoint import export, load_model

CONFIGS = Path(__file__).parents[1] / "baselines" / "cjepa" / "configs"

# ----------------------------------------------------------------------------------------------
# object masking


def test_masking_keeps_each_slots_anchor_and_masks_whole_trajectories():
    torch.manual_seed(0)
    chosen = draw_masked_slots(batch=64, slots=5, count=2, device="cpu")
    assert chosen.shape == (64, 5) and (chosen.sum(dim=1) == 2).all()
    assert chosen.any(dim=0).all()  # every slot index gets drawn somewhere in the batch
    masked = object_mask(chosen, history=3, future=2)  # [B, 5 frames, S]
    assert masked.shape == (64, 5, 5)
    assert not masked[:, 0].any()  # the first frame of every slot is its anchor
    assert torch.equal(masked[:, 1], chosen) and torch.equal(masked[:, 2], chosen)  # the chosen slots' whole history after it
    assert masked[:, 3:].all()  # every slot of the frames to predict is a query


def test_oc_jepa_masks_only_the_frames_to_predict():
    masked = object_mask(draw_masked_slots(batch=8, slots=4, count=0, device="cpu"), history=3, future=1)
    assert not masked[:, :3].any() and masked[:, 3].all()


# ----------------------------------------------------------------------------------------------
# the model

TINY = dict(
    channels=[8, 8], slots=3, slot_dim=8, slot_iterations=2, slot_hidden=16, decoder_channels=8, decoder_grid=4,
    reconstruction_size=16, predictor_layers=2, predictor_heads=2, predictor_dim=16,
)
TRAIN = dict(mask_slots=1, reconstruction_weight=1.0)


def tiny_model(history: int = 2) -> CJEPA:
    torch.manual_seed(0)
    return CJEPA(image_size=32, history=history, action_block=5, action_dim=2, **TINY).eval()


def random_pixels(batch: int, frames: int) -> torch.Tensor:
    return torch.randint(0, 256, (batch, frames, 3, 32, 32), dtype=torch.uint8)


def test_model_shapes_and_parameter_count():
    model = tiny_model(history=2)
    latents = model.encode(random_pixels(3, 2))
    assert latents.shape == (3, 2, 3, 8) and model.meta.latent_shape == (3, 8)
    masked = object_mask(draw_masked_slots(3, 3, 1, "cpu"), history=2, future=1)
    assert model.predict(latents, torch.randn(3, 2, 10), masked).shape == (3, 3, 3, 8)
    predicted = model.rollout(latents, torch.randn(3, 2 + 4, 10))
    assert predicted.shape == (3, 4, 3, 8)
    assert model.cost(predicted, latents[:, -1]).shape == (3,)
    assert model.decoder(latents.flatten(0, 1)).shape == (6, 3, 16, 16)
    counts = model.parameter_summary()
    assert counts["total"] == sum(p.numel() for p in model.parameters()) == counts["encoder"] + counts["decoder"] + counts["predictor"]


def test_a_masked_slot_is_predicted_from_its_anchor_alone():
    model = tiny_model(history=3)
    latents = model.encode(random_pixels(2, 3))
    chosen = torch.tensor([[False, True, False]] * 2)
    masked = object_mask(chosen, history=3, future=1)
    blocks = torch.randn(2, 3, 10)
    changed = latents.clone()
    changed[:, 1:, 1] += 1.0  # the masked slot after its anchor: the predictor must not see it
    assert torch.equal(model.predict(latents, blocks, masked), model.predict(changed, blocks, masked))
    changed[:, 0, 1] += 1.0  # its anchor is seen
    assert not torch.allclose(model.predict(latents, blocks, masked), model.predict(changed, blocks, masked))


def test_the_encoder_learns_from_the_reconstruction_only():
    model = tiny_model(history=2).train()
    losses = model.loss(random_pixels(4, 3), torch.randn(4, 3, 10), {**TRAIN, "reconstruction_weight": 0.0})
    assert set(losses) == {"loss", "future", "masked_history", "reconstruction"}
    losses["loss"].backward()
    assert not any(p.grad.any() for p in model.encoder.parameters())  # the slots are detached for the predictor
    assert model.predictor.slot_in.weight.grad.abs().sum() > 0


def test_the_foreground_weight_makes_a_missing_object_cost_more_than_the_same_error_on_the_table():
    table = torch.ones(2, 3, 16, 16)  # a white table, as Push-T's
    frames = table.clone()
    frames[:, :, 4:8, 4:8] = -1.0  # a small black object
    empty_table = table  # what a decoder settled on the mean frame draws
    smudged = frames.clone()
    smudged[:, :, 10:14, 10:14] = -1.0  # the object drawn, and as much error put on the table instead
    for weight, more in ((0.0, False), (50.0, True)):
        missing, misplaced = reconstruction_error(empty_table, frames, weight), reconstruction_error(smudged, frames, weight)
        assert bool(missing > 1.5 * misplaced) is more
    assert torch.equal(reconstruction_error(smudged, frames, 0.0), torch.nn.functional.mse_loss(smudged, frames))


def test_rollout_is_causal_in_the_action_blocks(check_causal_rollout):
    model = tiny_model(history=2)
    check_causal_rollout(model, model.encode(random_pixels(2, 2)), steps=5)


def test_a_rollout_without_a_slot_is_the_scene_without_that_object():
    """``slot_ids`` leaves a slot's tokens out: all of them is the plain rollout, and the others keep their own positions."""
    model = tiny_model(history=2)
    latents, blocks = model.encode(random_pixels(2, 2)), torch.randn(2, 5, 10)
    every = torch.arange(TINY["slots"])
    torch.testing.assert_close(model.rollout(latents, blocks, every), model.rollout(latents, blocks))
    kept = torch.tensor([0, 2])
    without = model.rollout(latents[:, :, kept], blocks, kept)
    assert without.shape == (2, 3, 2, TINY["slot_dim"])
    assert not torch.allclose(without, model.rollout(latents, blocks)[:, :, kept])  # slot 1 was seen, and now is not


def test_cost_is_invariant_to_the_order_of_the_slots():
    model = tiny_model()
    predicted, goal = torch.randn(4, 5, 3, 8), torch.randn(4, 3, 8)
    cost = model.cost(predicted, goal)
    assert torch.allclose(model.cost(predicted, goal[:, [2, 0, 1]]), cost)
    assert torch.allclose(model.cost(predicted[:, :, [1, 2, 0]], goal), cost)
    assert torch.equal(model.cost(goal[:, None].expand(-1, 5, -1, -1), goal), torch.zeros(4))
    assert (cost > 0).all()


def test_export_round_trip_gives_the_same_outputs(tmp_path):
    model = tiny_model(history=2)
    export(model, tmp_path / "cjepa.wmb", horizon=5)
    loaded = load_model(tmp_path / "cjepa.wmb")
    pixels, actions = random_pixels(4, 2), torch.randn(4, 2 + 5, 10)
    with torch.no_grad():
        latents = model.encode(pixels)
        assert torch.allclose(loaded.encode(pixels), latents, atol=1e-5)
        predicted = model.rollout(latents, actions)
        assert torch.allclose(loaded.rollout(latents, actions), predicted, atol=1e-5)
        assert torch.allclose(loaded.cost(predicted, latents[:, -1]), model.cost(predicted, latents[:, -1]), atol=1e-5)
    assert loaded.meta == model.meta


def test_the_configs_build_and_each_oc_jepa_and_foreground_variant_differs_only_in_its_one_setting():
    names = ("cpu", "cpu-no-mask", "cpu-foreground", "cpu-foreground-no-mask", "cpu-phyre", "cpu-phyre-no-mask", "cpu-clevrer",
             "cpu-clevrer-no-mask", "paper")
    configs = {name: tomllib.loads((CONFIGS / f"{name}.toml").read_text()) for name in names}
    for config in configs.values():
        data = config["data"]
        facts = dict(image_size=data["resolution"], history=data["history"], action_block=data["frameskip"], action_dim=2)
        assert CJEPA.from_config(config, facts).parameter_summary()["total"] > 0
    for foreground, plain in (("cpu-foreground", "cpu"), ("cpu-foreground-no-mask", "cpu-no-mask")):
        assert configs[foreground]["train"].pop("foreground_weight") > 0 and configs[foreground] == configs[plain]
    for with_mask, without_mask in (("cpu", "cpu-no-mask"), ("cpu-phyre", "cpu-phyre-no-mask"), ("cpu-clevrer", "cpu-clevrer-no-mask")):
        with_mask, without_mask = configs[with_mask], configs[without_mask]
        assert with_mask["train"]["mask_slots"] > 0 and without_mask["train"]["mask_slots"] == 0
        without_mask["train"]["mask_slots"] = with_mask["train"]["mask_slots"]
        assert without_mask == with_mask


# ----------------------------------------------------------------------------------------------
# training

CONFIG = """
[data]
dataset = "tiny-pusht-v0"
resolution = 32
history = 2
predictions = 1
frameskip = 5
val_fraction = 0.25
workers = 0

[model]
channels = [8, 8]
slots = 3
slot_dim = 8
slot_iterations = 2
slot_hidden = 16
decoder_channels = 8
decoder_grid = 4
reconstruction_size = 16
predictor_layers = 2
predictor_heads = 2
predictor_dim = 16

[train]
steps = 20
batch_size = 32
lr = 3e-3
weight_decay = 1e-3
grad_clip = 1.0
mask_slots = 1
reconstruction_weight = 1.0
bf16 = true
val_every = 10
val_batches = 2
checkpoint_every = 10
log_every = 1
seed = 0
"""


@pytest.fixture(scope="module")
def trained(tiny_pusht_root, train_tiny):
    """20 training steps on ``tiny-pusht-v0`` (``tests/conftest.py``)."""
    return train_tiny(cjepa_train.main, CONFIG, tiny_pusht_root)


def test_training_lowers_the_loss(trained):
    summary = json.loads((trained / "train.json").read_text())
    curve = summary["curve"]
    assert len(curve) == 20 and all(math.isfinite(point["loss"]) for point in curve)
    assert set(curve[0]) == {"step", "loss", "future", "masked_history", "reconstruction"}
    early, late = (sum(point["loss"] for point in points) / 5 for points in (curve[:5], curve[-5:]))
    assert late < 0.7 * early, (early, late)
    assert summary["final_val_loss"]["step"] == 20 and summary["parameters"]["total"] > 0


def test_the_exported_model_runs_through_wmbench_eval(trained, tmp_path):
    from wmbench.cli import main

    arguments = ["eval", "--model", str(trained / "model.wmb"), "--env", "pusht", "--episodes", "2"]
    assert main([*arguments, "--samples", "40", "--iterations", "2", "--out", str(tmp_path)]) == 0
    results = list(tmp_path.rglob("results.json"))
    assert len(results) == 1 and len(json.loads(results[0].read_text())["episodes"]) == 2


def test_slot_latents_run_through_the_clevrer_scene_evaluation():
    """``wmbench clevrer eval`` on [B, T, S, D] latents: the prediction error by horizon and the probes read the slots."""
    pytest.importorskip("mujoco", reason="CLEVRER needs the 'clevrer' extra")
    from wmbench.eval.videos import evaluate_scenes

    torch.manual_seed(0)
    model = CJEPA(image_size=32, history=2, action_block=8, action_dim=4, **TINY).eval()
    report = evaluate_scenes(model, videos=5, horizons=2)
    assert [row["horizon"] for row in report["prediction_error"]] == [1, 2]
    assert all(math.isfinite(row["error"]) for row in report["prediction_error"])
    assert all(math.isfinite(report["probe"][key]) for key in ("position_rmse", "velocity_rmse"))
    slot_probe = report["slot_probe"]  # the probe that reads one slot at a time, beside its null
    assert slot_probe["matched_objects"] > 0 and all(math.isfinite(slot_probe[key]) for key in ("position_r2", "null_position_r2"))


def test_slot_latents_run_through_the_phyre_ranking(tmp_path):
    """``wmbench phyre eval --agent world-model`` on a C-JEPA checkpoint: the probe reads every slot of the last
    predicted frame, chained past the checkpoint's own horizon."""
    from wmbench.cli import main

    torch.manual_seed(0)
    model = CJEPA(image_size=32, history=2, action_block=1, action_dim=3, name="tiny-cjepa-phyre", env="phyre", **TINY).eval()
    checkpoint = export(model, tmp_path / "cjepa-phyre.wmb", horizon=2)
    out = tmp_path / "wm.json"
    argv = ["phyre", "eval", "--agent", "world-model", "--model", str(checkpoint), "--tasks", "2", "--candidates", "20",
            "--probe-samples", "20", "--horizon", "3", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    settings = json.loads(out.read_text())["agent"]["settings"]
    assert settings["probe"]["features"] == TINY["slots"] * TINY["slot_dim"] and settings["horizon"] == 3


def test_the_decoders_parts_make_up_its_frame():
    model = tiny_model()
    slots = model.encode(random_pixels(2, 1))[:, 0]
    colors, shares = model.decoder.parts(slots)
    assert colors.shape == (2, TINY["slots"], 3, 16, 16) and shares.shape == (2, TINY["slots"], 1, 16, 16)
    assert torch.allclose(shares.sum(dim=1), torch.ones(2, 1, 16, 16)) and torch.allclose((colors * shares).sum(dim=1), model.decoder(slots))


def test_the_slot_picture_of_a_training_checkpoint(trained, tmp_path, monkeypatch, tiny_pusht_root, capsys):
    from PIL import Image

    from baselines.cjepa import slots

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_pusht_root))
    out = tmp_path / "slots.png"
    assert slots.main([str(trained / "checkpoint.pt"), "--out", str(out), "--frames", "3"]) == 0
    # 3 rows, each with the frame, the decoded frame and one picture per slot
    with Image.open(out) as picture:
        assert picture.height == 3 * (32 + 14 + 8) and picture.width == (2 + TINY["slots"]) * (32 + 4) + 4
    assert "3 frames of tiny-pusht-v0, 3 slots" in capsys.readouterr().out

    bad, garbage = tmp_path / "not-cjepa.pt", tmp_path / "garbage.pt"
    torch.save({"config": {}, "model": {"weight": torch.zeros(1)}}, bad)
    garbage.write_bytes(b"not a checkpoint")
    for argv, message in ((["missing.pt"], "does not exist"), ([str(bad)], "is not a C-JEPA training checkpoint"), ([str(garbage)], "error: "),
                          ([str(trained / "checkpoint.pt"), "--frames", "0"], "must be at least 1")):
        assert slots.main([*argv, "--out", str(out)]) == 2
        error = capsys.readouterr().err
        assert message in error and len(error.strip().splitlines()) == 1
    assert Image.open(out).height == 3 * (32 + 14 + 8)  # a refused run leaves the picture already written
