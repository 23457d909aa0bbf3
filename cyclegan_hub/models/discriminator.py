"""PatchDiscriminator: the PatchGAN of Isola et al. (2017) used by CycleGAN as D_X and D_Y."""

from __future__ import annotations

import torch
from torch import nn

from .layers import DOWNSAMPLINGS, NORMS, BlurDownsample, conv_bias, init_weights, make_norm
from .modeling import HubModule
from .options import Options, choice, integer


class PatchDiscriminator(
    HubModule,
    library_name="cyclegan-hub",
    tags=["cyclegan", "gan", "patchgan", "discriminator", "unpaired-image-translation"],
    license="mit",
    repo_url="https://github.com/cyclegan-hub/cyclegan-hub",
    paper_url="https://arxiv.org/abs/1703.10593",
):
    """Classifies overlapping image patches as real or fake and returns one logit per patch.

    Layers: ``n_layers`` 4x4 stride-2 convolutions (the first without norm), then two 4x4 stride-1 convolutions,
    LeakyReLU(0.2) between them. With ``n_layers=3`` each output sees a 70x70 patch (the paper's D).

    Patch map size: ``floor(size / 2**n_layers) - 2`` per side. A 256x256 image gives 30x30 logits; but a 28x28
    MNIST digit with ``n_layers=3`` gives a single 1x1 logit, i.e. a whole-image discriminator. For MNIST we use
    ``n_layers=2``: a 5x5 map of 34x34 patches, each of which still sees the whole digit stroke layout.
    ``output_size`` and ``receptive_field`` let callers check this before training.
    """

    options = Options(
        in_channels=integer(3, "image channels (1 gray, 3 RGB; twice that for a conditional critic)", 1, 8),
        base_channels=integer(64, "discriminator filters in the first layer", 1, 256, train="d_base_channels"),
        n_layers=integer(
            3, "discriminator stride-2 layers: 3 = 70x70 patches, 2 = 34x34, 1 = 16x16", 1, 8, train="d_layers"
        ),
        norm=choice("instance", "normalisation of the discriminators", NORMS, train="d_norm"),
        downsampling=choice(
            "stride",
            'stride-2 convolutions (the paper) or "antialias": stride-1 convolutions, each followed by a fixed blur '
            "and subsampling (CUT's discriminator)",
            DOWNSAMPLINGS,
            train="d_downsampling",
        ),
    )

    def __init__(self, **config):
        super().__init__()
        self.config = config
        in_channels, base_channels, n_layers, norm = (
            config[k] for k in ("in_channels", "base_channels", "n_layers", "norm")
        )
        bias, blur = conv_bias(norm), config["downsampling"] == "antialias"
        step = 1 if blur else 2  # anti-aliased: a stride-1 convolution, then BlurDownsample halves the size
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_channels, 4, stride=step, padding=1),
            nn.LeakyReLU(0.2, True),
            *([BlurDownsample(base_channels)] if blur else []),
        ]
        channels = base_channels
        for n in range(1, n_layers + 1):
            out = base_channels * min(2**n, 8)
            halves = n < n_layers  # the paper's C512 layer keeps the resolution
            layers += [
                nn.Conv2d(channels, out, 4, stride=step if halves else 1, padding=1, bias=bias),
                make_norm(norm, out),
                nn.LeakyReLU(0.2, True),
                *([BlurDownsample(out)] if blur and halves else []),
            ]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] in the generator's value range -> [N, 1, h, w] patch logits."""
        return self.model(images)

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the input patch each output logit sees."""
        field = 1
        for kernel, stride, _ in reversed(self._windows()):
            field = (field - 1) * stride + kernel
        return field

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Size of the patch map for an input of ``height`` x ``width``."""
        for kernel, stride, padding in self._windows():
            height = (height + 2 * padding - kernel) // stride + 1
            width = (width + 2 * padding - kernel) // stride + 1
        return height, width

    def _windows(self) -> list[tuple[int, int, int]]:
        """(kernel, stride, padding) of every layer that moves the window: convolutions and blur subsampling."""
        windows = []
        for m in self.model:
            if isinstance(m, nn.Conv2d):
                windows.append((m.kernel_size[0], m.stride[0], m.padding[0]))
            elif isinstance(m, BlurDownsample):
                windows.append((3, 2, 1))
        return windows
