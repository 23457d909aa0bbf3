"""The vision-aided critic equals the authors' (``vision_aided_loss``, declared in ``tests/support/authors_critic.py``):
the same augmentations from the same random numbers, the same losses and the same gradients in its heads."""

import pytest
import torch

from cyclegan_hub.models.clip_discriminator import POLICY, CLIPDiscriminator, diff_augment
from tests.support import authors_critic
from tests.support.turbo_base import tiny_clip

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def encoder():
    return tiny_clip(12).eval().requires_grad_(False)


@pytest.mark.parametrize("shape", [(3, 3, 32, 32), (2, 3, 27, 40), (1, 3, 64, 64)])
def test_diff_augment_draws_and_applies_what_theirs_does(shape):
    images = torch.rand(shape) * 2 - 1
    torch.manual_seed(1)
    ours = diff_augment(images, POLICY)
    after_ours = torch.rand(1)
    torch.manual_seed(1)
    theirs = authors_critic.DiffAugment(images, policy=POLICY)
    assert torch.equal(ours, theirs) and torch.equal(after_ours, torch.rand(1))  # the generator left in one state
    assert not torch.equal(ours, images)


@pytest.mark.parametrize("real,for_g", [(False, False), (True, False), (True, True)])
def test_the_critic_judges_as_theirs_does(encoder, real, for_g):
    torch.manual_seed(2)
    ours = CLIPDiscriminator(encoder, width=8)
    theirs = authors_critic.Discriminator(encoder, width=8)
    missing, unexpected = theirs.load_state_dict(authors_critic.heads_from(ours), strict=False)
    heads_missing = [key for key in missing if not key.startswith("backbone.")]  # the encoder is the same object
    assert unexpected == [] and all(key.endswith(".filt") for key in heads_missing)  # their blur filters: buffers
    images = torch.rand(3, 3, 48, 48) * 2 - 1
    losses, grads = [], []
    for critic in (ours, theirs):
        torch.manual_seed(3)
        x = images.clone().requires_grad_(True)
        for _ in range(2):  # twice: spectral norm's power iteration moves on between calls
            if critic is ours:
                loss = ours.loss(x, real)
            else:
                loss = theirs(x, for_real=real, for_G=for_g).mean()
            critic.zero_grad()
            loss.backward()
        losses.append(loss.detach())
        heads = ours.heads if critic is ours else theirs.decoder.decoder
        grads.append([p.grad.clone() for p in heads[0].parameters()] + [x.grad.clone()])
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
