"""The checkpoint format: export and load round trips, the trusted-code routes, and every refusal."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import zipfile

import pytest
import torch
from safetensors.torch import save_file

import wmbench
from wmbench.checkpoint import MANIFEST, CheckpointError, export, load_model
from wmbench.eval.models import check_compatible
from wmbench.testing import TinyWorldModel, TinyWorldModelWithCost
from wmbench.world_model import ModelMeta, squared_l2_to_goal

HISTORY, HORIZON = 2, 5


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A model with its own cost, exported once (left in training mode to check export restores it)."""
    model = TinyWorldModelWithCost(history=HISTORY, seed=1).train()
    path = export(model, tmp_path_factory.mktemp("export") / "model.wmb", horizon=HORIZON)
    return model, path


@pytest.fixture(scope="module")
def exported_plain(tmp_path_factory):
    """A model without a cost and with one frame of history, at a shorter horizon."""
    model = TinyWorldModel(history=1, seed=2)
    return model, export(model, tmp_path_factory.mktemp("export") / "plain.wmb", horizon=3)


def inputs(model, batch, steps, seed=0, frames=None):
    generator = torch.Generator().manual_seed(seed)
    meta = model.meta
    frames = frames or meta.history
    pixels = torch.randint(0, 256, (batch, frames, 3, *meta.image_size), dtype=torch.uint8, generator=generator)
    actions = torch.randn(batch, meta.history + steps, meta.block_size, generator=generator)
    return pixels, actions


def assert_same(got, expected):
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 7, 300])
def test_loaded_model_reproduces_the_model(exported, batch):
    model, path = exported
    loaded = load_model(path)
    pixels, actions = inputs(model, batch, HORIZON, seed=batch)
    with torch.no_grad():
        latents = model.encode(pixels)
        assert_same(loaded.encode(pixels), latents)
        goal = model.encode(pixels[:, :1])[:, 0]
        assert_same(loaded.encode(pixels[:, :1])[:, 0], goal)  # the goal frame alone: frames are free
        for steps in (HORIZON, 3, 1):  # K < horizon is served by padding; the model is causal
            plan = actions[:, : HISTORY + steps]
            predicted = model.rollout(latents, plan)
            assert_same(loaded.rollout(latents, plan), predicted)
            assert_same(loaded.cost(predicted, goal), model.cost(predicted, goal))


def test_metadata_and_manifest_round_trip(exported):
    model, path = exported
    loaded = load_model(path)
    assert loaded.meta == model.meta
    assert (loaded.source, loaded.horizon, loaded.device, loaded.has_cost) == ("export", HORIZON, torch.device("cpu"), True)
    assert loaded.parameters_count == sum(p.numel() for p in model.parameters())
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.training, "export must leave the model's mode as it found it"
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read(MANIFEST))
        assert set(archive.namelist()) == {MANIFEST, "encode.pt2", "rollout.pt2", "cost.pt2"}
        for name, digest in manifest["sha256"].items():
            assert hashlib.sha256(archive.read(name)).hexdigest() == digest
    assert manifest["format_version"] == 1 and manifest["rollout_horizon"] == HORIZON
    assert (manifest["torch_version"], manifest["wmbench_version"]) == (torch.__version__, wmbench.__version__)
    assert ModelMeta.from_dict(manifest["meta"]) == model.meta


def test_any_file_name_loads(exported, tmp_path):
    _, path = exported
    renamed = tmp_path / "ckpt.pt"
    shutil.copy(path, renamed)
    assert load_model(renamed).sha256 == load_model(path).sha256


def test_model_without_cost_gets_the_default_cost(exported_plain):
    model, path = exported_plain
    loaded = load_model(path)
    assert not loaded.has_cost and loaded.horizon == 3 and loaded.encode_frames == 1
    pixels, actions = inputs(model, 4, 2)
    with torch.no_grad():
        latents = loaded.encode(pixels)
        predicted = loaded.rollout(latents, actions)
        assert_same(predicted, model.rollout(model.encode(pixels), actions))
    assert_same(loaded.cost(predicted, latents[:, 0]), squared_l2_to_goal(predicted, latents[:, 0]))


class FrameByFrameModel(TinyWorldModel):
    """Encodes one frame at a time in a Python loop, which torch.export unrolls: the export fixes the frame count."""

    def encode(self, pixels):
        encode = super().encode
        return torch.stack([encode(frame[:, None])[:, 0] for frame in pixels.unbind(1)], dim=1)


