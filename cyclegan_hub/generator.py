"""CycleGenerator: G (X -> Y) or F (Y -> X) of CycleGAN, a Hub model that translates any image."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import ModelCard
from torch import nn

from . import imaging
from .layers import (
    NORMS,
    UPSAMPLINGS,
    OutputConv2d,
    ResnetBlock,
    check_choice,
    conv_bias,
    init_weights,
    make_norm,
    upsample_block,
)
from .modeling import HubModule, check_float, check_int, check_text

#: How to install this package, as cards and docs say it: from its source repository (it is not on the index).
INSTALL_URL = "git+https://github.com/cyclegan-hub/cyclegan-hub"
INSTALL_COMMAND = f'pip install "cyclegan-hub @ {INSTALL_URL}"'

CITATION = """@inproceedings{zhu2017unpaired,
  title     = {Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks},
  author    = {Zhu, Jun-Yan and Park, Taesung and Isola, Phillip and Efros, Alexei A.},
  booktitle = {IEEE International Conference on Computer Vision (ICCV)},
  year      = {2017}
}"""

MODEL_CARD_TEMPLATE = """---
{{ card_data }}
---

# CycleGAN generator: {{ config.source_domain }} → {{ config.target_domain }}

A [CycleGAN]({{ paper_url }}) generator that translates **{{ config.source_domain }}** images into
**{{ config.target_domain }}** images. {% if origin %}Its weights were converted from the original authors'
release (see Origin){% else %}It was trained on unpaired examples of the two domains with adversarial and
cycle-consistency losses (see Training){% endif %}; it is one half of a pair{% if twin_repo_id %} (the reverse
direction is [{{ twin_repo_id }}](https://huggingface.co/{{ twin_repo_id }})){% endif %}.

{% if sample_image %}![input | translated | reconstructed]({{ sample_image }})
{% endif %}
## Usage

```bash
{{ install }}
```

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

## Model

| | |
|---|---|
| architecture | {{ config.architecture }}{% if config.architecture == "resnet" %}, {{ config.n_blocks }} residual blocks{% endif %}, {{ config.n_downsampling }} downsamplings |
| channels in / out | {{ config.in_channels }} / {{ config.out_channels }} |
| base channels | {{ config.base_channels }} |
| normalisation | {{ config.norm }} |
| upsampling | {{ config.upsampling }} |
| parameters | {{ "{:,}".format(num_parameters) }} |
| training image size | {{ config.image_size }} |
| value range | {{ config.value_range }} |
{% if origin %}
## Origin

{{ origin }}
{% endif %}{% if training %}
## Training

{{ training }}
{% endif %}{% if metrics_table %}
## Evaluation

{{ metrics_table }}
{% endif %}
## Citation

```bibtex
{{ citation }}
```

Code: {{ repo_url }}
"""


def _resnet(
    in_channels, out_channels, base_channels, n_blocks, n_downsampling, norm, upsampling, dropout
) -> tuple[nn.Module, int, int]:
    """The paper's ResNet generator: c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-out, tanh."""
    bias = conv_bias(norm)
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(3),
        nn.Conv2d(in_channels, base_channels, 7, bias=bias),
        make_norm(norm, base_channels),
        nn.ReLU(True),
    ]
    channels = base_channels
    for _ in range(n_downsampling):
        layers += [nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=bias), make_norm(norm, channels * 2)]
        layers.append(nn.ReLU(True))
        channels *= 2
    layers += [ResnetBlock(channels, norm, dropout) for _ in range(n_blocks)]
    for _ in range(n_downsampling):
        layers += upsample_block(channels, channels // 2, norm, upsampling)
        channels //= 2
    layers += [nn.ReflectionPad2d(3), OutputConv2d(channels, out_channels, 7), nn.Tanh()]
    multiple = 2**n_downsampling
    # The residual blocks reflect-pad by 1, which needs at least 2 pixels at the bottleneck.
    return nn.Sequential(*layers), multiple, 2 * multiple


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


def _unet(in_channels, out_channels, base_channels, n_blocks, n_downsampling, norm, upsampling, dropout):
    net = _UNet(in_channels, out_channels, base_channels, n_downsampling, norm, upsampling, dropout)
    return net, 2**n_downsampling, 2**n_downsampling


#: Generator architectures by name: each builds (network, size multiple, minimum size) from the config.
ARCHITECTURES: dict[str, Callable[..., tuple[nn.Module, int, int]]] = {"resnet": _resnet, "unet": _unet}


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
    same network and refuses weights that do not match it.

    Args:
        architecture: "resnet" (the paper; c7s1-64, d128, d256, ``n_blocks`` residual blocks, u128, u64, c7s1-3)
            or "unet" (pix2pix's U-Net with ``n_downsampling`` levels: 7 for 128x128, 8 for 256x256).
        in_channels: channels of the input images (1 gray, 3 RGB).
        out_channels: channels of the output images.
        base_channels: filters of the first convolution (64); doubled at each downsampling.
        n_blocks: residual blocks at the bottleneck (9 for 256x256 in the paper, 6 for 128x128). ResNet only.
        n_downsampling: stride-2 downsamplings (2 for ResNet). Input sizes are padded to a multiple of
            ``2 ** n_downsampling``.
        norm: "instance" (the paper: no affine parameters), "batch" or "none".
        upsampling: "transpose" (the paper's stride-2 transposed convolutions) or "resize" (nearest-neighbour
            resize then a 3x3 convolution, which avoids checkerboard artefacts).
        dropout: dropout probability in the residual blocks (ResNet) or the inner decoder layers (U-Net); 0 = off.
        source_domain: name of the input domain, e.g. "6" or "horse".
        target_domain: name of the output domain, e.g. "9" or "zebra".
        image_size: the side of the square images the model was trained on.
        value_range: [low, high] the network sees and produces (tanh output: [-1, 1]); pixels in [0, 1] are
            mapped linearly onto it.
    """

    def __init__(
        self,
        architecture: str = "resnet",
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        n_blocks: int = 9,
        n_downsampling: int = 2,
        norm: str = "instance",
        upsampling: str = "transpose",
        dropout: float = 0.0,
        source_domain: str = "A",
        target_domain: str = "B",
        image_size: int = 256,
        value_range: Sequence[float] = (-1.0, 1.0),
    ):
        super().__init__()
        config = dict(
            architecture=architecture,
            in_channels=in_channels,
            out_channels=out_channels,
            base_channels=base_channels,
            n_blocks=n_blocks,
            n_downsampling=n_downsampling,
            norm=norm,
            upsampling=upsampling,
            dropout=dropout,
            source_domain=source_domain,
            target_domain=target_domain,
            image_size=image_size,
            value_range=value_range,
        )
        self.check_config(config)
        self.config = {**config, "value_range": [float(v) for v in value_range]}
        self.net, self.size_multiple, self.min_size = ARCHITECTURES[architecture](
            in_channels, out_channels, base_channels, n_blocks, n_downsampling, norm, upsampling, dropout
        )
        init_weights(self)

    @classmethod
    def check_config(cls, config: dict) -> None:
        """Refuse (ValueError naming the field) a config no real generator has: every integer is bounded before
        anything is built, so that a config.json cannot ask for a network that exhausts memory."""
        defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"}
        config = {**defaults, **config}
        check_choice("architecture", config["architecture"], ARCHITECTURES)
        check_choice("norm", config["norm"], NORMS)
        check_choice("upsampling", config["upsampling"], UPSAMPLINGS)
        check_int(config, "in_channels", 1, 4)
        check_int(config, "out_channels", 1, 4)
        check_int(config, "base_channels", 1, 256)
        check_int(config, "n_blocks", 0, 32)
        low, high = (0, 5) if config["architecture"] == "resnet" else (2, 9)  # U-Net 256 has 8 levels, U-Net 512 9
        check_int(config, "n_downsampling", low, high)
        check_float(config, "dropout", 0.0, 1.0, high_open=True)
        check_text(config, "source_domain")
        check_text(config, "target_domain")
        check_int(config, "image_size", 1, 8192)
        value_range = config["value_range"]
        if (
            not isinstance(value_range, (list, tuple))
            or len(value_range) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value_range)
            or not all(abs(float(v)) < 1e6 for v in value_range)
            or not value_range[0] < value_range[1]
        ):
            raise ValueError(
                f"value_range must be [low, high], two finite numbers with low < high, got {value_range!r}"
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[N, in_channels, H, W] in ``value_range``, H and W multiples of ``size_multiple`` ->
        [N, out_channels, H, W] in ``value_range``."""
        return self.net(images)

    # ---- inference on images -------------------------------------------------------------------------------

    def translate(
        self,
        images,
        *,
        device: str | torch.device | None = None,
        batch_size: int = 16,
        max_side: int = imaging.DEFAULT_MAX_SIDE,
        resize_to: int | tuple[int, int] | None = None,
        return_reconstruction_with: CycleGenerator | None = None,
        precision: str = "auto",
    ):
        """Translate images from ``source_domain`` to ``target_domain``.

        Args:
            images: a PIL image, a file path, bytes, a numpy array ``[H, W(, C)]``, or a list of these (a 4-D
                array ``[N, H, W, C]`` counts as a list). Any mode (L, LA, RGB, RGBA, P, I;16, F, CMYK, ...) is
                converted to the model's channels; EXIF orientation is honoured; alpha is composited over black.
            device: where to run (default: where the model's weights are).
            batch_size: images per forward pass; images of the same size are batched together.
            max_side: images whose longer side exceeds this are resized down (aspect kept) for the network and
                the result resized back up, which bounds memory and time.
            resize_to: run the network at this size instead (an int for a square, or (height, width)), e.g. the
                training ``image_size`` for a model that only knows small images, such as MNIST digits.
            return_reconstruction_with: the reverse generator; when given, returns ``(translated, reconstructed)``
                where ``reconstructed`` is the round trip through both networks.
            precision: "auto" runs photo models (trained at 128 px or more) in bf16 on a CPU with native bf16
                (AVX512-BF16 or AMX: twice the fp32 speed at 41-43 dB PSNR against fp32, measured in
                benchmarks/photo_latency.py) and everything else in fp32 (digits lose accuracy in bf16);
                "fp32" or "bf16" choose.

        Returns:
            A PIL image of the input's size (mode L or RGB by ``out_channels``), or a list for a list input.

        Raises:
            ValueError: an unreadable, empty, truncated or oversized file, naming the problem.
        """
        single = not (isinstance(images, (list, tuple)) or (isinstance(images, np.ndarray) and images.ndim == 4))
        items = [images] if single else list(images)
        if self.config["out_channels"] not in (1, 3):
            raise ValueError(f"translate() writes 1- or 3-channel images; this model has {self.config['out_channels']}")
        pil_images = [imaging.open_image(item) for item in items]
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(map(repr, PRECISIONS))}")
        chain = [self] if return_reconstruction_with is None else [self, return_reconstruction_with]
        outputs = _run_chain(chain, pil_images, device, batch_size, max_side, resize_to, precision)
        if return_reconstruction_with is None:
            result = outputs[0]
            return result[0] if single else result
        translated, reconstructed = outputs
        return (translated[0], reconstructed[0]) if single else (translated, reconstructed)

    def run(self, images: torch.Tensor) -> torch.Tensor:
        """The network on ``[N, C, H, W]`` of any H, W (in ``value_range``): padded to ``size_multiple``, run,
        cropped back. Every caller (translate, evaluation, training samples, export checks) goes through here."""
        return imaging.run_padded(self, images, self.size_multiple, self.min_size)

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        """The mixin's card, with this generator's config, size and citation available to the template."""
        kwargs.setdefault("config", self.config)
        kwargs.setdefault("num_parameters", self.num_parameters())
        kwargs.setdefault("size_multiple", self.size_multiple)
        kwargs.setdefault("citation", CITATION)
        kwargs.setdefault("install", INSTALL_COMMAND)
        return super().generate_model_card(*args, **kwargs)


PRECISIONS = ("auto", "fp32", "bf16")
#: Models trained at this size or more are photo models: ``precision="auto"`` runs them in bf16 where the CPU has it.
PHOTO_SIZE = 128


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX). Elsewhere oneDNN emulates bf16, slower than
    fp32, so ``precision="auto"`` stays in fp32 there."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def uses_bf16(generator, device: torch.device, precision: str) -> bool:
    if not isinstance(generator, nn.Module):  # an ONNX session runs as it was exported
        return False
    if precision != "auto":
        return precision == "bf16"
    return device.type == "cpu" and generator.config["image_size"] >= PHOTO_SIZE and cpu_has_native_bf16()


