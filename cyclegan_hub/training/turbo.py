"""The one-step family for the trainer: ``[model] family = "cyclegan-turbo"`` (CycleGAN-Turbo, Parmar et al., 2024).

Networks: G (A -> B) and F (B -> A) are ``OneStepTranslator``s sharing one UNet and its LoRA adapter, each with its
own VAE adapter, skip convolutions and caption embedding (computed once from ``caption_a`` / ``caption_b`` with the
base's text encoder, which is then dropped); D_A and D_B are PatchGAN discriminators, or (``discriminator = "clip"``)
heads on one frozen CLIP image encoder, after the authors' "vision-aided" discriminator
(``cyclegan_hub.models.clip_discriminator``).

The step is the authors': three generator updates (cycle L1, then GAN, then identity L1), each with its own backward,
gradient clipping and AdamW step, then the discriminators on fakes and on reals. Memory is what its users hit: only
the adapters, ``conv_in`` and the skips train; ``gradient_checkpointing`` recomputes activations; bf16 autocast
(``train.mixed_precision = "bf16"``) keeps float32 master weights, so that training stays correct.
"""

from __future__ import annotations

import os
from dataclasses import make_dataclass, replace
from pathlib import Path

import torch
from torch import nn

from ..models.clip_discriminator import POLICY, CLIPDiscriminator, check_policy, load_encoder, multilevel_sigmoid
from ..models.discriminator import PatchDiscriminator
from ..models.turbo import OneStepTranslator, base_location, embed_caption
from . import losses
from .families import Family, StepParts, register
from .perceptual import TRUNK, load_lpips, lpips_distance
from .schema import key, option_key

LOSS_NAMES = ("cycle", "G_gan", "identity", "D_A", "D_B")
DISCRIMINATORS = ("patchgan", "clip")

_TRANSLATOR = OneStepTranslator.options
_NAMED = {
    "base_model": replace(_TRANSLATOR["base_model"], train="base_model"),
    "base_revision": replace(_TRANSLATOR["base_revision"], train="base_revision"),
}
_TRAINED = [o for o in _TRANSLATOR if o.train]
_CRITIC = [o for o in PatchDiscriminator.options if o.train]

TurboModel = make_dataclass(
    "TurboModelConfig",
    [
        ("family", str, key("cyclegan-turbo", "model family (`cyclegan_hub.training.families`)")),
        *((o.train, o.python_type, option_key(o)) for o in (*_NAMED.values(), *_TRAINED)),
        ("caption_a", str, key("", "caption of domain A (what F translates into; empty: the domain's label)")),
        ("caption_b", str, key("", "caption of domain B (what G translates into; empty: the domain's label)")),
        (
            "discriminator",
            str,
            key(
                "patchgan",
                "the discriminators: PatchGAN, or heads on a frozen CLIP image encoder "
                "(the authors' kind; its weights from `clip_model`)",
                choices=DISCRIMINATORS,
            ),
        ),
        (
            "clip_model",
            str,
            key(
                "openai/clip-vit-base-patch32",
                'the CLIP image encoder of `discriminator = "clip"` (a Hub id or a folder)',
            ),
        ),
        *((o.train, o.python_type, option_key(o)) for o in _CRITIC),
        (
            "augment",
            str,
            key(
                POLICY,
                "the CLIP critic's DiffAugment policy, on every call of it (the authors': color,translation,cutout; "
                "empty: none)",
            ),
        ),
        (
            "train_encode",
            str,
            key(
                "sample",
                "latents in training: a sample of the VAE posterior (the authors') or its mean; a translator's own "
                "`encode` decides at inference",
                choices=("sample", "mean"),
            ),
        ),
        ("lambda_gan", float, key(0.5, "weight of the GAN loss (the authors': 0.5)", low=0.0, high=100.0)),
        (
            "lambda_cycle_lpips",
            float,
            key(10.0, "weight of LPIPS in the cycle loss (the authors': 10; 0: off)", low=0.0, high=1000.0),
        ),
        (
            "lambda_idt_lpips",
            float,
            key(1.0, "weight of LPIPS in the identity loss (the authors': 1; 0: off)", low=0.0, high=1000.0),
        ),
        (
            "lpips_model",
            str,
            key(TRUNK, "LPIPS's VGG16 trunk: a Hub id (timm's safetensors of torchvision's weights) or a folder"),
        ),
        ("weight_decay", float, key(1e-2, "AdamW weight decay (the authors': 1e-2)", low=0.0, high=1.0)),
        ("max_grad_norm", float, key(10.0, "gradient clipping of each update (the authors': 10)", low=0.0, high=1e6)),
        ("gradient_checkpointing", bool, key(False, "recompute activations in the backward pass: less memory")),
    ],
    namespace={"__doc__": "``[model]`` of the one-step family: the base, the adapters, the captions, the objective."},
)


