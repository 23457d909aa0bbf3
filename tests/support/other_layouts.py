"""The generator layouts of other implementations, declared here from their published architectures as a test
helper (modules named as in their checkpoints; random weights), beside ``official_layout``:

- ``HugGANGenerator``: eriklindernoren/PyTorch-GAN's ``GeneratorResNet`` as the HugGAN sprint published it: blocks
  named ``block``, nearest ``Upsample`` + zero-padded 3x3 conv, 7x7 convs reflection-padded by the channel count.
- ``CUTGenerator``: CUT/FastCUT's ResNet generator: stride-1 conv + norm + ReLU + a fixed 3x3 blur subsampling
  (buffer ``filt``), a fixed 4x4 blur upsampling (buffer ``filt``) + zero-padded 3x3 conv.
- ``AitorzipGenerator``: aitorzip/PyTorch-CycleGAN's ``Generator`` (the official names: ``model.N``, ``conv_block``).
- ``LornatangGenerator``: Lornatang/CycleGAN-PyTorch's ``CycleNet`` (``main.N``, blocks ``res``).
- ``AffineNormGenerator``: a port with ``InstanceNorm2d(affine=True)``, blocks named ``block`` and no conv biases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Block(nn.Module):
    def __init__(self, dim: int, name: str, affine: bool = False, bias: bool = True):
        super().__init__()
        layers = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=bias),
            nn.InstanceNorm2d(dim, affine=affine),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=bias),
            nn.InstanceNorm2d(dim, affine=affine),
        )
        self.name = name
        setattr(self, name, layers)

    def forward(self, x):
        return x + getattr(self, self.name)(x)


class HugGANGenerator(nn.Module):
    def __init__(self, channels: int = 3, blocks: int = 9, features: int = 64):
        super().__init__()
        layers = [
            nn.ReflectionPad2d(channels),
            nn.Conv2d(channels, features, 7),
            nn.InstanceNorm2d(features),
            nn.ReLU(inplace=True),
        ]
        width = features
        for _ in range(2):
            layers += [
                nn.Conv2d(width, width * 2, 3, stride=2, padding=1),
                nn.InstanceNorm2d(width * 2),
                nn.ReLU(inplace=True),
            ]
            width *= 2
        layers += [_Block(width, "block") for _ in range(blocks)]
        for _ in range(2):
            layers += [
                nn.Upsample(scale_factor=2),
                nn.Conv2d(width, width // 2, 3, stride=1, padding=1),
                nn.InstanceNorm2d(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        layers += [nn.ReflectionPad2d(channels), nn.Conv2d(width, channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def _binomial(taps):
    row = torch.tensor(taps, dtype=torch.float32)
    square = row[:, None] * row[None, :]
    return square / square.sum()


class Downsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.register_buffer("filt", _binomial([1.0, 2.0, 1.0])[None, None].repeat(channels, 1, 1, 1))
        self.pad = nn.ReflectionPad2d([1, 1, 1, 1])

    def forward(self, x):
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=x.shape[1])


class Upsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.register_buffer("filt", (_binomial([1.0, 3.0, 3.0, 1.0]) * 4)[None, None].repeat(channels, 1, 1, 1))
        self.pad = nn.ReplicationPad2d([1, 1, 1, 1])

    def forward(self, x):
        y = F.conv_transpose2d(self.pad(x), self.filt, stride=2, padding=2, groups=x.shape[1])[:, :, 1:, 1:]
        return y[:, :, :-1, :-1]


class CUTGenerator(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, ngf=64, n_blocks=9):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=1, padding=1),
                nn.InstanceNorm2d(ngf * mult * 2),
                nn.ReLU(True),
                Downsample(ngf * mult * 2),
            ]
        layers += [_OfficialBlock(ngf * 4) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [
                Upsample(ngf * mult),
                nn.Conv2d(ngf * mult, ngf * mult // 2, 3, stride=1, padding=1),
                nn.InstanceNorm2d(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class _OfficialBlock(_Block):
    def __init__(self, dim):
        super().__init__(dim, "conv_block")


class AitorzipGenerator(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, n_residual_blocks=9, features=64):
        super().__init__()
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, features, 7), nn.InstanceNorm2d(features), nn.ReLU(True)]
        width = features
        for _ in range(2):
            model += [
                nn.Conv2d(width, width * 2, 3, stride=2, padding=1),
                nn.InstanceNorm2d(width * 2),
                nn.ReLU(inplace=True),
            ]
            width *= 2
        model += [_OfficialBlock(width) for _ in range(n_residual_blocks)]
        for _ in range(2):
            model += [
                nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm2d(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        model += [nn.ReflectionPad2d(3), nn.Conv2d(features, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


class LornatangGenerator(nn.Module):
    """Lornatang/CycleGAN-PyTorch's ``CycleNet``: the official network as ``main``, residual blocks named ``res``."""

    def __init__(self, in_channels=3, out_channels=3, channels=64, blocks=9):
        super().__init__()
        layers = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, channels, 7),
            nn.InstanceNorm2d(channels),
            nn.ReLU(True),
        ]
        for mult in (1, 2):
            layers += [
                nn.Conv2d(channels * mult, channels * mult * 2, 3, 2, 1),
                nn.InstanceNorm2d(channels * mult * 2),
                nn.ReLU(True),
            ]
        layers += [_Block(channels * 4, "res") for _ in range(blocks)]
        for mult in (4, 2):
            layers += [
                nn.ConvTranspose2d(channels * mult, channels * mult // 2, 3, 2, 1, 1),
                nn.InstanceNorm2d(channels * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x)


class AffineNormGenerator(nn.Module):
    """Transposed-convolution upsampling, affine norms, no conv biases before them."""

    def __init__(self, channels=3, blocks=6, features=16):
        super().__init__()
        layers = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, features, 7, bias=False),
            nn.InstanceNorm2d(features, affine=True),
            nn.ReLU(True),
        ]
        width = features
        for _ in range(2):
            layers += [
                nn.Conv2d(width, width * 2, 3, stride=2, padding=1, bias=False),
                nn.InstanceNorm2d(width * 2, affine=True),
                nn.ReLU(True),
            ]
            width *= 2
        layers += [_Block(width, "block", affine=True, bias=False) for _ in range(blocks)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=False),
                nn.InstanceNorm2d(width // 2, affine=True),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)
