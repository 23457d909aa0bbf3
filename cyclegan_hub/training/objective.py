"""One optimisation step of CycleGAN's full objective (Eq. 3 of Zhu et al., 2017), as a function of its inputs.

The trainer and the benchmarks call the same ``cyclegan_step``; nothing here knows about accelerate, processes or
files: ``autocast`` and ``backward`` are passed in (accelerate's, or plain torch's).

Names: G: A -> B and F: B -> A; D_A judges images of domain A (real a, F(b)) and D_B judges domain B (real b,
G(a)). In the paper's notation A = X, B = Y, D_A = D_X and D_B = D_Y.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from . import losses
from .losses import ImagePool

#: The five losses ``cyclegan_step`` returns, in order (the names the trainer logs).
LOSS_NAMES = ("G_gan", "cycle", "identity", "D_A", "D_B")


@dataclass
class Networks:
    """The four networks of a run as the step calls them (possibly DDP-wrapped or compiled), and the two
    discriminators unwrapped: the G step calls D unwrapped so that DDP does not wait for D's gradients there."""

    G: Callable[[torch.Tensor], torch.Tensor]
    F: Callable[[torch.Tensor], torch.Tensor]
    D_A: Callable[[torch.Tensor], torch.Tensor]
    D_B: Callable[[torch.Tensor], torch.Tensor]
    plain_D_A: nn.Module
    plain_D_B: nn.Module


@dataclass(frozen=True)
class Weights:
    """The objective's settings: GAN loss and the weights of the cycle and identity terms."""

    gan_mode: str = "lsgan"
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5  # times lambda_cycle, as in the paper (Section 5.2)

    def __post_init__(self):
        losses.check_gan_mode(self.gan_mode)


def cyclegan_step(
    nets: Networks,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    pools: dict[str, ImagePool],
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    weights: Weights,
    *,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
) -> torch.Tensor:
    """G and F against frozen D_A, D_B (adversarial + cycle + identity), then D_A, D_B on real images and on fakes
    drawn from the pools of past fakes (their loss halved inside ``discriminator_loss``).

    Returns the detached losses ``LOSS_NAMES`` as one float tensor of 5 values (no device sync)."""
    d_params = [p for d in (nets.plain_D_A, nets.plain_D_B) for p in d.parameters()]
    for p in d_params:
        p.requires_grad_(False)  # D's weights get no gradient from the G step (it costs microseconds)
    mode, lam_cyc, lam_id = weights.gan_mode, weights.lambda_cycle, weights.lambda_identity
    with autocast():
        fake_b, fake_a = nets.G(real_a), nets.F(real_b)
        rec_a, rec_b = nets.F(fake_b), nets.G(fake_a)
        loss_gan = losses.generator_adversarial_loss(nets.plain_D_B(fake_b), mode) + losses.generator_adversarial_loss(
            nets.plain_D_A(fake_a), mode
        )
        loss_cycle = lam_cyc * (losses.cycle_loss(rec_a, real_a) + losses.cycle_loss(rec_b, real_b))
        loss_idt = torch.zeros((), device=real_a.device)
        if lam_id > 0:  # G fed its target domain should change nothing (Section 5.2)
            loss_idt = (
                lam_cyc
                * lam_id
                * (losses.identity_loss(nets.G(real_b), real_b) + losses.identity_loss(nets.F(real_a), real_a))
            )
        loss_g = loss_gan + loss_cycle + loss_idt
    opt_g.zero_grad(set_to_none=True)
    backward(loss_g)
    opt_g.step()
    for p in d_params:
        p.requires_grad_(True)

    with autocast():
        loss_d_b = losses.discriminator_loss(nets.D_B(real_b), nets.D_B(pools["B"].query(fake_b.detach())), mode)
        loss_d_a = losses.discriminator_loss(nets.D_A(real_a), nets.D_A(pools["A"].query(fake_a.detach())), mode)
        loss_d = loss_d_a + loss_d_b
    opt_d.zero_grad(set_to_none=True)
    backward(loss_d)
    opt_d.step()
    return torch.stack([t.detach().float() for t in (loss_gan, loss_cycle, loss_idt, loss_d_a, loss_d_b)])
