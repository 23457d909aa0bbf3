"""The generator layouts in circulation, read off their tensors, and each one's forward pass computed straight from
its own tensors: how a conversion finds the network that equals a checkpoint and measures that it does.

Every layout here is, layer for layer, a network that ``CycleGenerator`` (or ``PatchDiscriminator``) builds from
plain JSON options; only the names of the tensors differ:

- **official** (pytorch-CycleGAN-and-pix2pix; aitorzip/PyTorch-CycleGAN uses the same names): one ``nn.Sequential``
  named ``model``: reflection pad, 7x7 conv, norm, ReLU; stride-2 3x3 convs with norm and ReLU; residual blocks named
  ``conv_block`` (pad, 3x3 conv, norm, ReLU, [dropout], pad, 3x3 conv, norm); 3x3 transposed convs; pad, 7x7 conv,
  tanh. Ours is the same Sequential named ``net`` with blocks named ``block``: ``model.10.conv_block.5.weight`` is
  our ``net.10.block.5.weight``. Its U-Net (levels nested as ``model.model.1.model.3.model...``) and its PatchGAN.
- **HugGAN / eriklindernoren** (PyTorch-GAN; the HugGAN sprint's ``modeling_cyclegan.py``, whose repos hold a pickled
  ``pytorch_model.bin``): blocks named ``block``; upsampling is nearest ``Upsample`` + zero-padded 3x3 conv
  (``upsampling="resize_zero"``); the first and last 7x7 convs are reflection-padded by the channel count (3 for RGB
  as everywhere; 1 for gray, which shrinks the output: ``edge_padding``).
- **CUT / FastCUT** (contrastive-unpaired-translation): stride-1 conv + norm + ReLU + a fixed 3x3 blur subsampling
  (``Downsample``, its filter saved as ``filt``) instead of stride-2 convs; a fixed 4x4 blur upsampling (``Upsample``)
  + zero-padded 3x3 conv instead of transposed convs (``downsampling="antialias"``, ``upsampling="antialias"``).
- **Lornatang** (CycleGAN-PyTorch): the official network with its Sequential named ``main`` and blocks named ``res``;
  its ``*.pth.tar`` holds ``state_dict`` and ``ema_state_dict`` (``--key`` picks the EMA weights).
- **affine InstanceNorm** ports (Keras/TensorFlow ports and several PyTorch ones): any of the above with a learned
  scale and shift in every norm (``norm="instance_affine"``); a conv bias they omit is a zero bias (the norm's mean
  subtraction removes any bias before it).

Old checkpoints (PyTorch < 0.4) hold InstanceNorm ``running_mean`` / ``running_var`` / ``num_batches_tracked`` that
the network never uses: they are dropped, as the official loader drops them. Detection reads each tensor name once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..io.tensors import non_finite
from ..models.cyclegan import CycleGenerator
from ..models.discriminator import PatchDiscriminator
from .checkpoints import ConversionError

UNUSED_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")

#: Where each layout comes from, as cards and messages name it.
SOURCES = {
    "official": "official CycleGAN (pytorch-CycleGAN-and-pix2pix, aitorzip/PyTorch-CycleGAN)",
    "huggan": "HugGAN / eriklindernoren (PyTorch-GAN)",
    "cut": "CUT / FastCUT (contrastive-unpaired-translation)",
    "lornatang": "Lornatang (CycleGAN-PyTorch)",
}


@dataclass
class Layout:
    """A network read off its tensors: the config that builds ours, and the name of each of our tensors in theirs."""

    kind: str  # "generator" or "discriminator"
    config: dict
    theirs: Callable[[str], str]  # our tensor name -> theirs
    source: str = "official"  # a key of SOURCES
    block: str = "conv_block"  # the residual blocks' name in their file (ResNet)
    prefix: str = "model"  # the name of their top Sequential (ResNet)

    def describe(self) -> str:
        c = self.config
        if self.kind == "discriminator":
            return (
                f"PatchGAN discriminator, {c['n_layers']} layers, {c['base_channels']} base channels, {c['norm']} norm"
            )
        name = f"ResNet-{c['n_blocks']}" if c["architecture"] == "resnet" else f"U-Net-{2 ** c['n_downsampling']}"
        extras = ""
        if c["architecture"] == "resnet" and self.source != "official":
            extras = f" ({SOURCES[self.source].split(' (')[0]} layout)"
        norm = c["norm"].replace("_", " ")
        return (
            f"{name} generator{extras}, {c['in_channels']} -> {c['out_channels']} channels, {c['base_channels']} "
            f"base channels, {norm} norm"
        )


def summary(state: dict[str, torch.Tensor], count: int = 3) -> str:
    """'52 tensors: model.1.weight [64, 3, 7, 7], model.1.bias [64], ...': what a file holds, in one line."""
    names = sorted(state, key=_natural)[:count]
    shown = ", ".join(f"{k} {list(state[k].shape)}" for k in names)
    return f"{len(state)} tensors: {shown}{', ...' if len(state) > count else ''}"


def _natural(key: str):
    return [int(part) if part.isdigit() else part for part in key.split(".")]


def _indices(state: dict, pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m[1]) for k in state if (m := regex.match(k))})


def _weight(state, key, name, dims=4) -> torch.Tensor:
    if key not in state or state[key].dim() != dims:
        raise ConversionError(f"{name}: expected a tensor {key} of {dims} dimensions; {summary(state)}")
    return state[key]


def _norm(state: dict, norm_prefix: str, conv_prefix: str) -> str:
    """Which normalisation a layer had: BatchNorm has a scale and running statistics; affine InstanceNorm a scale and
    none; InstanceNorm (the zoo) neither, but a conv bias. Norm 'none' in the official code also drops the bias,
    which no cyclegan-hub network does."""
    if f"{norm_prefix}.weight" in state:
        return "batch" if f"{norm_prefix}.running_mean" in state else "instance_affine"
    if f"{conv_prefix}.bias" in state:
        return "instance"
    raise ConversionError(
        f"{conv_prefix}.weight has neither a bias nor a norm layer after it (official norm 'none'): "
        "not a layout cyclegan-hub builds"
    )


def detect(state: dict[str, torch.Tensor], name: str = "the checkpoint") -> Layout:
    """Which network ``state`` is (a ResNet generator of any of the layouts above, the official U-Net of any depth,
    or a PatchGAN), with the config that rebuilds it. Raises ConversionError saying what the file holds."""
    keys = [k for k in state if not k.endswith(UNUSED_NORM_STATS) or _is_batchnorm_stat(state, k)]
    if any(".conv_block." in k or re.match(r"^(model|main)\.\d+\.(block|res)\.", k) for k in keys):
        return _detect_resnet(state, name)
    if any(k.startswith("model.model.") for k in keys):
        return _detect_unet(state, name)
    if keys and all(
        re.match(r"^model\.\d+\.(weight|bias|running_mean|running_var|num_batches_tracked)$", k) for k in keys
    ):
        return _detect_discriminator(state, name)
    nearest = "a ResNet generator (model.N or main.N, residual blocks conv_block, block or res)"
    if any(re.search(r"(^|\.)(res|resblocks?|residual)\.?\d*\.", k) for k in keys):
        nearest = "a ResNet generator, but its blocks are named differently (conv_block or block expected)"
    raise ConversionError(f"{name}: not a layout cyclegan-hub converts ({summary(state)}); nearest: {nearest}")


def _is_batchnorm_stat(state: dict, key: str) -> bool:
    return key.rsplit(".", 1)[0] + ".weight" in state  # BatchNorm keeps its statistics; InstanceNorm has no weight


def _detect_resnet(state, name) -> Layout:
    p = "main" if any(k.startswith("main.") for k in state) else "model"  # Lornatang names it main
    block = next(b for b in ("conv_block", "block", "res") if any(re.match(rf"^{p}\.\d+\.{b}\.", k) for k in state))
    blocks = _indices(state, rf"^{p}\.(\d+)\.{block}\.")
    stem = _weight(state, f"{p}.1.weight", name)
    if stem.shape[-1] != 7:
        raise ConversionError(
            f"{name}: {p}.1.weight is a {stem.shape[-1]}x{stem.shape[-1]} convolution, not the "
            f"7x7 first layer of a ResNet generator; {summary(state)}"
        )
    convs = [i for i in _indices(state, rf"^{p}\.(\d+)\.weight$") if state[f"{p}.{i}.weight"].dim() == 4]
    antialias_down = any(f"{p}.{i}.filt" in state for i in range(2, blocks[0]))
    downs = [i for i in convs if 1 < i < blocks[0]]
    first_up = blocks[-1] + 1
    if f"{p}.{first_up}.filt" in state:
        upsampling = "antialias"
    elif f"{p}.{first_up}.weight" in state:
        upsampling = "transpose"
    else:
        upsampling = "resize_zero"
    second = state.get(f"{p}.{blocks[0]}.{block}.6.weight")  # the second conv moves from 5 to 6 after a dropout
    source = "lornatang" if p == "main" else "official"
    if antialias_down or upsampling == "antialias":
        source = "cut"
    elif upsampling == "resize_zero":
        source = "huggan"
    config = dict(
        architecture="resnet",
        in_channels=stem.shape[1],
        out_channels=_weight(state, f"{p}.{max(convs)}.weight", name).shape[0],
        base_channels=stem.shape[0],
        n_blocks=len(blocks),
        n_downsampling=len(downs),
        norm=_norm(state, f"{p}.2", f"{p}.1"),
        downsampling="antialias" if antialias_down else "stride",
        upsampling=upsampling,
        dropout=0.5 if second is not None and second.dim() == 4 else 0.0,
        # the HugGAN / eriklindernoren generator pads its 7x7 convolutions by the channel count
        edge_padding=stem.shape[1] if source == "huggan" else 3,
    )

    def theirs(ours: str) -> str:
        return f"{p}." + ours[len("net.") :].replace(".block.", f".{block}.")

    return Layout("generator", config, theirs, source, block, p)


def _unet_prefix(level: int) -> str:
    return "model.model." + ("1.model." if level >= 1 else "") + "3.model." * max(0, level - 1)


def _unet_level(key: str) -> int:
    """The level of an official U-Net tensor name (0 = outermost), read in one pass over the name."""
    rest, level = key[len("model.model.") :], 0
    if rest.startswith("1.model."):
        rest, level = rest[len("1.model.") :], 1
        while rest.startswith("3.model."):
            rest, level = rest[len("3.model.") :], level + 1
    return level


def _unet_mapping(depth: int):
    def theirs(ours: str) -> str:
        kind, level, index, rest = re.match(r"^net\.(downs|ups)\.(\d+)\.(\d+)\.(.*)$", ours).groups()
        level, index = int(level), int(index)
        outermost, innermost = level == 0, level == depth - 1
        if kind == "downs":  # ours: [conv] | [lrelu, conv, norm] | [lrelu, conv]
            position = (
                0 if outermost else index
            )  # official: [conv] | [lrelu, conv, norm, sub, ...] | [lrelu, conv, ...]
        elif outermost:  # ours: [relu, convT, tanh]; official: [conv, sub, relu, convT, tanh]
            position = index + 2
        elif innermost:  # ours: [relu, convT, norm]; official: [lrelu, conv, relu, convT, norm]
            position = index + 2
        else:  # ours: [relu, convT, norm, (dropout)]; official: [lrelu, conv, norm, sub, relu, convT, norm, (dropout)]
            position = index + 4
        return f"{_unet_prefix(level)}{position}.{rest}"

    return theirs


def _detect_unet(state, name) -> Layout:
    depth = 1 + max(_unet_level(k) for k in state if k.startswith("model.model."))
    outer = _weight(state, "model.model.0.weight", name)
    up = _weight(state, "model.model.3.weight", name)
    norm = _norm(state, _unet_prefix(1) + "2", _unet_prefix(1) + "1") if depth > 2 else "instance"
    config = dict(
        architecture="unet",
        in_channels=outer.shape[1],
        out_channels=up.shape[1],
        base_channels=outer.shape[0],
        n_blocks=0,
        n_downsampling=depth,
        norm=norm,
        upsampling="transpose",
        dropout=0.0,
    )
    return Layout("generator", config, _unet_mapping(depth))


def _detect_discriminator(state, name) -> Layout:
    convs = [i for i in _indices(state, r"^model\.(\d+)\.weight$") if state[f"model.{i}.weight"].dim() == 4]
    first = _weight(state, "model.0.weight", name)
    if len(convs) < 3:
        raise ConversionError(f"{name}: {len(convs)} convolutions is not an official PatchGAN (at least 3)")
    norm = _norm(state, f"model.{convs[1] + 1}", f"model.{convs[1]}")
    config = dict(in_channels=first.shape[1], base_channels=first.shape[0], n_layers=len(convs) - 2, norm=norm)
    return Layout("discriminator", config, lambda ours: ours)


# ---------------------------------------------------------------------------------------------------------------
# converting: every tensor of theirs finds its place, every tensor of ours is filled
# ---------------------------------------------------------------------------------------------------------------


def _module(network: nn.Module, path: str) -> nn.Module | None:
    try:
        return network.get_submodule(path)
    except AttributeError:
        return None


def _bias_before_instance_norm(network: nn.Module, key: str) -> bool:
    """Whether ``key`` is the bias of a convolution that an InstanceNorm follows (which removes any bias)."""
    if not key.endswith(".bias"):
        return False
    parent, _, index = key[: -len(".bias")].rpartition(".")
    following = _module(network, f"{parent}.{int(index) + 1}") if index.isdigit() else None
    return isinstance(following, nn.InstanceNorm2d)


def convert_state(state: dict[str, torch.Tensor], name: str = "the checkpoint", **generator_kwargs):
    """The cyclegan-hub network equal to a state dict of any layout above: ``(network, layout)``.
    ``generator_kwargs`` set the domains, training size and value range of a generator. Every tensor of theirs must
    find its place and every tensor of ours must be filled, shapes equal; the first one that does not is named."""
    layout = detect(state, name)
    try:
        if layout.kind == "generator":
            network = CycleGenerator(**layout.config, **generator_kwargs)
        else:
            network = PatchDiscriminator(**layout.config)
    except ValueError as err:
        raise ConversionError(f"{name}: {layout.describe()} is not one cyclegan-hub builds ({err})") from None
    mapped, used = {}, set()
    for key, value in network.state_dict().items():
        official = layout.theirs(key)
        if official not in state:
            if _bias_before_instance_norm(network, key):
                mapped[key] = torch.zeros_like(value)  # a bias the norm would remove: theirs has none
                continue
            raise ConversionError(f"{name}: no tensor {official} for {layout.describe()} (ours: {key})")
        if tuple(state[official].shape) != tuple(value.shape):
            raise ConversionError(
                f"{name}: {official} has shape {tuple(state[official].shape)}, expected "
                f"{tuple(value.shape)} for {layout.describe()}"
            )
        if not state[official].is_floating_point() and value.is_floating_point():
            raise ConversionError(f"{name}: {official} is {state[official].dtype}, not a float tensor")
        mapped[key] = state[official].to(value.dtype)
        used.add(official)
    for key in state:
        if key in used or key.endswith(UNUSED_NORM_STATS):
            continue
        if key.endswith(".filt"):  # CUT's fixed blur filters: ours rebuilds them; theirs must be the same
            ours = _module(network, "net." + key.split(".", 1)[1][: -len(".filt")])
            fixed = getattr(ours, "filt", None)
            if fixed is not None and state[key].shape == fixed.shape and torch.allclose(state[key].float(), fixed):
                continue
            raise ConversionError(f"{name}: {key} is not the fixed blur filter of {layout.describe()}; refused")
        raise ConversionError(f"{name}: tensor {key} does not fit {layout.describe()}")
    bad = non_finite(mapped)
    if bad is not None:
        raise ConversionError(f"{name}: {layout.theirs(bad)} holds NaN or infinite values; refused")
    network.load_state_dict(mapped)
    return network.eval(), layout


# ---------------------------------------------------------------------------------------------------------------
# each layout's graph, evaluated straight from its own tensors: how each conversion measures its equality
# ---------------------------------------------------------------------------------------------------------------


@torch.inference_mode()
def reference_forward(state: dict[str, torch.Tensor], layout: Layout, x: torch.Tensor) -> torch.Tensor:
    """The original network's output for ``x``, computed with torch.nn.functional from its own tensor names alone
    (no module of ours involved; CUT's blur filters are the file's own): the reference every conversion is
    measured against."""
    layers = _FunctionalLayers(state)
    if layout.kind == "discriminator":
        return _reference_patchgan(layers, layout, x)
    if layout.config["architecture"] == "resnet":
        return _reference_resnet(layers, layout, x)
    return _reference_unet(layers, layout, x)


class _FunctionalLayers:
    """A checkpoint's layers applied straight from its tensors, by their names in the file (in float32)."""

    def __init__(self, state: dict[str, torch.Tensor]):
        self.state = state

    def conv(self, x, key, stride=1, padding=0, transpose=False):
        weight, bias = self.state[f"{key}.weight"].float(), self.state.get(f"{key}.bias")
        bias = None if bias is None else bias.float()
        if transpose:
            return F.conv_transpose2d(
                x, weight, bias, stride, padding, output_padding=1 if weight.shape[-1] == 3 else 0
            )
        return F.conv2d(x, weight, bias, stride, padding)

    def norm(self, x, key, kind):
        state = self.state
        if kind == "batch":
            return F.batch_norm(
                x,
                state[f"{key}.running_mean"].float(),
                state[f"{key}.running_var"].float(),
                state[f"{key}.weight"].float(),
                state[f"{key}.bias"].float(),
                training=False,
            )
        if kind == "instance_affine":
            return F.instance_norm(x, weight=state[f"{key}.weight"].float(), bias=state[f"{key}.bias"].float())
        return F.instance_norm(x) if kind == "instance" else x


