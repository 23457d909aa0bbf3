"""The few building blocks the generator and the discriminator share.

Everything here is selected by a plain string so that it can live in config.json: a norm layer is
named ("instance", "batch", "none"), never passed as a class or a ``functools.partial``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

NORMS = ("instance", "batch", "none", "instance_affine")
UPSAMPLINGS = ("transpose", "resize", "resize_zero", "antialias")
DOWNSAMPLINGS = ("stride", "antialias")


def check_choice(kind: str, value: str, valid) -> str:
    """Return ``value`` if it is one of ``valid``; otherwise raise a ValueError listing the valid names."""
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid: {', '.join(repr(v) for v in valid)}")
    return value


def make_norm(norm: str, channels: int) -> nn.Module:
    """The paper's InstanceNorm has no affine parameters and no running statistics; "instance_affine" adds a
    per-channel scale and shift (as Keras/TensorFlow ports and several PyTorch ports train it)."""
    check_choice("norm", norm, NORMS)
    if norm in ("instance", "instance_affine"):
        return nn.InstanceNorm2d(channels, affine=norm == "instance_affine", track_running_stats=False)
    if norm == "batch":
        return BatchNorm(channels, affine=True, track_running_stats=True)
    return nn.Identity()


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm2d (the same tensors), which at inference can normalise each image by its own statistics instead of
    the running ones (``image_statistics``): what pix2pix's test script does by leaving its networks in training
    mode with batch 1. Per image, so a batch translates as its images one by one would, and nothing is updated."""

    image_statistics = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.image_statistics:
            return super().forward(x)
        return nn.functional.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


def conv_bias(norm: str) -> bool:
    # BatchNorm's affine shift makes a conv bias redundant; InstanceNorm without affine removes it too,
    # but the official code keeps the bias there, and so do we (it is what the published weights have).
    return norm != "batch"


class ResnetBlock(nn.Module):
    """Two 3x3 convolutions with reflection padding and a residual connection (the paper's R256 block)."""

    def __init__(self, channels: int, norm: str, dropout: float = 0.0):
        super().__init__()
        bias = conv_bias(norm)
        layers = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(norm, channels),
            nn.ReLU(True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), make_norm(norm, channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def _binomial(size: int) -> torch.Tensor:
    """The normalised 2-D binomial filter of ``size`` taps ([1, 2, 1], [1, 3, 3, 1], ...): a fixed blur."""
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float64)
    square = row[:, None] * row[None, :]
    return (square / square.sum()).float()


class BlurDownsample(nn.Module):
    """Anti-aliased stride-2 downsampling (Zhang, "Making Convolutional Networks Shift-Invariant Again", 2019; as CUT
    uses it): reflect-pad 1, a fixed 3x3 binomial blur per channel, every second pixel. The filter is fixed: it is
    rebuilt here, not saved with the weights."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("filt", _binomial(3).expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(
            nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=x.shape[1]
        )


class BlurUpsample(nn.Module):
    """Anti-aliased 2x upsampling (CUT's): replicate-pad 1, a transposed convolution with the fixed 4x4 binomial
    filter (times 4, so a constant image stays constant), cropped to exactly twice the size."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("filt", (_binomial(4) * 4).expand(channels, 1, 4, 4).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
        y = nn.functional.conv_transpose2d(padded, self.filt, stride=2, padding=2, groups=x.shape[1])
        return y[:, :, 1:-1, 1:-1]


def downsample_block(in_channels: int, out_channels: int, norm: str, downsampling: str) -> list[nn.Module]:
    """Halve the resolution: a stride-2 3x3 convolution (the paper), or a stride-1 convolution followed by an
    anti-aliasing blur and subsampling (CUT's default)."""
    check_choice("downsampling", downsampling, DOWNSAMPLINGS)
    stride = 2 if downsampling == "stride" else 1
    layers = [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=conv_bias(norm))]
    layers += [make_norm(norm, out_channels), nn.ReLU(True)]
    return layers if downsampling == "stride" else layers + [BlurDownsample(out_channels)]


def upsample_block(in_channels: int, out_channels: int, norm: str, upsampling: str) -> list[nn.Module]:
    """Double the resolution: a transposed convolution (the paper); nearest resize + 3x3 convolution, reflect-padded
    ("resize"), which avoids the checkerboard artefacts of strided transposed convolutions (Odena et al., 2016), or
    zero-padded ("resize_zero": the HugGAN / eriklindernoren generator); or CUT's anti-aliased blur upsampling
    + zero-padded 3x3 convolution ("antialias")."""
    check_choice("upsampling", upsampling, UPSAMPLINGS)
    bias = conv_bias(norm)
    if upsampling == "transpose":
        up = [nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=bias)]
    elif upsampling == "resize":
        up = [
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ReflectionPad2d(1),
            nn.Conv2d(in_channels, out_channels, 3, bias=bias),
        ]
    else:
        first = (
            nn.Upsample(scale_factor=2, mode="nearest") if upsampling == "resize_zero" else BlurUpsample(in_channels)
        )
        up = [first, nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)]
    return up + [make_norm(norm, out_channels), nn.ReLU(True)]


class OutputConv2d(nn.Conv2d):
    """The generator's last convolution: an ``nn.Conv2d`` (same parameters, same state dict) that, with one output
    channel at inference on a CPU, runs as a depthwise convolution summed over the input channels. The sum is the
    same; oneDNN pads output channels to a vector width, so the plain form costs as much as 16 outputs, and this
    one is about 4-6x faster on that layer (a quarter of a 28x28 digit generator's time). Training keeps the plain
    form, whose backward pass is the faster one."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            self.out_channels == 1
            and self.groups == 1
            and x.device.type == "cpu"
            and not torch.is_grad_enabled()
            and self.padding == (0, 0)
            and self.stride == (1, 1)
            and self.dilation == (1, 1)
        ):
            weight = self.weight.view(self.in_channels, 1, *self.kernel_size)
            y = nn.functional.conv2d(x, weight, groups=self.in_channels).sum(1, keepdim=True)
            return y if self.bias is None else y + self.bias.view(1, 1, 1, 1)
        return super().forward(x)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """The paper's initialisation: conv weights from N(0, 0.02), biases 0, norm scales (BatchNorm, affine
    InstanceNorm) from N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
