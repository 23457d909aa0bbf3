"""The one-step family (CycleGAN-Turbo) on a tiny base built from configs: equal to the authors' forward through
the conversion of their checkpoint format, strict, translated through the one path at any size."""

import json

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("transformers")

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from cyclegan_hub.cli import main
from cyclegan_hub.convert.checkpoints import ConversionError
from cyclegan_hub.convert.turbo import convert_turbo, read_turbo
from cyclegan_hub.models.modeling import HubModule
from cyclegan_hub.models.turbo import OneStepTranslator
from tests.support.authors_turbo import AuthorsTurbo, caption_embedding, make_checkpoint
from tests.support.turbo_base import make_base

CAPTION = "driving in the night"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_base(tmp_path_factory.mktemp("turbo") / "tiny-sd-turbo")


@pytest.fixture(scope="module")
def released(base, tmp_path_factory):
    """A checkpoint in the authors' format (their training script's dict), as ``day2night.pkl``."""
    checkpoint = make_checkpoint(base, rank_unet=4, rank_vae=4, seed=1)
    path = tmp_path_factory.mktemp("released") / "day2night.pkl"
    torch.save(checkpoint, path)
    return path, checkpoint


@pytest.mark.parametrize("direction", ["a2b", "b2a"])
def test_the_converted_translator_equals_the_authors_forward(base, released, direction):
    path, checkpoint = released
    authors = AuthorsTurbo(base, checkpoint)
    model = convert_turbo(read_turbo(path), base_model=str(base), caption=CAPTION, direction=direction)
    embedding = caption_embedding(base, CAPTION)
    torch.testing.assert_close(model.caption_embedding, embedding, rtol=0, atol=0)
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        ours = model(x)
        theirs = authors(x, direction, embedding.repeat(2, 1, 1), posterior="mode")
        assert (ours - theirs).abs().max() < 1e-5  # the posterior mean: deterministic
        assert ours.std() > 0.05  # a real image, not a constant
        model.config["encode"] = "sample"  # their sampling, same random numbers
        torch.manual_seed(3)
        ours = model(x)
        torch.manual_seed(3)
        theirs = authors(x, direction, embedding.repeat(2, 1, 1))
    assert (ours - theirs).abs().max() < 1e-5
    other = authors(x, "b2a" if direction == "a2b" else "a2b", embedding.repeat(2, 1, 1), posterior="mode")
    assert (model.eval()(x) - other).abs().max() > 1e-3  # the direction chose its own VAE


