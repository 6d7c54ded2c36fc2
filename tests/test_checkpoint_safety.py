"""A checkpoint cannot act: side-effecting programs, zip bombs and lying manifests are refused
before anything runs, and the operator allowlist covers every model the project ships or shows."""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines.cjepa import CJEPA
from baselines.lewm import LeWM
from baselines.pldm import PLDM
from baselines.training import tomllib
from wmbench.checkpoint import MANIFEST, CheckpointError, export, load_model
from wmbench.checkpoint.bounded_zip import read_members
from wmbench.checkpoint.operators import ATEN, HIGHER_ORDER, refused_call
from wmbench.testing import TinyWorldModel, TinyWorldModelWithCost
from wmbench.world_model import ModelMeta

ROOT = Path(__file__).parents[1]
HISTORY, HORIZON = 2, 5


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny model with its own cost: latents [16], frames 32x32, action blocks of 10 numbers."""
    return export(TinyWorldModelWithCost(history=HISTORY, seed=1), tmp_path_factory.mktemp("export") / "model.wmb", horizon=HORIZON)


def members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_checkpoint(path, contents, compression=zipfile.ZIP_STORED):
    """A checkpoint of these members, with the manifest's digests re-signed as an attacker could."""
    manifest = json.loads(contents[MANIFEST])
    manifest["sha256"] = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items() if name != MANIFEST}
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest))
        for name, data in contents.items():
            if name != MANIFEST:
                archive.writestr(name, data)
    return path


