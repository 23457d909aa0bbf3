"""CycleGenerator: G (X -> Y) or F (Y -> X) of CycleGAN, a Hub model that translates any image."""

from __future__ import annotations

from collections.abc import Callable

import torch
from huggingface_hub import ModelCard
from torch import nn

from ..translation import TranslationSpec
from . import cards
from .layers import (
    DOWNSAMPLINGS,
    NORMS,
    UPSAMPLINGS,
    OutputConv2d,
    ResnetBlock,
    conv_bias,
    downsample_block,
    init_weights,
    make_norm,
    upsample_block,
)
from .modeling import HubModule
from .options import Options, choice, integer, number, text, value_range

#: Models trained at this size or more are photo models: ``precision="auto"`` runs them in bf16 where the CPU has it.
PHOTO_SIZE = 128

#: How to install this package, as cards and docs say it: from its source repository (it is not on the index).
INSTALL_URL = "git+https://github.com/cyclegan-hub/cyclegan-hub"
INSTALL_COMMAND = f'pip install "cyclegan-hub @ {INSTALL_URL}"'

CITATION = """@inproceedings{zhu2017unpaired,
  title     = {Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks},
  author    = {Zhu, Jun-Yan and Park, Taesung and Isola, Phillip and Efros, Alexei A.},
  booktitle = {IEEE International Conference on Computer Vision (ICCV)},
  year      = {2017}
}"""

MODEL_CARD_TEMPLATE = (
    cards.FRONT_MATTER
    + """
# CycleGAN generator: {{ config.source_domain }} → {{ config.target_domain }}

A [CycleGAN]({{ paper_url }}) generator that translates **{{ config.source_domain }}** images into
**{{ config.target_domain }}** images. {% if origin %}Its weights were converted from the original authors'
release (see Origin){% else %}It was trained on unpaired examples of the two domains with adversarial and
cycle-consistency losses (see Training){% endif %}; it is one half of a pair{% if twin_repo_id %} (the reverse
direction is [{{ twin_repo_id }}](https://huggingface.co/{{ twin_repo_id }})){% endif %}.

"""
    + cards.SAMPLE
    + cards.INSTALL
    + """
```python
from PIL import Image
from cyclegan_hub import CycleGenerator

generator = CycleGenerator.from_pretrained("{{ repo_id | default('path/to/this/folder', true) }}")
translated = generator.translate(Image.open("input.png"))  # PIL in, PIL out, same size
translated.save("translated.png")
```

or from the command line:

```bash
cyclegan-hub translate --model {{ repo_id | default('path/to/this/folder', true) }} input.png --output translated.png
```

Any size and image mode is accepted: images are converted to {{ config.in_channels }} channel(s), padded to a
multiple of {{ size_multiple }} and cropped back; sides above 1024 pixels are resized down for the network and back up.
The model was trained at {{ config.image_size }}x{{ config.image_size }}.

"""
    + cards.MODEL_TABLE
    + """| parameters | {{ "{:,}".format(num_parameters) }} |
"""
    + cards.SECTIONS
)


