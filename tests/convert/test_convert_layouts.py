"""Every layout in circulation converts: each original network (declared in ``other_layouts``) is saved in its own
published file format, converted by the command, and the converted model's outputs equal the original's on RGB and
gray inputs at non-square sizes; a photo-sized image translates end to end at its own size. Files, folders, training
checkpoints holding several networks and unsafe inputs are each a one-line answer."""

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_hub import CycleGenerator
from cyclegan_hub.cli import main
from cyclegan_hub.convert import checkpoints
from cyclegan_hub.convert.checkpoints import ConversionError, read_checkpoint
from cyclegan_hub.convert.layouts import convert_state, reference_forward
from tests.support.official_layout import randomized
from tests.support.other_layouts import (
    AffineNormGenerator,
    AitorzipGenerator,
    CUTGenerator,
    HugGANGenerator,
    LornatangGenerator,
)

LAYOUTS = {
    # name: (network, the file name it is published as, what convert reports)
    "huggan-rgb": (lambda: HugGANGenerator(3, blocks=3, features=8), "pytorch_model.bin", "HugGAN / eriklindernoren"),
    "huggan-gray": (lambda: HugGANGenerator(1, blocks=2, features=8), "G_AB_40.pth", "HugGAN / eriklindernoren"),
    "cut": (lambda: CUTGenerator(ngf=8, n_blocks=3), "latest_net_G.pth", "CUT / FastCUT"),
    "cut-gray": (lambda: CUTGenerator(1, 1, ngf=8, n_blocks=2), "latest_net_G.pth", "CUT / FastCUT"),
    "aitorzip": (lambda: AitorzipGenerator(n_residual_blocks=3, features=8), "netG_A2B.pth", "ResNet-3 generator,"),
    "lornatang": (
        lambda: LornatangGenerator(channels=8, blocks=3),
        "CycleNet.pth",
        "(Lornatang layout)",
    ),
    "affine-norm": (lambda: AffineNormGenerator(3, blocks=2, features=8), "G_A2B.pth", "affine norm"),
    "affine-norm-gray": (lambda: AffineNormGenerator(1, blocks=2, features=8), "G_A2B.pth", "affine norm"),
}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_each_layout_converts_to_the_same_network(name, tmp_path, capsys):
    build, file_name, reported = LAYOUTS[name]
    original = randomized(build(), seed=7)
    torch.save(original.state_dict(), tmp_path / file_name)  # as their training scripts save it
    out = tmp_path / "converted"
    assert main(["convert", str(tmp_path / file_name), "--output", str(out)]) == 0
    assert reported in capsys.readouterr().out
    g = CycleGenerator.from_pretrained(out)
    channels = g.config["in_channels"]
    for size in ((52, 76), (68, 44)):  # non-square, both orientations
        border = 2 * g.translation_spec.border
        x = torch.rand(2, channels, size[0] + border, size[1] + border) * 2 - 1
        with torch.inference_mode():
            ours, theirs = g(x), original(x)
        assert ours.shape == theirs.shape and (ours - theirs).abs().max().item() <= 1e-5
    # a photo-sized image, end to end, comes back at its own size
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (301, 427, 3), dtype=np.uint8))
    translated = g.translate(photo)
    assert translated.size == (427, 301) and translated.mode == ("L" if channels == 1 else "RGB")


def test_the_functional_reference_agrees_with_each_original_network():
    for build, _, _ in LAYOUTS.values():
        original = randomized(build(), seed=3)
        state = original.state_dict()
        _, layout = convert_state(state)
        x = torch.rand(1, layout.config["in_channels"], 48, 56) * 2 - 1
        with torch.inference_mode():
            assert (reference_forward(state, layout, x) - original(x)).abs().max().item() <= 1e-5


def test_what_the_layouts_are_read_as():
    _, huggan = convert_state(randomized(HugGANGenerator(1, blocks=2, features=8)).state_dict())
    assert (huggan.config["upsampling"], huggan.config["edge_padding"], huggan.source) == ("resize_zero", 1, "huggan")
    _, cut = convert_state(randomized(CUTGenerator(ngf=8, n_blocks=2)).state_dict())
    assert (cut.config["downsampling"], cut.config["upsampling"], cut.source) == ("antialias", "antialias", "cut")
    _, affine = convert_state(randomized(AffineNormGenerator()).state_dict())
    assert affine.config["norm"] == "instance_affine"
    assert affine.describe() == "ResNet-6 generator, 3 -> 3 channels, 16 base channels, instance affine norm"


def test_a_cut_file_whose_blur_filter_was_changed_is_refused():
    state = randomized(CUTGenerator(ngf=8, n_blocks=2)).state_dict()
    state["model.7.filt"] = state["model.7.filt"] * 2
    with pytest.raises(ConversionError, match=r"model.7.filt is not the fixed blur filter of ResNet-2 generator"):
        convert_state(state)