def _reference_patchgan(layers: _FunctionalLayers, layout: Layout, x: torch.Tensor) -> torch.Tensor:
    """The official PatchGAN: stride-2 convs (the last two stride 1), norm after all but the first and last, leaky
    ReLU after all but the last."""
    state, conv, norm = layers.state, layers.conv, layers.norm
    convs = [i for i in _indices(state, r"^model\.(\d+)\.weight$") if state[f"model.{i}.weight"].dim() == 4]
    for n, i in enumerate(convs):
        last = n == len(convs) - 1
        x = conv(x, f"model.{i}", stride=2 if n < len(convs) - 2 else 1, padding=1)
        if 0 < n and not last:
            x = norm(x, f"model.{i + 1}", layout.config["norm"])
        if not last:
            x = F.leaky_relu(x, 0.2)
    return x


def _reference_resnet(layers: _FunctionalLayers, layout: Layout, x: torch.Tensor) -> torch.Tensor:
    """The ResNet generator of every layout: its Sequential walked index by index, as each layout numbers it."""
    state, conv, norm, c = layers.state, layers.conv, layers.norm, layout.config
    kind, down, edge, m = c["norm"], c["n_downsampling"], (c["edge_padding"],) * 4, layout.prefix
    x = F.relu(norm(conv(F.pad(x, edge, mode="reflect"), f"{m}.1"), f"{m}.2", kind))
    i = 4
    for _ in range(down):
        if c["downsampling"] == "stride":
            x = F.relu(norm(conv(x, f"{m}.{i}", stride=2, padding=1), f"{m}.{i + 1}", kind))
            i += 3
        else:  # conv, norm, ReLU, blur + subsample with the file's filter
            x = F.relu(norm(conv(x, f"{m}.{i}", padding=1), f"{m}.{i + 1}", kind))
            blur = state[f"{m}.{i + 3}.filt"].float()
            x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), blur, stride=2, groups=x.shape[1])
            i += 4
    second = 6 if c["dropout"] > 0 else 5
    for _ in range(c["n_blocks"]):
        b = f"{m}.{i}.{layout.block}"
        y = F.relu(norm(conv(F.pad(x, (1, 1, 1, 1), mode="reflect"), f"{b}.1"), f"{b}.2", kind))
        y = norm(conv(F.pad(y, (1, 1, 1, 1), mode="reflect"), f"{b}.{second}"), f"{b}.{second + 1}", kind)
        x, i = x + y, i + 1
    for _ in range(down):
        if c["upsampling"] == "transpose":
            x = F.relu(norm(conv(x, f"{m}.{i}", stride=2, padding=1, transpose=True), f"{m}.{i + 1}", kind))
            i += 3
            continue
        if c["upsampling"] == "resize_zero":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        else:  # replicate-pad, the file's blur filter transposed, cropped to twice the size
            blur = state[f"{m}.{i}.filt"].float()
            x = F.pad(x, (1, 1, 1, 1), mode="replicate")
            x = F.conv_transpose2d(x, blur, stride=2, padding=2, groups=x.shape[1])[:, :, 1:-1, 1:-1]
        x = F.relu(norm(conv(x, f"{m}.{i + 1}", padding=1), f"{m}.{i + 2}", kind))
        i += 4
    return torch.tanh(conv(F.pad(x, edge, mode="reflect"), f"{m}.{i + 1}"))


