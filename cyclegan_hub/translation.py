"""The one translation path: images in, images out, for a network of any family.

A network declares what the path needs to know of it as a ``TranslationSpec`` (its ``translation_spec``
attribute): channels in and out, the value range it sees and produces, the size multiple and minimum it needs,
whether ``precision="auto"`` may run it in bf16 on a CPU that computes bf16 natively, and its preferred batch.
Everything else (decoding any image, the channel policy, grouping by size, batching, the value range, pad -> run ->
crop, precision, resizing back) happens here, once, for every caller: ``CycleGenerator.translate``, the CLI,
``serve`` and the Space, evaluation, training samples and the ONNX session. The path knows no model class; the
models sit on the floor above and call down into it (as diffusers keeps pipelines apart from its models).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image
from torch import nn

from . import tiles
from .io import imaging

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TranslationSpec:
    """What the translation path needs to know of a network.

    Args:
        in_channels: channels of the input images (1 gray, 3 RGB); images of any mode are converted to them.
        out_channels: channels the network produces (1 or 3 for images).
        value_range: (low, high) the network sees and produces; pixels in [0, 1] are mapped linearly onto it.
        size_multiple: inputs are padded to a multiple of this and cropped back.
        min_size: and to at least this many pixels per side.
        bf16: ``precision="auto"`` runs the network in bf16 on a CPU with native bf16 (AVX512-BF16 or AMX).
        batch_size: images per forward pass when the caller does not say.
        border: pixels the network loses on each side (a converted model whose first and last convolutions pad
            less than they take); the path pads them back with the image's own reflection, so that every image
            comes out at its own size.
        heavy: a network that wants an accelerator (a one-step diffusion translator): a server states its CPU time
            before running it and runs it inside ``spaces.GPU`` on ZeroGPU hardware.
    """

    in_channels: int
    out_channels: int
    value_range: tuple[float, float] = (-1.0, 1.0)
    size_multiple: int = 1
    min_size: int = 1
    bf16: bool = False
    batch_size: int = 16
    border: int = 0
    heavy: bool = False


@runtime_checkable
class Translator(Protocol):
    """A network the path can run: a callable on ``[N, in_channels, H, W]`` tensors in its value range (H, W padded
    as its spec says) with a ``translation_spec``. An ``nn.Module`` is moved to the device and put in eval mode;
    anything else (an ONNX session) runs as it is."""

    translation_spec: TranslationSpec

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


#: "1" or "0" overrides the CPU check below: ``precision="auto"`` then behaves as on a CPU with (or without) native
#: bf16. It lets one machine give the verdict of the other kind (the tests run both ways), or keep "auto" in fp32.
NATIVE_BF16_ENV = "CYCLEGAN_HUB_NATIVE_BF16"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX), or what ``CYCLEGAN_HUB_NATIVE_BF16`` says.
    Elsewhere oneDNN emulates bf16, slower than fp32, so ``precision="auto"`` stays in fp32 there."""
    forced = os.environ.get(NATIVE_BF16_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return _cpuinfo_has_native_bf16()


@functools.lru_cache(maxsize=1)
def _cpuinfo_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def uses_bf16(model: Translator, device: torch.device, precision: str) -> bool:
    """Whether ``translate`` runs ``model`` in bf16 autocast on ``device`` for this ``precision``."""
    if not isinstance(model, nn.Module):  # an ONNX session runs as it was exported
        return False
    if precision != "auto":
        return precision == "bf16"
    return device.type == "cpu" and model.translation_spec.bf16 and cpu_has_native_bf16()


def run(model: Translator, images: torch.Tensor) -> torch.Tensor:
    """The network on ``[N, C, H, W]`` of any H, W (in its value range): padded to its size multiple, run, cropped
    back. Every tensor caller (translate, evaluation, training samples, export checks) goes through here."""
    spec = model.translation_spec
    return imaging.run_padded(model, images, spec.size_multiple, spec.min_size, spec.border)


def translate(
    model: Translator,
    images,
    *,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    max_side: int | None = None,
    resize_to: int | tuple[int, int] | None = None,
    return_reconstruction_with: Translator | None = None,
    precision: str = "auto",
    tile_pixels: int = tiles.DEFAULT_TILE_PIXELS,
    overlap: int = tiles.DEFAULT_OVERLAP,
    tile_statistics: str = tiles.DEFAULT_STATISTICS,
):
    """Translate images with ``model`` (and back with ``return_reconstruction_with``).

    Args:
        images: a PIL image, a file path, bytes, a numpy array ``[H, W(, C)]``, or a list of these (a 4-D
            array ``[N, H, W, C]`` counts as a list). Any mode (L, LA, RGB, RGBA, P, I;16, F, CMYK, ...) is
            converted to the model's channels; EXIF orientation is honoured; alpha is composited over black.
        device: where to run (default: where the model's weights are).
        batch_size: images per forward pass (default: the model's preferred batch); images of the same size are
            batched together.
        max_side: images whose longer side exceeds this are resized down (aspect kept) for the network and
            the result resized back up. None (the default): full resolution; an image of more than
            ``tile_pixels`` pixels is translated in overlapping tiles whose norm layers use the whole image's
            statistics (``cyclegan_hub.tiles``), so memory stays bounded. Models marked heavy (the one-step family:
            attention spans the image) and ONNX sessions are resized down to 1024 pixels instead.
        tile_pixels, overlap: the most pixels one forward pass takes, and the pixels neighbouring tiles share.
        tile_statistics: where tiles take the whole image's norm statistics from: "thumbnail" (a copy shrunk to a
            tile: a tile's worth more), "tiles" (a first pass over the image in tiles, pooled: at its own
            resolution, twice the cost) or "auto" (the thumbnail up to 4 tiles' pixels, the tiles above; see
            ``cyclegan_hub.tiles`` and ``benchmarks/RESULTS.md``).
        resize_to: run the network at this size instead (an int for a square, or (height, width)), e.g. the
            training ``image_size`` for a model that only knows small images, such as MNIST digits.
        return_reconstruction_with: the reverse model; when given, returns ``(translated, reconstructed)``
            where ``reconstructed`` is the round trip through both networks.
        precision: "auto" runs models whose spec allows it in bf16 on a CPU with native bf16 (AVX512-BF16 or AMX:
            twice the fp32 speed at 41-43 dB PSNR against fp32 for photo models, measured in
            benchmarks/photo_latency.py) and everything else in fp32; "fp32" or "bf16" choose.

    Returns:
        A PIL image of the input's size (mode L or RGB by the model's output channels), or a list for a list input.

    Raises:
        ValueError: an unreadable, empty, truncated or oversized file, naming the problem.
    """
    single = not (isinstance(images, (list, tuple)) or (isinstance(images, np.ndarray) and images.ndim == 4))
    items = [images] if single else list(images)
    out_channels = model.translation_spec.out_channels
    if out_channels not in (1, 3):
        raise ValueError(f"translate() writes 1- or 3-channel images; this model has {out_channels}")
    pil_images = [imaging.open_image(item) for item in items]
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(map(repr, PRECISIONS))}")
    chain = [model] if return_reconstruction_with is None else [model, return_reconstruction_with]
    batch_size = batch_size or model.translation_spec.batch_size
    if tile_statistics not in tiles.STATISTICS:
        valid = ", ".join(map(repr, tiles.STATISTICS))
        raise ValueError(f"unknown tile_statistics {tile_statistics!r}; valid: {valid}")
    tiling = (tile_pixels, overlap, tile_statistics)
    outputs = translate_chain(chain, pil_images, device, batch_size, max_side, resize_to, precision, tiling)
    if return_reconstruction_with is None:
        result = outputs[0]
        return result[0] if single else result
    translated, reconstructed = outputs
    return (translated[0], reconstructed[0]) if single else (translated, reconstructed)


