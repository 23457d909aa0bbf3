"""Model families as the trainer sees them: ``FAMILIES`` maps a name (``[model] family``) to a ``Family``.

A family says which networks a run trains (``G``: A -> B and ``F``: B -> A are the exported pair; any others, such
as CycleGAN's discriminators, stay in the checkpoint), which optimizers update them, what state its step keeps
between steps (CycleGAN's pools of past fakes), its ``[model]`` config keys, and the step itself. The trainer's
setup and loop are the same for every family; adding one is ``register(Family(...))`` with its networks (Hub
models whose config is declared with ``Options`` and whose ``translation_spec`` says how to translate with them)
and its objective, without editing the loop or any CycleGAN module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .. import families as records
from ..models.cyclegan import CycleGenerator
from ..models.discriminator import PatchDiscriminator
from .losses import ImagePool
from .objective import LOSS_NAMES, Networks, Weights, cyclegan_step
from .schema import model_section


@dataclass
class StepParts:
    """What a family's step works on, made once by the trainer: the networks as the step calls them (possibly
    DDP-wrapped or compiled), the same networks unwrapped, the optimizers, the family's pools, the whole training
    config, and accelerate's (or plain torch's) ``autocast`` and ``backward``."""

    nets: dict[str, Callable[[torch.Tensor], torch.Tensor]]
    plain: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    pools: dict[str, ImagePool]
    config: object
    autocast: Callable
    backward: Callable


@dataclass(frozen=True)
class Family:
    """One model family for the trainer. Every callable takes the whole ``TrainingConfig``.

    Attributes:
        name: the ``[model] family`` value.
        model_section: the dataclass of its ``[model]`` keys (``schema.model_section``), ``family`` first.
        build: config -> {name: network}, with ``G`` (A -> B) and ``F`` (B -> A) the exported pair.
        optimizers: (networks, config, device) -> {name: optimizer}; any torch optimizer checkpoints exactly.
        pools: config -> {name: ImagePool} kept per process (empty for a family without them).
        make_step: StepParts -> step(real_a, real_b) -> the detached losses ``loss_names`` as one tensor.
        loss_names: names of the losses its step returns, in order (what the trainer logs).
        check: config -> None, ValueError for settings of the family that cannot work together.
        describe: config -> markdown bullet lines about its networks, for the cards.
        summary: (networks, image size) -> one line about the networks, printed at start.
        exported: the networks a run exports: ``("G", "F")``, a pair (``generator_AtoB/``, ``generator_BtoA/``),
            or ``("G",)``, one direction (``generator_AtoB/`` only).
    """

    name: str
    model_section: type
    build: Callable[[object], dict[str, nn.Module]]
    optimizers: Callable[[dict[str, nn.Module], object, torch.device], dict[str, torch.optim.Optimizer]]
    pools: Callable[[object], dict[str, ImagePool]]
    make_step: Callable[[StepParts], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
    loss_names: tuple[str, ...]
    check: Callable[[object], None] = lambda config: None
    describe: Callable[[object], list[str]] = lambda config: []
    summary: Callable[[dict[str, nn.Module], int], str] = lambda nets, size: ", ".join(
        f"{name}: {sum(p.numel() for p in net.parameters()):,} parameters" for name, net in nets.items()
    )
    exported: tuple[str, ...] = ("G", "F")


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Make ``family``'s trainer available as ``[model] family = "<name>"`` (its record, ``cyclegan_hub.families``,
    names the module that calls this)."""
    FAMILIES[family.name] = family
    return family


def get(name: str) -> Family:
    """The trainer of the family called ``name`` (its module imported on first use); ValueError listing the known
    families (and the nearest) otherwise, or naming the extra its trainer needs."""
    if name not in FAMILIES:
        record = records.get(name)
        if record.trainer is None:
            raise ValueError(f"the {record.title} family ({name!r}) cannot be trained here")
        record.load("trainer")
    return FAMILIES[name]


# ---------------------------------------------------------------------------------------------------------------
# CycleGAN (Zhu et al., 2017): two CycleGenerators, two PatchDiscriminators, Eq. 3 with the identity term
# ---------------------------------------------------------------------------------------------------------------


def _cyclegan_networks(config) -> dict[str, nn.Module]:
    """G (A -> B), F (B -> A), D_A (judges domain A: F's outputs) and D_B (judges domain B: G's outputs)."""
    m, d, a, b = config.model, config.data, config.domain_a.label, config.domain_b.label
    shared = dict(in_channels=d.channels, out_channels=d.channels, image_size=d.image_size)
    generator = {o.name: getattr(m, o.train) for o in CycleGenerator.options if o.train} | shared
    critic = {o.name: getattr(m, o.train) for o in PatchDiscriminator.options if o.train} | {"in_channels": d.channels}
    return {
        "G": CycleGenerator(source_domain=a, target_domain=b, **generator),
        "F": CycleGenerator(source_domain=b, target_domain=a, **generator),
        "D_A": PatchDiscriminator(**critic),
        "D_B": PatchDiscriminator(**critic),
    }