def program_members(program):
    with zipfile.ZipFile(io.BytesIO(program)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def program_archive(contents, compression=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def edit_program_json(program, edit):
    contents = program_members(program)
    document = json.loads(contents["archive/models/model.json"])
    edit(document)
    contents["archive/models/model.json"] = json.dumps(document).encode()
    return program_archive(contents)


def refused_before_torch_reads(path, monkeypatch):
    """The CheckpointError load_model raises, asserting torch never read a program and the message is one line."""

    def read(*args, **kwargs):
        raise AssertionError("torch.export.load was called on a checkpoint that should have been refused")

    monkeypatch.setattr(torch.export, "load", read)
    with pytest.raises(CheckpointError) as refusal:
        load_model(path)
    assert "\n" not in str(refusal.value)
    return str(refusal.value)


# --- the operator allowlist --------------------------------------------------------------------


class MultiheadAttentionModel(nn.Module):
    """Patch tokens through nn.TransformerEncoder; a predictor with nn.MultiheadAttention under a causal mask."""

    def __init__(self, dim=32):
        super().__init__()
        self.meta = ModelMeta(image_size=(32, 32), history=3, action_block=5, action_dim=2, latent_shape=(dim,))
        self.patches = nn.Conv2d(3, dim, 8, stride=8)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(dim, 4, 64, dropout=0.1, batch_first=True), 2)
        self.action = nn.Linear(10, dim)
        self.attention = nn.MultiheadAttention(dim, 4, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def encode(self, pixels):
        batch, frames = pixels.shape[:2]
        tokens = self.patches(pixels.flatten(0, 1).float() / 255).flatten(2).transpose(1, 2)
        return self.encoder(tokens).mean(1).unflatten(0, (batch, frames))

    def attend(self, x):
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.attention(x, x, x, attn_mask=mask, need_weights=False)[0]

    def rollout(self, latents, actions):
        window, frames, predicted = latents, latents.shape[1], []
        for k in range(actions.shape[1] - frames):
            x = window + self.action(actions[:, k : k + frames])
            following = self.norm(x + self.attend(x))[:, -1:]
            predicted.append(following)
            window = torch.cat([window[:, 1:], following], dim=1)
        return torch.cat(predicted, dim=1)


class AttentionModel(MultiheadAttentionModel):
    """The same with F.scaled_dot_product_attention, and a cost of its own."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(32, 96)

    def attend(self, x):
        q, k, v = self.qkv(x).unflatten(-1, (3, 4, 8)).permute(2, 0, 3, 1, 4)
        return F.silu(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).flatten(2))

    def cost(self, predicted, goal):
        return (predicted[:, -1] - goal).pow(2).sum(-1) + F.smooth_l1_loss(predicted, goal[:, None].expand_as(predicted), reduction="none").mean((1, 2))


class ConvModel(nn.Module):
    """A CNN with batch, group and instance norms, pooling, in-place ReLU and ``+=``; latents [16, 4, 4]."""

    def __init__(self):
        super().__init__()
        self.meta = ModelMeta(image_size=(64, 64), history=2, action_block=5, action_dim=2, latent_shape=(16, 4, 4))
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.GroupNorm(4, 32), nn.LeakyReLU(0.1), nn.AvgPool2d(2),
            nn.Conv2d(32, 16, 3, padding=1), nn.InstanceNorm2d(16), nn.ELU(), nn.AdaptiveAvgPool2d(4), nn.Tanh(),
        )
        self.predictor = nn.Sequential(
            nn.Conv2d(26, 32, 3, padding=1), nn.BatchNorm2d(32), nn.Mish(), nn.Dropout2d(0.1), nn.Conv2d(32, 16, 3, padding=1),
            nn.Sigmoid(), nn.Upsample(size=(4, 4)),
        )

    def encode(self, pixels):
        batch, frames = pixels.shape[:2]
        return self.encoder(pixels.flatten(0, 1).float() / 255).unflatten(0, (batch, frames))

    def rollout(self, latents, actions):
        latent, history, predicted = latents[:, -1], latents.shape[1], []
        for k in range(actions.shape[1] - history):
            block = actions[:, history - 1 + k, :, None, None].expand(-1, -1, 4, 4)
            step = self.predictor(torch.cat([latent, block], dim=1))
            step += latent
            latent = step
            predicted.append(latent)
        return torch.stack(predicted, dim=1)


def baseline(model_class, config_name):
    config = tomllib.loads((ROOT / "baselines" / model_class.__name__.lower() / "configs" / f"{config_name}.toml").read_text())
    data = config["data"]
    facts = dict(image_size=data["resolution"], history=data["history"], action_block=data["frameskip"], action_dim=2)
    return model_class.from_config(config, facts)


REFERENCE_MODELS = {  # name -> (model, rollout horizon to export, an operator that shows its architecture was measured)
    "lewm-cpu": (lambda: baseline(LeWM, "cpu"), 2, "aten.scaled_dot_product_attention.default"),
    "lewm-paper": (lambda: baseline(LeWM, "paper"), 1, "aten.scaled_dot_product_attention.default"),
    "pldm-cpu": (lambda: baseline(PLDM, "cpu"), 2, "aten.group_norm.default"),
    "cjepa-cpu": (lambda: baseline(CJEPA, "cpu"), 2, "aten.amin.default"),  # its slot-order-free cost
    "tiny": (lambda: TinyWorldModel(history=2), 2, "aten.conv2d.default"),
    "tiny-with-cost": (lambda: TinyWorldModelWithCost(history=2), 2, "aten.pow.Tensor_Scalar"),
    "multihead-attention": (MultiheadAttentionModel, 2, "aten.triu.default"),
    "scaled-dot-product-attention": (AttentionModel, 2, "aten.smooth_l1_loss.default"),
    # nn.ReLU(inplace=True) and += come out of place, BatchNorm as its inference form
    "cnn": (ConvModel, 2, "aten._native_batch_norm_legit_no_training.default"),
}


def calls(path):
    """Every operator call (a node of the program's JSON) in the programs of a checkpoint, in subgraphs too."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            if "target" in value:
                found.append(value)
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for name, program in members(path).items():
        if name != MANIFEST:
            walk(json.loads(program_members(program)["archive/models/model.json"]))
    return found


def allowed_operators(path):
    """The operators the checkpoint's programs call, asserting that every call is allowed."""
    found = calls(path)
    assert found and [refused_call(call["target"], call.get("inputs")) for call in found] == [None] * len(found)
    return {call["target"].removeprefix("torch.ops.") for call in found}


@pytest.mark.parametrize("name", REFERENCE_MODELS)
def test_every_operator_the_reference_models_export_to_is_allowed(tmp_path, name):
    """export loads the file it wrote back through every check, so that it exports at all is the test."""
    build, horizon, characteristic = REFERENCE_MODELS[name]
    operators = allowed_operators(export(build(), tmp_path / "model.wmb", horizon=horizon))
    assert characteristic in operators and not any(operator.endswith("_.default") for operator in operators), operators


def test_the_readme_example_exports_to_allowed_operators(tmp_path, monkeypatch):
    [code] = re.findall(r"<!-- example: world-model -->\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md example", "exec"), {"__name__": "readme_example"})
    assert "aten.avg_pool2d.default" in allowed_operators(tmp_path / "my-model.wmb")


@pytest.mark.parametrize(("checkpoint", "characteristic"), [("lewm/checkpoints/pusht-cpu.wmb", "aten.dropout.default"),  # switched off
                                                             ("pldm/checkpoints/pusht-cpu.wmb", "aten.group_norm.default")])
def test_the_shipped_checkpoints_call_only_allowed_operators(checkpoint, characteristic):
    assert characteristic in allowed_operators(ROOT / "baselines" / checkpoint)


def test_the_allowlist_names_only_operators_that_exist_and_take_no_storage_or_generator():
    for name in ATEN:
        packet = getattr(torch.ops.aten, name)
        schemas = [getattr(packet, overload)._schema for overload in packet.overloads()]
        assert any(not schema.is_mutable for schema in schemas), name
        for schema in schemas:
            assert not any(word in str(argument.type) for argument in schema.arguments for word in ("Storage", "Generator")), schema
    for name in HIGHER_ORDER:
        assert isinstance(getattr(torch.ops.higher_order, name), torch._ops.HigherOrderOperator)
    for unsafe in ("from_file", "_print", "empty", "empty_like", "rand", "randn", "randn_like", "bernoulli", "normal", "multinomial", "as_strided"):
        assert unsafe not in ATEN


# --- a program that acts -----------------------------------------------------------------------

PAYLOAD = b"raise SystemExit('code from a checkpoint ran')\n"


class WritesAFile(nn.Module):
    """A rollout that also copies chosen bytes into a tensor; torch.zeros stands in for
    torch.from_file(path, shared=True), which torch.export cannot trace, until the JSON is edited."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, latents, actions):
        mapped = torch.zeros(len(PAYLOAD), dtype=torch.uint8)
        mapped.copy_(torch.tensor(list(PAYLOAD), dtype=torch.uint8))
        return self.model.rollout(latents, actions) + 0 * mapped.sum()


def file_writing_program(model, target):
    """The rollout of ``model`` as the issue describes the attack: a file-backed tensor that a copy writes."""
    latents, actions = torch.randn(2, model.meta.history, 16), torch.randn(2, model.meta.history + HORIZON, 10)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    program = torch.export.export(WritesAFile(model), (latents, actions), dynamic_shapes=({0: batch}, {0: batch}))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)

    def map_the_file(document):
        node = next(node for node in document["graph_module"]["graph"]["nodes"] if node["target"] == "torch.ops.aten.zeros.default")
        node["target"] = "torch.ops.aten.from_file.default"
        node["inputs"] = [
            {"name": "filename", "arg": {"as_string": str(target)}, "kind": 1},
            {"name": "shared", "arg": {"as_bool": True}, "kind": 1},
            {"name": "size", "arg": {"as_int": len(PAYLOAD)}, "kind": 1},
            {"name": "dtype", "arg": {"as_scalar_type": 1}, "kind": 2},
        ]

    return edit_program_json(buffer.getvalue(), map_the_file), (latents, actions)


def test_a_program_that_writes_a_file_is_refused_before_anything_runs(checkpoint, tmp_path, monkeypatch):
    model = TinyWorldModelWithCost(history=HISTORY, seed=1)
    # the control: torch alone runs the program, and the call writes the file
    control = tmp_path / "control.py"
    program, inputs = file_writing_program(model, control)
    torch.export.load(io.BytesIO(program)).module()(*inputs)
    assert control.read_bytes() == PAYLOAD

    target = tmp_path / "conftest.py"
    contents = members(checkpoint)
    contents["rollout.pt2"], _ = file_writing_program(model, target)
    message = refused_before_torch_reads(write_checkpoint(tmp_path / "model.wmb", contents), monkeypatch)
    assert re.search(r"rollout.pt2 calls aten.from_file.default, which is not on wmbench's list of pure tensor operators.*"
                     r"export a model whose methods use only tensor operators.*wmbench/checkpoint/operators.py", message)
    assert not target.exists()


def first_call(document, target):
    return next(node for node in document["graph_module"]["graph"]["nodes"] if node["target"] == target)


def call_instead_of_gelu(target, *arguments):
    def edit(document):
        node = first_call(document, "torch.ops.aten.gelu.default")
        node["target"] = target
        node["inputs"] = [node["inputs"][0], *({"name": name, "arg": arg, "kind": 1} for name, arg in arguments)]

    return edit


def retarget(old, new):
    return lambda document: first_call(document, old).__setitem__("target", new)


def empty_weight_of_huge_size(program):
    contents = program_members(program)
    config_name = "archive/data/weights/model_weights_config.json"
    config = json.loads(contents[config_name])
    entry = next(iter(config["config"].values()))
    entry["tensor_meta"]["sizes"] = [{"as_int": 100_000}, {"as_int": 100_000}]
    contents[config_name] = json.dumps(config).encode()
    contents["archive/data/weights/" + entry["path_name"]] = b""
    return program_archive(contents)


def json_edit(edit):
    return lambda program: edit_program_json(program, edit)


ACTING_PROGRAMS = {
    "in-place overload": (json_edit(retarget("torch.ops.aten.add.Tensor", "torch.ops.aten.add_.Tensor")), "aten.add_.Tensor, the in-place form of aten.add"),
    "out= overload": (json_edit(retarget("torch.ops.aten.add.Tensor", "torch.ops.aten.add.out")), "aten.add.out, which writes into its argument out"),
    "printing": (json_edit(retarget("torch.ops.aten.gelu.default", "torch.ops.aten._print.default")), "aten._print.default, which is not on"),
    "random numbers": (json_edit(retarget("torch.ops.aten.gelu.default", "torch.ops.aten.randn_like.default")), "aten.randn_like.default, which is not on"),
    "dropout switched on": (
        json_edit(call_instead_of_gelu("torch.ops.aten.dropout.default", ("p", {"as_float": 0.5}), ("train", {"as_bool": True}))),
        "aten.dropout.default with train other than False, which draws random numbers",
    ),
    "batch norm updating its statistics": (
        json_edit(call_instead_of_gelu(
            "torch.ops.aten.batch_norm.default", ("weight", {"as_none": True}), ("bias", {"as_none": True}),
            ("running_mean", {"as_tensor": {"name": "p_model_predictor_0_bias"}}), ("running_var", {"as_tensor": {"name": "p_model_predictor_0_bias"}}),
            ("training", {"as_bool": True}), ("momentum", {"as_float": 0.1}), ("eps", {"as_float": 1e-5}), ("cudnn_enabled", {"as_bool": False}),
        )),
        "training=True and running statistics, which it updates in place",
    ),
    "a path for a string option": (
        json_edit(lambda d: first_call(d, "torch.ops.aten.gelu.default")["inputs"].append({"name": "approximate", "arg": {"as_string": "/tmp/x"}, "kind": 2})),
        "the string '/tmp/x' for approximate, which is not one of its plain options",
    ),
    "higher-order operator off the list": (json_edit(retarget("torch.ops.aten.gelu.default", "torch.ops.higher_order.cond")), "higher_order.cond, which is not on"),
    "operator as an argument": (
        json_edit(lambda d: first_call(d, "torch.ops.aten.gelu.default")["inputs"].append({"name": "x", "arg": {"as_operator": "torch.ops.aten._print.default"}})),
        "passes the operator 'torch.ops.aten._print.default' as an argument",
    ),
    "writing into its input": (
        json_edit(lambda d: d["graph_module"]["signature"]["output_specs"].append(
            {"user_input_mutation": {"arg": {"name": "stack"}, "user_input_name": "latents"}}
        )),
        "has a user_input_mutation entry in its signature: it would change its weights or inputs",
    ),
    "an empty payload of huge size": (empty_weight_of_huge_size, "an empty payload but sizes that are not empty"),
}


@pytest.mark.parametrize("case", ACTING_PROGRAMS)
def test_a_program_that_could_act_is_refused_before_torch_reads_it(checkpoint, tmp_path, monkeypatch, case):
    edit, message = ACTING_PROGRAMS[case]
    contents = members(checkpoint)
    contents["rollout.pt2"] = edit(contents["rollout.pt2"])
    assert message in refused_before_torch_reads(write_checkpoint(tmp_path / "model.wmb", contents), monkeypatch)


# --- bounded archive reading -------------------------------------------------------------------

BOMB_BYTES = 1 << 30

MEASURE_LOAD = """
import json, resource, sys, time
from wmbench.checkpoint import CheckpointError, load_model
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    load_model(sys.argv[1])
    message = None
except CheckpointError as error:
    message = str(error)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"message": message, "seconds": seconds, "peak_mib": peak / 1024, "growth_mib": (peak - before) / 1024}))