def _networks(config) -> dict[str, nn.Module]:
    m, d = config.model, config.data
    a, b = config.domain_a.label, config.domain_b.label
    shared = {o.name: getattr(m, o.train) for o in (*_NAMED.values(), *_TRAINED)}
    shared["base_model"] = base_location(shared["base_model"])
    captions = {"G": m.caption_b or b, "F": m.caption_a or a}
    g = OneStepTranslator(source_domain=a, target_domain=b, caption=captions["G"], image_size=d.image_size, **shared)
    f = OneStepTranslator(
        source_domain=b, target_domain=a, caption=captions["F"], image_size=d.image_size, unet=g.unet, **shared
    )
    for name, net in (("G", g), ("F", f)):
        net.train()
        net.train_encode = m.train_encode
        net.set_caption_embedding(embed_caption(shared["base_model"], captions[name], shared["base_revision"]))
        if m.gradient_checkpointing:
            net.enable_gradient_checkpointing()
    if m.discriminator == "clip":  # both judge with one frozen encoder; only their heads train
        encoder = load_encoder(m.clip_model)
        critics = {name: CLIPDiscriminator(encoder, policy=m.augment) for name in ("D_A", "D_B")}
        return {"G": g, "F": f, **critics}
    critic = {o.name: getattr(m, o.train) for o in _CRITIC} | {"in_channels": 3}
    return {"G": g, "F": f, "D_A": PatchDiscriminator(**critic), "D_B": PatchDiscriminator(**critic)}


def generator_parameters(nets) -> list[nn.Parameter]:
    """What the generators train, each once (the shared UNet's adapter is in both)."""
    unique = {id(p): p for name in ("G", "F") for p in nets[name].parameters() if p.requires_grad}
    return list(unique.values())


def _optimizers(nets, config, device) -> dict[str, torch.optim.Optimizer]:
    t, m = config.train, config.model
    adamw = dict(lr=t.lr, betas=(t.beta1, t.beta2), weight_decay=m.weight_decay)
    critics = [*nets["D_A"].parameters(), *nets["D_B"].parameters()]
    return {"G": torch.optim.AdamW(generator_parameters(nets), **adamw), "D": torch.optim.AdamW(critics, **adamw)}


def _critic_losses(m, mode: str):
    """(judge, fool), each (critic, images, real) -> a loss: how a critic is trained to judge ``images`` real or
    fake, and how the generators are scored against it. The vision-aided critic's multilevel sigmoid loss serves
    both; a PatchGAN's ``gan_mode`` loss differs on the generator's side for hinge (``generator_adversarial_loss``)."""
    if m.discriminator == "clip":
        judge = lambda critic, images, real: multilevel_sigmoid(critic(images), real)  # noqa: E731
        return judge, judge
    judge = lambda critic, images, real: losses.critic_loss(critic(images), real, mode)  # noqa: E731
    fool = lambda critic, images, real: losses.generator_adversarial_loss(critic(images), mode)  # noqa: E731
    return judge, fool


def _step(parts: StepParts):
    nets, t, m = parts.nets, parts.config.train, parts.config.model
    G, F, D_A, D_B = nets["G"], nets["F"], nets["D_A"], nets["D_B"]
    opt_g, opt_d = parts.optimizers["G"], parts.optimizers["D"]
    params_g = generator_parameters(parts.plain)
    params_d = [*parts.plain["D_A"].parameters(), *parts.plain["D_B"].parameters()]
    lam_cycle, lam_gan = t.lambda_cycle, m.lambda_gan
    lam_idt = t.lambda_cycle * t.lambda_identity
    judge, fool = _critic_losses(m, t.gan_mode)
    lam_cycle_lpips, lam_idt_lpips = m.lambda_cycle_lpips, m.lambda_idt_lpips
    perceptual = load_lpips(m.lpips_model) if lam_cycle_lpips or lam_idt_lpips else None

    def term(output, target, weight, weight_lpips):
        """One image's cycle or identity term, as the authors sum it: weight x L1 (+ weight_lpips x LPIPS)."""
        l1 = weight * losses.cycle_loss(output, target)
        if perceptual is None or weight_lpips == 0:
            return l1
        perceptual.to(output.device)
        return l1 + weight_lpips * lpips_distance(perceptual, output, target)

    def update(loss, optimizer, params):
        parts.backward(loss)
        if m.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, m.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def step(real_a: torch.Tensor, real_b: torch.Tensor) -> torch.Tensor:
        # cycle: A -> B -> A and B -> A -> B
        with parts.autocast():
            loss_cycle = term(F(G(real_a)), real_a, lam_cycle, lam_cycle_lpips)
            loss_cycle = loss_cycle + term(G(F(real_b)), real_b, lam_cycle, lam_cycle_lpips)
        update(loss_cycle, opt_g, params_g)
        # GAN: the generators against the discriminators (whose gradients from here are dropped)
        with parts.autocast():
            fake_a, fake_b = F(real_b), G(real_a)
            loss_gan = lam_gan * fool(D_B, fake_b, True) + lam_gan * fool(D_A, fake_a, True)
        update(loss_gan, opt_g, params_g)
        opt_d.zero_grad(set_to_none=True)
        # identity: each generator fed its target domain changes nothing
        loss_idt = torch.zeros((), device=real_a.device)
        if lam_idt > 0:
            with parts.autocast():
                loss_idt = term(G(real_b), real_b, lam_idt, lam_idt_lpips)
                loss_idt = loss_idt + term(F(real_a), real_a, lam_idt, lam_idt_lpips)
            update(loss_idt, opt_g, params_g)
        # discriminators, as the authors: one update on the fakes, then one on the reals, each loss halved (every
        # call in their order, B's critic first, so that the augmentations draw the same random numbers)
        fake_a, fake_b = fake_a.detach(), fake_b.detach()
        with parts.autocast():
            d_b_fake = judge(D_B, fake_b, False)
            d_a_fake = judge(D_A, fake_a, False)
        update((lam_gan * d_b_fake + lam_gan * d_a_fake) * 0.5, opt_d, params_d)
        with parts.autocast():
            d_b_real = judge(D_B, real_b, True)
            d_a_real = judge(D_A, real_a, True)
        update((lam_gan * d_b_real + lam_gan * d_a_real) * 0.5, opt_d, params_d)
        loss_d_a, loss_d_b = 0.5 * (d_a_fake + d_a_real), 0.5 * (d_b_fake + d_b_real)
        return torch.stack([x.detach().float() for x in (loss_cycle, loss_gan, loss_idt, loss_d_a, loss_d_b)])

    return step


