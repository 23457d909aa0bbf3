"""Contrastive unpaired translation for the trainer: ``[model] family = "cut"`` (CUT and FastCUT, Park, Efros, Zhang,
Zhu, ECCV 2020; ``mode`` picks the authors' preset).

Networks: G (A -> B), a ``CUTGenerator`` (ResNet with anti-aliased sampling), the one network exported; D, their
anti-aliased PatchGAN; H, the projection head of the PatchNCE loss: per encoder layer a 2-layer MLP (``head_units``)
applied to ``num_patches`` feature vectors drawn at random places. The authors build the head lazily from the first
batch; its inputs are the channel counts of G's layers, known from G's config, so here it is built with the other
networks: its weights and its optimizer state are part of every checkpoint, and a resumed run continues exactly.

The step is the authors' ``CUTModel.optimize_parameters``: G's forward (on A, and on B too for the identity NCE term;
FastCUT flips the batch half of the time), D on G's output detached as fake and on B as real (halved), then G and H
against D plus the PatchNCE loss between A and G(A) (and between B and G(B), averaged with it), one Adam step each.
Their random numbers come from NumPy's global generator, as theirs (the flip, the patch places), which the training
checkpoint saves with the others. Initialisation is theirs: Xavier-normal with gain 0.02.
"""

from __future__ import annotations

from dataclasses import make_dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.cut import CUTGenerator
from ..models.discriminator import PatchDiscriminator
from .families import Family, StepParts, register
from .losses import GAN_MODES, critic_loss, generator_adversarial_loss
from .schema import key, option_keys

LOSS_NAMES = ("G_GAN", "NCE", "NCE_Y", "D_real", "D_fake")
#: The authors' two presets: (identity NCE term, NCE weight, flip equivariance).
MODES = {"cut": (True, 1.0, False), "fastcut": (False, 10.0, True)}

_GENERATOR = [o for o in CUTGenerator.options if o.train]
_CRITIC = [o for o in PatchDiscriminator.options if o.train]
_CRITIC_DEFAULTS = {"d_downsampling": "antialias"}


CUTModel = make_dataclass(
    "CUTModelConfig",
    [
        ("family", str, key("cut", "model family (`cyclegan_hub.training.families`)")),
        ("mode", str, key("cut", 'the authors\' preset: "cut" or "fastcut"', choices=tuple(MODES))),
        *option_keys(_GENERATOR),
        *option_keys(_CRITIC, _CRITIC_DEFAULTS),
        ("gan_mode", str, key("lsgan", "adversarial loss (the authors': lsgan)", choices=GAN_MODES)),
        ("lambda_gan", float, key(1.0, "weight of the GAN loss (the authors': 1)", low=0.0, high=1e4)),
        (
            "lambda_nce",
            float | None,
            key(None, "weight of PatchNCE (none: the mode's, CUT 1, FastCUT 10)", low=0.0, high=1e4),
        ),
        ("nce_idt", bool | None, key(None, "identity NCE term on B (none: the mode's, CUT yes, FastCUT no)")),
        ("flip_equivariance", bool | None, key(None, "flip the batch half of the time (none: the mode's, FastCUT)")),
        ("nce_layers", str, key("0,4,8,12,16", "G's layers whose features PatchNCE compares (the authors')")),
        ("num_patches", int, key(256, "patches drawn per layer (the authors': 256)", low=1, high=65_536)),
        ("head_units", int, key(256, "units of the projection head's MLPs (the authors': 256)", low=1, high=4096)),
        ("nce_t", float, key(0.07, "PatchNCE temperature (the authors': 0.07)", low=1e-4, high=10.0)),
    ],
    namespace={"__doc__": "``[model]`` of CUT / FastCUT: the generator, the critic, the contrastive objective."},
)


def recipe(m) -> tuple[bool, float, bool]:
    """(identity NCE term, NCE weight, flip equivariance): the mode's preset where a key is not set."""
    idt, weight, flip = MODES[m.mode]
    pick = lambda value, default: default if value is None else value  # noqa: E731
    return pick(m.nce_idt, idt), pick(m.lambda_nce, weight), pick(m.flip_equivariance, flip)


def layers_of(m) -> list[int]:
    return [int(i) for i in m.nce_layers.split(",")]