def test_encoder_exported_for_fixed_frames_takes_any_number(tmp_path):
    model = FrameByFrameModel(history=3, seed=6)
    loaded = load_model(export(model, tmp_path / "model.wmb", horizon=2))
    assert loaded.encode_frames == 3
    pixels, _ = inputs(model, 2, 1, frames=6)
    with torch.no_grad():
        in_full_chunks = torch.cat([model.encode(pixels[:, :3]), model.encode(pixels[:, 3:])], dim=1)
        for frames in (1, 3, 5):  # one padded chunk, one full chunk, a full chunk and a padded one
            assert_same(loaded.encode(pixels[:, :frames]), in_full_chunks[:, :frames])


def test_loads_onto_another_device(exported):
    """The device path (torch's move_to_device_pass) on the meta device: shapes only, no GPU needed."""
    model, path = exported
    loaded = load_model(path, device="meta")
    pixels, actions = inputs(model, 4, 3)
    latents = loaded.encode(pixels)  # CPU inputs are moved to the model's device
    predicted = loaded.rollout(latents, actions)
    assert latents.device.type == predicted.device.type == "meta"
    assert predicted.shape == (4, 3, *model.meta.latent_shape)
    assert loaded.cost(predicted, latents[:, -1]).shape == (4,)


def test_gradients_reach_the_actions_not_the_weights(exported):
    model, path = exported
    loaded = load_model(path)
    pixels, actions = inputs(model, 3, HORIZON)
    actions.requires_grad_(True)
    latents = loaded.encode(pixels)
    loaded.cost(loaded.rollout(latents, actions), latents[:, -1]).sum().backward()
    assert actions.grad is not None and actions.grad[:, HISTORY - 1 :].abs().sum() > 0


def test_bad_calls_are_refused_clearly(exported):
    model, path = exported
    loaded = load_model(path)
    pixels, actions = inputs(model, 2, HORIZON + 1)
    latents = loaded.encode(pixels)
    with pytest.raises(CheckpointError, match="horizon of 5 model steps; 6 were asked"):
        loaded.rollout(latents, actions)
    with pytest.raises(ValueError, match=r"uint8 pixels \[B, T, 3, 32, 32\]"):
        loaded.encode(pixels.float())
    with pytest.raises(ValueError, match=r"latents \[B, 2, \.\.\.\]"):
        loaded.rollout(latents[:, :1], actions)


# --- export errors -----------------------------------------------------------------------------


class DataDependentModel(TinyWorldModel):
    def rollout(self, latents, actions):
        if actions.abs().max() > 100:  # a branch on tensor values cannot be exported
            return latents[:, -1:]
        return super().rollout(latents, actions)


class NonCausalModel(TinyWorldModel):
    def rollout(self, latents, actions):
        return super().rollout(latents, actions) + actions.mean(dim=(1, 2))[:, None, None]


def test_export_errors_name_the_problem(tmp_path):
    target = tmp_path / "model.wmb"
    with pytest.raises(CheckpointError, match="needs a torch.nn.Module"):
        export(object(), target)
    no_meta = TinyWorldModel()
    no_meta.meta = None
    with pytest.raises(CheckpointError, match="model.meta must be a wmbench.world_model.ModelMeta"):
        export(no_meta, target)
    wrong_latent = TinyWorldModel()
    wrong_latent.meta = ModelMeta(image_size=(32, 32), history=1, action_block=5, action_dim=2, latent_shape=(8,))
    with pytest.raises(CheckpointError, match=r"model.encode returned \[2, 1, 16\].*\[2, 1, 8\]"):
        export(wrong_latent, target)
    with pytest.raises(CheckpointError, match="could not export model.rollout: .*data-dependent"):
        export(DataDependentModel(), target, horizon=2)
    with pytest.raises(CheckpointError, match="rollout at K=1 .* not causal"):
        export(NonCausalModel(), target, horizon=2)
    assert not target.exists() and list(tmp_path.iterdir()) == []  # nothing half-written is left


# --- damaged and hostile files -----------------------------------------------------------------


def members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_checkpoint(path, contents, fix_sha256=True):
    """Write a checkpoint from members, re-signing the manifest as an attacker could."""
    contents = dict(contents)
    if fix_sha256:
        manifest = json.loads(contents[MANIFEST])
        manifest["sha256"] = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items() if name != MANIFEST}
        contents[MANIFEST] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return path


def edit_program(program, replace):
    """A torch.export archive with members replaced (bytes), added, or removed (None)."""
    with zipfile.ZipFile(io.BytesIO(program)) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    contents.update(replace)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in contents.items():
            if data is not None:
                archive.writestr(name, data)
    return buffer.getvalue()


