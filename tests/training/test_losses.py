import pytest
import torch

from cyclegan_hub import ImagePool, cycle_loss, discriminator_loss, generator_adversarial_loss, identity_loss

REAL = torch.tensor([1.0, 0.5])
FAKE = torch.tensor([0.0, 1.0])


def test_lsgan_values():
    # D: 0.5 * (mean((D(y)-1)^2) + mean(D(G(x))^2)) = 0.5 * ((0 + 0.25)/2 + (0 + 1)/2)
    assert discriminator_loss(REAL, FAKE).item() == pytest.approx(0.3125)
    # G: mean((D(G(x))-1)^2) = (1 + 0)/2
    assert generator_adversarial_loss(FAKE).item() == pytest.approx(0.5)
    # a perfect D and a perfect G
    assert discriminator_loss(torch.ones(4), torch.zeros(4)).item() == 0
    assert generator_adversarial_loss(torch.ones(4)).item() == 0


def test_vanilla_values():
    bce = torch.nn.functional.softplus  # BCE(x, 1) = softplus(-x); BCE(x, 0) = softplus(x)
    expected_d = 0.5 * (bce(-REAL).mean() + bce(FAKE).mean())
    assert discriminator_loss(REAL, FAKE, "vanilla").item() == pytest.approx(expected_d.item())
    assert generator_adversarial_loss(FAKE, "vanilla").item() == pytest.approx(bce(-FAKE).mean().item())


def test_hinge_values():
    # 0.5 * (mean(relu(1 - [1, .5])) + mean(relu(1 + [0, 1]))) = 0.5 * (0.25 + 1.5)
    assert discriminator_loss(REAL, FAKE, "hinge").item() == pytest.approx(0.875)
    assert generator_adversarial_loss(FAKE, "hinge").item() == pytest.approx(-0.5)


def test_unknown_mode_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown GAN loss 'wgan'; valid: 'lsgan', 'vanilla', 'hinge'"):
        discriminator_loss(REAL, FAKE, "wgan")


def test_cycle_and_identity_are_mean_l1():
    a = torch.zeros(1, 1, 2, 2)
    b = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])
    assert cycle_loss(b, a).item() == pytest.approx(0.625)
    assert identity_loss(b, a).item() == pytest.approx(0.625)
    assert cycle_loss(a, a).item() == 0


def test_pool_fills_then_mixes_history():
    pool = ImagePool(size=3, seed=0)
    for i in range(3):  # while filling, each query returns the new image and stores it
        out = pool.query(torch.full((1, 1, 2, 2), float(i)))
        assert out[0, 0, 0, 0].item() == i
    assert len(pool) == 3
    returned = [pool.query(torch.full((1, 1, 2, 2), 100.0 + i))[0, 0, 0, 0].item() for i in range(200)]
    old = sum(v < 100 or v != 100 + k for k, v in enumerate(returned))
    assert 60 < old < 140  # about half the answers come from the history
    assert len(pool) == 3


def test_pool_size_zero_is_a_pass_through():
    x = torch.randn(4, 1, 2, 2)
    assert ImagePool(0).query(x) is x


def test_pool_state_round_trip_resumes_exactly():
    a = ImagePool(size=4, seed=3)
    for _ in range(6):
        a.query(torch.randn(2, 1, 2, 2))
    b = ImagePool(size=4, seed=99)
    b.load_state_dict({k: v.clone() for k, v in a.state_dict().items()})
    x = torch.randn(3, 1, 2, 2)
    assert torch.equal(a.query(x), b.query(x))
    assert all(torch.equal(p, q) for p, q in zip(a.images, b.images))
