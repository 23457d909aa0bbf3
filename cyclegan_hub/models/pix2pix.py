"""Pix2PixGenerator: a paired translator (pix2pix, Isola et al. 2017), one direction, a Hub model like any other.

The network is the one CycleGenerator builds (pix2pix's U-Net-256 by default: 8 levels, batch norm, dropout 0.5 in
the inner levels); what differs is how it was trained (on pairs, against a conditional critic), its card, and how
it runs at inference (``inference``): pix2pix's own test script leaves its network in training mode, so that batch
norm uses each test image's own statistics and dropout stays on. Here ``"image_statistics"`` (the default) keeps the
first and drops the second: each image normalised by its own statistics, deterministically; ``"authors"`` keeps
dropout on as well (their outputs vary from run to run); ``"running"`` uses the running statistics of training.
"""

from __future__ import annotations

from torch import nn

from . import cards
from .cyclegan import INSTALL_COMMAND, CycleGenerator
from .layers import BatchNorm
from .options import Options, choice

INFERENCE = ("image_statistics", "authors", "running")

CITATION = """@inproceedings{isola2017image,
  title     = {Image-to-Image Translation with Conditional Adversarial Networks},
  author    = {Isola, Phillip and Zhu, Jun-Yan and Zhou, Tinghui and Efros, Alexei A.},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2017}
}"""

MODEL_CARD_TEMPLATE = (
    cards.FRONT_MATTER
    + """
# pix2pix generator: {{ config.source_domain }} → {{ config.target_domain }}

A [pix2pix]({{ paper_url }}) generator that translates **{{ config.source_domain }}** images into
**{{ config.target_domain }}** images, one way. {% if origin %}Its weights were converted from the original authors'
release (see Origin){% else %}It was trained on **paired** examples (each input beside its true output) with a
conditional adversarial loss and an L1 loss to the true output (see Training){% endif %}.

At inference each image's batch-norm layers use {% if config.inference == "running" %}the running statistics of
training{% else %}that image's own statistics, as the authors' test script does{% endif %}{% if config.inference ==
"authors" %}, and dropout stays on as in their test script (outputs vary from run to run){% else %}; dropout is off,
so a translation is deterministic{% endif %} (`inference = "{{ config.inference }}"` in config.json).

"""
    + cards.ONE_WAY_BODY
)

#: pix2pix's generator (their ``--netG unet_256 --norm batch``, dropout on), as the defaults.
PIX2PIX_DEFAULTS = {"architecture": "unet", "n_downsampling": 8, "norm": "batch", "dropout": 0.5}


def _options() -> Options:
    inference = choice(
        "image_statistics",
        "batch norm at inference: each image's own statistics (as the authors' test script), the same with dropout "
        'on as theirs ("authors"), or the running statistics ("running")',
        INFERENCE,
        card="inference",
    )
    return CycleGenerator.options.with_defaults(PIX2PIX_DEFAULTS, inference=inference)


class Pix2PixGenerator(
    CycleGenerator,
    library_name="cyclegan-hub",
    pipeline_tag="image-to-image",
    tags=["pix2pix", "image-to-image", "paired-image-translation", "gan"],
    license="mit",
    repo_url="https://github.com/cyclegan-hub/cyclegan-hub",
    paper_url="https://arxiv.org/abs/1611.07004",
    model_card_template=MODEL_CARD_TEMPLATE,
):
    """G: A -> B of pix2pix (``model_type: "pix2pix"``): CycleGenerator's network, trained on pairs, one way."""

    model_type = "pix2pix"
    #: One direction: there is no reverse to make a round trip with.
    one_way = True
    options = _options()

    def __init__(self, **config):
        inference = config.pop("inference")
        config.pop("model_type")
        CycleGenerator.__init__(self, **config)
        self.config = {"model_type": self.model_type, **config, "inference": inference}
        for module in self.modules():
            if isinstance(module, BatchNorm):
                module.image_statistics = inference != "running"

    def train(self, mode: bool = True):
        super().train(mode)
        if self.config["inference"] == "authors":  # dropout on at inference, as their test script runs it
            for module in self.modules():
                if isinstance(module, nn.Dropout):
                    module.train(True)
        return self

    def generate_model_card(self, *args, **kwargs):
        kwargs.setdefault("citation", CITATION)
        kwargs.setdefault("install", INSTALL_COMMAND)
        card = super().generate_model_card(*args, **kwargs)
        # the mixin adds CycleGenerator's tags to this class's own: a paired model is not an unpaired one
        card.data.tags = sorted(set(card.data.tags) - {"cyclegan", "unpaired-image-translation"})
        return card
