import json

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_hub import ARCHITECTURES, CycleGenerator
from cyclegan_hub.hub.repos import load_generator
from tests.support.image_cases import (
    BAD_FILES,
    animated_gif,
    exif_rotated_jpeg,
    float_tiff,
    images_of_every_mode,
    png_bytes,
)


def test_paper_defaults_are_resnet9_rgb():
    g = CycleGenerator()
    assert g.num_parameters() == 11_378_179  # the paper's ResNet-9 generator (11.38 M)
    assert g.config["in_channels"] == 3 and g.config["n_blocks"] == 9 and g.config["norm"] == "instance"


@pytest.mark.parametrize("architecture,extra", [("resnet", {}), ("unet", {"n_downsampling": 3})])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("upsampling", ["transpose", "resize"])
def test_forward_keeps_shape(architecture, extra, channels, upsampling):
    g = CycleGenerator(
        architecture=architecture,
        in_channels=channels,
        out_channels=channels,
        base_channels=8,
        n_blocks=1,
        upsampling=upsampling,
        **extra,
    )
    x = torch.randn(2, channels, 32, 32)
    y = g(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1  # tanh output in the value range


@pytest.mark.parametrize("norm", ["instance", "batch", "none", "instance_affine"])
def test_save_and_load_give_identical_outputs(tmp_path, norm):
    torch.manual_seed(1)
    g = CycleGenerator(
        in_channels=1,
        out_channels=1,
        base_channels=8,
        n_blocks=1,
        norm=norm,
        image_size=28,
        source_domain="6",
        target_domain="9",
    )
    g.eval()
    g.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = CycleGenerator.from_pretrained(tmp_path)
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(g(x), loaded(x))
    assert loaded.config == g.config


def test_config_and_card_carry_architecture_and_metadata(tmp_path, tiny_gray):
    tiny_gray.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config == {
        "architecture": "resnet",
        "in_channels": 1,
        "out_channels": 1,
        "base_channels": 8,
        "n_blocks": 1,
        "n_downsampling": 2,
        "norm": "instance",
        "downsampling": "stride",
        "upsampling": "transpose",
        "dropout": 0.0,
        "edge_padding": 3,
        "source_domain": "6",
        "target_domain": "9",
        "image_size": 32,
        "value_range": [-1.0, 1.0],
    }
    card = (tmp_path / "README.md").read_text()
    front = card.split("---")[1]
    for line in (
        "library_name: cyclegan-hub",
        "pipeline_tag: image-to-image",
        "- cyclegan",
        "- unpaired-image-translation",
        "license: mit",
    ):
        assert line in front
    assert "# CycleGAN generator: 6 → 9" in card
    assert 'CycleGenerator.from_pretrained("path/to/this/folder")' in card
    assert "| parameters | 30,881 |" in card
    assert "arxiv.org/abs/1703.10593" in card and "@inproceedings{zhu2017unpaired" in card


def test_card_names_the_repo_when_given(tmp_path, tiny_gray):
    tiny_gray.save_pretrained(tmp_path, model_card_kwargs={"repo_id": "user/mnist-6to9"})
    assert 'CycleGenerator.from_pretrained("user/mnist-6to9")' in (tmp_path / "README.md").read_text()


def test_mismatched_config_fails_loudly(tmp_path, tiny_gray):
    tiny_gray.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["n_blocks"] = 2
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"does not match its model.safetensors: \d+ missing tensor"):
        CycleGenerator.from_pretrained(tmp_path)
    config.update(n_blocks=1, base_channels=16)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ValueError, match=r"net.1.weight has shape \(8, 1, 7, 7\) in the weights but \(16, 1, 7, 7\) in the model"
    ):
        CycleGenerator.from_pretrained(tmp_path)


def test_only_safetensors_are_read(tmp_path, tiny_gray):
    tiny_gray.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(tiny_gray.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError) as info:  # never unpickled: one line naming the command that converts it
        CycleGenerator.from_pretrained(tmp_path)
    assert str(info.value) == (
        f"{tmp_path} holds a pickled checkpoint (pytorch_model.bin) and no model.safetensors; from_pretrained reads only "
        f"safetensors: convert it once with `cyclegan-hub convert {tmp_path} --output converted/{tmp_path.name}`"
    )


def test_unknown_architecture_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown architecture 'vit'; valid: 'resnet', 'unet'"):
        CycleGenerator(architecture="vit")
    assert set(ARCHITECTURES) == {"resnet", "unet"}
    with pytest.raises(
        ValueError, match=r"unknown norm 'group'; valid: 'instance', 'batch', 'none', 'instance_affine'"
    ):
        CycleGenerator(norm="group")