def test_convert_and_translate_from_the_command_line(base, released, tmp_path, capsys):
    path, _ = released
    night = tmp_path / "day2night"
    args = ["convert", str(path), "--base-model", str(base), "--caption", CAPTION, "--output", str(night)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "CycleGAN-Turbo, direction a2b, day -> night, UNet LoRA rank 4" in out
    config = json.loads((night / "config.json").read_text())
    assert config["model_type"] == "cyclegan-turbo" and config["caption"] == CAPTION
    assert (config["source_domain"], config["target_domain"]) == ("day", "night")
    assert config["base_model"] == str(base.resolve())
    stored = load_file(night / "model.safetensors")
    assert not [k for k in stored if "base_layer" in k and "conv_in" not in k and "skip_conv" not in k]
    assert stored["caption_embedding"].shape == (1, 77, 32)
    card = (night / "README.md").read_text()
    assert "# CycleGAN-Turbo translator: day → night" in card and "img2img-turbo" in card

    day = tmp_path / "night2day"
    args = [
        "convert",
        str(path),
        "--base-model",
        str(base),
        "--caption",
        "driving in the day",
        "--direction",
        "b2a",
        "--output",
        str(day),
    ]
    assert main(args) == 0
    assert json.loads((day / "config.json").read_text())["source_domain"] == "night"
    # both directions at once: a run folder that push sends as twin repos, each equal to its own conversion
    pair = tmp_path / "day-night"
    args = [
        "convert",
        str(path),
        "--base-model",
        str(base),
        "--caption",
        CAPTION,
        "--reverse-caption",
        "driving in the day",
        "--output",
        str(pair),
    ]
    assert main(args) == 0
    assert "push it with `cyclegan-hub push" in capsys.readouterr().out
    for folder, single in (("generator_AtoB", night), ("generator_BtoA", day)):
        assert load_file(pair / folder / "model.safetensors").keys() == load_file(single / "model.safetensors").keys()
        pair_state, single_state = (
            load_file(pair / folder / "model.safetensors"),
            load_file(single / "model.safetensors"),
        )
        assert all(torch.equal(pair_state[k], single_state[k]) for k in pair_state)
    assert json.loads((pair / "generator_BtoA" / "config.json").read_text())["caption"] == "driving in the day"

    street = tmp_path / "street.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)).save(street)
    result = tmp_path / "night.png"
    assert main(["translate", "--model", str(night), str(street), "--output", str(result)]) == 0
    translated = Image.open(result)
    assert translated.size == (53, 37) and translated.mode == "RGB"
    # the same as the model's own translate(), and as the network on the padded image cropped back
    model = HubModule.from_pretrained(str(night))
    assert type(model) is OneStepTranslator
    assert np.array_equal(np.asarray(model.translate(Image.open(street))), np.asarray(translated))


def test_strict_loading_refuses_a_mismatched_adapter_in_one_line(base, released, tmp_path, capsys):
    path, _ = released
    folder = tmp_path / "m"
    assert main(["convert", str(path), "--base-model", str(base), "--caption", CAPTION, "-o", str(folder)]) == 0
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"unet_rank": 8}))
    with pytest.raises(ValueError, match=r"does not match its model.safetensors: .*unet\..*lora_A.* has shape"):
        HubModule.from_pretrained(str(folder))
    (folder / "config.json").write_text(json.dumps(config))
    tensors = load_file(folder / "model.safetensors")
    del tensors["vae.decoder.skip_conv_1.base_layer.weight"]
    save_file(tensors, folder / "model.safetensors")
    capsys.readouterr()
    assert main(["translate", "--model", str(folder), str(path), "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert "1 missing tensor(s) (e.g. vae.decoder.skip_conv_1.base_layer.weight)" in err and len(err.splitlines()) == 1
    (folder / "config.json").write_text(json.dumps(config | {"unet_rank": 100000}))
    with pytest.raises(ValueError, match="unet_rank must be an integer from 1 to 1024"):
        HubModule.from_pretrained(str(folder))


def test_conversion_refuses_what_does_not_fit(base, released, tmp_path, capsys):
    path, checkpoint = released
    with pytest.raises(ConversionError, match="is not a CycleGAN-Turbo checkpoint"):
        torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pkl")
        read_turbo(tmp_path / "other.pkl")
    other_base = make_base(tmp_path / "other-base", seed=7, text_encoder=True)
    with pytest.raises(ConversionError, match="the checkpoint's VAE differs from the base model's by .* --base-model"):
        convert_turbo(checkpoint, base_model=str(other_base), caption=CAPTION)
    assert main(["convert", str(path), "--base-model", str(base), "-o", str(tmp_path / "o")]) == 1
    assert "a CycleGAN-Turbo checkpoint needs --caption" in capsys.readouterr().err
    assert (
        main(
            ["convert", str(path), "--base-model", str(tmp_path / "none"), "--caption", "x", "-o", str(tmp_path / "o")]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "cannot load the base model's unet/" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_pickle_that_would_run_code_is_refused(base, tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"rank_unet": Evil()}, tmp_path / "evil.pkl")
    assert (
        main(
            [
                "convert",
                str(tmp_path / "evil.pkl"),
                "--base-model",
                str(base),
                "--caption",
                "x",
                "-o",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert "pwned" not in captured.out and "nothing in the file is run" in captured.err


def test_the_zoo_names_the_authors_checkpoints_and_converts_one(base, released, tmp_path, capsys):
    from tests.convert.test_zoo import FileServer

    assert main(["zoo"]) == 0
    listing = capsys.readouterr().out
    assert "turbo/day2night" in listing and "turbo/rainy2clear" in listing and "SD-Turbo + LoRA" in listing
    path, _ = released
    files = {f"/~img2img-turbo/models/{name}.pkl": path.read_bytes() for name in ("day2night", "night2day")}
    with FileServer(files) as server:
        args = [
            "convert",
            "--zoo",
            "turbo/day2night",
            "--zoo-mirror",
            server.url,
            "--cache-dir",
            str(tmp_path / "c"),
            "--base-model",
            str(base),
            "--output",
            str(tmp_path / "z"),
        ]
        assert main(args) == 0, capsys.readouterr().err
        assert main([*args[:-1], str(tmp_path / "pair"), "--with-reverse"]) == 0, capsys.readouterr().err
    config = json.loads((tmp_path / "z" / "config.json").read_text())
    assert config["caption"] == "driving in the night" and config["target_domain"] == "night"
    assert "downloaded from" in (tmp_path / "z" / "README.md").read_text()
    # the released reverse is the authors' other file, night2day.pkl, in the direction they run it (b2a)
    back = json.loads((tmp_path / "pair" / "generator_BtoA" / "config.json").read_text())
    assert (back["source_domain"], back["target_domain"], back["caption"]) == ("night", "day", "driving in the day")
    assert "`night2day.pkl`, downloaded from" in (tmp_path / "pair" / "generator_BtoA" / "README.md").read_text()


def test_a_base_too_large_is_refused_from_its_configs_before_any_weight_is_read(base, released, tmp_path, monkeypatch):
    import cyclegan_hub.models.turbo as turbo

    path, _ = released
    folder = tmp_path / "m"
    assert main(["convert", str(path), "--base-model", str(base), "--caption", CAPTION, "-o", str(folder)]) == 0
    monkeypatch.setattr(turbo, "MAX_BASE_PARAMETERS", 1000)

    def no_weights(*args, **kwargs):
        raise AssertionError("a weight file of the base was read")

    monkeypatch.setattr(turbo.UNet2DConditionModel, "from_pretrained", no_weights)
    monkeypatch.setattr(turbo.AutoencoderKL, "from_pretrained", no_weights)
    with pytest.raises(ValueError, match=r"has [\d,]+ parameters in its UNet and VAE; at most 1,000 are loaded"):
        HubModule.from_pretrained(str(folder))


def test_the_base_loads_in_bf16_from_its_variant_files_where_it_has_them(released, tmp_path):
    from tests.support.turbo_base import tiny_unet

    base = make_base(tmp_path / "base", text_encoder=True)
    torch.manual_seed(9)
    variant = tiny_unet().to(torch.bfloat16)  # other weights than the float32 files: which ones were read shows
    variant.save_pretrained(base / "unet", variant="bf16")
    path, _ = released
    folder = tmp_path / "m"
    assert main(["convert", str(path), "--base-model", str(base), "--caption", CAPTION, "-o", str(folder)]) == 0
    model = HubModule.from_pretrained(str(folder), base_dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    linear = model.unet.time_embedding.linear_1.weight  # no adapter on it: the base's own tensor
    assert torch.equal(linear, variant.time_embedding.linear_1.weight)  # the variant file, not a cast of float32
    assert model.translate(Image.new("RGB", (45, 30), (90, 120, 200))).size == (45, 30)
    full = HubModule.from_pretrained(str(folder))
    assert full.unet.time_embedding.linear_1.weight.dtype == torch.float32  # without base_dtype: float32 files
    assert not torch.equal(full.unet.time_embedding.linear_1.weight.to(torch.bfloat16), linear)


def test_onnx_export_refuses_what_one_file_cannot_hold_before_writing(base, released, tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    import cyclegan_hub.models.onnx as onnx_export

    path, _ = released
    folder = tmp_path / "m"
    assert main(["convert", str(path), "--base-model", str(base), "--caption", CAPTION, "-o", str(folder)]) == 0
    model = HubModule.from_pretrained(str(folder))
    monkeypatch.setattr(onnx_export, "MAX_ONNX_BYTES", 1000)  # SD-Turbo's 3.8 GB against the real 1.9 GB limit
    with pytest.raises(ValueError, match="GB of float32 weights; one ONNX file holds at most"):
        onnx_export.export_onnx(model, tmp_path / "big.onnx")
    assert not list(tmp_path.glob("*big*"))
