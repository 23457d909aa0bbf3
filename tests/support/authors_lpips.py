"""LPIPS as the ``lpips`` package (0.1.4, ``lpips/lpips.py`` and ``pretrained_networks.py``) computes it for
``lpips.LPIPS(net="vgg")``, declared here as they wrote it: the scaling layer, torchvision's VGG16 ``features`` cut
into five slices, the normalisation, the linear layers (with their dropout, off in eval mode) and the spatial
average. Generalised only where theirs imports torchvision (the same ``features`` layers are built here) and reads
its weights from the package, so that the project's LPIPS is tested against it with any trunk."""

from collections import namedtuple
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save_file


def tv_vgg16_features():
    """torchvision's ``vgg16().features`` (configuration "D"), ReLUs in place."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, in_channels = [], 3
    for v in cfg:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_channels = v
    return nn.Sequential(*layers)


class vgg16(torch.nn.Module):
    def __init__(self, features, requires_grad=False):
        super().__init__()
        vgg_pretrained_features = features
        self.slice1 = torch.nn.Sequential()
        self.slice2 = torch.nn.Sequential()
        self.slice3 = torch.nn.Sequential()
        self.slice4 = torch.nn.Sequential()
        self.slice5 = torch.nn.Sequential()
        self.N_slices = 5
        for x in range(4):
            self.slice1.add_module(str(x), vgg_pretrained_features[x])
        for x in range(4, 9):
            self.slice2.add_module(str(x), vgg_pretrained_features[x])
        for x in range(9, 16):
            self.slice3.add_module(str(x), vgg_pretrained_features[x])
        for x in range(16, 23):
            self.slice4.add_module(str(x), vgg_pretrained_features[x])
        for x in range(23, 30):
            self.slice5.add_module(str(x), vgg_pretrained_features[x])
        if not requires_grad:
            for param in self.parameters():
                param.requires_grad = False

    def forward(self, X):
        h = self.slice1(X)
        h_relu1_2 = h
        h = self.slice2(h)
        h_relu2_2 = h
        h = self.slice3(h)
        h_relu3_3 = h
        h = self.slice4(h)
        h_relu4_3 = h
        h = self.slice5(h)
        h_relu5_3 = h
        vgg_outputs = namedtuple("VggOutputs", ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"])
        return vgg_outputs(h_relu1_2, h_relu2_2, h_relu3_3, h_relu4_3, h_relu5_3)


def normalize_tensor(in_feat, eps=1e-10):
    norm_factor = torch.sqrt(torch.sum(in_feat**2, dim=1, keepdim=True))
    return in_feat / (norm_factor + eps)


def spatial_average(in_tens, keepdim=True):
    return in_tens.mean([2, 3], keepdim=keepdim)


class ScalingLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.Tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.Tensor([0.458, 0.448, 0.450])[None, :, None, None])

    def forward(self, inp):
        return (inp - self.shift) / self.scale


class NetLinLayer(nn.Module):
    def __init__(self, chn_in, chn_out=1, use_dropout=False):
        super().__init__()
        layers = [nn.Dropout()] if use_dropout else []
        layers += [nn.Conv2d(chn_in, chn_out, 1, stride=1, padding=0, bias=False)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class LPIPS(nn.Module):
    """``lpips.LPIPS(net="vgg", version="0.1")`` on ``features`` (torchvision's layout), eval mode."""

    def __init__(self, features):
        super().__init__()
        self.scaling_layer = ScalingLayer()
        self.chns = [64, 128, 256, 512, 512]
        self.L = len(self.chns)
        self.net = vgg16(features)
        self.lins = nn.ModuleList(NetLinLayer(c, use_dropout=True) for c in self.chns)
        self.eval()

    def forward(self, in0, in1):
        in0_input, in1_input = self.scaling_layer(in0), self.scaling_layer(in1)
        outs0, outs1 = self.net.forward(in0_input), self.net.forward(in1_input)
        feats0, feats1, diffs = {}, {}, {}
        for kk in range(self.L):
            feats0[kk], feats1[kk] = normalize_tensor(outs0[kk]), normalize_tensor(outs1[kk])
            diffs[kk] = (feats0[kk] - feats1[kk]) ** 2
        res = [spatial_average(self.lins[kk](diffs[kk]), keepdim=True) for kk in range(self.L)]
        val = 0
        for layer in range(self.L):
            val += res[layer]
        return val


def make_trunk(folder: Path, seed: int = 0) -> Path:
    """A VGG16 trunk with random weights, saved as timm's repo holds it (``model.safetensors``, ``features.N.*``),
    with a classifier tensor beside it (as theirs has) that must not be read."""
    torch.manual_seed(seed)
    features = tv_vgg16_features()
    for module in features:
        if isinstance(module, nn.Conv2d):  # He initialisation, so that activations neither vanish nor explode
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.normal_(module.bias, std=0.01)
    state = {f"features.{k}": v.contiguous() for k, v in features.state_dict().items()}
    state["head.fc.weight"] = torch.zeros(10, 4)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, folder / "model.safetensors")
    return folder
