"""pix2pix's generators into ``Pix2PixGenerator`` folders: the zoo's ``pix2pix/`` entries (the authors' released
``models-pytorch/NAME.pth``) and, with ``convert FILE --inference MODE``, the ``latest_net_G.pth`` of a pix2pix run.

Their file is the official ``UnetGenerator`` (``--netG unet_256 --norm batch``, dropout on), which ``layouts``
already reads: the tensors are mapped by that conversion (no second mapping) into a CycleGenerator, measured against
the network computed from the file's own tensors with the running statistics, and the pix2pix model is then built on
the same config with ``inference`` and dropout 0.5 in the inner levels (their default: dropout has no tensors, so a
file cannot show it; a ResNet generator's dropout is read off its tensors' indices). Its output is measured a second
time as it runs by default, against their graph run as their test script runs it (``train()`` mode: batch norm on
each image's own statistics), with dropout off.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import command, layouts, zoo
from .checkpoints import ConversionError, domains_from_name

#: How a converted generator runs at inference (``Pix2PixGenerator``'s ``inference``).
INFERENCE = ("image_statistics", "authors", "running")
DEFAULT_INFERENCE = "image_statistics"
#: pix2pix's dropout in the inner levels of its U-Net (their default; ``--no_dropout`` leaves no trace in a file).
DROPOUT = 0.5


class _OwnStatistics(layouts._FunctionalLayers):
    """Their layers as their test script runs them (left in ``train()`` mode): batch norm normalises with the batch's
    own statistics, which for one image are that image's, and updates nothing here."""

    def norm(self, x, key, kind):
        if kind != "batch":
            return super().norm(x, key, kind)
        weight, bias = self.state[f"{key}.weight"].float(), self.state[f"{key}.bias"].float()
        return F.batch_norm(x, None, None, weight, bias, training=True)


def _own_statistics_difference(model, state: dict, layout: layouts.Layout, shape: tuple) -> float:
    """max |model - their network in train() mode, dropout off| on a random image of ``shape`` (batch 1)."""
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    reference = layouts._reference_resnet if layout.config["architecture"] == "resnet" else layouts._reference_unet
    with torch.inference_mode():
        for module in model.modules():
            if isinstance(module, nn.Dropout):  # "authors" keeps dropout on at inference: not for a measurement
                module.eval()
        try:
            ours = model.float()(x)
        finally:
            model.eval()  # back to its own inference behaviour
        theirs = reference(_OwnStatistics(state), layout, x)
    return float((ours - theirs).abs().max())


def origin_text(
    checkpoint: command.Checkpoint, layout: layouts.Layout, dropout: float, own: float | None, running: float, shape
) -> str:
    from .. import __version__

    released = checkpoint.zoo_model
    if released is not None and released.method == zoo.PIX2PIX:
        credit = released.credit()
    else:
        credit = (
            "A pix2pix generator (Isola, Zhu, Zhou, Efros, CVPR 2017, https://arxiv.org/abs/1611.07004) in the "
            "layout of pytorch-CycleGAN-and-pix2pix"
        )
    if layout.config["architecture"] == "unet":
        kept = (
            f"dropout {dropout:g} in the inner levels, as pix2pix trains (dropout has no tensors: the file cannot "
            "show it)"
            if dropout
            else "no dropout"
        )
    else:
        kept = f"dropout {dropout:g}, read off the tensors' indices" if dropout else "no dropout"
    measured = f"differ by at most {running:.1e} with batch norm on the running statistics"
    if own is not None:
        measured = (
            f"differ by at most {own:.1e} with batch norm on each image's own statistics, as their test script runs "
            f"it (its network in training mode; dropout off), and by at most {running:.1e} with the running "
            "statistics"
        )
    return (
        f"{credit}. Converted by cyclegan-hub {__version__} from {checkpoint.provenance} (SHA-256 "
        f"`{checkpoint.digest}`): {layout.describe()}, read off the tensors and renamed, nothing else changed; "
        f"{kept}.\n\n"
        f"Equality: on a random input of shape {list(shape)}, this model's output and the original network's "
        f"(computed from the original tensors with torch.nn.functional) {measured} (float32 noise)."
    )


