"""Paired translation for the trainer: ``[model] family = "pix2pix"`` (Isola, Zhu, Zhou, Efros, CVPR 2017).

Networks: G (A -> B), a ``Pix2PixGenerator`` (their U-Net-256 with batch norm and dropout by default), the one
network exported; D, a conditional PatchGAN that judges an input and an output together (their channels stacked).
Data: pairs (``[data] paired`` or ``aligned``), each pair cropped and flipped alike.

The step is the authors' ``Pix2PixModel.optimize_parameters``: G's forward, then D on (input, G's output detached)
as fake and on (input, true output) as real, its loss halved, one Adam step; then G against D (frozen) plus L1 to the
true output times ``lambda_l1``, one Adam step. Adam 2e-4, betas (0.5, 0.999), their linear schedule (the trainer's
``lr_constant_steps`` then ``lr_decay_steps``); the vanilla GAN loss (``gan_mode``) and ``lambda_l1 = 100``.
"""

from __future__ import annotations

from dataclasses import make_dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models.discriminator import PatchDiscriminator
from ..models.pix2pix import Pix2PixGenerator
from .families import Family, StepParts, register
from .losses import GAN_MODES, critic_loss, generator_adversarial_loss
from .schema import key, option_key, option_keys

LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake")

_GENERATOR = [o for o in Pix2PixGenerator.options if o.train]
_CRITIC_DEFAULTS = {"d_norm": "batch"}  # their --norm batch for both networks
_CRITIC = [o for o in PatchDiscriminator.options if o.train]


Pix2PixModel = make_dataclass(
    "Pix2PixModelConfig",
    [
        ("family", str, key("pix2pix", "model family (`cyclegan_hub.training.families`)")),
        *option_keys(_GENERATOR),
        *option_keys(_CRITIC, _CRITIC_DEFAULTS),
        ("gan_mode", str, key("vanilla", "adversarial loss (the authors': vanilla)", choices=GAN_MODES)),
        ("lambda_l1", float, key(100.0, "weight of L1 to the true output (the authors': 100)", low=0.0, high=1e4)),
        ("inference", str, option_key(Pix2PixGenerator.options["inference"])),
    ],
    namespace={"__doc__": "``[model]`` of pix2pix: the U-Net generator, the conditional critic, the objective."},
)


def _networks(config) -> dict[str, nn.Module]:
    m, d = config.model, config.data
    generator = {o.name: getattr(m, o.train) for o in _GENERATOR}
    g = Pix2PixGenerator(
        source_domain=config.domain_a.label,
        target_domain=config.domain_b.label,
        in_channels=d.channels,
        out_channels=d.channels,
        image_size=d.image_size,
        inference=m.inference,
        **generator,
    )
    critic = {o.name: getattr(m, o.train) for o in _CRITIC} | {"in_channels": 2 * d.channels}
    return {"G": g.train(), "D": PatchDiscriminator(**critic)}


def _optimizers(nets, config, device) -> dict[str, torch.optim.Optimizer]:
    t = config.train
    adam = dict(lr=t.lr, betas=(t.beta1, t.beta2), fused=True if device.type == "cuda" else None)
    return {
        "G": torch.optim.Adam(nets["G"].parameters(), **adam),
        "D": torch.optim.Adam(nets["D"].parameters(), **adam),
    }


def _step(parts: StepParts):
    g, d, critic = parts.nets["G"], parts.nets["D"], parts.plain["D"]
    opt_g, opt_d = parts.optimizers["G"], parts.optimizers["D"]
    m, autocast, backward = parts.config.model, parts.autocast, parts.backward

    def step(real_a: torch.Tensor, real_b: torch.Tensor) -> torch.Tensor:
        with autocast():
            fake_b = g(real_a)
        critic.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        with autocast():
            d_fake = critic_loss(d(torch.cat([real_a, fake_b.detach()], 1)), False, m.gan_mode)
            d_real = critic_loss(d(torch.cat([real_a, real_b], 1)), True, m.gan_mode)
            loss_d = (d_fake + d_real) * 0.5
        backward(loss_d)
        opt_d.step()
        critic.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        with autocast():
            g_gan = generator_adversarial_loss(d(torch.cat([real_a, fake_b], 1)), m.gan_mode)
            g_l1 = F.l1_loss(fake_b, real_b) * m.lambda_l1
        backward(g_gan + g_l1)
        opt_g.step()
        return torch.stack([g_gan, g_l1, d_real, d_fake]).detach().float()

    return step


def _check(config) -> None:
    m, size = config.model, config.data.image_size
    if not config.data.paired:
        raise ValueError(
            "the pix2pix family trains on pairs: set data.paired = true (two image columns of one source) or "
            'data.aligned = "AB" (one image, A left and B right)'
        )
    if size % 2**m.n_downsampling:
        raise ValueError(
            f"data.image_size = {size}: a U-Net with model.n_downsampling = {m.n_downsampling} needs a multiple "
            f"of {2**m.n_downsampling}"
        )
    with torch.device("meta"):
        rows, cols = PatchDiscriminator(in_channels=2, base_channels=1, n_layers=m.d_layers).output_size(size, size)
    if min(rows, cols) < 1:
        raise ValueError(f"the critic (model.d_layers = {m.d_layers}) sees nothing of {size}x{size} images")


def _describe(config) -> list[str]:
    m = config.model
    return [
        f"- generator: pix2pix, {m.architecture} with {m.n_downsampling} levels, {m.base_channels} base channels, "
        f"{m.norm} norm, dropout {m.dropout}; inference: {m.inference}",
        f"- critic: conditional PatchGAN (input and output together), {m.d_layers} layers, {m.d_norm} norm",
        f"- losses: {m.gan_mode} GAN + L1 x {m.lambda_l1}; critic loss halved, no pool",
    ]


def _summary(nets, size: int) -> str:
    rows, cols = nets["D"].output_size(size, size)
    return (
        f"G: {nets['G'].num_parameters():,} parameters; D: {nets['D'].num_parameters():,}, "
        f"{rows}x{cols} patches of {nets['D'].receptive_field}x{nets['D'].receptive_field}"
    )


PIX2PIX = register(
    Family(
        name="pix2pix",
        model_section=Pix2PixModel,
        build=_networks,
        optimizers=_optimizers,
        pools=lambda config: {},
        make_step=_step,
        loss_names=LOSS_NAMES,
        check=_check,
        describe=_describe,
        summary=_summary,
        exported=("G",),
    )
)
