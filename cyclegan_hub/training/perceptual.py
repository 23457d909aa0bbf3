"""LPIPS (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", 2018), the VGG
variant of version 0.1, as the ``lpips`` package computes ``lpips.LPIPS(net="vgg")(x, y)``: the loss CycleGAN-Turbo
adds to its cycle (x10) and identity (x1) terms.

Both images (in [-1, 1]) are shifted and scaled per channel, run through VGG16's convolutional trunk, and compared
at its five ReLU taps (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3): each tap's features are normalised to unit
length per position, their squared difference is weighted per channel by the tap's linear head, averaged over
positions, and the five taps are summed, one distance per image (``[N, 1, 1, 1]``, as theirs).

Weights, never from a pickle: the five linear heads (1,472 values) ship with the package as safetensors,
converted once from the ``lpips`` 0.1.4 wheel's ``weights/v0.1/vgg.pth`` (SHA-256 ``a78928a0...2868``; the shipped
file's own hash is ``HEADS_SHA256``); the trunk is torchvision's ImageNet VGG16 as timm publishes it on the Hub
(``timm/vgg16.tv_in1k``, safetensors, at a pinned revision), of which only the 26 convolution tensors are read, each
checked by name and shape in the file's header first. The network is frozen and loaded once per process.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from ..io.errors import first_line

#: VGG16's convolution widths up to relu5_3 ("M": 2x2 max pooling), in torchvision's ``features`` numbering.
VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
#: The ``features`` index of each tap's ReLU: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
TAPS = (3, 8, 15, 22, 29)
CHANNELS = (64, 128, 256, 512, 512)
#: lpips' ScalingLayer: inputs in [-1, 1] become (x - shift) / scale.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
TRUNK = "timm/vgg16.tv_in1k"
TRUNK_REVISION = "3394518cba29aee1ea82a49d971be90d2dd1dab7"
TRUNK_FILE = "model.safetensors"
HEADS_PATH = Path(__file__).resolve().parents[1] / "models" / "assets" / "lpips_vgg_v0.1.safetensors"
HEADS_SHA256 = "292338d049e002a670c7f9accb048204721d8e25b83952cea880a63ee2ffa7b2"


def vgg16_trunk() -> nn.Sequential:
    """VGG16's ``features`` up to relu5_3 (index 29), numbered as torchvision's, so that its weights load by name."""
    layers: list[nn.Module] = []
    channels = 3
    for width in VGG16:
        if width == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU()]
            channels = width
    return nn.Sequential(*layers)


class LPIPS(nn.Module):
    """The distance (see the module's docstring); frozen. ``forward(x, y)`` -> ``[N, 1, 1, 1]``."""

    def __init__(self):
        super().__init__()
        self.trunk = vgg16_trunk()
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps, h = [], (x - self.shift) / self.scale
        for index, layer in enumerate(self.trunk):
            h = layer(h)
            if index in TAPS:
                taps.append(h)
        return taps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = 0
        for head, a, b in zip(self.heads, self.features(x), self.features(y)):
            a = a / (torch.sqrt(torch.sum(a**2, dim=1, keepdim=True)) + 1e-10)
            b = b / (torch.sqrt(torch.sum(b**2, dim=1, keepdim=True)) + 1e-10)
            total = total + head((a - b) ** 2).mean(dim=(2, 3), keepdim=True)
        return total

    def load_heads(self, path: str | os.PathLike = HEADS_PATH) -> None:
        """The linear heads from the shipped file, refused unless its SHA-256 is the one recorded."""
        from safetensors.torch import load_file

        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        if digest != HEADS_SHA256:
            raise ValueError(f"{path} is not the shipped LPIPS heads file (SHA-256 {digest[:12]}...)")
        heads = load_file(path)
        for index, head in enumerate(self.heads):
            head.weight.copy_(heads[f"lin{index}"])

    def load_trunk(self, path: str | os.PathLike) -> None:
        """The trunk's convolutions from a safetensors file holding VGG16's ``features.N.weight`` / ``.bias``
        (timm's and torchvision's names), each checked by name and shape in the header before it is read."""
        from safetensors import safe_open

        expected = {f"features.{k}": v for k, v in self.trunk.state_dict().items()}
        with safe_open(str(path), framework="pt") as weights:
            missing = [name for name in expected if name not in weights.keys()]
            if missing:
                raise ValueError(f"{path} is not VGG16: it has no {missing[0]}")
            for name, tensor in expected.items():
                shape = tuple(weights.get_slice(name).get_shape())
                if shape != tuple(tensor.shape):
                    raise ValueError(f"{path}: {name} has shape {shape}, VGG16's is {tuple(tensor.shape)}")
            with torch.no_grad():
                for name, tensor in expected.items():
                    tensor.copy_(weights.get_tensor(name))


@functools.lru_cache(maxsize=2)
def load_lpips(trunk: str = TRUNK, revision: str | None = TRUNK_REVISION) -> LPIPS:
    """The frozen LPIPS network, loaded once per process: the shipped heads, and the VGG16 trunk from ``trunk`` (a
    Hub repo id, downloaded and cached on first use, or a folder or file holding its ``model.safetensors``)."""
    net = LPIPS()
    with torch.no_grad():
        net.load_heads()
    path = Path(trunk)
    if path.is_dir():
        path = path / TRUNK_FILE
    if not path.is_file():
        from huggingface_hub import hf_hub_download

        try:
            path = Path(hf_hub_download(trunk, TRUNK_FILE, revision=revision if trunk == TRUNK else None))
        except Exception as err:  # offline, a wrong id, a repo without the file: one line naming it
            raise ValueError(f"cannot load LPIPS's VGG16 trunk from {trunk}: {first_line(err)}") from None
    net.load_trunk(path)
    return net


def lpips_distance(net: LPIPS, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mean LPIPS distance of two batches of images in [-1, 1], in the network's own precision (float32, as the
    authors'), under autocast too."""
    dtype = net.heads[0].weight.dtype
    with torch.autocast(x.device.type, enabled=False):
        return net(x.to(dtype), y.to(dtype)).mean()