"""


def measured_load(path):
    """load_model in a fresh process: its message, seconds, peak memory and the peak's growth during the load."""
    result = subprocess.run([sys.executable, "-c", MEASURE_LOAD, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def zip_bomb(checkpoint, tmp_path_factory):
    """A checkpoint of about 1 MB whose rollout.pt2 is 1 GiB of deflated zeros."""
    path = tmp_path_factory.mktemp("bomb") / "model.wmb"
    contents = members(checkpoint)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr(MANIFEST, contents[MANIFEST])
        archive.writestr("encode.pt2", contents["encode.pt2"])
        with archive.open("rollout.pt2", "w") as member:
            zeros = bytes(1 << 20)
            for _ in range(BOMB_BYTES >> 20):
                member.write(zeros)
    return path


def test_a_zip_bomb_is_refused_before_it_is_decompressed(zip_bomb):
    assert zip_bomb.stat().st_size < 2 << 20
    with zipfile.ZipFile(zip_bomb) as archive:
        assert archive.getinfo("rollout.pt2").file_size == BOMB_BYTES
    measured = measured_load(zip_bomb)
    assert re.search(r"declares rollout.pt2 as \d+ times its compressed size, more than the 20 allowed; it was refused before", measured["message"])
    # the refusal allocates nothing: the peak is the interpreter with torch imported (about 300 MiB)
    assert measured["peak_mib"] < 1024 and measured["growth_mib"] < 64, measured
    assert measured["seconds"] < 5, measured


def declare_size(data, name, size):
    """The zip ``data`` with ``name``'s unpacked size rewritten in its local header and the directory."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info, entry = archive.getinfo(name), archive.start_dir
    data = bytearray(data)
    struct.pack_into("<I", data, info.header_offset + 22, size)
    while data[entry + 46 : entry + 46 + len(name)] != name.encode():  # the directory entries, one after another
        entry += 46 + sum(struct.unpack_from("<HHH", data, entry + 28))
    struct.pack_into("<I", data, entry + 24, size)
    return bytes(data)


def test_a_member_larger_than_it_declares_is_cut_off_and_refused(checkpoint, tmp_path):
    contents = members(checkpoint)
    contents["rollout.pt2"] = bytes(64 << 20)  # deflates to about 64 kB
    path = write_checkpoint(tmp_path / "model.wmb", contents, zipfile.ZIP_DEFLATED)
    path.write_bytes(declare_size(path.read_bytes(), "rollout.pt2", 1 << 20))  # within the ratio: 1 MiB from 64 kB
    measured = measured_load(path)
    assert re.search(r"truncated or corrupted \(Bad CRC-32 for file 'rollout.pt2'\)", measured["message"])
    assert measured["growth_mib"] < 64, measured


def test_a_manifest_over_its_limit_is_refused(checkpoint, tmp_path, monkeypatch):
    contents = members(checkpoint)
    manifest = json.loads(contents[MANIFEST])
    manifest["meta"]["extra"]["padding"] = "x" * (2 << 20)
    contents[MANIFEST] = json.dumps(manifest).encode()
    message = refused_before_torch_reads(write_checkpoint(tmp_path / "model.wmb", contents), monkeypatch)
    assert "declares wmbench.json as 2.0 MiB unpacked, more than the 1.0 MiB allowed" in message


def test_a_program_with_a_compressed_member_is_refused(checkpoint, tmp_path, monkeypatch):
    """torch.export.save stores its members; a deflated one inside a program could hide a bomb."""
    contents = members(checkpoint)
    contents["rollout.pt2"] = program_archive(program_members(contents["rollout.pt2"]), zipfile.ZIP_DEFLATED)
    message = refused_before_torch_reads(write_checkpoint(tmp_path / "model.wmb", contents), monkeypatch)
    assert re.search(r"rollout.pt2 declares archive/\S+ as \d+ times its compressed size, more than the 1 allowed", message)


def test_a_compressed_pickle_inside_a_program_is_refused(checkpoint, tmp_path, monkeypatch):
    """torch.load allocates each tensor at the size the pickle's own zip declares: 16 MiB from 16 kB here."""
    saved = io.BytesIO()
    torch.save(torch.zeros(4 << 20), saved)
    contents = members(checkpoint)
    program = program_members(contents["rollout.pt2"])
    program["archive/data/sample_inputs/model.pt"] = program_archive(program_members(saved.getvalue()), zipfile.ZIP_DEFLATED)
    contents["rollout.pt2"] = program_archive(program)
    message = refused_before_torch_reads(write_checkpoint(tmp_path / "model.wmb", contents), monkeypatch)
    assert re.search(r"rollout.pt2: archive/data/sample_inputs/model.pt declares \S+ as \d+ times its compressed size", message)


def test_members_are_read_within_one_budget():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a", bytes(600))
        archive.writestr("b", bytes(600))
    with zipfile.ZipFile(buffer) as archive:
        assert len(read_members(archive, {}, budget=1200, max_ratio=1, where="x")["b"]) == 600
        with pytest.raises(CheckpointError, match="declares 1200 bytes of members unpacked, more than the 1000 bytes allowed"):
            read_members(archive, {}, budget=1000, max_ratio=1, where="x")
        with pytest.raises(CheckpointError, match="declares a as 600 bytes unpacked, more than the 500 bytes allowed"):
            read_members(archive, {"a": 500}, budget=1200, max_ratio=1, where="x")


# --- lying manifests ---------------------------------------------------------------------------

LYING_MANIFESTS = {  # edit of the manifest -> what the refusal says
    "huge frames": (
        lambda m: m["meta"].__setitem__("image_size", [20000, 20000]),
        "declares meta.image_size = [20000, 20000]; wmbench loads frames of at most 1024 px a side",
    ),
    "huge horizon": (
        lambda m: m.__setitem__("rollout_horizon", 100000),
        "declares rollout_horizon = 100000; wmbench loads rollouts of at most 256 model steps",
    ),
    "huge latents": (
        lambda m: m["meta"].__setitem__("latent_shape", [4096, 4096]),
        "declares meta.latent_shape = [4096, 4096]; wmbench loads latents of at most 1048576 numbers a frame",
    ),
    "a huge frame count": (
        lambda m: m.__setitem__("encode_frames", 100000),
        "declares encode_frames = 100000; wmbench loads encoders of at most 64 frames at once",
    ),
    "another horizon": (
        lambda m: m.__setitem__("rollout_horizon", 3),
        "rollout.pt2 takes actions [B, 7, 10], but its manifest's meta.history, rollout_horizon, meta.action_block and "
        "meta.action_dim say actions [B, 5, 10]",
    ),
    "another latent shape": (
        lambda m: m["meta"].__setitem__("latent_shape", [32]),
        "encode.pt2 returns latents [B, ?, 16], but its manifest's meta.latent_shape and encode_frames say latents [B, ?, 32]",
    ),
    "other frames": (
        lambda m: m["meta"].__setitem__("image_size", [64, 64]),
        "encode.pt2 takes pixels [B, ?, 3, 32, 32], but its manifest's meta.image_size and encode_frames say pixels [B, ?, 3, 64, 64]",
    ),
    "another history": (
        lambda m: m["meta"].__setitem__("history", 3),
        "rollout.pt2 takes latents [B, 2, 16], but its manifest's meta.history and meta.latent_shape say latents [B, 3, 16]",
    ),
    "a fixed frame count": (
        lambda m: m.__setitem__("encode_frames", 2),
        "encode.pt2 takes pixels [B, ?, 3, 32, 32], but its manifest's meta.image_size and encode_frames say pixels [B, 2, 3, 32, 32]",
    ),
    "a frame count that is not a number": (lambda m: m.__setitem__("encode_frames", "all"), "its metadata is invalid: encode_frames='all'"),
}


@pytest.mark.parametrize("case", LYING_MANIFESTS)
def test_a_lying_manifest_is_refused_before_torch_reads_the_programs(checkpoint, tmp_path, monkeypatch, case):
    edit, message = LYING_MANIFESTS[case]
    contents = members(checkpoint)
    manifest = json.loads(contents[MANIFEST])
    edit(manifest)
    contents[MANIFEST] = json.dumps(manifest).encode()
    assert message in refused_before_torch_reads(write_checkpoint(tmp_path / "model.wmb", contents), monkeypatch)
