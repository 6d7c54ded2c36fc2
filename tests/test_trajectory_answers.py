"""CLEVRER questions answered through object trajectories: the collision reader, the predicted annotation, the two
reference models, and C-JEPA's predictor on true states (``baselines/cjepa/states.py``)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from wmbench.data.clevrer_videos import generate
from wmbench.envs.clevrer.annotations import PREDICTIVE_FRAMES
from wmbench.eval.trajectory_answers import (
    CONTACT_RADII,
    CONTACT_TOLERANCE,
    ObjectTracks,
    Resimulation,
    VelocityExtrapolation,
    answer_by_trajectories,
    detect_collisions,
    predicted_annotation,
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("clevrer") / "videos"
    generate(2, out, seed=7, workers=1, resolution=(16, 24), progress=False)
    return out


def annotation(folder, index=0) -> dict:
    return json.loads((folder / "annotations" / f"annotation_{index:05d}.json").read_text())


def head_on(frames: int = 40, speed: float = 0.05) -> np.ndarray:
    """Two spheres on the x axis that meet at frame 20 and part again: positions [frames, 2, 2]."""
    reach = 2 * CONTACT_RADII["sphere"]
    distance = reach + np.abs(np.arange(frames) - 20) * 2 * speed
    return np.stack([np.stack([-distance / 2, np.zeros(frames)], -1), np.stack([distance / 2, np.zeros(frames)], -1)], axis=1)


def test_a_collision_is_read_once_where_the_footprints_meet_and_again_only_after_they_part():
    positions = head_on()
    frames_within = np.flatnonzero(np.linalg.norm(positions[:, 0] - positions[:, 1], axis=-1) - 2 * CONTACT_RADII["sphere"] <= CONTACT_TOLERANCE)
    assert detect_collisions(positions, ("sphere", "sphere")) == [{"object_ids": [0, 1], "frame_id": int(frames_within[0])}]
    twice = np.concatenate([positions, positions])  # they part by 2 m in between: a second collision
    assert [c["frame_id"] for c in detect_collisions(twice, ("sphere", "sphere"), first_frame=100)] == [100 + frames_within[0], 140 + frames_within[0]]
    assert detect_collisions(positions, ("sphere", "sphere"), absent=frozenset([1])) == []


def test_tracks_read_the_annotation_and_the_reference_models_continue_them(generated):
    truth = annotation(generated)
    tracks = ObjectTracks.from_annotation(truth)
    objects = len(truth["object_property"])
    assert tracks.position.shape == (128, objects, 2) and tracks.velocity.shape == (128, objects, 2) and tracks.yaw.shape == (128, objects)
    assert tracks.position[5, 1].tolist() == truth["motion_trajectory"][5]["objects"][1]["location"][:2]

    future = VelocityExtrapolation().continue_scene(tracks, PREDICTIVE_FRAMES)
    assert future.shape == (PREDICTIVE_FRAMES, objects, 2)
    np.testing.assert_allclose(future[-1] - future[-2], future[1] - future[0], atol=1e-12)  # straight lines at constant speed

    # the simulator re-run from the tracks' first frame retraces the observed video
    resimulated = Resimulation().without(tracks, removed=0)
    assert resimulated.shape == tracks.position.shape
    again = Resimulation().continue_scene(tracks, 4)
    assert again.shape == (4, objects, 2) and np.isfinite(again).all()


def test_the_predicted_annotation_replaces_only_the_future_and_the_counterfactuals(generated):
    truth = annotation(generated)
    predicted = predicted_annotation(truth, Resimulation())
    for key in ("object_property", "motion_trajectory", "collision", "events"):
        assert predicted[key] == truth[key]  # perception is the annotation's
    assert predicted["predictive"]["frames"] == truth["predictive"]["frames"]
    assert all(c["frame_id"] >= 128 for c in predicted["predictive"]["collision"])
    assert [entry["removed_object_id"] for entry in predicted["counterfactual"]] == list(range(len(truth["object_property"])))
    for entry in predicted["counterfactual"]:
        assert all(entry["removed_object_id"] not in c["object_ids"] for c in entry["collision"])
    assert annotation(generated) == truth  # the input is not modified


def test_answering_scores_every_question_type_and_perception_answers_the_descriptive_ones(generated):
    report = answer_by_trajectories(generated, VelocityExtrapolation())
    assert report["videos"] == 2 and report["model"] == "velocity extrapolation"
    by_type = report["score"]["by_type"]
    assert by_type["descriptive"]["per_question"] == 1.0  # they ask about the observed video, whose annotation is read as is
    assert all(0 <= by_type[t]["per_option"] <= 1 for t in by_type)
    assert answer_by_trajectories(generated, VelocityExtrapolation(), videos=1)["videos"] == 1


def test_cjepa_state_predictor_trains_and_answers(generated, tmp_path):
    from baselines.cjepa.states import FEATURES, STRIDE, StateSlotDynamics, load_tracks, main, slots, train, windows_of

    tracks = load_tracks(generated)
    scale = np.ones(4)
    video = slots(tracks[0], scale)
    objects = tracks[0].position.shape[1]
    assert video.shape == (128, 6, FEATURES) and (video[:, :objects, 0] == 1).all() and (video[:, objects:] == 0).all()
    assert windows_of([video], history=4).shape == (STRIDE * (128 // STRIDE - 4), 5, 6, FEATURES)

    settings = argparse.Namespace(history=4, layers=1, heads=2, dim=32, steps=30, batch_size=16, lr=1e-3, seed=0, mask_slots=1)
    untrained = train(tracks, argparse.Namespace(**{**vars(settings), "steps": 0}))
    model = train(tracks, settings)
    batch = torch.from_numpy(windows_of([slots(t, model.scale.numpy()) for t in tracks], 4)[::7])

    def loss(predictor):
        torch.manual_seed(1)  # the same masked objects for both
        return predictor.loss(batch, mask_slots=1).item()

    assert loss(model) < loss(untrained)

    dynamics = StateSlotDynamics(model, "cjepa")
    future = dynamics.continue_scene(tracks[0], PREDICTIVE_FRAMES)
    assert future.shape == (PREDICTIVE_FRAMES, objects, 2) and np.isfinite(future).all()
    without = dynamics.without(tracks[0], removed=0)
    assert without.shape == tracks[0].position.shape
    np.testing.assert_array_equal(without[: 3 * STRIDE + 1], tracks[0].position[: 3 * STRIDE + 1])  # the context is observed
    absent = model.rollout(torch.zeros(1, 4, 6, FEATURES), 3)
    assert (absent == 0).all()  # an absent slot stays absent

    out = tmp_path / "run"
    assert main(["--train", str(generated), "--test", str(generated), "--out", str(out), "--steps", "5", "--layers", "1", "--dim", "32"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert {"C-JEPA predictor on true states", "velocity extrapolation", "resimulation"} <= report.keys()
    assert set(report["rollout_error_m"]["model"]) == {"2_frames", "8_frames", "32_frames", "120_frames"}
    rescored = tmp_path / "rescored"
    assert main(["--train", str(generated), "--test", str(generated), "--out", str(rescored), "--model", str(out / "model.pt"),
                 "--layers", "1", "--dim", "32"]) == 0
    again = json.loads((rescored / "report.json").read_text())
    assert again["rollout_error_m"] == report["rollout_error_m"] and again["train_s"] is None


@pytest.mark.parametrize("arguments, message", [
    (["--mask-slots", "9"], "--mask-slots"),
    (["--lr", "nan"], "--lr"),
    (["--heads", "3"], "does not divide --dim"),
    (["--test", "nowhere"], "no questions.json"),
    (["--model", "missing.pt"], "--model"),
])
def test_cjepa_state_script_refuses_bad_input_in_one_line(generated, tmp_path, capsys, arguments, message):
    from baselines.cjepa.states import main

    defaults = {"--train": str(generated), "--test": str(generated), "--out": str(tmp_path / "run")}
    given = dict(zip(arguments[::2], arguments[1::2]))
    argv = [item for key, value in {**defaults, **given}.items() for item in (key, value)]
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's refusal
        code = stop.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_bounds_command_adds_the_trajectory_references_when_asked(generated, capsys):
    from wmbench.cli import main

    assert main(["clevrer", "bounds", "--generated", str(generated), "--trajectories"]) == 0
    printed = json.loads(capsys.readouterr().out)
    for reference in ("velocity_extrapolation", "resimulation"):
        assert printed[reference]["descriptive"] == {"per_option": 1.0, "per_question": 1.0}
        assert set(printed[reference]) == set(printed["ground_truth"])
    assert main(["clevrer", "bounds", "--generated", str(generated)]) == 0
    assert "resimulation" not in json.loads(capsys.readouterr().out)


def test_the_collision_reader_agrees_with_the_simulator_on_true_trajectories():
    from wmbench.eval.trajectory_answers import reader_agreement

    agreement = reader_agreement(seed=7, scenes=range(1000, 1005))
    # 40 scenes: 177 of 201 found, 12 extra; these five hold 22 collisions, 21 found and 1 extra
    assert agreement["found"] >= 0.8 * agreement["simulator_collisions"] > 0
    assert agreement["extra"] <= 0.2 * agreement["found"]
    assert 0 <= agreement["mean_frames_early"] <= 2


# ----------------------------------------------------------------------------------------------
# C-JEPA from pixels (baselines/cjepa/questions.py)

PIXEL_CONFIG = {
    "data": {"dataset": "wmbench/clevrer-passive-mini-v0", "resolution": 32, "history": 2, "predictions": 1, "frameskip": 2},
    "model": dict(channels=[8, 8], slots=4, slot_dim=8, slot_iterations=2, slot_hidden=16, decoder_channels=8, decoder_grid=4,
                  reconstruction_size=16, predictor_layers=1, predictor_heads=2, predictor_dim=16),
    "train": {"mask_slots": 1},
}


@pytest.fixture(scope="module")
def pixel_checkpoint(tmp_path_factory):
    """An untrained C-JEPA for CLEVRER's 4-d action, saved as training saves its checkpoint."""
    from baselines.cjepa import CJEPA

    torch.manual_seed(0)
    data = PIXEL_CONFIG["data"]
    model = CJEPA.from_config(PIXEL_CONFIG, dict(image_size=32, history=2, action_block=2, action_dim=4))
    path = tmp_path_factory.mktemp("cjepa-clevrer") / "checkpoint.pt"
    torch.save({"config": PIXEL_CONFIG, "model": model.state_dict(), "data": data}, path)
    return path