def _cyclegan_optimizers(nets, config, device) -> dict[str, torch.optim.Optimizer]:
    """Adam for both generators together and for both discriminators together (the paper: 2e-4, (0.5, 0.999));
    fused on CUDA."""
    t = config.train
    adam = dict(lr=t.lr, betas=(t.beta1, t.beta2), fused=True if device.type == "cuda" else None)
    return {
        "G": torch.optim.Adam([*nets["G"].parameters(), *nets["F"].parameters()], **adam),
        "D": torch.optim.Adam([*nets["D_A"].parameters(), *nets["D_B"].parameters()], **adam),
    }


def _cyclegan_pools(config) -> dict[str, ImagePool]:
    t = config.train
    return {"A": ImagePool(t.pool_size, seed=t.seed * 2 + 1), "B": ImagePool(t.pool_size, seed=t.seed * 2 + 2)}


def _cyclegan_step(parts: StepParts):
    nets, plain, t = parts.nets, parts.plain, parts.config.train
    networks = Networks(nets["G"], nets["F"], nets["D_A"], nets["D_B"], plain["D_A"], plain["D_B"])
    weights = Weights(t.gan_mode, t.lambda_cycle, t.lambda_identity)
    opt_g, opt_d = parts.optimizers["G"], parts.optimizers["D"]

    def step(real_a: torch.Tensor, real_b: torch.Tensor) -> torch.Tensor:
        return cyclegan_step(
            networks,
            opt_g,
            opt_d,
            parts.pools,
            real_a,
            real_b,
            weights,
            autocast=parts.autocast,
            backward=parts.backward,
        )

    return step


def _cyclegan_check(config) -> None:
    m, size = config.model, config.data.image_size
    with torch.device("meta"):  # the patch map the discriminator gives at this size, without building anything
        critic = PatchDiscriminator(in_channels=config.data.channels, base_channels=1, n_layers=m.d_layers)
    rows, cols = critic.output_size(size, size)
    if min(rows, cols) < 2:
        raise ValueError(
            f"the discriminator (model.d_layers = {m.d_layers}) gives a {rows}x{cols} patch map on {size}x{size} "
            f"images; use fewer layers (model.d_layers = {max(1, m.d_layers - 1)}) or larger images"
        )
    if m.architecture == "resnet" and m.n_downsampling > 5:
        raise ValueError(f"model.n_downsampling = {m.n_downsampling}: a ResNet generator takes 0 to 5")
    if m.architecture == "unet" and m.n_downsampling < 2:
        raise ValueError("model.n_downsampling: a U-Net generator needs at least 2 levels")


def _cyclegan_describe(config) -> list[str]:
    m, t = config.model, config.train
    return [
        f"- generators: {m.architecture}, {m.base_channels} base channels, {m.n_blocks} blocks, {m.norm} norm, "
        f"{m.upsampling} upsampling",
        f"- discriminators: PatchGAN, {m.d_layers} layers, {m.d_base_channels} base channels",
        f"- losses: {t.gan_mode} GAN, cycle x {t.lambda_cycle}, identity x {t.lambda_identity} x cycle; pool of "
        f"{t.pool_size}",
    ]


def _cyclegan_summary(nets, size: int) -> str:
    d_a = nets["D_A"]
    rows, cols = d_a.output_size(size, size)
    field = d_a.receptive_field
    return (
        f"G, F: {nets['G'].num_parameters():,} parameters each; D_A, D_B: {d_a.num_parameters():,} each, "
        f"{rows}x{cols} patches of {field}x{field}"
    )


CYCLEGAN = register(
    Family(
        name="cyclegan",
        model_section=model_section(
            "ModelConfig",
            "``[model]``: the generators (`CycleGenerator`) and discriminators (`PatchDiscriminator`).",
            "cyclegan",
            *CycleGenerator.options,
            *PatchDiscriminator.options,
        ),
        build=_cyclegan_networks,
        optimizers=_cyclegan_optimizers,
        pools=_cyclegan_pools,
        make_step=_cyclegan_step,
        loss_names=LOSS_NAMES,
        check=_cyclegan_check,
        describe=_cyclegan_describe,
        summary=_cyclegan_summary,
    )
)
