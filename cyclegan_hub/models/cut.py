"""CUTGenerator: a one-way unpaired translator trained with contrastive learning (CUT and FastCUT, Park, Efros,
Zhang, Zhu, ECCV 2020), a Hub model like any other.

The network is the one CycleGenerator builds with CUT's anti-aliased down- and upsampling (the defaults here); what
differs is how it was trained (one generator and a PatchNCE loss between input and output patches instead of a
second generator and a cycle), its card, and that there is no reverse. The authors' released models, converted by
``cyclegan-hub convert --zoo cut/...``, are CycleGenerators with the same network, and start a CUT run as they are.
"""

from __future__ import annotations

from . import cards
from .cyclegan import INSTALL_COMMAND, CycleGenerator

CITATION = """@inproceedings{park2020cut,
  title     = {Contrastive Learning for Unpaired Image-to-Image Translation},
  author    = {Park, Taesung and Efros, Alexei A. and Zhang, Richard and Zhu, Jun-Yan},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year      = {2020}
}"""

MODEL_CARD_TEMPLATE = (
    cards.FRONT_MATTER
    + """
# CUT generator: {{ config.source_domain }} → {{ config.target_domain }}

A [CUT]({{ paper_url }}) generator (contrastive unpaired translation) that translates
**{{ config.source_domain }}** images into **{{ config.target_domain }}** images, one way. It was trained on unpaired
examples with an adversarial loss and a patchwise contrastive (PatchNCE) loss that keeps each output patch closer to
the input patch at its place than to the others (see Training); there is no reverse generator.

"""
    + cards.ONE_WAY_BODY
)

#: CUT's generator (their ``--netG resnet_9blocks``, anti-aliased sampling), as the defaults.
CUT_DEFAULTS = {"downsampling": "antialias", "upsampling": "antialias"}


class CUTGenerator(
    CycleGenerator,
    library_name="cyclegan-hub",
    pipeline_tag="image-to-image",
    tags=["cut", "contrastive-unpaired-translation", "image-to-image", "gan"],
    license="mit",
    repo_url="https://github.com/cyclegan-hub/cyclegan-hub",
    paper_url="https://arxiv.org/abs/2007.15651",
    model_card_template=MODEL_CARD_TEMPLATE,
):
    """G: A -> B of CUT / FastCUT (``model_type: "cut"``): CycleGenerator's network, trained without a reverse."""

    model_type = "cut"
    #: One direction: there is no reverse to make a round trip with.
    one_way = True
    options = CycleGenerator.options.with_defaults(CUT_DEFAULTS)

    def __init__(self, **config):
        config.pop("model_type")
        CycleGenerator.__init__(self, **config)
        self.config = {"model_type": self.model_type, **config}

    def generate_model_card(self, *args, **kwargs):
        kwargs.setdefault("citation", CITATION)
        kwargs.setdefault("install", INSTALL_COMMAND)
        card = super().generate_model_card(*args, **kwargs)
        card.data.tags = sorted(set(card.data.tags) - {"cyclegan"})  # the mixin adds CycleGenerator's tags
        return card
