"""Full resolution in bounded memory: overlapping tiles whose norm layers use the whole image's statistics.

A network with instance norm normalises every feature map by its own mean and variance, so a tile run on its own is
normalised by the tile's statistics, not the image's: plain tiling gives each tile its own colours, and seams
(``benchmarks/RESULTS.md``: 14.8 dB against the whole image). The fix is to normalise every tile with statistics of
the whole image, from outside the tile; each tile is then a window of one network run on one image, up to the
padding at its borders, which the overlap and a linear blend across it hide. Where those statistics come from
(``statistics``):

- ``"thumbnail"``: one pass over a copy shrunk to a tile's size (thumbnail instance normalisation: Chen et al.,
  "Towards Ultra-Resolution Neural Style Transfer via Thumbnail Instance Normalization", AAAI 2022), sampled
  without smoothing so that fine texture keeps its contrast. Cheap (a tile's worth), and close while the copy is
  little smaller than the image; the further it shrinks, the more its statistics are another picture's.
- ``"tiles"``: a first pass runs the image in tiles that share nothing, each normalised by its own statistics, and
  pools what every norm layer saw over the whole image (the sums of each tile's mean and second moment, weighted
  by its size): kernelized instance normalisation (Ho et al., "Ultra-Resolution Unpaired Stain Transformation via
  Kernelized Instance Normalization", ECCV 2022) with one kernel spanning the image. The statistics are of the
  image at its own resolution, whatever its size; the first pass doubles the cost, and tiles whose content
  differs widely (a few large ones) see their deeper layers normalised unlike the whole run's.
- ``"auto"`` (the default): the thumbnail while the image is at most ``AUTO_THUMBNAIL`` times a tile's pixels (the
  copy at most 2x smaller a side), the tiles above. ``benchmarks/RESULTS.md`` measures all three.

Which layers take part: ``InstanceNorm2d`` (affine or not) and batch norm that normalises each image by its own
statistics (pix2pix's ``inference = "image_statistics"``); batch norm with running statistics, and a network without
norm layers, already tile exactly. The output is written band by band (a row of tiles at a time), so memory holds the
input, the output, one band and one tile's forward pass, whatever the image's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

#: The most pixels one forward pass takes by default (a tile, or the thumbnail): a ResNet-9 at 1 MP in float32
#: peaks near 1 GB on a CPU, which leaves room on a 16 GB, 2-core Space for several requests at once.
DEFAULT_TILE_PIXELS = 1024 * 1024
#: Pixels each tile shares with its neighbours, blended linearly across.
DEFAULT_OVERLAP = 64
#: Where tiles take the whole image's norm statistics from (see the module's text).
STATISTICS = ("auto", "tiles", "thumbnail")
DEFAULT_STATISTICS = "auto"
#: ``"auto"`` takes a thumbnail's statistics up to this many times a tile's pixels, the tiles' above.
AUTO_THUMBNAIL = 4


def statistics_for(statistics: str, pixels: int, tile_pixels: int) -> str:
    """``"tiles"`` or ``"thumbnail"``: what ``statistics`` means for an image of ``pixels`` (``"auto"`` decides by
    how much smaller its thumbnail would be)."""
    if statistics != "auto":
        return statistics
    return "thumbnail" if pixels <= AUTO_THUMBNAIL * tile_pixels else "tiles"


def image_norms(model: nn.Module) -> list[nn.Module]:
    """The norm layers that normalise each image by its own statistics: the ones tiling must feed."""
    found = []
    for module in model.modules():
        if isinstance(module, nn.InstanceNorm2d) and not module.track_running_stats:
            found.append(module)
        elif isinstance(module, nn.BatchNorm2d) and getattr(module, "image_statistics", False) and not module.training:
            found.append(module)
        elif isinstance(module, nn.GroupNorm):
            found.append(module)
    return found


def _normalize(module, x, grouped, mean, var, dtype) -> torch.Tensor:
    """What a norm layer outputs for ``x`` (``grouped`` as ``WholeImageStatistics._groups``) with the given mean
    and variance instead of its input's own: normalised, then its affine scale and shift where it has them."""
    y = ((grouped - mean) / torch.sqrt(var + module.eps)).reshape(x.shape)
    if module.weight is not None:
        y = y * module.weight.float()[None, :, None, None] + module.bias.float()[None, :, None, None]
    return y.to(dtype)


