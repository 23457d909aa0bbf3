"""The official implementation's network layouts (pytorch-CycleGAN-and-pix2pix), declared here from its published
architecture as a test helper: modules named as in its checkpoints, random weights. Conversion tests build these,
save their state dicts as the official code does, convert them and compare outputs."""

from __future__ import annotations

import torch
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResidualBlock(nn.Module):
    def __init__(self, dim: int, norm: str, dropout: bool):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """``model``: pad, c7s1-ngf, 2 stride-2 downsamplings, n_blocks residual blocks, 2 transposed upsamplings, c7s1-out, tanh."""

    def __init__(self, input_nc=3, output_nc=3, ngf=64, n_blocks=9, norm="instance", dropout=False):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), _norm(norm, ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                _norm(norm, ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResidualBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                _norm(norm, ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class SkipBlock(nn.Module):
    """One level of the U-Net: ``model`` = down path, the inner level, up path; concatenated with its input."""

    def __init__(
        self,
        outer_nc,
        inner_nc,
        input_nc=None,
        submodule=None,
        outermost=False,
        innermost=False,
        norm="instance",
        dropout=False,
    ):
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        downrelu, uprelu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [downrelu, downconv, uprelu, upconv, _norm(norm, outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [downrelu, downconv, _norm(norm, inner_nc), submodule, uprelu, upconv, _norm(norm, outer_nc)]
            if dropout:  # theirs: down + [submodule] + up + [nn.Dropout(0.5)]
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, num_downs=8, ngf=64, norm="instance", dropout=False):
        super().__init__()
        block = SkipBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = SkipBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        for outer, inner in ((ngf * 4, ngf * 8), (ngf * 2, ngf * 4), (ngf, ngf * 2)):
            block = SkipBlock(outer, inner, submodule=block, norm=norm)
        self.model = SkipBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc=3, ndf=64, n_layers=3, norm="instance"):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            previous, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * previous, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                _norm(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def randomized(net: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights everywhere (biases and norm statistics too, so a wrong mapping cannot hide); fixed filters
    (CUT's blur ``filt``) stay what they are."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if tensor.is_floating_point() and not name.endswith(".filt"):
                values = torch.randn(tensor.shape, generator=g) * 0.05
                tensor.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)
    return net.eval()


def with_old_instance_norm_stats(state: dict, net: nn.Module) -> dict:
    """What PyTorch < 0.4 saved for InstanceNorm layers: running statistics the network never uses."""
    state = dict(state)
    for name, module in net.named_modules():
        if isinstance(module, nn.InstanceNorm2d):
            state[f"{name}.running_mean"] = torch.zeros(module.num_features)
            state[f"{name}.running_var"] = torch.ones(module.num_features)
            state[f"{name}.num_batches_tracked"] = torch.tensor(7)
    return state
