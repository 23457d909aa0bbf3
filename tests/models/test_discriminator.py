import pytest
import torch

from cyclegan_hub import PatchDiscriminator


def test_paper_defaults_are_70x70_patchgan():
    d = PatchDiscriminator()
    assert d.num_parameters() == 2_764_737  # the paper's 70x70 PatchGAN (2.77 M)
    assert d.receptive_field == 70
    assert d(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)


@pytest.mark.parametrize(
    "n_layers,size,expected", [(3, 28, (1, 1)), (2, 28, (5, 5)), (3, 32, (2, 2)), (1, 28, (12, 12))]
)
def test_output_size_predicts_the_patch_map(n_layers, size, expected):
    d = PatchDiscriminator(in_channels=1, base_channels=8, n_layers=n_layers)
    assert d.output_size(size, size) == expected
    assert d(torch.randn(2, 1, size, size)).shape == (2, 1, *expected)


def test_mnist_setting_gives_a_real_patch_map():
    """The documented MNIST choice: n_layers=2 gives 5x5 logits of 34x34 patches on 28x28 digits."""
    d = PatchDiscriminator(in_channels=1, n_layers=2)
    assert d.output_size(28, 28) == (5, 5) and d.receptive_field == 34


def test_round_trip_and_strict_loading(tmp_path):
    torch.manual_seed(0)
    d = PatchDiscriminator(in_channels=1, base_channels=8, n_layers=2)
    d.save_pretrained(tmp_path)
    loaded = PatchDiscriminator.from_pretrained(tmp_path)
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(d(x), loaded(x))
    (tmp_path / "config.json").write_text('{"in_channels": 1, "base_channels": 8, "n_layers": 3}')
    with pytest.raises(ValueError, match="does not match its model.safetensors"):
        PatchDiscriminator.from_pretrained(tmp_path)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_layers must be an integer from 1 to 8, got 0"):
        PatchDiscriminator(n_layers=0)
    with pytest.raises(ValueError, match="unknown norm 'layer'"):
        PatchDiscriminator(norm="layer")