def _check(config) -> None:
    t, d = config.train, config.data
    check_policy(config.model.augment)
    if d.channels != 3:
        raise ValueError(f"the one-step family translates RGB images: data.channels = 3, not {d.channels}")
    if d.image_size % 8:
        raise ValueError(f"data.image_size = {d.image_size}: the one-step family needs a multiple of 8 (the VAE's)")
    if t.compile:
        raise ValueError("train.compile: not supported by the one-step family (peft's adapters recompile each call)")
    if t.channels_last:
        raise ValueError("train.channels_last: not supported by the one-step family")


def _describe(config) -> list[str]:
    m = config.model
    base = f"`{Path(m.base_model).name}` (a local folder)" if os.path.isdir(m.base_model) else f"`{m.base_model}`"
    if m.discriminator == "clip":
        clip = f"`{Path(m.clip_model).name}`" if os.path.isdir(m.clip_model) else f"`{m.clip_model}`"
        augment = f"DiffAugment `{m.augment}` on every call" if m.augment else "no augmentation"
        critics = (
            f'the authors\' "vision-aided" critic: heads on the frozen CLIP image encoder {clip} (two token grids '
            f"and the image embedding), {augment}, multilevel sigmoid loss"
        )
    else:
        critics = f"PatchGAN, {m.d_layers} layers, {m.d_base_channels} base channels, `{config.train.gan_mode}` loss"
    return [
        f"- translators: CycleGAN-Turbo on {base}, UNet LoRA rank {m.unet_rank} (shared by both "
        f"directions), VAE LoRA rank {m.vae_rank} per direction, timestep {m.timestep}; latents in training: the "
        f"posterior's {m.train_encode}; gradient checkpointing {'on' if m.gradient_checkpointing else 'off'}",
        f"- discriminators: {critics}, updated on fakes then on reals; GAN x {m.lambda_gan}, "
        f"AdamW weight decay {m.weight_decay}, gradients clipped at {m.max_grad_norm}",
        f"- cycle: L1 x {config.train.lambda_cycle} + LPIPS (VGG) x {m.lambda_cycle_lpips}; identity: L1 x "
        f"{config.train.lambda_cycle * config.train.lambda_identity} + LPIPS x {m.lambda_idt_lpips}",
    ]


def _summary(nets, size: int) -> str:
    trained = sum(p.numel() for p in generator_parameters(nets))
    frozen = sum(p.numel() for n in ("G", "F") for p in nets[n].parameters() if not p.requires_grad)
    critics = sum(p.numel() for p in nets["D_A"].parameters())
    return f"G, F: {trained:,} trained parameters (shared UNet adapter), {frozen:,} frozen; D_A, D_B: {critics:,} each"


TURBO = register(
    Family(
        name="cyclegan-turbo",
        model_section=TurboModel,
        build=_networks,
        optimizers=_optimizers,
        pools=lambda config: {},
        make_step=_step,
        loss_names=LOSS_NAMES,
        check=_check,
        describe=_describe,
        summary=_summary,
    )
)