def xavier(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """The authors' ``init_weights(net, "xavier", 0.02)``: Xavier-normal convolution and linear weights, zero
    biases, norm scales from N(1, gain)."""
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_normal_(module.weight, gain=gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
    return net


def encode(generator, images: torch.Tensor, layers: list[int]) -> list[torch.Tensor]:
    """The features of G's layers ``layers`` (indices into its sequential network) for ``images``."""
    features, x = [], images
    for index, layer in enumerate(generator.net):
        x = layer(x)
        if index in layers:
            features.append(x)
        if index == layers[-1]:
            return features
    return features


class PatchHead(nn.Module):
    """The projection head of PatchNCE (the authors' ``PatchSampleF`` with ``use_mlp``): per layer, the features at
    ``num_patches`` random places (the same places for the output as for the input), through a 2-layer MLP, made
    unit length."""

    def __init__(self, channels: list[int], units: int = 256):
        super().__init__()
        for index, width in enumerate(channels):
            setattr(self, f"mlp_{index}", nn.Sequential(nn.Linear(width, units), nn.ReLU(), nn.Linear(units, units)))

    def forward(self, features: list[torch.Tensor], num_patches: int, places=None):
        out, drawn = [], []
        for index, feature in enumerate(features):
            flat = feature.permute(0, 2, 3, 1).flatten(1, 2)
            if places is None:  # NumPy's global generator, as theirs
                place = np.random.permutation(flat.shape[1])[: min(num_patches, flat.shape[1])]
                place = torch.tensor(place, dtype=torch.long, device=feature.device)
            else:
                place = places[index]
            sample = getattr(self, f"mlp_{index}")(flat[:, place, :].flatten(0, 1))
            drawn.append(place)
            out.append(sample / (sample.pow(2).sum(1, keepdim=True).pow(0.5) + 1e-7))
        return out, drawn


def patch_nce(query: torch.Tensor, positive: torch.Tensor, batch: int, temperature: float) -> torch.Tensor:
    """The authors' ``PatchNCELoss`` (negatives from the same image): per patch, cross-entropy of picking the input's
    patch at the same place among all of that image's drawn patches. Unreduced, one value per patch."""
    patches, dim = query.shape
    positive = positive.detach()
    same = torch.bmm(query.view(patches, 1, -1), positive.view(patches, -1, 1)).view(patches, 1)
    query, positive = query.view(batch, -1, dim), positive.view(batch, -1, dim)
    count = query.size(1)
    others = torch.bmm(query, positive.transpose(2, 1))
    others.masked_fill_(torch.eye(count, device=query.device, dtype=torch.bool)[None], -10.0)
    logits = torch.cat((same, others.view(-1, count)), dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(logits.size(0), dtype=torch.long, device=query.device), reduction="none")


def _networks(config) -> dict[str, nn.Module]:
    m, d = config.model, config.data
    generator = {o.name: getattr(m, o.train) for o in _GENERATOR}
    shared = dict(in_channels=d.channels, out_channels=d.channels, image_size=d.image_size)
    g = xavier(
        CUTGenerator(source_domain=config.domain_a.label, target_domain=config.domain_b.label, **generator, **shared)
    )
    critic = xavier(PatchDiscriminator(**{o.name: getattr(m, o.train) for o in _CRITIC}, in_channels=d.channels))
    channels = _layer_channels(g, d.channels, layers_of(m))
    return {"G": g.train(), "D": critic, "H": xavier(PatchHead(channels, m.head_units))}


def _layer_channels(g, channels: int, layers: list[int]) -> list[int]:
    """The channels of G's layers ``layers``: one pass over the smallest image G takes."""
    with torch.no_grad():
        return [f.shape[1] for f in encode(g, torch.zeros(1, channels, g.min_size, g.min_size), layers)]


def _optimizers(nets, config, device) -> dict[str, torch.optim.Optimizer]:
    t = config.train
    adam = dict(lr=t.lr, betas=(t.beta1, t.beta2), fused=True if device.type == "cuda" else None)
    return {name: torch.optim.Adam(nets[name].parameters(), **adam) for name in ("G", "D", "H")}


def _step(parts: StepParts):
    g, d, head = parts.nets["G"], parts.nets["D"], parts.nets["H"]
    plain_g, critic = parts.plain["G"], parts.plain["D"]
    m, autocast, backward = parts.config.model, parts.autocast, parts.backward
    nce_idt, lambda_nce, flip = recipe(m)
    layers = layers_of(m)

    def nce(source: torch.Tensor, output: torch.Tensor, flipped: bool) -> torch.Tensor:
        queries = encode(plain_g, output, layers)
        if flipped:
            queries = [q.flip(3) for q in queries]
        keys, places = head(encode(plain_g, source, layers), m.num_patches, None)
        queries, _ = head(queries, m.num_patches, places)
        total = 0.0
        for query, positive in zip(queries, keys):
            total += (patch_nce(query, positive, source.shape[0], m.nce_t) * lambda_nce).mean()
        return total / len(layers)

    def step(real_a: torch.Tensor, real_b: torch.Tensor) -> torch.Tensor:
        n = real_a.shape[0]
        real = torch.cat((real_a, real_b), dim=0) if nce_idt else real_a
        flipped = flip and np.random.random() < 0.5
        if flipped:
            real = torch.flip(real, [3])
        with autocast():
            fake = g(real)
        fake_b, idt_b = fake[:n], fake[n:]
        critic.requires_grad_(True)
        parts.optimizers["D"].zero_grad(set_to_none=True)
        with autocast():
            d_fake = critic_loss(d(fake_b.detach()), False, m.gan_mode)
            d_real = critic_loss(d(real_b), True, m.gan_mode)
        backward((d_fake + d_real) * 0.5)
        parts.optimizers["D"].step()
        critic.requires_grad_(False)
        parts.optimizers["G"].zero_grad(set_to_none=True)
        parts.optimizers["H"].zero_grad(set_to_none=True)
        with autocast():
            g_gan = generator_adversarial_loss(d(fake_b), m.gan_mode) * m.lambda_gan
            nce_x = nce(real_a, fake_b, flipped)
            nce_y = nce(real_b, idt_b, flipped) if nce_idt else torch.zeros(())
            both = (nce_x + nce_y) * 0.5 if nce_idt else nce_x
        backward(g_gan + both)
        parts.optimizers["G"].step()
        parts.optimizers["H"].step()
        return torch.stack([g_gan, nce_x, nce_y, d_real, d_fake]).detach().float()

    return step


def _check(config) -> None:
    m, size = config.model, config.data.image_size
    layers = layers_of_checked(m)
    with torch.device("meta"):
        g = CUTGenerator(**{o.name: getattr(m, o.train) for o in _GENERATOR}, in_channels=1, out_channels=1)
    if layers[-1] >= len(g.net):
        raise ValueError(f"model.nce_layers: G has layers 0 to {len(g.net) - 1}, not {layers[-1]}")
    critic = {o.name: getattr(m, o.train) for o in _CRITIC}
    with torch.device("meta"):
        rows, cols = PatchDiscriminator(**critic | {"in_channels": 1, "base_channels": 1}).output_size(size, size)
    if min(rows, cols) < 1:
        raise ValueError(f"the critic (model.d_layers = {m.d_layers}) sees nothing of {size}x{size} images")


def layers_of_checked(m) -> list[int]:
    try:
        layers = layers_of(m)
    except ValueError:
        raise ValueError(
            f"model.nce_layers = {m.nce_layers!r}: comma-separated layer numbers, e.g. 0,4,8,12,16"
        ) from None
    if not layers or layers != sorted(set(layers)) or layers[0] < 0:
        raise ValueError(f"model.nce_layers = {m.nce_layers!r}: increasing layer numbers from 0, e.g. 0,4,8,12,16")
    return layers


def _describe(config) -> list[str]:
    m = config.model
    nce_idt, lambda_nce, flip = recipe(m)
    return [
        f"- generator: {m.mode.replace('fast', 'Fast').replace('cut', 'CUT')}, ResNet with {m.n_blocks} blocks, "
        f"{m.base_channels} base channels, {m.downsampling} down / {m.upsampling} up, {m.norm} norm",
        f"- critic: PatchGAN, {m.d_layers} layers, {m.d_downsampling} downsampling",
        f"- losses: {m.gan_mode} GAN x {m.lambda_gan} + PatchNCE x {lambda_nce} on layers {m.nce_layers} "
        f"({m.num_patches} patches, {m.head_units}-unit MLP head, temperature {m.nce_t}); identity NCE "
        f"{'on' if nce_idt else 'off'}; flip equivariance {'on' if flip else 'off'}",
    ]


def _summary(nets, size: int) -> str:
    rows, cols = nets["D"].output_size(size, size)
    head = sum(p.numel() for p in nets["H"].parameters())
    return (
        f"G: {nets['G'].num_parameters():,} parameters; D: {nets['D'].num_parameters():,}, {rows}x{cols} patches; "
        f"H (projection head): {head:,}"
    )


CUT = register(
    Family(
        name="cut",
        model_section=CUTModel,
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