def _reference_unet(layers: _FunctionalLayers, layout: Layout, x: torch.Tensor) -> torch.Tensor:
    """The official U-Net: its skip blocks nested level in level, each concatenating its input to its output."""
    conv, norm = layers.conv, layers.norm
    depth, kind = layout.config["n_downsampling"], layout.config["norm"]

    def level(x, i):  # the skip block of level i, without its concatenation
        p = _unet_prefix(i)
        if i == 0:
            inner = level(conv(x, f"{p}0", stride=2, padding=1), 1)
            return torch.tanh(conv(F.relu(inner), f"{p}3", stride=2, padding=1, transpose=True))
        down = conv(F.leaky_relu(x, 0.2), f"{p}1", stride=2, padding=1)
        if i == depth - 1:
            return torch.cat(
                [x, norm(conv(F.relu(down), f"{p}3", stride=2, padding=1, transpose=True), f"{p}4", kind)], 1
            )
        inner = level(norm(down, f"{p}2", kind), i + 1)
        return torch.cat([x, norm(conv(F.relu(inner), f"{p}5", stride=2, padding=1, transpose=True), f"{p}6", kind)], 1)

    return level(x, 0)


def measure_equality(
    network, state: dict[str, torch.Tensor], layout: Layout, size=None, seed: int = 0
) -> tuple[float, tuple]:
    """(max |converted - original|, input shape) on a random non-square input (default about 256 x 320, sides
    multiples of the network's, plus the border it loses), in float32."""
    spec = network.translation_spec
    if size is None:
        multiple = spec.size_multiple
        height = -(-256 // multiple) * multiple
        size = (height + 2 * spec.border, height + max(multiple, 64) + 2 * spec.border)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, layout.config["in_channels"], *size, generator=g) * 2 - 1
    with torch.inference_mode():
        ours = network.float()(x)
    return float((ours - reference_forward(state, layout, x)).abs().max()), tuple(x.shape)