def test_load_generator_names_missing_models(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="missing: no such model folder$"):
        load_generator(str(tmp_path / "missing"))
    # a mistyped folder beside a real one is a folder, not a Hub repo: said at once, without asking the Hub
    (tmp_path / "models" / "mnist-6to9").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    import cyclegan_hub.models.modeling

    def asked(*args, **kwargs):
        raise AssertionError("the Hub was asked about a folder name")

    monkeypatch.setattr(cyclegan_hub.models.modeling, "hf_hub_download", asked)
    with pytest.raises(ValueError, match="^models/mnist-6to8: no such model folder$"):
        load_generator("models/mnist-6to8")
    with pytest.raises(ValueError, match="has no config.json"):
        load_generator(str(tmp_path))


def test_output_conv_at_inference_is_the_plain_convolution():
    from cyclegan_hub.models.layers import OutputConv2d

    torch.manual_seed(0)
    for out_channels in (1, 3):
        conv = OutputConv2d(16, out_channels, 7)
        plain = torch.nn.Conv2d(16, out_channels, 7)
        plain.load_state_dict(conv.state_dict())  # the same parameters under the same names
        x = torch.randn(5, 16, 20, 18)
        with torch.inference_mode():
            assert torch.allclose(conv(x), plain(x), atol=1e-5)
        # with gradients on (training), the plain path: identical outputs and gradients
        xg = x.clone().requires_grad_()
        conv(xg).square().sum().backward()
        expected = torch.autograd.grad(plain(x.clone().requires_grad_()).square().sum(), plain.weight)[0]
        assert torch.equal(conv.weight.grad, expected)


# ---- translate -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(images_of_every_mode()))
@pytest.mark.parametrize("fixture,out_mode", [("tiny_gray", "L"), ("tiny_rgb", "RGB")])
def test_translate_any_mode(mode, fixture, out_mode, request):
    g = request.getfixturevalue(fixture)
    image = images_of_every_mode()[mode]
    out = g.translate(image)
    assert isinstance(out, Image.Image)
    assert out.size == image.size and out.mode == out_mode