@torch.inference_mode()
def translate_chain(
    chain: Sequence[Translator],
    pil_images: list,
    device: str | torch.device | None,
    batch_size: int,
    max_side: int | None,
    resize_to: int | tuple[int, int] | None,
    precision: str = "auto",
    tiling: tuple[int, int, str] = (tiles.DEFAULT_TILE_PIXELS, tiles.DEFAULT_OVERLAP, tiles.DEFAULT_STATISTICS),
) -> list[list]:
    """Run each image through ``chain`` (one or two models); returns one list of PIL images per stage.

    Same-size images share a batch; conversion to and from the network's value range is done once per batch
    (for small images such as digits it costs as much as the network when done image by image)."""
    first = chain[0]
    weights = next(first.parameters(), None) if isinstance(first, nn.Module) else None  # None: an ONNX session
    device = (
        torch.device(device) if device is not None else (weights.device if weights is not None else torch.device("cpu"))
    )
    dtype = weights.dtype if weights is not None else torch.float32
    for model in chain:
        if isinstance(model, nn.Module):
            model.to(device).eval()
    bf16 = uses_bf16(first, device, precision)
    if isinstance(resize_to, int):
        resize_to = (resize_to, resize_to)
    specs = [model.translation_spec for model in chain]

    # Prepare: [H, W, C] pixel arrays, grouped by the size the network works at; large ones to be tiled.
    tileable = all(isinstance(m, nn.Module) and not s.heavy for m, s in zip(chain, specs))
    if max_side is None and not tileable:
        max_side = imaging.DEFAULT_MAX_SIDE
    groups: dict[tuple[int, int], list] = {}
    tiled = []
    outputs = [[None] * len(pil_images) for _ in chain]
    for index, image in enumerate(pil_images):
        array = imaging.image_to_pixels(image, specs[0].in_channels)
        size = array.shape[:2]
        if resize_to is None and max_side is None and size[0] * size[1] > tiling[0]:
            tiled.append((index, array))
            continue
        work = tuple(resize_to) if resize_to is not None else imaging.fit_within(size, max_side or max(size))
        groups.setdefault(work, []).append((index, size, array))
    for index, array in tiled:
        for stage, picture in enumerate(_translate_tiled(chain, array, device, dtype, bf16, tiling)):
            outputs[stage][index] = picture

    for work, items in groups.items():
        for start in range(0, len(items), batch_size):
            batch_items = items[start : start + batch_size]
            x = imaging.pixels_to_batch([array for _, _, array in batch_items], work)
            x = imaging.to_network(x, list(specs[0].value_range)).to(device=device, dtype=dtype)
            for stage, (model, spec) in enumerate(zip(chain, specs)):
                if stage and list(spec.value_range) != list(specs[stage - 1].value_range):
                    x = imaging.to_network(
                        imaging.to_unit(x, list(specs[stage - 1].value_range)), list(spec.value_range)
                    )
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    x = run(model, x).float()
                unit = imaging.to_unit(x, list(spec.value_range)).cpu()
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


