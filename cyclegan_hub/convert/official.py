"""Generators and discriminators of the official CycleGAN implementation (Zhu, Park, Isola, Efros:
pytorch-CycleGAN-and-pix2pix) as cyclegan-hub models, tensor for tensor.

The official networks are, layer for layer, the networks ``CycleGenerator`` and ``PatchDiscriminator`` build; only
the names of their tensors differ. As its published architecture describes them:

- ResNet generator (``resnet_6blocks`` / ``resnet_9blocks``): one ``nn.Sequential`` named ``model``: reflection pad,
  7x7 conv, norm, ReLU; two stride-2 3x3 convs with norm and ReLU; the residual blocks, each a ``conv_block``
  Sequential (pad, 3x3 conv, norm, ReLU, [dropout], pad, 3x3 conv, norm); two stride-2 transposed convs; pad, 7x7
  conv, tanh. Ours has the same Sequential, named ``net``, with blocks named ``block``:
  ``model.10.conv_block.5.weight`` is our ``net.10.block.5.weight``.
- U-Net generator (``unet_128`` / ``unet_256``): skip-connection blocks nested in each other, each a Sequential
  ``model`` of [down ReLU, down conv, down norm, the inner block, up ReLU, up conv, up norm] (the outermost without
  down ReLU and norm, ending in tanh; the innermost without the inner block and down norm). Level ``i`` (0 =
  outermost) lives at ``model.model.`` + ``1.model.`` (level 1) + ``3.model.`` per further level; ours keeps the
  levels in two flat lists, ``downs`` and ``ups``.
- PatchGAN discriminator (``basic`` / ``n_layers``): the same ``model`` Sequential as ours, same indices.

With instance norm (the zoo's setting) convolutions carry biases and norms carry no parameters; files saved by old
PyTorch versions hold InstanceNorm ``running_mean`` / ``running_var`` / ``num_batches_tracked`` that the network
never uses: they are dropped, as the official loader drops them. Checkpoints are read with
``torch.load(weights_only=True)``: a file holding anything but tensors is refused, and nothing in it is executed.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import translation
from ..io.files import read_file
from ..models.cyclegan import CycleGenerator
from ..models.discriminator import PatchDiscriminator
from ..models.modeling import non_finite

#: The largest checkpoint read (a ResNet-9 generator is 45 MB; a 70x70 PatchGAN 11 MB).
MAX_CHECKPOINT_BYTES = 1 << 30
#: Keys of an outer dict that holds the state dict (training scripts often save {"state_dict": ...}).
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "netG", "params", "weights")
_UNUSED_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")

PAPER = "https://arxiv.org/abs/1703.10593"
OFFICIAL_CODE = "https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix"


class ConversionError(ValueError):
    """A checkpoint that cannot be converted, with the reason in one line."""


# ---------------------------------------------------------------------------------------------------------------
# reading a checkpoint: tensors only
# ---------------------------------------------------------------------------------------------------------------


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of an official checkpoint file: ``torch.load(weights_only=True)`` of a regular file of at
    most 1 GB, unwrapped from an outer dict, ``module.`` prefixes (DataParallel) removed. Raises ConversionError
    for anything else: a pickle that holds code or other objects, a truncated file, no tensors."""
    path = Path(path)
    data = read_file(path, MAX_CHECKPOINT_BYTES, what=str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing a foreign file
            loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        detail = str(err).split("WeightsUnpickler error:")[-1].strip().splitlines()[0] if str(err) else ""
        raise ConversionError(
            f"{path.name} holds Python objects other than tensors ({detail}); refused: only "
            f"weights are read, nothing in the file is run"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, AttributeError, IndexError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConversionError(f"{path.name} is truncated or not a PyTorch checkpoint ({first[:160]})") from None
    return unwrap_state_dict(loaded, path.name)


def unwrap_state_dict(loaded, name: str) -> dict[str, torch.Tensor]:
    if isinstance(loaded, dict) and loaded and not all(torch.is_tensor(v) for v in loaded.values()):
        inner = [k for k in WRAPPER_KEYS if isinstance(loaded.get(k), dict)]
        dicts = [k for k, v in loaded.items() if isinstance(v, dict)]
        if inner:
            loaded = loaded[inner[0]]
        elif len(dicts) == 1:
            loaded = loaded[dicts[0]]
    if not isinstance(loaded, dict) or not loaded:
        raise ConversionError(f"{name} holds no state dict (a {type(loaded).__name__}, not a dict of tensors)")
    for key, value in loaded.items():
        if not isinstance(key, str) or not torch.is_tensor(value):
            raise ConversionError(f"{name}: entry {key!r} is a {type(value).__name__}, not a tensor")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in loaded.items()}


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# reading the architecture off the tensors, and the key mapping
# ---------------------------------------------------------------------------------------------------------------


def _indices(state: dict, pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m[1]) for k in state if (m := regex.match(k))})