def test_translate_is_the_network_on_the_padded_image(tiny_gray):
    """translate = pad by reflection, run, crop, map [-1, 1] -> [0, 255]."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (30, 26), dtype=np.uint8)
    out = np.asarray(tiny_gray.translate(Image.fromarray(pixels)), dtype=np.float32)
    x = torch.from_numpy(pixels).float()[None, None] / 127.5 - 1
    x = torch.nn.functional.pad(x, (0, 2, 0, 2), mode="reflect")
    with torch.no_grad():
        expected = ((tiny_gray(x)[0, 0, :30, :26] + 1) * 127.5).numpy()
    assert np.abs(out - expected).max() <= 0.5 + 1e-3


def test_translate_lists_arrays_paths_and_sizes(tiny_rgb, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(Image.new("RGB", (50, 40), (10, 200, 10))))
    inputs = [
        Image.new("RGB", (1, 1)),
        Image.new("L", (2000, 3)),
        np.zeros((17, 9, 3), np.uint8),
        str(path),
        Image.new("RGB", (33, 65)),
    ]
    outs = tiny_rgb.translate(inputs, batch_size=2)
    assert [o.size for o in outs] == [(1, 1), (2000, 3), (9, 17), (50, 40), (33, 65)]
    # A batch of same-size images gives what each gives alone.
    same = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8)) for i in range(3)]
    together = tiny_rgb.translate(same, batch_size=3)
    alone = [tiny_rgb.translate(im) for im in same]
    for a, b in zip(together, alone):
        assert np.abs(np.asarray(a, int) - np.asarray(b, int)).max() <= 1
    # a 4-D array is a batch
    assert len(tiny_rgb.translate(np.zeros((2, 8, 8, 3), np.uint8))) == 2


def test_a_batch_of_mixed_modes_and_sizes_gives_what_each_gives_alone(tiny_gray):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    inputs = [
        Image.fromarray(gray),
        Image.fromarray(np.stack([gray] * 3, -1)),
        Image.fromarray(gray).convert("LA"),
        Image.fromarray(gray.astype(np.uint16) * 257),
        Image.fromarray(rng.integers(0, 256, (30, 30), dtype=np.uint8)),
    ]
    for resize_to in (None, 28):
        together = tiny_gray.translate(inputs, batch_size=8, resize_to=resize_to)
        alone = [tiny_gray.translate(image, resize_to=resize_to) for image in inputs]
        for a, b in zip(together, alone):
            assert (
                a.size == b.size and np.abs(np.asarray(a, int) - np.asarray(b, int)).max() <= 1
            )  # batch-size rounding
        # the same digit as L, RGB, LA and 16-bit comes out the same
        assert all(np.abs(np.asarray(o, int) - np.asarray(together[0], int)).max() <= 1 for o in together[1:4])


def test_translate_honours_exif_orientation(tiny_rgb):
    out = tiny_rgb.translate(exif_rotated_jpeg((40, 24)))
    assert out.size == (24, 40)


def test_translate_animated_gif_and_float_tiff(tiny_gray):
    assert tiny_gray.translate(animated_gif()).size == (28, 28)
    assert tiny_gray.translate(float_tiff()).size == (32, 24)


def test_translate_large_images_are_resized_for_the_network(tiny_gray):
    big = Image.new("L", (1500, 300))
    calls = []
    handle = tiny_gray.register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape[-2:])))
    out = tiny_gray.translate(big, max_side=512)
    handle.remove()
    assert out.size == (1500, 300)
    assert calls == [(104, 512)]  # 300 * 512 / 1500 = 102.4 -> 102, padded to a multiple of 4


def test_translate_resize_to_training_size(tiny_gray):
    sizes = []
    handle = tiny_gray.register_forward_hook(lambda m, i, o: sizes.append(tuple(i[0].shape[-2:])))
    out = tiny_gray.translate(Image.new("L", (400, 300)), resize_to=28)
    handle.remove()
    assert out.size == (400, 300) and sizes == [(28, 28)]


def test_translate_with_reconstruction(tiny_gray):
    reverse = CycleGenerator(in_channels=1, out_channels=1, base_channels=8, n_blocks=1)
    pixels = np.random.default_rng(0).integers(0, 256, (20, 20), dtype=np.uint8)
    image = Image.fromarray(pixels)
    translated, reconstructed = tiny_gray.translate(image, return_reconstruction_with=reverse)
    assert translated.size == reconstructed.size == (20, 20)
    # The round trip stays in floating point between the two networks (no 8-bit rounding in the middle).
    x = torch.from_numpy(pixels).float()[None, None] / 255 * 2 - 1
    with torch.no_grad():
        y = tiny_gray(x)
        z = reverse(y)[0, 0]
    assert np.abs(np.asarray(reconstructed, np.float32) - ((z + 1) * 127.5).numpy()).max() <= 0.5 + 1e-3


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_raise_value_error_naming_the_problem(tiny_gray, tmp_path, name):
    data, phrase = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ValueError, match=phrase):
        tiny_gray.translate(path)
    with pytest.raises(ValueError, match=phrase):
        tiny_gray.translate(data)


def test_translate_runs_under_inference_mode(tiny_gray):
    seen = []
    handle = tiny_gray.register_forward_hook(lambda m, i, o: seen.append(torch.is_inference_mode_enabled()))
    tiny_gray.translate(Image.new("L", (8, 8)))
    handle.remove()
    assert seen == [True]


def test_photo_models_run_in_bf16_where_the_cpu_has_it_and_digits_never(tiny_gray, monkeypatch):
    import cyclegan_hub.translation as translation_module

    monkeypatch.setattr(translation_module, "cpu_has_native_bf16", lambda: True)
    torch.manual_seed(0)
    photo = CycleGenerator(base_channels=8, n_blocks=1, image_size=256)
    digits_seen, photo_seen = [], []
    tiny_gray.register_forward_hook(lambda m, i, o: digits_seen.append(o.dtype))
    photo.register_forward_hook(lambda m, i, o: photo_seen.append(o.dtype))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8))
    fast, exact = photo.translate(image), photo.translate(image, precision="fp32")
    assert photo_seen == [torch.bfloat16, torch.float32]
    assert np.abs(np.asarray(fast, int) - np.asarray(exact, int)).mean() < 2  # close, in 8-bit levels
    assert np.array_equal(
        np.asarray(tiny_gray.translate(image)), np.asarray(tiny_gray.translate(image, precision="fp32"))
    )
    assert digits_seen == [torch.float32, torch.float32]  # a digit model (28-32 px) stays in fp32 under "auto"
    monkeypatch.setattr(translation_module, "cpu_has_native_bf16", lambda: False)
    photo.translate(image)
    assert photo_seen[-1] == torch.float32  # emulated bf16 is slower than fp32: not used
    with pytest.raises(ValueError, match="unknown precision 'fp8'; valid: 'auto', 'fp32', 'bf16'"):
        photo.translate(image, precision="fp8")