def _translate_tiled(chain, array, device, dtype, bf16: bool, tiling: tuple[int, int, str]) -> list:
    """One large image through ``chain`` in tiles (``tiles.run_tiled``), stage by stage (8-bit between stages):
    the PIL image of every stage."""
    tile_pixels, overlap, statistics = tiling
    x = torch.from_numpy(array).permute(2, 0, 1)[None]
    if x.dtype != torch.uint8:
        x = x.clamp(0, 1).mul(255).round().to(torch.uint8)
    pictures = []
    for model in chain:
        spec = model.translation_spec
        value_range = list(spec.value_range)
        source = tiles.statistics_for(statistics, x.shape[-2] * x.shape[-1], tile_pixels)
        thumb = tiles.thumbnail(x, math.isqrt(tile_pixels)) if source == "thumbnail" else None

        def prepare(window, value_range=value_range):
            return imaging.to_network(window, value_range).to(device=device, dtype=dtype)

        def finish(y, value_range=value_range):
            return imaging.to_unit(y.float(), value_range).cpu()

        def forward(t, model=model):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                return run(model, t)

        size = tiles.tile_size(tile_pixels, spec.size_multiple, overlap)
        multiple = spec.size_multiple
        thumb = prepare(thumb) if thumb is not None else None
        x = tiles.run_tiled(forward, model, x, prepare, finish, thumb, size, overlap, multiple)
        pixels = x[0].permute(1, 2, 0).numpy()
        pictures.append(Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels))
    return pictures