def _resnet(c: dict) -> tuple[nn.Module, int, int, int]:
    """The paper's ResNet generator: c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-out, tanh."""
    norm, edge = c["norm"], c["edge_padding"]
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(edge),
        nn.Conv2d(c["in_channels"], c["base_channels"], 7, bias=conv_bias(norm)),
        make_norm(norm, c["base_channels"]),
        nn.ReLU(True),
    ]
    channels = c["base_channels"]
    for _ in range(c["n_downsampling"]):
        layers += downsample_block(channels, channels * 2, norm, c["downsampling"])
        channels *= 2
    layers += [ResnetBlock(channels, norm, c["dropout"]) for _ in range(c["n_blocks"])]
    for _ in range(c["n_downsampling"]):
        layers += upsample_block(channels, channels // 2, norm, c["upsampling"])
        channels //= 2
    layers += [nn.ReflectionPad2d(edge), OutputConv2d(channels, c["out_channels"], 7), nn.Tanh()]
    multiple = 2 ** c["n_downsampling"]
    # The residual blocks reflect-pad by 1, which needs at least 2 pixels at the bottleneck. Each 7x7 convolution
    # padded by less than 3 loses 3 - edge_padding pixels on every side.
    return nn.Sequential(*layers), multiple, 2 * multiple, 2 * (3 - edge)


class _UNet(nn.Module):
    """The U-Net generator of pix2pix/CycleGAN: 4x4 stride-2 convolutions down, skip connections across."""

    def __init__(self, in_channels, out_channels, base_channels, depth, norm, upsampling, dropout):
        super().__init__()
        if depth < 2:
            raise ValueError(f"a U-Net needs n_downsampling >= 2, got {depth}")
        widths = [base_channels * min(2**i, 8) for i in range(depth)]
        bias = conv_bias(norm)
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i in range(depth):
            down: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            down.append(nn.Conv2d(in_channels if i == 0 else widths[i - 1], widths[i], 4, 2, 1, bias=bias))
            if 0 < i < depth - 1:  # neither the outermost nor the 1x1 innermost layer is normalised
                down.append(make_norm(norm, widths[i]))
            self.downs.append(nn.Sequential(*down))

            up_in = widths[i] if i == depth - 1 else 2 * widths[i]
            up_out = out_channels if i == 0 else widths[i - 1]
            if upsampling == "transpose":
                up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, up_out, 4, 2, 1, bias=bias or i == 0)]
            else:
                up = [
                    nn.ReLU(True),
                    nn.Upsample(scale_factor=2),
                    nn.Conv2d(up_in, up_out, 3, padding=1, bias=bias or i == 0),
                ]
            if i == 0:
                up.append(nn.Tanh())
            else:
                up.append(make_norm(norm, up_out))
                if dropout > 0 and 4 <= i < depth - 1:  # as the official net: the 8x-wide levels inside the 4th
                    up.append(nn.Dropout(dropout))
            self.ups.append(nn.Sequential(*up))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = self.ups[-1](skips[-1])
        for i in range(len(self.downs) - 2, -1, -1):
            x = self.ups[i](torch.cat([skips[i], x], dim=1))
        return x


def _unet(c: dict) -> tuple[nn.Module, int, int, int]:
    keys = ("in_channels", "out_channels", "base_channels", "n_downsampling", "norm", "upsampling", "dropout")
    multiple = 2 ** c["n_downsampling"]
    return _UNet(*(c[k] for k in keys)), multiple, multiple, 0


#: Generator architectures by name: each builds (network, size multiple, minimum size, border) from the config;
#: the border is how many pixels the network loses on each side (0: its output has its input's size).
ARCHITECTURES: dict[str, Callable[[dict], tuple[nn.Module, int, int, int]]] = {"resnet": _resnet, "unet": _unet}
#: Options only the ResNet builds; a U-Net takes their defaults.
RESNET_ONLY = ("downsampling", "edge_padding")
UNET_UPSAMPLINGS = ("transpose", "resize")


