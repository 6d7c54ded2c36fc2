"""Violation of expectation: paired runs, surprise curves, statistics, schema and picture.

The model under test is a hand-made oracle for Two-Room: its latent is the agent's position,
read off the frame as the centroid of the pixels that differ from the empty room (so it does not
care what color the agent is), and it predicts the next position as the last one plus the
action block's displacement. It foresees normal motion almost exactly, cannot foresee a
teleport, and barely notices a recolored agent. It has no weights, so its null is the random
encoder; a small network with weights is measured against its untrained copy.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from importlib import resources

import numpy as np
import pytest
import torch

import wmbench
from wmbench.envs.tworoom import BORDER, WORLD
from wmbench.eval.results import validate
from wmbench.eval.voe import (NULLS, RandomPixelEncoder, _perturb, estimate_batch_norm, normalized_scores, null_model, plot_voe,
                              run_voe, untrained_copy)
from wmbench.stats import auroc, midranks, paired_effect_size, paired_t_test, student_t_two_sided_p
from wmbench.world_model import ModelMeta

SIZE, HISTORY, BLOCK = 64, 2, 5
RADIUS, SPEED = 7.0, 5.0  # Two-Room's standard agent
STEPS, PERTURB_STEP = 60, 30  # 12 model steps; the perturbed frame is model step 6
EPISODES = 16


class PositionOracle(torch.nn.Module):
    """Latent: the agent's (x, y) in world units. Prediction: last position + speed * sum of the block's actions."""

    def __init__(self, empty_room: np.ndarray):
        super().__init__()
        # The model takes actions scaled by 1 / 0.5, so it predicts well only if they are normalized.
        self.meta = ModelMeta(image_size=(SIZE, SIZE), history=HISTORY, action_block=BLOCK, action_dim=2, latent_shape=(2,),
                              action_mean=(0.0, 0.0), action_std=(0.5, 0.5), name="position-oracle")
        self.register_buffer("empty_room", torch.from_numpy(empty_room).permute(2, 0, 1).float())
        self.register_buffer("centers", (torch.arange(SIZE) + 0.5) * WORLD / SIZE)  # pixel centers in world units

    def encode(self, pixels):
        weight = (pixels.float() - self.empty_room).abs().sum(2)  # [B, T, H, W]: the agent's coverage times its contrast
        total = weight.sum((-2, -1))
        x = (weight.sum(-2) * self.centers).sum(-1) / total
        y = (weight.sum(-1) * self.centers).sum(-1) / total
        return torch.stack([x, y], -1)

    def rollout(self, latents, actions):
        assert actions.shape == (len(latents), HISTORY + 1, BLOCK * 2)  # T + K blocks, K = 1
        assert not actions[:, -1].any()  # the block after the predicted frame is zeros
        actions = actions * 0.5  # undo the normalization
        move = SPEED * actions[:, -2].reshape(-1, BLOCK, 2).sum(1)  # the block between the last frame and the next
        return (latents[:, -1] + move).clamp(BORDER + RADIUS, WORLD - BORDER - RADIUS)[:, None]


@pytest.fixture(scope="module")
def model():
    env = wmbench.make("tworoom", resolution=SIZE, variation={"agent_color": (255, 255, 255)})  # an agent the color of the floor
    empty_room = env.reset(seed=0)[0]["pixels"]
    env.close()
    return PositionOracle(empty_room)


def voe(model, **kwargs):
    settings = dict(episodes=EPISODES, steps=STEPS, perturb_step=PERTURB_STEP, seed=0, progress=False)
    return run_voe(model, "tworoom", **{**settings, **kwargs})


@pytest.fixture(scope="module")
def result(model):
    return voe(model, model_info={"sha256": "0" * 64, "source": "tests"})


def test_a_teleport_is_a_large_significant_surprise(result):
    teleport = result["summary"]["teleport"]
    assert result["settings"]["perturb_model_step"] == teleport["model_step"] == PERTURB_STEP // BLOCK
    assert teleport["jump"] > 1000  # squared world units: a jump to the other room is ~100 units
    assert teleport["jump_band"][0] > 0
    assert teleport["normal_mean"] < 1
    assert teleport["p_value"] < 0.01
    assert teleport["auroc"] > 0.9


def test_a_recolor_surprises_the_color_blind_model_much_less(result):
    teleport, recolor = result["summary"]["teleport"], result["summary"]["recolor"]
    assert abs(recolor["jump"]) < 1e-3 * teleport["jump"]
    assert recolor["perturbed_mean"] < 1


def test_curves_have_the_right_shapes(result):
    steps = list(range(HISTORY, STEPS // BLOCK + 1))
    assert result["model_steps"] == steps
    at = steps.index(result["settings"]["perturb_model_step"])
    normal = np.array(result["conditions"]["normal"]["curves"])
    assert normal.shape == (EPISODES, len(steps))
    assert np.median(normal) < 0.01  # frames, blocks and normalization line up: normal motion is foreseen
    for condition in ("normal", "teleport", "recolor"):
        entry = result["conditions"][condition]
        curves, mean = np.array(entry["curves"]), np.array(entry["mean"])
        assert curves.shape == normal.shape and (curves >= 0).all()
        np.testing.assert_allclose(mean, curves.mean(0))
        assert all(len(entry[key]) == len(steps) for key in ("mean", "band_low", "band_high"))
        assert (np.array(entry["band_low"]) <= mean).all() and (mean <= np.array(entry["band_high"])).all()
        if condition != "normal":
            np.testing.assert_array_equal(curves[:, :at], normal[:, :at])  # paired: identical until the perturbation
            assert [p["kind"] for p in entry["perturbations"]] == [condition] * EPISODES
    teleport = np.array(result["conditions"]["teleport"]["mean"])
    assert teleport.argmax() == at
    assert teleport[at + 1] < 0.05 * teleport[at]  # once the teleported frame is in the history, motion is foreseen again
    teleports = result["conditions"]["teleport"]["perturbations"]
    assert len({tuple(p["after"]) for p in teleports}) == EPISODES  # each episode draws its own jump


def test_result_is_json_and_validates_against_the_schema(result):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(resources.files("wmbench").joinpath("schemas/voe.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    document = json.loads(json.dumps(result, allow_nan=False))
    jsonschema.validate(document, schema)
    assert document == result  # plain JSON types throughout
    assert result["model"]["sha256"] == "0" * 64 and result["model"]["source"] == "tests"
    assert result["env"]["id"] == "wmbench/TwoRoom-v0"
    assert result["settings"]["policy"] == wmbench.ENVS["tworoom"].default_policy
    broken = json.loads(json.dumps(result))
    del broken["summary"]["teleport"]["p_value"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_the_same_seed_gives_the_same_result(model, result):
    assert voe(model, model_info={"sha256": "0" * 64, "source": "tests"}) == result
    other = voe(model, episodes=4, seed=1)
    assert other["settings"]["env_seeds"] != result["settings"]["env_seeds"][:4]
    assert other["conditions"]["teleport"]["curves"] != result["conditions"]["teleport"]["curves"][:4]


def test_the_model_is_evaluated_in_eval_mode_and_left_as_it_was(model):
    seen = []
    encode = model.encode

    def spy(pixels):
        seen.append(model.training)
        return encode(pixels)

    model.encode, model.training = spy, True
    try:
        voe(model, episodes=2)
    finally:
        del model.encode
    assert seen and not any(seen)
    assert model.training


def test_defaults_and_a_perturbation_between_kept_frames(model):
    default = voe(model, episodes=2, steps=None, perturb_step=None)
    assert default["settings"]["steps"] == BLOCK * (HISTORY + 16)
    assert default["settings"]["perturb_step"] == BLOCK * (HISTORY + 8)
    assert default["settings"]["perturb_model_step"] == HISTORY + 8
    between = voe(model, episodes=4, perturb_step=PERTURB_STEP - 2)  # the next kept frame is the first to show it
    assert between["settings"]["perturb_model_step"] == PERTURB_STEP // BLOCK
    assert between["summary"]["teleport"]["model_step"] == PERTURB_STEP // BLOCK
    assert between["summary"]["teleport"]["jump"] > 1000


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"episodes": 1}, "at least 2 episodes"),
        ({"steps": 62}, "multiple of the model's action block"),
        ({"perturb_step": BLOCK * (HISTORY - 1)}, "after the model's 2-frame history"),
        ({"perturb_step": STEPS + 1}, "within the trajectory"),
        ({"policy": "nonsense"}, "unknown policy"),
    ],
)
def test_bad_settings_are_refused(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        voe(model, **kwargs)


def test_the_perturbation_draws_from_its_own_stream():
    env = wmbench.make("tworoom", resolution=32)
    jumps = []
    for _ in range(2):
        env.reset(seed=3)
        own = env.unwrapped.np_random
        state = own.bit_generator.state
        jumps.append(_perturb(env.unwrapped, "teleport", np.random.default_rng(7))[1])
        assert env.unwrapped.np_random is own and own.bit_generator.state == state
    assert jumps[0] == jumps[1]


# ---------------------------------------------------------------------- statistics
def test_auroc_counts_ties_as_half_and_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    for _ in range(50):
        positive, negative = rng.integers(0, 5, rng.integers(1, 12)), rng.integers(0, 5, rng.integers(1, 12))  # many ties
        pairs = [(p > n) + 0.5 * (p == n) for p, n in itertools.product(positive, negative)]
        assert auroc(positive, negative) == pytest.approx(np.mean(pairs))
    assert auroc([2, 3], [0, 1]) == 1.0 and auroc([0, 1], [2, 3]) == 0.0 and auroc([1, 1], [1, 1]) == 0.5
    np.testing.assert_array_equal(midranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])), [4, 1, 4, 2, 4])


def test_paired_t_test_agrees_with_scipy_and_with_its_fallback(monkeypatch):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    a = rng.normal(1.0, 1.0, 20)
    b = a + rng.normal(0.3, 0.5, 20)
    expected = stats.ttest_rel(a, b)
    assert paired_t_test(a, b) == pytest.approx((expected.statistic, expected.pvalue))
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # as if scipy were not installed
    assert paired_t_test(a, b) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-9)
    for df, t in itertools.product((1, 2, 5, 15, 49, 200), (0.0, 0.3, 1.0, 2.5, 6.0, 40.0)):
        assert student_t_two_sided_p(t, df) == pytest.approx(2 * stats.t.sf(t, df), rel=1e-8, abs=1e-300)


def test_paired_t_test_of_constant_differences():
    assert paired_t_test(np.ones(5), np.ones(5)) == (0.0, 1.0)
    t, p = paired_t_test(np.full(5, 3.0), np.ones(5))
    assert t == math.inf and p == 0.0


# ---------------------------------------------------------------------- picture
def test_plot_writes_a_png(result, tmp_path):
    pytest.importorskip("matplotlib")
    path = plot_voe(result, tmp_path / "voe" / "voe.png")
    assert path == tmp_path / "voe" / "voe.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["voe.png"]  # no temporary left behind


def test_plot_is_skipped_with_a_note_without_matplotlib(result, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    assert plot_voe(result, tmp_path / "voe.png") is None
    assert not (tmp_path / "voe.png").exists()
    note = capsys.readouterr().err
    assert "matplotlib is not installed" in note and note.count("\n") == 1


# ---------------------------------------------------------------------- the null
def test_a_model_without_parameters_is_measured_against_the_random_encoder(result):
    null = result["null"]
    assert null["kind"] == "random-encoder" and null["name"] == "random-encoder" and null["seed"] == 0
    assert result["definitions"]["null"] == NULLS["random-encoder"]
    assert set(null["conditions"]) == {"normal", "teleport", "recolor"} == set(null["summary"]) | {"normal"}
    at = result["model_steps"].index(result["settings"]["perturb_model_step"])
    normal, teleport = (np.array(null["conditions"][c]["curves"]) for c in ("normal", "teleport"))
    assert normal.shape == (EPISODES, len(result["model_steps"]))
    np.testing.assert_array_equal(teleport[:, :at], normal[:, :at])  # the same paired trajectories
    for kind, scores in result["normalized"].items():
        assert scores["auroc_over_null"] == pytest.approx(result["summary"][kind]["auroc"] - null["summary"][kind]["auroc"])
        assert scores["effect_size_over_null"] == pytest.approx(result["summary"][kind]["effect_size"] - null["summary"][kind]["effect_size"])


def test_the_random_encoder_sees_the_pixel_change_between_frames():
    meta = ModelMeta(image_size=(32, 32), history=2, action_block=BLOCK, action_dim=2, latent_shape=(4, 3), name="m")
    encoder = RandomPixelEncoder(meta, seed=5)
    assert encoder.meta.latent_shape == (4, 3) and encoder.meta.name == "random-encoder"
    assert torch.equal(encoder.projection, RandomPixelEncoder(meta, seed=5).projection)
    assert not torch.equal(encoder.projection, RandomPixelEncoder(meta, seed=6).projection)
    pixels = torch.randint(0, 256, (2, 3, 3, 32, 32), dtype=torch.uint8)
    latents = encoder.encode(pixels)
    assert latents.shape == (2, 3, 4, 3)
    predicted = encoder.rollout(latents[:, :2], torch.zeros(2, 4, BLOCK * 2))
    assert predicted.shape == (2, 2, 4, 3) and torch.equal(predicted, latents[:, 1:2].expand(-1, 2, -1, -1))  # nothing moves
    pooled = torch.nn.functional.avg_pool2d(pixels.flatten(0, 1).float() / 255, 2).flatten(1)  # 32 px -> 16 x 16 averages
    np.testing.assert_allclose(latents.flatten(0, 1).flatten(1), pooled @ encoder.projection, rtol=1e-5, atol=1e-5)


class SmallNet(torch.nn.Module):
    """A protocol model with a conv, a BatchNorm, a bare parameter and a linear predictor: every kind of weight a null resets."""

    def __init__(self):
        super().__init__()
        self.meta = ModelMeta(image_size=(SIZE, SIZE), history=HISTORY, action_block=BLOCK, action_dim=2, latent_shape=(8,), name="small")
        self.conv = torch.nn.Conv2d(3, 8, kernel_size=8, stride=8)
        self.norm = torch.nn.BatchNorm1d(8)
        self.token = torch.nn.Parameter(torch.full((8,), 5.0))  # no submodule resets it
        self.predict = torch.nn.Linear(8 + BLOCK * 2, 8)

    def encode(self, pixels):
        batch, frames = pixels.shape[:2]
        features = self.conv(pixels.flatten(0, 1).float() / 255).mean((-2, -1))
        return (self.norm(features) + self.token).unflatten(0, (batch, frames))

    def rollout(self, latents, actions):
        return (latents[:, -1] + self.predict(torch.cat([latents[:, -1], actions[:, HISTORY - 1]], -1)))[:, None]


def test_untrained_copy_redraws_every_parameter_seeded_and_leaves_the_model_and_the_stream_alone():
    model = SmallNet()
    with torch.no_grad():
        for parameter in model.parameters():  # as if trained: every weight moved off its init
            parameter.add_(1.0)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    stream = torch.random.get_rng_state()
    fresh, again, other = (dict(untrained_copy(model, seed).named_parameters()) for seed in (0, 0, 1))
    assert torch.equal(torch.random.get_rng_state(), stream)  # the caller's random stream is untouched
    assert all(torch.equal(value, model.state_dict()[name]) for name, value in before.items())
    for name, parameter in model.named_parameters():
        assert not torch.equal(fresh[name], parameter) and torch.equal(fresh[name], again[name]), name
    assert torch.equal(fresh["norm.weight"], torch.ones(8))  # BatchNorm's own init
    assert all(not torch.equal(fresh[name], other[name]) for name in ("conv.weight", "predict.weight", "token"))  # seeded draws
    assert fresh["token"].std() < 0.1 and abs(fresh["token"].mean()) < 0.1  # N(0, 0.02^2), not the model's 6.0


def test_batch_norm_statistics_of_the_null_are_estimated_on_the_normal_frames():
    model = untrained_copy(SmallNet(), 0)
    frames = np.random.default_rng(0).integers(0, 256, (3, 7, SIZE, SIZE, 3), dtype=np.uint8)  # 21 frames: chunks of 11 and 10
    with torch.no_grad():
        estimate_batch_norm(model, frames, torch.device("cpu"), batch_size=16)
        features = model.conv(torch.from_numpy(frames.reshape(-1, SIZE, SIZE, 3)).permute(0, 3, 1, 2).float() / 255).mean((-2, -1))
    assert not model.training and not model.norm.training
    chunks = features.split([11, 10])  # a cumulative average of the two batches' statistics
    np.testing.assert_allclose(model.norm.running_mean, (chunks[0].mean(0) + chunks[1].mean(0)) / 2, rtol=1e-5, atol=1e-6)


def test_a_model_with_weights_is_measured_against_its_untrained_copy():
    model = SmallNet()
    model.train()
    weights = {name: value.clone() for name, value in model.state_dict().items()}
    first = voe(model, episodes=4)
    assert first["null"]["kind"] == "untrained" and first["null"]["name"] == "small untrained"
    assert first["definitions"]["null"] == NULLS["untrained"]
    assert model.training and all(torch.equal(value, model.state_dict()[name]) for name, value in weights.items())
    assert first["null"]["conditions"]["normal"]["curves"] != first["conditions"]["normal"]["curves"]
    assert voe(model, episodes=4)["null"] == first["null"]  # seeded by the run's seed
    assert voe(model, episodes=4, seed=1)["null"]["conditions"]["normal"] != first["null"]["conditions"]["normal"]
    validate(first, "voe")


def test_an_exported_checkpoint_gets_the_random_encoder_and_the_command_prints_both(tmp_path, capsys):
    from wmbench.checkpoint import export, load_model
    from wmbench.cli import main
    from wmbench.testing import TinyWorldModel

    path = export(TinyWorldModel(image_size=32, action_dim=2), tmp_path / "tiny.wmb")
    assert null_model(load_model(path), 0, torch.device("cpu"))[0] == "random-encoder"
    assert main(["voe", "--model", str(path), "--env", "tworoom", "--episodes", "3", "--out", str(tmp_path / "voe"), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "null: random-encoder" in printed and "AUROC" in printed and "effect size" in printed
    result = json.loads((tmp_path / "voe" / "voe.json").read_text())
    rows = {line.split()[0]: line.split() for line in printed.splitlines() if line.split() and line.split()[0] in ("teleport", "recolor")}
    for kind, row in rows.items():
        assert float(row[1]) == pytest.approx(result["summary"][kind]["auroc"], abs=1e-3)
        assert float(row[2]) == pytest.approx(result["null"]["summary"][kind]["auroc"], abs=1e-3)


def test_effect_size_and_the_scores_over_the_null_by_hand():
    assert paired_effect_size(np.array([3.0, 5.0, 7.0]), np.ones(3)) == pytest.approx(2.0)  # differences 2, 4, 6: mean 4, sd 2
    assert paired_effect_size(np.ones(4), np.ones(4)) == 0.0
    assert paired_effect_size(np.full(4, 3.0), np.ones(4)) is None  # every difference 2: infinitely many sds
    assert normalized_scores({"auroc": 0.9, "effect_size": 2.5}, {"auroc": 0.7, "effect_size": 1.0}) == pytest.approx(
        {"auroc_over_null": 0.2, "effect_size_over_null": 1.5})
    assert normalized_scores({"auroc": 1.0, "effect_size": None}, {"auroc": 0.5, "effect_size": 0.1})["effect_size_over_null"] is None
