"""World-model evaluation on CLEVRER scenes: latent prediction error by horizon and linear probes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="CLEVRER needs the 'clevrer' extra")

from wmbench.eval.videos import PROBE_FIELDS, evaluate_scenes, linear_probe, probe_scores, probe_targets, slot_probe  # noqa: E402
from wmbench.stats import fit_ridge  # noqa: E402
from wmbench.testing import TinyWorldModel  # noqa: E402


def test_ridge_recovers_a_linear_map_and_scores_it():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2000, 12))
    targets = features @ rng.normal(size=(12, 5)) + 0.5
    weights, bias = fit_ridge(features, targets)
    assert np.abs(features @ weights + bias - targets).max() < 0.05  # the ridge shrinks a little
    objects = np.concatenate([np.ones((2000, 1)), targets[:, :4]], axis=1)  # one present object: x, y, vx, vy
    perfect = probe_scores(objects, objects, np.broadcast_to(objects.mean(0), objects.shape))
    assert perfect["position_rmse"] == 0 and perfect["position_r2"] == 1 and perfect["velocity_r2"] == 1
    mean_only = probe_scores(np.broadcast_to(objects.mean(0), objects.shape), objects, np.broadcast_to(objects.mean(0), objects.shape))
    assert mean_only["position_r2"] == pytest.approx(0.0)


def scattered_scene(rng: np.random.Generator):
    """3 to 6 objects at random cells of a 4 x 3 grid of 0.8 m cells, sliding at random: a valid start without the
    sampler's search for scenes with collisions (which simulates each candidate, seconds per scene)."""
    from wmbench.envs.clevrer.scene import COLORS, MATERIALS, SHAPES, Scene, SceneObject

    cells = rng.choice(12, rng.integers(3, 7), replace=False)
    return Scene(tuple(
        SceneObject(str(rng.choice(SHAPES)), str(rng.choice(list(COLORS))), str(rng.choice(list(MATERIALS))),
                    x=-1.2 + 0.8 * (cell % 4) + rng.uniform(-0.1, 0.1), y=0.8 * (cell // 4) + rng.uniform(-0.1, 0.1),
                    yaw=rng.uniform(-np.pi, np.pi), vx=rng.uniform(-1, 1), vy=rng.uniform(-1, 1))
        for cell in cells))


def test_probe_on_the_true_state_is_near_perfect_and_on_noise_is_not():
    import wmbench
    from wmbench.envs.clevrer.env import scene_state

    env = wmbench.make("clevrer", resolution=32, obs_type="state").unwrapped
    rng = np.random.default_rng(0)
    states = []
    for _ in range(40):
        start = scene_state(scattered_scene(rng))
        obs, _ = env.reset(options={"state": start, "goal_state": start})  # a given goal: no simulation of the whole video
        rows = [obs["state"]]
        for _ in range(10):
            rows.append(env.step(np.zeros(4, np.float32))[0]["state"])
        states.append(np.stack(rows))
    states = np.stack(states)
    targets = probe_targets(states)
    assert targets.shape == (40, 11, 6 * len(PROBE_FIELDS)) and set(np.unique(targets[..., 0])) <= {0.0, 1.0}
    # features = the targets: near perfect (0.999 measured), short of 1 only where a test video fills
    # an object slot that too few training videos filled (40 videos: 32 to fit 30 features)
    assert linear_probe(targets, states)["position_r2"] > 0.99
    noise = np.random.default_rng(0).normal(size=(40, 11, 8))
    assert linear_probe(noise, states)["position_r2"] < 0.2


def test_an_object_out_of_view_is_not_scored():
    """CLEVRER's objects enter from outside the view and leave it: no frame shows where they are then."""
    from wmbench.envs.clevrer.env import MAX_OBJECTS, SLOT, SLOT_FIELDS

    states = np.zeros((1, 1, MAX_OBJECTS * SLOT + 1))
    for obj, (x, y) in enumerate([(0.0, 0.3), (-11.0, 0.3), (0.0, 9.0)]):
        states[0, 0, obj * SLOT + np.array([SLOT_FIELDS.index(f) for f in ("present", "x", "y", "z")])] = (1.0, x, y, 0.2)
    targets = probe_targets(states).reshape(MAX_OBJECTS, len(PROBE_FIELDS))
    assert targets[:, 0].tolist() == [1, 0, 0, 0, 0, 0]
    assert targets[0, 1:3].tolist() == [0.0, 0.3] and not targets[1:].any()  # out of view reads as absent, not as -11 m


def test_slot_probe_reads_objects_from_shuffled_slots_where_the_flat_probe_cannot():
    """Each object's slot holds a linear code of its x, y, vx, vy, in a slot that changes at every frame (as
    an object-centric encoder's slot order does); the other slots are noise."""
    from wmbench.envs.clevrer.env import MAX_OBJECTS, SLOT, SLOT_FIELDS

    rng = np.random.default_rng(0)
    videos, frames, slots, dim = 20, 12, 7, 16
    fields = np.array([SLOT_FIELDS.index(field) for field in PROBE_FIELDS])
    states = np.zeros((videos, frames, MAX_OBJECTS * SLOT))
    latents = rng.normal(size=(videos, frames, slots, dim))
    code = rng.normal(size=(4, dim))
    for video in range(videos):
        for obj in range(rng.integers(3, MAX_OBJECTS + 1)):
            states[video][:, obj * SLOT + fields] = np.column_stack([np.ones(frames), rng.uniform(-2, 2, (frames, 2)), rng.normal(size=(frames, 2))])
        for frame in range(frames):
            present = np.flatnonzero(states[video, frame, fields[0] : MAX_OBJECTS * SLOT : SLOT] > 0.5)
            order = rng.permutation(slots)[: len(present)]
            latents[video, frame, order] = states[video, frame, present[:, None] * SLOT + fields[1:]] @ code + 0.05 * rng.normal(size=(len(present), dim))
    read = slot_probe(latents, states)
    assert read["position_r2"] > 0.99 and read["velocity_r2"] > 0.99 and read["position_rmse"] < 0.05
    assert linear_probe(latents.reshape(videos, frames, -1), states)["position_r2"] < 0.2  # the flat probe cannot follow the slots
    # matching against the truth lets even unrelated slots score above 0 (0.31 here): the null says how far
    assert 0.1 < read["null_position_r2"] < 0.5
    noise = slot_probe(rng.normal(size=latents.shape), states)
    assert abs(noise["position_r2"] - noise["null_position_r2"]) < 0.1


def test_evaluate_scenes_reports_every_horizon_and_the_probe():
    model = TinyWorldModel(image_size=(32, 48), action_dim=4, action_block=8, latent_dim=16).eval()
    report = evaluate_scenes(model, videos=5, horizons=3)
    assert report["model_steps"] == 1 + 127 // 8
    assert [row["horizon"] for row in report["prediction_error"]] == [1, 2, 3]
    assert all(math.isfinite(row["error"]) and row["error"] >= 0 and row["relative"] >= 0 for row in report["prediction_error"])
    assert report["probe"]["train_videos"] == 4 and report["probe"]["test_videos"] == 1
    assert all(math.isfinite(report["probe"][key]) for key in ("position_rmse", "velocity_rmse"))
    with pytest.raises(ValueError, match="4-d"):
        evaluate_scenes(TinyWorldModel(image_size=32, action_dim=2), videos=2)


def test_the_cli_writes_the_report(tmp_path, capsys):
    from wmbench.checkpoint import export
    from wmbench.cli import main

    checkpoint = export(TinyWorldModel(image_size=32, action_dim=4, action_block=8), tmp_path / "tiny.wmb")
    out = tmp_path / "report.json"
    assert main(["clevrer", "eval", "--model", str(checkpoint), "--videos", "3", "--horizons", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert len(report["prediction_error"]) == 2 and report["probe"]["test_videos"] == 1
    assert "slot_probe" not in report  # a flat latent has no slots to read one at a time
    assert "linear probe: position RMSE" in capsys.readouterr().out


def test_an_answering_head_is_scored_on_generated_questions(tmp_path, capsys):
    pytest.importorskip("av")
    from safetensors.torch import save_file

    from wmbench.cli import main
    from wmbench.data.clevrer_videos import generate
    from wmbench.testing import TinyAnsweringModel

    generate(2, tmp_path / "videos", workers=1, resolution=(64, 96), progress=False)
    save_file(TinyAnsweringModel(image_size=32, action_dim=4).state_dict(), tmp_path / "weights.safetensors")
    spec = tmp_path / "model.json"
    spec.write_text(json.dumps({"factory": "wmbench.testing:TinyAnsweringModel", "config": {"image_size": 32, "action_dim": 4},
                                "weights": "weights.safetensors"}))
    assert main(["clevrer", "answer", "--model", str(spec), "--generated", str(tmp_path / "videos"), "--trust-code"]) == 0
    report = json.loads(capsys.readouterr().out)
    questions = [q for video in json.loads((tmp_path / "videos" / "questions.json").read_text()) for q in video["questions"]]
    choices = [c for q in questions if "choices" in q for c in q["choices"]]
    marked_correct = sum(c["answer"] == "correct" for c in choices)  # the head marks every option correct
    descriptive = [q for q in questions if "choices" not in q]
    expected = (marked_correct + sum(q["answer"] == "yes" for q in descriptive)) / (len(choices) + len(descriptive))
    assert report["overall"]["per_option"] == pytest.approx(expected) and not report["missing"]

    exported = tmp_path / "plain.wmb"
    from wmbench.checkpoint import export

    export(TinyAnsweringModel(image_size=32, action_dim=4), exported)
    assert main(["clevrer", "answer", "--model", str(exported), "--generated", str(tmp_path / "videos")]) == 2
    assert "no answering head" in capsys.readouterr().err


def test_voe_runs_on_passive_videos_with_every_perturbation():
    from wmbench.eval.voe import run_voe

    result = run_voe(TinyWorldModel(image_size=32, action_dim=4, action_block=8).eval(), "clevrer", episodes=3, progress=False)
    assert set(result["summary"]) == {"teleport", "recolor", "vanish"}
    assert all(math.isfinite(entry["jump"]) for entry in result["summary"].values())