def test_a_training_checkpoint_holding_several_networks_asks_which(tmp_path, capsys):
    g_ab = randomized(HugGANGenerator(3, blocks=2, features=8), seed=1).state_dict()
    g_ba = randomized(HugGANGenerator(3, blocks=2, features=8), seed=2).state_dict()
    torch.save({"epoch": 40, "G_AB": g_ab, "G_BA": g_ba}, tmp_path / "checkpoint.pth")
    assert main(["convert", str(tmp_path / "checkpoint.pth"), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("checkpoint.pth holds 2 networks ('G_AB', 'G_BA'): choose one with --key")
    assert "\n" not in err and not (tmp_path / "out").exists()
    assert main(["convert", str(tmp_path / "checkpoint.pth"), "--key", "G_BA", "--output", str(tmp_path / "out")]) == 0
    converted = CycleGenerator.from_pretrained(tmp_path / "out").state_dict()
    assert torch.equal(converted["net.1.weight"], g_ba["model.1.weight"])


def test_a_folder_holding_one_checkpoint_converts_and_two_are_named(tmp_path, capsys):
    folder = tmp_path / "sim2real"
    folder.mkdir()
    torch.save(randomized(HugGANGenerator(3, blocks=2, features=8)).state_dict(), folder / "pytorch_model.bin")
    (folder / "README.md").write_text("a HugGAN model card")
    assert main(["convert", str(folder), "--output", str(tmp_path / "out")]) == 0
    assert "HugGAN / eriklindernoren" in (tmp_path / "out" / "README.md").read_text()
    runs = tmp_path / "saved_models"
    runs.mkdir()
    for epoch in (10, 20):
        torch.save(randomized(HugGANGenerator(3, blocks=2, features=8)).state_dict(), runs / f"G_AB_{epoch}.pth")
    assert main(["convert", str(runs), "--output", str(tmp_path / "out2")]) == 1
    err = capsys.readouterr().err
    assert "holds 2 checkpoints (G_AB_10.pth, G_AB_20.pth): name the file to convert" in err


def test_pickles_need_a_torch_without_the_known_bypass(tmp_path, monkeypatch):
    torch.save(randomized(CUTGenerator(ngf=8, n_blocks=2)).state_dict(), tmp_path / "latest_net_G.pth")
    monkeypatch.setattr(torch, "__version__", "2.5.1+cpu")
    with pytest.raises(ConversionError) as info:
        read_checkpoint(tmp_path / "latest_net_G.pth")
    assert "torch 2.5.1+cpu has a known bypass of torch.load(weights_only=True) (CVE-2025-32434)" in str(info.value)
    assert "install torch >= 2.6" in str(info.value)


def test_a_deflate_bomb_is_refused_from_its_zip_directory_before_inflating(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "MAX_UNPACKED_BYTES", 1 << 20)
    with zipfile.ZipFile(tmp_path / "bomb.pth", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\0" * (4 << 20))
    assert (tmp_path / "bomb.pth").stat().st_size < 100_000
    with pytest.raises(ConversionError, match=r"bomb.pth unpacks to 0.0 GB \(1 entries\), above the limit"):
        read_checkpoint(tmp_path / "bomb.pth")


def test_layout_detection_reads_each_name_once():
    """A 1 MB file of deeply nested U-Net names is read off in linear time (it took 23 s when every level scanned
    every key); measured here as work, not time: the number of prefix checks per key is bounded."""
    from cyclegan_hub.convert import layouts

    calls = 0
    real = layouts._unet_level

    def counting(key):
        nonlocal calls
        calls += 1
        return real(key)

    layouts._unet_level = counting
    try:
        state = {"model.model." + "1.model." + "3.model." * i + "1.weight": torch.zeros(1) for i in range(3000)}
        with pytest.raises(ConversionError):
            convert_state(state)
    finally:
        layouts._unet_level = real
    assert calls == len(state)


def test_a_lornatang_checkpoint_converts_its_weights_or_their_ema(tmp_path, capsys):
    """Lornatang's ``*.pth.tar``: the weights under ``state_dict``, their EMA under ``ema_state_dict``, beside the
    epoch and the optimizer's state."""
    trained = randomized(LornatangGenerator(channels=8, blocks=2), seed=1)
    averaged = randomized(LornatangGenerator(channels=8, blocks=2), seed=2)
    optimizer = torch.optim.Adam(trained.parameters())
    torch.save(
        {
            "epoch": 12,
            "state_dict": trained.state_dict(),
            "ema_state_dict": averaged.state_dict(),
            "optimizer": optimizer.state_dict(),
        },
        tmp_path / "g_A2B-last.pth.tar",
    )
    x = torch.rand(1, 3, 40, 56) * 2 - 1
    for key, original in ((None, trained), ("ema_state_dict", averaged)):
        out = tmp_path / f"out-{key}"
        extra = ["--key", key] if key else []
        assert main(["convert", str(tmp_path / "g_A2B-last.pth.tar"), *extra, "--output", str(out)]) == 0
        with torch.inference_mode():
            assert (CycleGenerator.from_pretrained(out)(x) - original(x)).abs().max().item() <= 1e-5
    assert "(Lornatang layout)" in capsys.readouterr().out