def convert_pix2pix(
    checkpoint: command.Checkpoint,
    output: str | os.PathLike,
    *,
    inference: str = DEFAULT_INFERENCE,
    source_domain: str | None = None,
    target_domain: str | None = None,
    image_size: int = 256,
    sample: str | None = None,
    name: str | None = None,
) -> list[str]:
    """One pix2pix generator as a ``Pix2PixGenerator`` save_pretrained folder at ``output``; the lines to print."""
    from ..hub.cards import CardInputs
    from ..io.imaging import open_image
    from ..models.pix2pix import Pix2PixGenerator

    if inference not in INFERENCE:
        raise ConversionError(f"--inference is one of {', '.join(INFERENCE)}, not {inference!r}")
    guessed = checkpoint.domains or domains_from_name(checkpoint.name) or ("A", "B")
    domains = (source_domain or guessed[0], target_domain or guessed[1])
    network, layout = layouts.convert_state(
        checkpoint.state, checkpoint.file, source_domain=domains[0], target_domain=domains[1], image_size=image_size
    )
    if layout.kind != "generator":
        raise ConversionError(f"{checkpoint.file} is a PatchGAN discriminator, not a generator")
    running, shape = layouts.measure_equality(network, checkpoint.state, layout)
    if running > command.TOLERANCE:
        raise ConversionError(
            f"{checkpoint.file}: the converted network differs from the original by {running:.1e}; refused"
        )
    dropout = DROPOUT if layout.config["architecture"] == "unet" else layout.config["dropout"]
    model = Pix2PixGenerator(**{**network.config, "dropout": dropout, "inference": inference})
    model.load_state_dict(network.state_dict())
    model.eval()
    own = None  # with the running statistics ("running", or a network without batch norm) it is the figure above
    if layout.config["norm"] == "batch" and inference != "running":
        own = _own_statistics_difference(model, checkpoint.state, layout, shape)
        if own > command.TOLERANCE:
            raise ConversionError(
                f"{checkpoint.file}: with each image's own batch statistics the converted network differs from the "
                f"original by {own:.1e}; refused"
            )
    origin = origin_text(checkpoint, layout, dropout, own, running, shape)
    name = name or checkpoint.name.replace("/", "-")
    picture = open_image(sample) if sample is not None else None
    command._write_folder(Path(output), (model, CardInputs(origin=origin, license=checkpoint.license)), name, picture)
    figures = f"{running:.1e} (running statistics)"
    if own is not None:
        figures = f"{own:.1e} (each image's own batch statistics, dropout off), " + figures
    return [
        f"{checkpoint.file}: {layout.describe()}, {domains[0]} -> {domains[1]}, a pix2pix generator (inference = "
        f"{inference}); max |converted - original| = {figures}",
        f"wrote {output} (config.json, model.safetensors, README.md)",
    ]


def _model_options(options: dict) -> dict:
    """The options of ``command.write_converted`` that were given, for ``convert_pix2pix``."""
    names = ("source_domain", "target_domain", "image_size", "sample", "name")
    return {k: v for k, v in options.items() if k in names and v is not None}


class Pix2PixConverter:
    """The pix2pix family's converter (its record in ``cyclegan_hub.families``): the zoo's ``pix2pix/`` entries, and
    a checkpoint file given with ``--inference``. ``settings``: the family's ``convert`` options that were given
    (inference); ``options``: those of ``command.write_converted``."""

    def checkpoint(self, source, output, *, reverse, revision, settings, options) -> list[str]:
        """A file, a folder holding one (their download script's ``checkpoints/NAME_pretrained/``) or a Hub repo."""
        if reverse is not None:
            raise ConversionError("pix2pix models translate one way: --reverse has no pix2pix pair to make")
        checkpoint = command.from_source(source, revision=revision)
        checkpoint.name = checkpoint.name.removesuffix("_pretrained")
        # a released file converted from disk is still the authors' release (by its name, as for CycleGAN's)
        checkpoint.zoo_model = zoo.ZOO.get(f"{zoo.PIX2PIX}/{checkpoint.name}")
        if checkpoint.zoo_model is not None:
            checkpoint.domains = (checkpoint.zoo_model.source_domain, checkpoint.zoo_model.target_domain)
        inference = settings.get("inference") or DEFAULT_INFERENCE
        return convert_pix2pix(checkpoint, output, inference=inference, **_model_options(options))

    def zoo(self, model, output, *, with_reverse, mirror, cache, settings, options) -> list[str]:
        """A released file, downloaded as the CycleGAN zoo's are (resumed, capped, hashed, mirrored)."""
        if with_reverse:
            raise ConversionError(f"{model.name} has no released reverse direction ({model.one_way})")
        checkpoint = command.from_zoo(model.name, mirror=mirror, cache=cache)
        inference = settings.get("inference") or DEFAULT_INFERENCE
        return convert_pix2pix(checkpoint, output, inference=inference, **_model_options(options))


CONVERTER = Pix2PixConverter()