@torch.inference_mode()
def _run_chain(chain, pil_images, device, batch_size, max_side, resize_to, precision="auto") -> list[list]:
    """Run each image through ``chain`` (one or two generators); returns one list of PIL images per stage.

    Same-size images share a batch; conversion to and from the network's value range is done once per batch
    (for small images such as digits it costs as much as the network when done image by image)."""
    first = chain[0]
    weights = next(first.parameters(), None) if isinstance(first, nn.Module) else None  # None: an ONNX session
    device = (
        torch.device(device) if device is not None else (weights.device if weights is not None else torch.device("cpu"))
    )
    dtype = weights.dtype if weights is not None else torch.float32
    for g in chain:
        g.to(device).eval()
    bf16 = uses_bf16(first, device, precision)
    if isinstance(resize_to, int):
        resize_to = (resize_to, resize_to)

    # Prepare: [H, W, C] pixel arrays, grouped by the size the network works at.
    groups: dict[tuple[int, int], list] = {}
    for index, image in enumerate(pil_images):
        array = imaging.image_to_pixels(image, first.config["in_channels"])
        size = array.shape[:2]
        work = tuple(resize_to) if resize_to is not None else imaging.fit_within(size, max_side)
        groups.setdefault(work, []).append((index, size, array))

    outputs = [[None] * len(pil_images) for _ in chain]
    for work, items in groups.items():
        for start in range(0, len(items), batch_size):
            batch_items = items[start : start + batch_size]
            x = imaging.pixels_to_batch([array for _, _, array in batch_items], work)
            x = imaging.to_network(x, first.config["value_range"]).to(device=device, dtype=dtype)
            for stage, g in enumerate(chain):
                if stage and g.config["value_range"] != chain[stage - 1].config["value_range"]:
                    x = imaging.to_network(
                        imaging.to_unit(x, chain[stage - 1].config["value_range"]), g.config["value_range"]
                    )
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    x = g.run(x).float()
                unit = imaging.to_unit(x, g.config["value_range"]).cpu()
                if all(size == work for _, size, _ in batch_items):
                    pictures = imaging.tensor_to_images(unit)
                else:
                    pictures = [
                        imaging.tensor_to_images(imaging.resize_tensor(y[None], size))[0]
                        for (_, size, _), y in zip(batch_items, unit)
                    ]
                for (index, _, _), picture in zip(batch_items, pictures):
                    outputs[stage][index] = picture
    return outputs
