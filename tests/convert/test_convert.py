"""Converting official pytorch-CycleGAN-and-pix2pix checkpoints: outputs equal the official network's, tensor for
tensor, and anything that is not a plain checkpoint of tensors is refused in one line."""

import os
import pickle
import zipfile

import pytest
import torch

from cyclegan_hub import CycleGenerator, PatchDiscriminator
from cyclegan_hub.convert.checkpoints import ConversionError, read_checkpoint
from cyclegan_hub.convert.layouts import convert_state, detect, measure_equality, reference_forward
from tests.support.official_layout import (
    NLayerDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    randomized,
    with_old_instance_norm_stats,
)

NETWORKS = {
    "resnet6": lambda: ResnetGenerator(ngf=8, n_blocks=6),
    "resnet9": lambda: ResnetGenerator(ngf=8, n_blocks=9),
    "resnet9-dropout": lambda: ResnetGenerator(ngf=8, n_blocks=9, dropout=True),
    "resnet9-batchnorm-gray": lambda: ResnetGenerator(input_nc=1, output_nc=1, ngf=8, n_blocks=9, norm="batch"),
    "unet256": lambda: UnetGenerator(num_downs=8, ngf=4),
    "unet128-batchnorm": lambda: UnetGenerator(num_downs=7, ngf=4, norm="batch"),
}


def official_output(net, x):
    with torch.inference_mode():
        return net(x)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_converted_generators_equal_the_official_network(name):
    official = randomized(NETWORKS[name](), seed=1)
    state = official.state_dict()
    converted, layout = convert_state(state, "net.pth", source_domain="horse", target_domain="zebra")
    assert isinstance(converted, CycleGenerator)
    size = (
        (256, 512) if name.startswith("unet256") else (128, 256) if name.startswith("unet") else (68, 92)
    )  # non-square
    x = torch.rand(2, layout.config["in_channels"], *size) * 2 - 1
    with torch.inference_mode():
        ours = converted(x)
    difference = (ours - official_output(official, x)).abs().max().item()
    assert difference < 1e-5, difference
    assert converted.num_parameters() == sum(p.numel() for p in official.parameters())
    # the functional reference that `cyclegan-hub convert` measures each file against agrees with the modules
    assert (reference_forward(state, layout, x) - official_output(official, x)).abs().max().item() < 1e-5


def test_paper_sizes_are_read_off_the_tensors():
    _, resnet9 = convert_state(randomized(ResnetGenerator()).state_dict())
    assert resnet9.config == dict(
        architecture="resnet",
        in_channels=3,
        out_channels=3,
        base_channels=64,
        n_blocks=9,
        n_downsampling=2,
        norm="instance",
        downsampling="stride",
        upsampling="transpose",
        dropout=0.0,
        edge_padding=3,
    )
    assert resnet9.describe() == "ResNet-9 generator, 3 -> 3 channels, 64 base channels, instance norm"
    _, unet = convert_state(randomized(UnetGenerator(num_downs=8, ngf=64)).state_dict())
    assert unet.describe() == "U-Net-256 generator, 3 -> 3 channels, 64 base channels, instance norm"
    converted, _ = convert_state(randomized(ResnetGenerator()).state_dict())
    assert converted.num_parameters() == 11_378_179


@pytest.mark.parametrize("layers", [1, 3])
def test_converted_discriminators_equal_the_official_network(layers):
    official = randomized(NLayerDiscriminator(ndf=8, n_layers=layers), seed=2)
    converted, layout = convert_state(official.state_dict())
    assert isinstance(converted, PatchDiscriminator) and layout.config["n_layers"] == layers
    x = torch.rand(2, 3, 70, 94) * 2 - 1
    with torch.inference_mode():
        assert (converted(x) - official(x)).abs().max().item() < 1e-5


def test_what_real_files_hold_old_norm_stats_dataparallel_prefix_and_wrapper(tmp_path):
    official = randomized(ResnetGenerator(ngf=8, n_blocks=6), seed=3)
    state = with_old_instance_norm_stats(official.state_dict(), official)
    state = {f"module.{k}": v for k, v in state.items()}
    torch.save({"epoch": 200, "state_dict": state}, tmp_path / "wrapped.pth")
    loaded = read_checkpoint(tmp_path / "wrapped.pth")
    assert not any(k.startswith("module.") for k in loaded) and any(k.endswith("running_mean") for k in loaded)
    converted, layout = convert_state(loaded)
    assert measure_equality(converted, loaded, layout, size=(64, 80))[0] < 1e-5


def test_a_pickle_that_would_run_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"model.1.weight": Payload()}))
    with pytest.raises(ConversionError) as info:
        read_checkpoint(tmp_path / "evil.pth")
    message = str(info.value)
    assert "holds Python objects other than tensors" in message and "nothing in the file is run" in message
    assert "\n" not in message and not marker.exists()


