"""A model folder from the Hub is a stranger's files: loading checks the config and the weights' header before it
allocates, and refuses what no trained generator holds."""

import json
import os
import struct

import pytest
import torch
from safetensors.torch import save_file

from cyclegan_hub import CycleGenerator, PatchDiscriminator
from cyclegan_hub.hub.repos import load_generator
from cyclegan_hub.io.imaging import pad_to_multiple
from tests.conftest import no_hang


@pytest.fixture
def folder(tmp_path, tiny_gray):
    tiny_gray.save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_a_config_asking_for_a_million_blocks_is_refused_before_anything_is_built(folder, monkeypatch):
    import cyclegan_hub.models.cyclegan

    built = []
    real = cyclegan_hub.models.cyclegan.ResnetBlock.__init__
    monkeypatch.setattr(
        cyclegan_hub.models.cyclegan.ResnetBlock,
        "__init__",
        lambda self, *a, **k: built.append(1) or real(self, *a, **k),
    )
    edit_config(folder, n_blocks=1_000_000)
    with pytest.raises(ValueError, match=r"n_blocks must be an integer from 0 to 32, got 1000000"):
        CycleGenerator.from_pretrained(folder)
    assert built == []  # not one block: refused from config.json


def test_a_deep_unet_config_is_refused_and_padding_is_bounded_by_the_input(folder):
    edit_config(folder, architecture="unet", n_downsampling=14)
    with pytest.raises(ValueError, match=r"n_downsampling must be an integer from 2 to 9, got 14"):
        load_generator(str(folder))
    with pytest.raises(ValueError, match=r"padding a 28x28 image to 16384x16384 is more than 4x its pixels; refused"):
        pad_to_multiple(torch.zeros(1, 1, 28, 28), 16384)
    assert pad_to_multiple(torch.zeros(1, 1, 28, 28), 256).shape[-1] == 256  # U-Net-256 on a digit still works


@pytest.mark.parametrize(
    "change,message",
    [
        ({"value_range": [float("nan"), 1.0]}, "value_range must be [low, high], two finite numbers"),
        ({"base_channels": "64"}, "base_channels must be an integer from 1 to 256, got '64'"),
        ({"in_channels": True}, "in_channels must be an integer from 1 to 4, got True"),
        ({"dropout": 1.5}, "dropout must be a number from 0.0, below 1.0, got 1.5"),
        ({"source_domain": ""}, "source_domain must be a text of 1 to 100 characters"),
        ({"norm": "layer"}, "unknown norm 'layer'; valid: 'instance', 'batch', 'none'"),
    ],
)
def test_every_config_field_is_checked(folder, change, message):
    edit_config(folder, **change)
    with pytest.raises(ValueError) as info:
        load_generator(str(folder))
    assert message in str(info.value) and "config.json" in str(info.value)


def test_nan_or_infinite_weights_are_refused_at_load(folder, tiny_gray):
    state = {k: v.clone() for k, v in tiny_gray.state_dict().items()}
    state["net.1.weight"][0, 0, 0, 0] = float("nan")
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match=r"holds NaN or infinite values \(in net.1.weight\); refused"):
        load_generator(str(folder))
    state["net.1.weight"][0, 0, 0, 0] = float("inf")
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match="NaN or infinite"):
        CycleGenerator.from_pretrained(folder)


@pytest.mark.parametrize("dtype", [torch.int8, torch.bool, torch.uint8])
def test_non_float_weights_are_refused_not_cast(folder, tiny_gray, dtype):
    state = {k: v.clone() for k, v in tiny_gray.state_dict().items()}
    state["net.1.weight"] = state["net.1.weight"].to(dtype)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match=r"net.1.weight is stored as (I8|BOOL|U8); the model needs a float tensor"):
        load_generator(str(folder))


def test_a_header_claiming_more_than_the_file_is_refused_unread(folder):
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 2**40) + data[8:])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_generator(str(folder))
    path.write_bytes(data[: len(data) // 2])  # truncated: the tensors end past the end of the file
    with pytest.raises(ValueError, match="model.safetensors is truncated"):
        load_generator(str(folder))


@pytest.mark.parametrize(
    "content,message",
    [
        ("[1, 2, 3]", "must hold an object, not a list"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"architecture": "resnet",', "is not valid JSON (Expecting property name"),
    ],
    ids=["list", "deep", "invalid"],
)
def test_a_malformed_config_json_is_one_line_naming_the_file(folder, content, message):
    (folder / "config.json").write_text(content)
    with pytest.raises(ValueError) as info:
        load_generator(str(folder))
    text = str(info.value)
    assert message in text and f"config.json of {folder}" in text and "\n" not in text


def test_a_config_json_linking_to_a_device_is_not_read(folder):
    (folder / "config.json").unlink()
    os.symlink("/dev/zero", folder / "config.json")
    with (
        no_hang(what="loading a config.json that is /dev/zero"),
        pytest.raises(ValueError, match=r"config.json of .* is not a regular file \(a device, pipe or socket\)"),
    ):
        load_generator(str(folder))


def test_discriminator_configs_are_bounded_too(tmp_path):
    PatchDiscriminator(in_channels=1, base_channels=8, n_layers=2).save_pretrained(tmp_path)
    edit_config(tmp_path, n_layers=10_000)
    with pytest.raises(ValueError, match="n_layers must be an integer from 1 to 8"):
        PatchDiscriminator.from_pretrained(tmp_path)


def test_labels_are_plain_text_and_malformed_headers_are_one_line(tmp_path):
    import json
    import re
    import struct

    from cyclegan_hub import CycleGenerator
    from cyclegan_hub.io.tensors import read_safetensors_header

    for label, code in (("\x1b[31mred", "U+001B"), ("six\u202e", "U+202E"), ("a\u200bb", "U+200B")):
        with pytest.raises(
            ValueError, match=re.escape(f"source_domain holds the control character {code}; labels are plain text")
        ):
            CycleGenerator(source_domain=label)
    with pytest.raises(ValueError, match=r"source_domain must be a text of 1 to 100 characters, got '101 characters'"):
        CycleGenerator(source_domain="x" * 101)
    assert CycleGenerator(source_domain="<b>6</b> [x](y)", base_channels=2, n_blocks=0).config["source_domain"]
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]}}).encode()
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    with pytest.raises(ValueError, match=r"bad.safetensors is not a readable safetensors file \(bad entry for 'w'\)"):
        read_safetensors_header(tmp_path / "bad.safetensors")