class WholeImageStatistics:
    """Hooks on a model's image norms: ``record`` stores what each computes on one image (a thumbnail); ``pool``
    adds what each computes on one tile to sums over the image, which ``pooled`` turns into the stored statistics;
    ``apply`` makes each normalise with the stored mean and variance instead of its input's own."""

    def __init__(self, model: nn.Module):
        self.norms = image_norms(model)
        self.stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._sums: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}

    @staticmethod
    def _groups(module, x: torch.Tensor) -> torch.Tensor:
        """[N, G, C/G * H * W]: what the layer averages over (one channel a group but for GroupNorm)."""
        groups = module.num_groups if isinstance(module, nn.GroupNorm) else x.shape[1]
        return x.float().reshape(x.shape[0], groups, -1)

    def _record(self, module, inputs, output):
        grouped = self._groups(module, inputs[0])
        self.stats[id(module)] = (grouped.mean(2, keepdim=True), grouped.var(2, unbiased=False, keepdim=True))

    def _pool(self, module, inputs, output):
        grouped = self._groups(module, inputs[0]).double()  # float64: sums of squares over millions of pixels
        total, squares, count = grouped.sum(2, keepdim=True), grouped.square().sum(2, keepdim=True), grouped.shape[2]
        if id(module) in self._sums:
            before = self._sums[id(module)]
            total, squares, count = before[0] + total, before[1] + squares, before[2] + count
        self._sums[id(module)] = (total, squares, count)

    def pooled(self) -> None:
        """The statistics of everything ``pool`` saw, as if of one image: the mean of the means, and the mean
        second moment less the squared mean."""
        for key, (total, squares, count) in self._sums.items():
            mean = total / count
            self.stats[key] = (mean.float(), (squares / count - mean.square()).clamp_min(0).float())
        self._sums = {}

    def _apply(self, module, inputs, output):
        mean, var = self.stats[id(module)]
        return _normalize(module, inputs[0], self._groups(module, inputs[0]), mean, var, output.dtype)

    def _hooked(self, hook: Callable, fn: Callable):
        handles = [norm.register_forward_hook(hook) for norm in self.norms]
        try:
            return fn()
        finally:
            for handle in handles:
                handle.remove()

    def record(self, fn: Callable):
        return self._hooked(self._record, fn)

    def pool(self, fn: Callable):
        return self._hooked(self._pool, fn)

    def apply(self, fn: Callable):
        return self._hooked(self._apply, fn)


def thumbnail(source: torch.Tensor, side: int) -> torch.Tensor:
    """``source`` ([1, C, H, W] uint8) shrunk to at most ``side`` pixels a side by taking every k-th pixel (nearest,
    no smoothing): fine texture keeps its contrast, which an antialiased copy loses (its statistics then drift
    further from the image's: ``benchmarks/tiled_translation.py``)."""
    height, width = source.shape[-2:]
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return torch.nn.functional.interpolate(source, size=size, mode="nearest-exact")


def _pool_tiles(run: Callable, statistics: WholeImageStatistics, source, prepare, tile: int, multiple: int) -> None:
    """The first pass of ``statistics="tiles"``: ``source`` in tiles that share nothing (each pixel counted once),
    each run alone, every norm layer's statistics pooled over the image."""
    _, _, height, width = source.shape
    (tall, rows), (wide, cols) = tile_grid(height, tile, 0, multiple), tile_grid(width, tile, 0, multiple)
    for top in rows:
        for left in cols:
            window = prepare(source[:, :, top : top + tall, left : left + wide])
            statistics.pool(lambda w=window: run(w))
    statistics.pooled()


def tile_grid(length: int, tile: int, overlap: int, multiple: int = 1) -> tuple[int, list[int]]:
    """(side, starts) of the fewest tiles of at most ``tile`` pixels covering ``length``, each sharing at least
    ``overlap`` with the next: the side shrunk to spread them evenly (no tile computed mostly for its overlap), every
    start a multiple of ``multiple`` (the network's: a tile that starts elsewhere sees its downsampled grid shifted
    against the whole image's); the last one reaches the end (it may be shorter)."""
    if length <= tile:
        return length, [0]
    count = math.ceil((length - overlap) / max(1, tile - overlap - multiple))
    side = min(tile, math.ceil((math.ceil((length + (count - 1) * overlap) / count) + multiple) / multiple) * multiple)
    last = math.ceil((length - side) / multiple) * multiple
    return side, sorted({round(i * last / (count - 1) / multiple) * multiple for i in range(count)})


def _ramp(length: int, start: int, tile: int, total: int, overlap: int) -> torch.Tensor:
    """Blend weights along one axis of a tile: rising over the overlap where a neighbour precedes it, falling
    where one follows, 1 elsewhere (never 0: every pixel keeps a weight)."""
    weight = torch.ones(length)
    if overlap <= 0:
        return weight
    ramp = (torch.arange(overlap, dtype=torch.float32) + 1) / (overlap + 1)
    if start > 0:
        weight[:overlap] = torch.minimum(weight[:overlap], ramp)
    if start + tile < total:
        weight[-overlap:] = torch.minimum(weight[-overlap:], ramp.flip(0))
    return weight


def tile_size(tile_pixels: int, multiple: int, overlap: int) -> int:
    """The side of square tiles for a budget of ``tile_pixels``: a multiple of the network's, above the overlap."""
    side = int(math.isqrt(tile_pixels)) // multiple * multiple
    return max(side, multiple * math.ceil((2 * overlap + 1) / multiple))