def _norm(state: dict, norm_prefix: str, conv_prefix: str) -> str:
    """Which normalisation a layer had: BatchNorm has affine parameters, InstanceNorm (the zoo) none but a conv
    bias. Norm 'none' in the official code also drops the bias, which no cyclegan-hub network does."""
    if f"{norm_prefix}.weight" in state:
        return "batch"
    if f"{conv_prefix}.bias" in state:
        return "instance"
    raise ConversionError(
        f"{conv_prefix}.weight has neither a bias nor a norm layer after it (official norm 'none'): "
        "not a layout cyclegan-hub builds"
    )


def _resnet_mapping(ours: str) -> str:
    return "model." + ours[len("net.") :].replace(".block.", ".conv_block.")


def _unet_prefix(level: int) -> str:
    return "model.model." + ("1.model." if level >= 1 else "") + "3.model." * max(0, level - 1)


def _unet_mapping(depth: int):
    def official(ours: str) -> str:
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

    return official


@dataclass
class Layout:
    """An official network read off its tensors: the cyclegan-hub config that builds it and the key mapping."""

    kind: str  # "generator" or "discriminator"
    config: dict
    official_key: object  # ours -> official name

    def describe(self) -> str:
        c = self.config
        if self.kind == "discriminator":
            return (
                f"PatchGAN discriminator, {c['n_layers']} layers, {c['base_channels']} base channels, {c['norm']} norm"
            )
        name = f"ResNet-{c['n_blocks']}" if c["architecture"] == "resnet" else f"U-Net-{2 ** c['n_downsampling']}"
        return (
            f"{name} generator, {c['in_channels']} -> {c['out_channels']} channels, {c['base_channels']} base "
            f"channels, {c['norm']} norm"
        )


def detect(state: dict[str, torch.Tensor], name: str = "the checkpoint") -> Layout:
    """Which official network ``state`` is (ResNet or U-Net generator of any depth, or PatchGAN), with the config
    that rebuilds it. Raises ConversionError naming the first tensor that fits no layout."""
    keys = [k for k in state if not k.endswith(_UNUSED_NORM_STATS) or _is_batchnorm_stat(state, k)]
    if any(".conv_block." in k for k in keys):
        return _detect_resnet(state, name)
    if any(k.startswith("model.model.") for k in keys):
        return _detect_unet(state, name)
    if keys and all(re.match(r"^model\.\d+\.", k) for k in keys):
        return _detect_discriminator(state, name)
    first = sorted(keys)[0] if keys else "(none)"
    raise ConversionError(f"{name}: not an official ResNet, U-Net or PatchGAN layout (first tensor: {first})")


def _is_batchnorm_stat(state: dict, key: str) -> bool:
    return key.rsplit(".", 1)[0] + ".weight" in state  # BatchNorm keeps its statistics; InstanceNorm has no weight


def _weight(state, key, name, dims=4) -> torch.Tensor:
    if key not in state or state[key].dim() != dims:
        raise ConversionError(f"{name}: expected a tensor {key} of {dims} dimensions; the layout is not recognised")
    return state[key]


def _detect_resnet(state, name) -> Layout:
    blocks = _indices(state, r"^model\.(\d+)\.conv_block\.")
    first_conv = _weight(state, "model.1.weight", name)
    downs = [
        i
        for i in _indices(state, r"^model\.(\d+)\.weight$")
        if 1 < i < blocks[0] and state[f"model.{i}.weight"].dim() == 4
    ]
    last = max(i for i in _indices(state, r"^model\.(\d+)\.weight$") if state[f"model.{i}.weight"].dim() == 4)
    second = state.get(f"model.{blocks[0]}.conv_block.6.weight")  # the second conv moves from 5 to 6 after a dropout
    config = dict(
        architecture="resnet",
        in_channels=first_conv.shape[1],
        out_channels=_weight(state, f"model.{last}.weight", name).shape[0],
        base_channels=first_conv.shape[0],
        n_blocks=len(blocks),
        n_downsampling=len(downs),
        norm=_norm(state, "model.2", "model.1"),
        upsampling="transpose",
        dropout=0.5 if second is not None and second.dim() == 4 else 0.0,
    )
    return Layout("generator", config, _resnet_mapping)