def test_the_pixel_reader_sees_the_generated_scene_as_the_env_draws_it(generated):
    import wmbench
    from baselines.cjepa.questions import grid_camera, scene_video
    from wmbench.data.clevrer_videos import scene_seed
    from wmbench.envs.clevrer.env import scene_state
    from wmbench.envs.clevrer.sampler import sample_scene

    video = scene_video(generated, 1, resolution=32)
    assert video.pixels.shape == (128, 3, 32, 32) and video.position.shape[0] == 128
    np.testing.assert_allclose(video.position[:, :, :2], ObjectTracks.from_annotation(annotation(generated, 1)).position, atol=1e-6)
    env = wmbench.make("clevrer", resolution=32).unwrapped
    observation, _ = env.reset(options={"state": scene_state(sample_scene(scene_seed(7, 1)))})
    np.testing.assert_array_equal(video.pixels[0], observation["pixels"].transpose(2, 0, 1))  # the frames a model trained on
    env.close()
    # an object's projected center lands on the object, not on the table
    big = scene_video(generated, 1, resolution=128)
    column, row = np.floor(grid_camera(128, 128).project(big.position[0])).astype(int).T
    inside = (column >= 0) & (column < 128) & (row >= 0) & (row < 128)
    table = np.median(big.pixels[0].reshape(3, -1), axis=1)
    differs = np.abs(big.pixels[0][:, row[inside], column[inside]].astype(int) - table[:, None]).sum(0) > 30
    assert inside.sum() >= 2 and differs.all()


