"""Converting official pytorch-CycleGAN-and-pix2pix checkpoints: outputs equal the official network's, tensor for
tensor, and anything that is not a plain checkpoint of tensors is refused in one line."""

import os
import pickle
import zipfile

import pytest
import torch

from cyclegan_hub import CycleGenerator, PatchDiscriminator
from cyclegan_hub.convert import (
    ConversionError,
    convert_state,
    detect,
    measure_equality,
    official_forward,
    read_checkpoint,
)

from .official_layout import (
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
    assert (official_forward(state, layout, x) - official_output(official, x)).abs().max().item() < 1e-5


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
        upsampling="transpose",
        dropout=0.0,
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
    with pytest.raises(
        ConversionError, match=r"not an official ResNet, U-Net or PatchGAN layout \(first tensor: encoder.0.weight\)"
    ):
        detect({"encoder.0.weight": torch.zeros(8, 3, 3, 3)})
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
    del state["model.13.conv_block.5.bias"]
    with pytest.raises(ConversionError, match=r"no tensor model.13.conv_block.5.bias for ResNet-6 generator"):
        convert_state(state)