def _detect_unet(state, name) -> Layout:
    depth = 1
    while any(k.startswith(_unet_prefix(depth)) for k in state):
        depth += 1
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
# converting
# ---------------------------------------------------------------------------------------------------------------


def convert_state(state: dict[str, torch.Tensor], name: str = "the checkpoint", **generator_kwargs):
    """The cyclegan-hub network equal to an official state dict: ``(network, layout)``. ``generator_kwargs`` set the
    domains, training size and value range of a generator. Every official tensor must find its place and every
    tensor of ours must be filled, shapes equal; the first one that does not is named."""
    layout = detect(state, name)
    if layout.kind == "generator":
        network = CycleGenerator(**layout.config, **generator_kwargs)
    else:
        network = PatchDiscriminator(**layout.config)
    ours = network.state_dict()
    mapped, used = {}, set()
    for key, value in ours.items():
        official = layout.official_key(key)
        if official not in state:
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
    unused = [k for k in state if k not in used and not k.endswith(_UNUSED_NORM_STATS)]
    if unused:
        raise ConversionError(f"{name}: tensor {unused[0]} does not fit {layout.describe()}")
    bad = non_finite(mapped)
    if bad is not None:
        raise ConversionError(f"{name}: {layout.official_key(bad)} holds NaN or infinite values; refused")
    network.load_state_dict(mapped)
    return network.eval(), layout


def official_generator_names(folder: str | os.PathLike, epoch: str = "latest") -> dict[str, Path]:
    """The four files of an official training run's checkpoint: ``<epoch>_net_G_A.pth`` ... ``<epoch>_net_D_B.pth``."""
    folder = Path(folder)
    return {part: folder / f"{epoch}_net_{part}.pth" for part in ("G_A", "G_B", "D_A", "D_B")}


def convert_official_run(folder: str | os.PathLike, epoch: str, label_a: str, label_b: str, image_size: int) -> dict:
    """The four networks of an official training checkpoint, in our roles: G_A maps A -> B (our G), G_B maps
    B -> A (our F), D_A judges domain B images (our D_B) and D_B judges domain A (our D_A)."""
    files = official_generator_names(folder, epoch)
    for path in files.values():
        if not path.is_file():
            raise ConversionError(
                f"{folder} has no {path.name} (an official checkpoint: {epoch}_net_G_A.pth, "
                f"{epoch}_net_G_B.pth, {epoch}_net_D_A.pth, {epoch}_net_D_B.pth)"
            )
    nets = {}
    for ours, part, domains in (
        ("G", "G_A", (label_a, label_b)),
        ("F", "G_B", (label_b, label_a)),
        ("D_B", "D_A", None),
        ("D_A", "D_B", None),
    ):
        state = read_checkpoint(files[part])
        kwargs = dict(source_domain=domains[0], target_domain=domains[1], image_size=image_size) if domains else {}
        network, layout = convert_state(state, files[part].name, **kwargs)
        expected = "generator" if domains else "discriminator"
        if layout.kind != expected:
            raise ConversionError(f"{files[part].name} is a {layout.kind}, not a {expected}")
        nets[ours] = network
    return nets


# ---------------------------------------------------------------------------------------------------------------
# the official graph, evaluated straight from the official tensors: how each conversion measures its equality
# ---------------------------------------------------------------------------------------------------------------