def test_the_pixel_reader_matches_slots_probes_them_and_answers(generated, pixel_checkpoint):
    from baselines.cjepa.questions import PixelSlotDynamics, SlotReader, fill_forward, scene_video
    from baselines.cjepa.slots import load_trained
    from baselines.cjepa.states import load_tracks

    model, _ = load_trained(pixel_checkpoint)
    reader = SlotReader(model)
    videos = [scene_video(generated, index, 32) for index in (0, 1)]
    slots, matches = reader.slots_and_matches(videos[0])
    assert slots.shape == (128, 4, 8) and matches.shape == videos[0].position.shape[:2]
    for frame in matches:  # one slot per object in view; out of view: -1
        held = frame[frame >= 0]
        assert len(set(held.tolist())) == len(held) and ((frame >= -1) & (frame < 4)).all()
    fitted = reader.fit(videos)
    assert fitted["pairs"] > 100 and fitted["reading"] == min(("probe", "decoder"), key=lambda r: fitted[f"{r}_rmse_m"])
    scored = reader.score(videos)
    assert 0 < scored["matched_fraction"] <= 1 and np.isfinite(scored["probe_rmse_m"]) and 0 <= scored["decoder_unread_fraction"] <= 1
    assert np.isfinite(scored["decoder_rmse_m"]) or scored["decoder_unread_fraction"] == 1  # an untrained decoder may draw only table
    # the decoder's reading: slot 0 draws the table on the left half, slot 2 on the right half and a blue object at
    # columns 12-13, rows 2-3; slot 1 draws a red object at columns 4-5, rows 8-9; slot 3 draws nothing
    colors = torch.full((1, 4, 3, 16, 16), 0.2)
    colors[0, 1, :, 8:10, 4:6] = torch.tensor([1.0, -1, -1])[:, None, None]
    colors[0, 2, :, 2:4, 12:14] = torch.tensor([-1.0, -1, 1])[:, None, None]
    shares = torch.zeros(1, 4, 1, 16, 16)
    shares[0, 0, 0, :, :8], shares[0, 2, 0, :, 8:] = 1, 1
    shares[0, 0, 0, 8:10, 4:6], shares[0, 1, 0, 8:10, 4:6] = 0, 1
    reader.model.decoder.parts = lambda slots: (colors, shares)
    decoded = reader.decoded_positions(slots[:1])
    np.testing.assert_allclose(decoded[0, 1], reader.camera.ground_point([5.0, 9.0], 0.15)[:2])
    np.testing.assert_allclose(decoded[0, 2], reader.camera.ground_point([13.0, 3.0], 0.15)[:2])  # not pulled to its table
    assert np.isnan(decoded[0, [0, 3]]).all()  # only table, or nothing
    np.testing.assert_array_equal(fill_forward(np.array([[np.nan, 1.0], [2.0, 3.0], [np.nan, np.nan]])), [[np.nan, 1.0], [2.0, 3.0], [2.0, 3.0]])
    del reader.model.decoder.parts

    dynamics = PixelSlotDynamics(reader, generated, "cjepa from pixels")
    tracks = load_tracks(generated)
    objects = tracks[0].position.shape[1]
    future = dynamics.continue_scene(tracks[0], PREDICTIVE_FRAMES)
    assert future.shape == (PREDICTIVE_FRAMES, objects, 2) and np.isfinite(future).all()
    start = dynamics.context_end
    replayed = dynamics.without(tracks[0], removed=None)
    assert replayed.shape == tracks[0].position.shape
    np.testing.assert_array_equal(replayed[: start + 1], tracks[0].position[: start + 1])  # the context is observed
    seen = [o for o in range(objects) if matches[start, o] >= 0]
    removed = seen[0]
    others = [o for o in seen if o != removed]
    without = dynamics.without(tracks[0], removed=removed)
    assert not np.allclose(without[start + 1 :, others], replayed[start + 1 :, others])  # the slot left out changes the rest
    # a reading that is off by a constant 5 m moves nothing: each object stays where it was last seen
    reader.positions = lambda slots: np.full((*slots.shape[:2], 2), 5.0)
    held = [o for o in range(objects) if matches[-1, o] >= 0]
    still = dynamics.continue_scene(tracks[0], PREDICTIVE_FRAMES)
    np.testing.assert_allclose(still[:, held], np.broadcast_to(tracks[0].position[-1, held], still[:, held].shape))


def test_the_pixel_question_script_writes_its_report_and_refuses_bad_input(generated, pixel_checkpoint, tmp_path, capsys):
    from baselines.cjepa.questions import main

    out = tmp_path / "report.json"
    argv = [str(pixel_checkpoint), "--train", str(generated), "--test", str(generated), "--probe-videos", "1", "--videos", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {"C-JEPA from pixels", "velocity extrapolation", "reading_fit", "reading_test", "rollout_error_m"} <= report.keys()
    assert report["C-JEPA from pixels"]["by_type"]["descriptive"]["per_question"] == 1.0
    assert report["reading_test"]["probe_median_m"] > 0 and "median" in capsys.readouterr().out  # the typical error beside the RMSE
    for bad, message in ((["--test", str(tmp_path)], "no questions.json"), ([str(tmp_path / "none.pt")], "does not exist"),
                         (["--out", str(tmp_path)], "is a folder")):
        given = [*argv, "--out", str(tmp_path / "second.json")]
        if bad[0].startswith("--"):
            given[given.index(bad[0]) + 1] = bad[1]
        else:
            given[0] = bad[0]
        assert main(given) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "second.json").exists() and json.loads(out.read_text()) == report