class CreatesFile:
    """Unpickling this opens (creates) a file: any pickle that runs it has executed code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def hostile_pickle(marker):
    buffer = io.BytesIO()
    torch.save((CreatesFile(marker),), buffer)
    return buffer.getvalue()


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nope.wmb")
    with pytest.raises(CheckpointError, match="is a directory"):
        load_model(tmp_path)


def test_truncated_file(exported, tmp_path):
    data = exported[1].read_bytes()
    truncated = tmp_path / "model.wmb"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted.*export it again"):
        load_model(truncated)


def test_flipped_bytes_inside_a_member(exported, tmp_path):
    data = bytearray(exported[1].read_bytes())
    with zipfile.ZipFile(exported[1]) as archive:
        info = archive.getinfo("rollout.pt2")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # the member's bytes
    middle = start + info.compress_size // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    corrupted = tmp_path / "model.wmb"
    corrupted.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="truncated or corrupted.*(CRC|rollout.pt2)"):
        load_model(corrupted)


def test_member_that_does_not_match_its_sha256(exported, tmp_path):
    contents = members(exported[1])
    contents["encode.pt2"], contents["rollout.pt2"] = contents["rollout.pt2"], contents["encode.pt2"]
    with pytest.raises(CheckpointError, match="encode.pt2 does not match its sha256"):
        load_model(write_checkpoint(tmp_path / "model.wmb", contents, fix_sha256=False))


def test_newer_format_is_refused(exported, tmp_path):
    contents = members(exported[1])
    manifest = json.loads(contents[MANIFEST])
    manifest["format_version"] = 2
    contents[MANIFEST] = json.dumps(manifest).encode()
    with pytest.raises(CheckpointError, match="format version 2; this wmbench reads version 1"):
        load_model(write_checkpoint(tmp_path / "model.wmb", contents))


def test_hostile_pickle_in_a_program_is_refused_without_running_it(exported, tmp_path):
    contents = members(exported[1])
    marker = tmp_path / "pwned"
    sample_inputs = "archive/data/sample_inputs/model.pt"
    hostile = edit_program(contents["encode.pt2"], {sample_inputs: hostile_pickle(marker)})
    contents["encode.pt2"] = hostile
    with pytest.raises(CheckpointError, match="holds a pickle that needs code to load"):
        load_model(write_checkpoint(tmp_path / "model.wmb", contents))
    assert not marker.exists()
    # The control: torch.export.load alone falls back to weights_only=False and runs it.
    control = tmp_path / "control"
    hostile_control = edit_program(hostile, {sample_inputs: hostile_pickle(control)})
    try:
        torch.export.load(io.BytesIO(hostile_control))
    except Exception:
        pass
    assert control.exists()


def program_json_edit(edit):
    def apply(program):
        with zipfile.ZipFile(io.BytesIO(program)) as archive:
            document = json.loads(archive.read("archive/models/model.json"))
        edit(document)
        return edit_program(program, {"archive/models/model.json": json.dumps(document).encode()})

    return apply


def set_first_target(document, target):
    document["graph_module"]["graph"]["nodes"][0]["target"] = target


def set_first_expression(document, expression):
    tensors = document["graph_module"]["graph"]["tensor_values"].values()
    next(t for t in tensors if "as_expr" in t["sizes"][0])["sizes"][0]["as_expr"]["expr_str"] = expression


def pickled_weight(program):
    """Mark the first weight as pickled (torch then loads it with weights_only=False) and make it hostile."""
    config_name = "archive/data/weights/model_weights_config.json"
    with zipfile.ZipFile(io.BytesIO(program)) as archive:
        config = json.loads(archive.read(config_name))
    entry = next(iter(config["config"].values()))
    entry["use_pickle"] = True
    weight = "archive/data/weights/" + entry["path_name"]
    hostile = hostile_pickle("/nonexistent-wmbench-dir/pwned")  # refused before torch could run it
    return edit_program(program, {config_name: json.dumps(config).encode(), weight: hostile})


def set_first_parameter_name(document, name):
    document["graph_module"]["signature"]["input_specs"][0]["parameter"]["parameter_name"] = name


HOSTILE_PROGRAMS = {
    # graph operators are looked up by attribute on torch: torch.os.system resolves
    "operator outside ATen": (program_json_edit(lambda d: set_first_target(d, "torch.os.system")), "torch.os.system, which is not on wmbench.s list"),
    # shape expressions go through sympy's eval
    "code in a shape expression": (program_json_edit(lambda d: set_first_expression(d, "exec(bytes([112]))")), "outside the sympy grammar"),
    # shape guards are compiled into the loaded module's Python code
    "code in a guard": (
        program_json_edit(lambda d: d.__setitem__("guards_code", ["__import__('os').system('true')"])),
        "outside the guard grammar",
    ),
    # names end up in generated Python code
    "quote in a name": (program_json_edit(lambda d: set_first_parameter_name(d, 'x"); exec("1')), "not a plain name"),
    # zipfile reads past prepended bytes; torch's reader might not read the same members
    "bytes before the first member": (lambda p: bytes(64) + p, "is not laid out as torch writes a zip"),
    "pickled weight": (pickled_weight, "holds a pickle that needs code to load .*it calls"),
    "extra member": (lambda p: edit_program(p, {"archive/extra/notes.txt": b"hi"}), "does not write for a plain program"),
    "legacy weights pickle": (lambda p: edit_program(p, {"archive/data/weights/model.pt": b"\x80\x04."}), "does not write for a plain program"),
}


@pytest.mark.parametrize("case", HOSTILE_PROGRAMS)
def test_program_that_could_run_code_is_refused(exported, tmp_path, case):
    edit, message = HOSTILE_PROGRAMS[case]
    contents = members(exported[1])
    contents["rollout.pt2"] = edit(contents["rollout.pt2"])
    with pytest.raises(CheckpointError, match=message):
        load_model(write_checkpoint(tmp_path / "model.wmb", contents))


# --- trusted-code routes -----------------------------------------------------------------------


def test_plain_pickle_needs_trust(tmp_path):
    marker = tmp_path / "pwned"
    for path, write in (
        (tmp_path / "ckpt.pt", lambda path: torch.save(CreatesFile(marker), path)),
        (tmp_path / "legacy.pkl", lambda path: path.write_bytes(pickle.dumps(CreatesFile(marker)))),
    ):
        write(path)
        with pytest.raises(CheckpointError, match=r"plain torch pickle.*wmbench export.*--trust-code"):
            load_model(path)
    assert not marker.exists()


def test_plain_pickle_loads_with_trust(tmp_path):
    model = TinyWorldModel(seed=4)
    torch.save(model, tmp_path / "ckpt.pt")
    loaded = load_model(tmp_path / "ckpt.pt", trust_code=True)
    assert (loaded.source, loaded.horizon, loaded.meta) == ("trusted-code", None, model.meta)
    pixels, actions = inputs(model, 2, 8)  # any horizon: the model's own code runs
    with torch.no_grad():
        assert_same(loaded.rollout(loaded.encode(pixels), actions), model.rollout(model.encode(pixels), actions))


def write_spec(tmp_path, factory="wmbench.testing:TinyWorldModel", config=None, weights_model=None):
    weights_model = weights_model or TinyWorldModel(seed=5)
    save_file(weights_model.state_dict(), tmp_path / "model.safetensors")
    spec = {"factory": factory, "config": config or {"seed": 0}, "weights": "model.safetensors"}
    (tmp_path / "model.json").write_text(json.dumps(spec))
    return tmp_path / "model.json"


def test_research_spec_needs_trust(tmp_path):
    with pytest.raises(CheckpointError, match="research-code spec.*--trust-code"):
        load_model(write_spec(tmp_path))


def test_research_spec_loads_with_trust_and_exports(tmp_path):
    trained = TinyWorldModel(image_size=(24, 40), seed=5)
    spec = write_spec(tmp_path, config={"image_size": [24, 40]}, weights_model=trained)
    loaded = load_model(spec, trust_code=True)
    assert loaded.source == "trusted-code" and loaded.meta == trained.meta and isinstance(loaded.module, TinyWorldModel)
    expected = hashlib.sha256(spec.read_bytes() + (tmp_path / "model.safetensors").read_bytes()).hexdigest()
    assert loaded.sha256 == expected
    pixels, actions = inputs(trained, 3, 2)
    with torch.no_grad():  # the spec's weights replaced the factory's seed-0 ones
        expected = trained.rollout(trained.encode(pixels), actions)
        assert_same(loaded.rollout(loaded.encode(pixels), actions), expected)
        # what `wmbench export` does: the research model becomes a file that loads without its code
        exported = load_model(export(loaded.module, tmp_path / "model.wmb", horizon=2))
        assert_same(exported.rollout(exported.encode(pixels), actions), expected)


def test_research_spec_errors(tmp_path):
    with pytest.raises(CheckpointError, match="cannot import the factory's module 'no_such_package.models'"):
        load_model(write_spec(tmp_path, factory="no_such_package.models:build"), trust_code=True)
    with pytest.raises(CheckpointError, match="has no 'Missing'"):
        load_model(write_spec(tmp_path, factory="wmbench.testing:Missing"), trust_code=True)
    with pytest.raises(CheckpointError, match="do not fit the model"):
        load_model(write_spec(tmp_path, config={"latent_dim": 8}), trust_code=True)


# --- compatibility with an env -----------------------------------------------------------------


def test_check_compatible():
    env = wmbench.make("pusht", resolution=64)
    check_compatible(TinyWorldModel(action_dim=2).meta, env)
    with pytest.raises(CheckpointError, match=r"takes 3-dimensional actions but wmbench/PushT-v0 has 2 \(it was trained on cube\)"):
        check_compatible(TinyWorldModel(action_dim=3, env="cube").meta, env)
    with pytest.raises(CheckpointError, match="4x4 frames"):
        check_compatible(TinyWorldModel(image_size=4).meta, env)
    env.close()