@torch.inference_mode()
def official_forward(state: dict[str, torch.Tensor], layout: Layout, x: torch.Tensor) -> torch.Tensor:
    """The official network's output for ``x``, computed with torch.nn.functional from the official tensor names
    alone (no module of ours involved): the reference every conversion is measured against."""
    import torch.nn.functional as F

    c = layout.config

    def conv(x, key, stride=1, padding=0, transpose=False):
        weight, bias = state[f"{key}.weight"].float(), state.get(f"{key}.bias")
        bias = None if bias is None else bias.float()
        if transpose:
            return F.conv_transpose2d(
                x, weight, bias, stride, padding, output_padding=1 if weight.shape[-1] == 3 else 0
            )
        return F.conv2d(x, weight, bias, stride, padding)

    def norm(x, key, kind):
        if kind == "batch":
            return F.batch_norm(
                x,
                state[f"{key}.running_mean"].float(),
                state[f"{key}.running_var"].float(),
                state[f"{key}.weight"].float(),
                state[f"{key}.bias"].float(),
                training=False,
            )
        return F.instance_norm(x) if kind == "instance" else x

    if layout.kind == "discriminator":
        convs = [i for i in _indices(state, r"^model\.(\d+)\.weight$") if state[f"model.{i}.weight"].dim() == 4]
        for n, i in enumerate(convs):
            last = n == len(convs) - 1
            x = conv(x, f"model.{i}", stride=2 if n < len(convs) - 2 else 1, padding=1)
            if 0 < n and not last:
                x = norm(x, f"model.{i + 1}", c["norm"])
            if not last:
                x = F.leaky_relu(x, 0.2)
        return x

    if c["architecture"] == "resnet":
        kind, down = c["norm"], c["n_downsampling"]
        x = F.relu(norm(conv(F.pad(x, (3, 3, 3, 3), mode="reflect"), "model.1"), "model.2", kind))
        i = 4
        for _ in range(down):
            x = F.relu(norm(conv(x, f"model.{i}", stride=2, padding=1), f"model.{i + 1}", kind))
            i += 3
        second = 6 if c["dropout"] > 0 else 5
        for _ in range(c["n_blocks"]):
            b = f"model.{i}.conv_block"
            y = F.relu(norm(conv(F.pad(x, (1, 1, 1, 1), mode="reflect"), f"{b}.1"), f"{b}.2", kind))
            y = norm(conv(F.pad(y, (1, 1, 1, 1), mode="reflect"), f"{b}.{second}"), f"{b}.{second + 1}", kind)
            x, i = x + y, i + 1
        for _ in range(down):
            x = F.relu(norm(conv(x, f"model.{i}", stride=2, padding=1, transpose=True), f"model.{i + 1}", kind))
            i += 3
        return torch.tanh(conv(F.pad(x, (3, 3, 3, 3), mode="reflect"), f"model.{i + 1}"))

    depth, kind = c["n_downsampling"], c["norm"]

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
    """(max |converted - official|, input shape) on a random non-square input (default about 256 x 320, sides
    multiples of the network's), in float32."""
    if size is None:
        multiple = network.translation_spec.size_multiple
        height = -(-256 // multiple) * multiple
        size = (height, height + max(multiple, 64))
    g = torch.Generator().manual_seed(seed)
    channels = layout.config["in_channels"]
    x = torch.rand(1, channels, *size, generator=g) * 2 - 1
    with torch.inference_mode():
        ours = network.float()(x)
    return float((ours - official_forward(state, layout, x)).abs().max()), tuple(x.shape)


# ---------------------------------------------------------------------------------------------------------------
# the command: a save_pretrained folder, or a run folder of both directions, with cards
# ---------------------------------------------------------------------------------------------------------------

_PAIR_NAME = re.compile(r"^(?:style_)?(?P<a>[A-Za-z]+)2(?P<b>[A-Za-z]+)(?:_.*)?$")


def domains_from_name(name: str) -> tuple[str, str] | None:
    """('horse', 'zebra') from 'horse2zebra', ('summer', 'winter') from 'summer2winter_yosemite'; else None."""
    match = _PAIR_NAME.match(name)
    return (match["a"], match["b"]) if match else None


def origin_text(name: str, path: Path, digest: str, layout: Layout, difference: float, shape: tuple) -> str:
    from .. import __version__

    return (
        f"The `{name}` generator released by the authors of CycleGAN (Jun-Yan Zhu, Taesung Park, Phillip Isola, "
        f"Alexei A. Efros: *Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks*, "
        f"ICCV 2017, [paper]({PAPER})) with their implementation [pytorch-CycleGAN-and-pix2pix]({OFFICIAL_CODE}), "
        f"under its license (BSD). Converted by cyclegan-hub {__version__} from `{path.name}` "
        f"(SHA-256 `{digest}`): {layout.describe()}, read off the tensors and renamed, nothing else changed.\n\n"
        f"Equality: on a random input of shape {list(shape)}, this model's output and the original network's "
        f"(computed from the original tensors with torch.nn.functional) differ by at most {difference:.1e} "
        f"(float32 noise)."
    )


def convert_checkpoint(
    checkpoint: str,
    output: str | os.PathLike,
    *,
    reverse: str | None = None,
    source_domain: str | None = None,
    target_domain: str | None = None,
    image_size: int = 256,
    sample: str | None = None,
    name: str | None = None,
) -> list[str]:
    """``cyclegan-hub convert``: the generator of ``checkpoint`` as a save_pretrained folder at ``output`` (with
    ``reverse``: both directions as a run folder that ``push`` sends as twin repos). Written atomically: an
    interrupted conversion leaves no folder behind. Returns the lines to print."""
    from ..hub.cards import CardInputs, write_generator
    from ..io.files import replace_folder
    from ..io.imaging import open_image

    output = Path(output)
    name = name or Path(checkpoint).stem
    guessed = domains_from_name(name) or ("A", "B")
    domains = (source_domain or guessed[0], target_domain or guessed[1])
    sources = [(Path(checkpoint), domains, name)]
    if reverse is not None:
        sources.append((Path(reverse), domains[::-1], Path(reverse).stem))
    converted, lines = [], []
    for path, (a, b), model_name in sources:
        state = read_checkpoint(path)
        network, layout = convert_state(state, path.name, source_domain=a, target_domain=b, image_size=image_size)
        if layout.kind != "generator":
            raise ConversionError(f"{path.name} is a PatchGAN discriminator, not a generator")
        difference, shape = measure_equality(network, state, layout)
        if difference > 1e-4:
            raise ConversionError(
                f"{path.name}: the converted network differs from the original by {difference:.1e}; refused"
            )
        origin = origin_text(model_name, path, sha256(path), layout, difference, shape)
        converted.append((network, CardInputs(origin=origin, license="bsd")))
        lines.append(f"{path.name}: {layout.describe()}, {a} -> {b}; max |converted - original| = {difference:.1e}")
    picture = open_image(sample) if sample is not None else None

    def sample_grid(folder: Path, forward, backward) -> Path | None:
        if picture is None:
            return None
        from PIL import Image

        images = (
            translation.translate(forward, picture, return_reconstruction_with=backward)
            if backward
            else (translation.translate(forward, picture),)
        )
        tiles = [picture.convert("RGB"), *(image.convert("RGB") for image in images)]
        grid = Image.new(
            "RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), max(t.height for t in tiles)), "white"
        )
        left = 0
        for tile in tiles:
            grid.paste(tile, (left, 0))
            left += tile.width + 4
        target = folder / "sample-grid.png"
        grid.save(target)
        return target

    if reverse is None:
        ((network, inputs),) = converted

        def fill(tmp: Path) -> None:
            grid = sample_grid(tmp, network, None)
            write_generator(network, tmp, inputs, name=name, sample=grid)
            if grid is not None:
                grid.unlink()

        replace_folder(output, fill)
        lines.append(f"wrote {output} (config.json, model.safetensors, README.md)")
        return lines

    def fill_run(tmp: Path) -> None:
        (forward, forward_inputs), (backward, backward_inputs) = converted
        inputs = CardInputs(origin=forward_inputs.origin, reverse_origin=backward_inputs.origin, license="bsd")
        write_generator(forward, tmp / "generator_AtoB", inputs, "AtoB", name=name)
        write_generator(backward, tmp / "generator_BtoA", inputs, "BtoA", name=Path(reverse).stem)
        inputs.save(tmp)  # the run's card inputs: push writes both cards from them
        (tmp / "samples").mkdir()
        grid = sample_grid(tmp / "samples", forward, backward)
        if grid is not None:
            grid.rename(tmp / "samples" / "step-000000.png")

    replace_folder(output, fill_run)
    lines.append(
        f"wrote {output} (generator_AtoB/, generator_BtoA/): push it with "
        f"`cyclegan-hub push {output} --repo-id user/{name}`"
    )
    return lines


def init_from_official(nets: dict, folder: str | os.PathLike, epoch: str = "latest") -> None:
    """Load an official training checkpoint into a run's G, F, D_A, D_B (built from its config), after checking
    that each official network has the architecture the config asks for."""
    g = nets["G"].config
    official = convert_official_run(folder, epoch, g["source_domain"], g["target_domain"], g["image_size"])
    for name, net in nets.items():
        theirs, ours = official[name].config, net.config
        own = ("source_domain", "target_domain", "image_size", "value_range")
        differs = [k for k in theirs if k not in own and theirs[k] != ours[k]]
        if differs:
            key = differs[0]
            raise ConversionError(f"the official {name} has {key} = {theirs[key]!r}, this config {ours[key]!r}: "
                                  f"set the model section to match")  # fmt: skip
        net.load_state_dict(official[name].state_dict())
