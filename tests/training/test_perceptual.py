"""LPIPS equals the ``lpips`` package's (declared in ``tests/support/authors_lpips.py``) in value and gradient, its
heads are the shipped file and nothing else, and its trunk is read by name and shape from safetensors only."""

import hashlib

import pytest
import torch
from safetensors.torch import load_file, save_file

from cyclegan_hub.training import perceptual
from tests.support import authors_lpips


@pytest.fixture(scope="module")
def trunk(tmp_path_factory):
    return authors_lpips.make_trunk(tmp_path_factory.mktemp("vgg16") / "vgg16")


def theirs_with(ours: perceptual.LPIPS) -> authors_lpips.LPIPS:
    features = authors_lpips.tv_vgg16_features()
    features.load_state_dict(ours.trunk.state_dict(), strict=False)  # the same layers, numbered alike
    net = authors_lpips.LPIPS(features)
    for index, lin in enumerate(net.lins):
        lin.model[1].weight.data.copy_(ours.heads[index].weight)
    return net


@pytest.mark.parametrize("size", [(2, 3, 32, 32), (1, 3, 48, 40)])
def test_lpips_equals_the_lpips_package(trunk, size):
    ours = perceptual.load_lpips(str(trunk))
    theirs = theirs_with(ours)
    torch.manual_seed(0)
    x, y = (torch.rand(size) * 2 - 1 for _ in range(2))
    xo, xt = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    distance, expected = ours(xo, y), theirs(xt, y)
    assert distance.shape == expected.shape == (size[0], 1, 1, 1)
    torch.testing.assert_close(distance, expected, rtol=1e-5, atol=1e-7)
    distance.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(xo.grad, xt.grad, rtol=1e-4, atol=1e-8)
    assert float(ours(y, y).detach().abs().max()) == 0.0 and float(distance.detach().min()) > 0


def test_the_heads_are_the_shipped_file(tmp_path):
    assert hashlib.sha256(perceptual.HEADS_PATH.read_bytes()).hexdigest() == perceptual.HEADS_SHA256
    heads = load_file(perceptual.HEADS_PATH)
    assert {k: tuple(v.shape) for k, v in heads.items()} == {
        f"lin{i}": (1, c, 1, 1) for i, c in enumerate(perceptual.CHANNELS)
    }
    assert all(float(v.min()) >= 0 for v in heads.values())  # lpips keeps its linear weights non-negative
    changed = {k: v.clone() for k, v in heads.items()}
    changed["lin0"][0, 0] += 1
    save_file(changed, tmp_path / "heads.safetensors")
    with pytest.raises(ValueError, match="is not the shipped LPIPS heads file"):
        perceptual.LPIPS().load_heads(tmp_path / "heads.safetensors")


def test_a_trunk_that_is_not_vgg16_is_refused_by_its_header(trunk, tmp_path):
    state = load_file(trunk / "model.safetensors")
    missing = {k: v for k, v in state.items() if k != "features.28.bias"}
    (tmp_path / "missing").mkdir()
    save_file(missing, tmp_path / "missing" / "model.safetensors")
    with pytest.raises(ValueError, match=r"is not VGG16: it has no features\.28\.bias"):
        perceptual.load_lpips(str(tmp_path / "missing"))
    state["features.0.weight"] = torch.zeros(64, 3, 5, 5)
    (tmp_path / "shape").mkdir()
    save_file(state, tmp_path / "shape" / "model.safetensors")
    with pytest.raises(ValueError, match=r"features\.0\.weight has shape \(64, 3, 5, 5\), VGG16's is \(64, 3, 3, 3\)"):
        perceptual.load_lpips(str(tmp_path / "shape"))


def test_an_unreachable_trunk_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="cannot load LPIPS's VGG16 trunk from nobody/no-vgg"):
        perceptual.load_lpips("nobody/no-vgg")