class CycleGenerator(
    HubModule,
    library_name="cyclegan-hub",
    pipeline_tag="image-to-image",
    tags=["cyclegan", "image-to-image", "unpaired-image-translation", "gan"],
    license="mit",
    repo_url="https://github.com/cyclegan-hub/cyclegan-hub",
    paper_url="https://arxiv.org/abs/1703.10593",
    model_card_template=MODEL_CARD_TEMPLATE,
):
    """A CycleGAN generator (G: X -> Y or F: Y -> X). The defaults are the paper's ResNet-9 generator for RGB.

    Every argument is a JSON value, saved to config.json by ``save_pretrained``; ``from_pretrained`` rebuilds the
    same network and refuses weights that do not match it. ``translate`` runs it on images of any size and mode
    (``cyclegan_hub.translation``, the path every family shares)."""

    model_type = "cyclegan"
    options = Options(
        architecture=choice(
            "resnet",
            'generator architecture: "resnet" (the paper; c7s1-64, d128, d256, `n_blocks` residual blocks, u128, '
            'u64, c7s1-3) or "unet" (pix2pix\'s U-Net with `n_downsampling` levels)',
            ARCHITECTURES,
            card="architecture",
            train="architecture",
        ),
        in_channels=integer(3, "channels of the input images (1 gray, 3 RGB)", 1, 4, card="channels in"),
        out_channels=integer(3, "channels of the output images", 1, 4, card="channels out"),
        base_channels=integer(
            64,
            "generator filters in the first layer (doubled per downsampling)",
            1,
            256,
            card="base channels",
            train="base_channels",
        ),
        n_blocks=integer(
            9,
            "residual blocks (ResNet: 9 for 256x256, 6 for 128x128)",
            0,
            32,
            card="residual blocks",
            train="n_blocks",
        ),
        n_downsampling=integer(
            2,
            "stride-2 downsamplings (ResNet 2; U-Net: 7 for 128x128, 8 for 256x256)",
            0,
            9,
            card="downsamplings",
            train="n_downsampling",
            bounds=lambda config: (0, 5) if config.get("architecture") == "resnet" else (2, 9),
        ),
        norm=choice(
            "instance",
            "normalisation of the generators (instance_affine: InstanceNorm with a learned scale and shift)",
            NORMS,
            card="normalisation",
            train="norm",
        ),
        downsampling=choice(
            "stride",
            'stride-2 convolutions (the paper) or "antialias": convolution, then a fixed blur and subsampling (CUT)',
            DOWNSAMPLINGS,
            card="downsampling",
            train="downsampling",
        ),
        upsampling=choice(
            "transpose",
            'transposed convolutions (the paper); nearest resize + convolution, reflect-padded ("resize") or '
            'zero-padded ("resize_zero": HugGAN / eriklindernoren); or "antialias": blur upsampling + convolution (CUT)',
            UPSAMPLINGS,
            card="upsampling",
            train="upsampling",
        ),
        dropout=number(
            0.0,
            "dropout in the generators' residual blocks (0: off)",
            0.0,
            1.0,
            high_open=True,
            card="dropout",
            train="dropout",
        ),
        edge_padding=integer(
            3,
            "reflection padding of the first and last 7x7 convolutions (3 keeps the size; below 3 the network "
            "loses 2 x (3 - edge_padding) pixels per side, which translate pads back: the HugGAN / eriklindernoren "
            "generator pads by its channel count)",
            0,
            3,
            card="edge padding",
        ),
        source_domain=text("A", 'name of the input domain, e.g. "6" or "horse"', card="source domain"),
        target_domain=text("B", 'name of the output domain, e.g. "9" or "zebra"', card="target domain"),
        image_size=integer(
            256, "the side of the square images the model was trained on", 1, 8192, card="training image size"
        ),
        value_range=value_range(
            (-1.0, 1.0), "[low, high] the network sees and produces (tanh: [-1, 1])", card="value range"
        ),
    )

    @classmethod
    def check_consistency(cls, config: dict) -> None:
        if config["architecture"] != "resnet":
            for name in RESNET_ONLY:
                if config[name] != cls.options[name].default:
                    raise ValueError(f"{name} = {config[name]!r} is a ResNet option; a U-Net takes the default")
            if config["upsampling"] not in UNET_UPSAMPLINGS:
                raise ValueError(
                    f"a U-Net upsamples with {' or '.join(map(repr, UNET_UPSAMPLINGS))}, not {config['upsampling']!r}"
                )

    def __init__(self, **config):
        super().__init__()
        self.config = config
        self.net, size_multiple, min_size, border = ARCHITECTURES[config["architecture"]](config)
        self.translation_spec = TranslationSpec(
            in_channels=config["in_channels"],
            out_channels=config["out_channels"],
            value_range=tuple(self.config["value_range"]),
            size_multiple=size_multiple,
            min_size=min_size,
            bf16=config["image_size"] >= PHOTO_SIZE,
            border=border,
        )
        init_weights(self)

    @property
    def size_multiple(self) -> int:
        return self.translation_spec.size_multiple

    @property
    def min_size(self) -> int:
        return self.translation_spec.min_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[N, in_channels, H, W] in ``value_range``, H and W multiples of ``size_multiple`` ->
        [N, out_channels, H, W] in ``value_range``."""
        return self.net(images)

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        """The mixin's card, with this generator's config, size and citation available to the template."""
        kwargs.setdefault("config", self.config)
        kwargs.setdefault("num_parameters", self.num_parameters())
        kwargs.setdefault("size_multiple", self.size_multiple)
        kwargs.setdefault("model_rows", self.options.card_rows(self.config))
        kwargs.setdefault("citation", CITATION)
        kwargs.setdefault("install", INSTALL_COMMAND)
        return super().generate_model_card(*args, **kwargs)