def test_truncated_and_foreign_files_are_one_line(tmp_path):
    official = randomized(ResnetGenerator(ngf=8, n_blocks=6))
    torch.save(official.state_dict(), tmp_path / "whole.pth")
    data = (tmp_path / "whole.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 3])
    with pytest.raises(ConversionError, match=r"truncated.pth is truncated or not a PyTorch checkpoint"):
        read_checkpoint(tmp_path / "truncated.pth")
    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    with pytest.raises(ConversionError, match="holds no state dict"):
        read_checkpoint(tmp_path / "list.pth")
    torch.save({"weights": torch.zeros(3), "note": "hello"}, tmp_path / "mixed.pth")
    with pytest.raises(ConversionError, match="entry 'note' is a str, not a tensor"):
        read_checkpoint(tmp_path / "mixed.pth")
    with zipfile.ZipFile(tmp_path / "zip.pth", "w") as z:
        z.writestr("a.txt", "not a checkpoint")
    with pytest.raises(ConversionError, match="zip.pth is truncated or not a PyTorch checkpoint"):
        read_checkpoint(tmp_path / "zip.pth")


def test_an_unknown_layout_names_the_first_tensor_that_does_not_fit():
    with pytest.raises(ConversionError) as info:
        detect({"encoder.0.weight": torch.zeros(8, 3, 3, 3), "encoder.0.bias": torch.zeros(8)})
    assert str(info.value) == (
        "the checkpoint: not a layout cyclegan-hub converts (2 tensors: encoder.0.bias [8], encoder.0.weight "
        "[8, 3, 3, 3]); nearest: a ResNet generator (model.N or main.N, residual blocks conv_block, block or res)"
    )
    state = randomized(ResnetGenerator(ngf=8, n_blocks=6)).state_dict()
    state["model.10.conv_block.1.weight"] = torch.zeros(32, 32, 5, 5)
    with pytest.raises(
        ConversionError, match=r"model.10.conv_block.1.weight has shape \(32, 32, 5, 5\), expected \(32, 32, 3, 3\)"
    ):
        convert_state(state)
    state = randomized(ResnetGenerator(ngf=8, n_blocks=6)).state_dict()
    state["model.30.weight"] = torch.zeros(3)
    with pytest.raises(ConversionError, match="tensor model.30.weight does not fit ResNet-6 generator"):
        convert_state(state)
    state = randomized(ResnetGenerator(ngf=8, n_blocks=6)).state_dict()
    del state["model.13.conv_block.5.weight"]
    with pytest.raises(ConversionError, match=r"no tensor model.13.conv_block.5.weight for ResNet-6 generator"):
        convert_state(state)


def test_the_convert_command_writes_a_loadable_folder_with_a_true_card(tmp_path, capsys):
    import hashlib

    import yaml
    from PIL import Image

    from cyclegan_hub.cli import main

    official = randomized(ResnetGenerator(ngf=8, n_blocks=6), seed=4)
    torch.save(official.state_dict(), tmp_path / "summer2winter_yosemite.pth")
    Image.new("RGB", (80, 60), (40, 140, 40)).save(tmp_path / "meadow.png")
    out = tmp_path / "converted"
    assert (
        main(
            [
                "convert",
                str(tmp_path / "summer2winter_yosemite.pth"),
                "--sample",
                str(tmp_path / "meadow.png"),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "ResNet-6 generator, 3 -> 3 channels, 8 base channels, instance norm, summer -> winter" in printed
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "sample.png"]
    g = CycleGenerator.from_pretrained(out)
    assert (g.config["source_domain"], g.config["target_domain"], g.config["image_size"]) == ("summer", "winter", 256)
    x = torch.rand(1, 3, 64, 80) * 2 - 1
    with torch.inference_mode():
        assert (g(x) - official(x)).abs().max() < 1e-5
    card = (out / "README.md").read_text()
    digest = hashlib.sha256((tmp_path / "summer2winter_yosemite.pth").read_bytes()).hexdigest()
    assert f"SHA-256 `{digest}`" in card and "The `summer2winter_yosemite` generator released by the authors" in card
    assert "under its license (BSD)" in card and "differ by at most" in card and "## Origin" in card
    assert "![input | translated | reconstructed](sample.png)" in card and str(tmp_path) not in card
    assert yaml.safe_load(card.split("---")[1])["license"] == "bsd"
    # the output exists now: refused without --overwrite, nothing touched
    assert main(["convert", str(tmp_path / "summer2winter_yosemite.pth"), "--output", str(out)]) == 1
    assert "exists: choose a new folder, or --overwrite" in capsys.readouterr().err


def test_an_interrupted_conversion_leaves_no_folder_to_half_load(tmp_path, monkeypatch):
    import cyclegan_hub.hub.cards
    from cyclegan_hub.convert.command import convert_checkpoint

    torch.save(randomized(ResnetGenerator(ngf=8, n_blocks=6)).state_dict(), tmp_path / "horse2zebra.pth")
    real = cyclegan_hub.hub.cards.CycleGenerator.save_pretrained

    def save_then_die(self, folder, **kwargs):
        real(self, folder, **kwargs)
        raise KeyboardInterrupt  # after the weights, before the card: the worst moment

    monkeypatch.setattr(cyclegan_hub.hub.cards.CycleGenerator, "save_pretrained", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        convert_checkpoint(str(tmp_path / "horse2zebra.pth"), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["horse2zebra.pth"]  # no output, no temporary folder


def test_a_discriminator_is_not_converted_as_a_generator(tmp_path):
    from cyclegan_hub.convert.command import convert_checkpoint

    torch.save(randomized(NLayerDiscriminator(ndf=8)).state_dict(), tmp_path / "latest_net_D_A.pth")
    with pytest.raises(ConversionError, match="latest_net_D_A.pth is a PatchGAN discriminator, not a generator"):
        convert_checkpoint(str(tmp_path / "latest_net_D_A.pth"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