def _totals(length: int, starts: list[int], tile: int, overlap: int) -> torch.Tensor:
    """The sum of every tile's blend weights along one axis (what the blended sum is divided by)."""
    total = torch.zeros(length)
    for start in starts:
        end = min(start + tile, length)
        total[start:end] += _ramp(end - start, start, tile, length, overlap)
    return total


@torch.inference_mode()
def run_tiled(
    run: Callable[[torch.Tensor], torch.Tensor],
    model: nn.Module,
    source: torch.Tensor,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    finish: Callable[[torch.Tensor], torch.Tensor],
    thumbnail: torch.Tensor | None,
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
    multiple: int = 1,
) -> torch.Tensor:
    """``run`` (the padded network) over ``source`` ([1, C, H, W] uint8 on the CPU) in tiles of at most ``tile``
    pixels a side (``tile_grid``), every image norm of ``model`` normalising with the whole image's statistics:
    what it computed on ``thumbnail`` (the network's input for the whole image, smaller), or with None, what a
    first pass over the image in tiles pooled. ``prepare`` turns a uint8 window into the network's input;
    ``finish`` turns its output into [1, C_out, h, w] in [0, 1] on the CPU. Returns [1, C_out, H, W] uint8, blended
    across ``overlap``; a band of tiles (and the rows it shares with the next) is the only float image held."""
    _, _, height, width = source.shape
    statistics = WholeImageStatistics(model)
    (tall, rows), (wide, cols) = tile_grid(height, tile, overlap, multiple), tile_grid(width, tile, overlap, multiple)
    if statistics.norms and thumbnail is not None:
        statistics.record(lambda: run(thumbnail))
    elif statistics.norms:
        _pool_tiles(run, statistics, source, prepare, tile, multiple)
    row_total, col_total = _totals(height, rows, tall, overlap), _totals(width, cols, wide, overlap)
    out = carry = None
    for r, top in enumerate(rows):
        bottom = min(top + tall, height)
        band = None
        for left in cols:
            right = min(left + wide, width)
            window = prepare(source[:, :, top:bottom, left:right])
            y = statistics.apply(lambda w=window: run(w)) if statistics.norms else run(window)
            y = finish(y)
            if band is None:
                band = torch.zeros(1, y.shape[1], bottom - top, width)
            band[:, :, :, left:right] += y * _ramp(right - left, left, wide, width, overlap)
        band *= _ramp(bottom - top, top, tall, height, overlap)[None, None, :, None]
        if carry is not None:  # the rows this band shares with the one before
            band[:, :, : carry.shape[2]] += carry
        if out is None:
            out = torch.empty(1, band.shape[1], height, width, dtype=torch.uint8)
        next_top = rows[r + 1] if r + 1 < len(rows) else height
        done = band[:, :, : next_top - top] / (row_total[top:next_top][None, None, :, None] * col_total)
        out[:, :, top:next_top] = done.clamp(0, 1).mul(255).round().to(torch.uint8)
        carry = band[:, :, next_top - top :]
    return out


class SmoothedStatistics:
    """Norm statistics carried from frame to frame (a video): every image norm normalises frame t with
    ``momentum`` x the statistics it used for frame t-1 plus (1 - momentum) x frame t's own, so that a still scene
    does not shimmer with its noise. One pass a frame: each layer blends as the frame reaches it. Frames of a batch
    are taken in order; ``with smoothing:`` hooks the model for the calls inside, and the carried statistics stay
    between calls (one video)."""

    def __init__(self, model: nn.Module, momentum: float):
        if not isinstance(model, nn.Module):
            raise ValueError("carrying norm statistics from frame to frame needs a torch model, not an ONNX session")
        if not 0 <= momentum < 1:
            raise ValueError(f"the statistics' momentum is from 0 (each frame its own) to below 1, got {momentum}")
        self.norms, self.momentum = image_norms(model), momentum
        self.carried: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.handles: list = []

    def _blend(self, module, inputs, output):
        x = inputs[0]
        grouped = WholeImageStatistics._groups(module, x)
        means, variances = grouped.mean(2, keepdim=True), grouped.var(2, unbiased=False, keepdim=True)
        mean_rows, var_rows = [], []
        previous = self.carried.get(id(module))
        for i in range(x.shape[0]):  # frame by frame: each blends with the one before
            mean, var = means[i : i + 1], variances[i : i + 1]
            if previous is not None and previous[0].shape == mean.shape:
                keep = self.momentum
                mean, var = keep * previous[0] + (1 - keep) * mean, keep * previous[1] + (1 - keep) * var
            previous = (mean, var)
            mean_rows.append(mean)
            var_rows.append(var)
        self.carried[id(module)] = previous
        return _normalize(module, x, grouped, torch.cat(mean_rows), torch.cat(var_rows), output.dtype)

    def __enter__(self):
        self.handles = [norm.register_forward_hook(self._blend) for norm in self.norms]
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        self.handles = []
        return False
