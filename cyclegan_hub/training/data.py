"""Two unpaired image domains from Hugging Face ``datasets``, and the unaligned sampling CycleGAN trains on.

A domain is described by a ``DomainSpec``: a Hub dataset id or a local folder (or a builder such as
``imagefolder`` with ``data_dir``), a config name, a split, the image column and an optional filter such as
``label == 6``. Every layout users bring maps onto it:

| layout                                   | domain A                                      | domain B                  |
|------------------------------------------|-----------------------------------------------|---------------------------|
| one dataset with a label (ylecun/mnist)  | path=ylecun/mnist, filter="label == 6"        | filter="label == 9"       |
| one dataset with an attribute (CelebA)   | filter="Male == 1"                            | filter="Male == 0"        |
| splits trainA / trainB (CycleGAN folders)| split="trainA"                                | split="trainB"            |
| CycleGAN folders read by imagefolder     | path="imagefolder", data_dir=".../trainA"     | data_dir=".../trainB"     |
| two different datasets                   | path=user/horses                              | path=user/zebras          |
| rows with imageA / imageB columns        | image_column="imageA"                         | image_column="imageB"     |

The two domains are always sampled independently (the last row included: its columns are two sources, not
pairs). ``datasets`` is imported lazily so that ``import cyclegan_hub`` stays light.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..io import imaging
from ..io.errors import first_line

_FILTER = re.compile(r"^\s*([A-Za-z_][\w\-. ]*?)\s*(==|!=|<=|>=|<|>|\bin\b|\bnot in\b)\s*(.+?)\s*$")


@dataclass
class DomainSpec:
    """Where one domain's images come from.

    Args:
        path: Hub dataset id ("ylecun/mnist"), local dataset folder, or a builder name ("imagefolder", "parquet").
        name: dataset config name, if the dataset has several.
        split: split to read ("train", "test", "trainA", ...).
        image_column: column holding the images.
        filter: keep rows where ``column OP value`` holds; OP in == != < <= > >= in, "not in";
            e.g. ``label == 6``, ``Male == 1``, ``label in [6, 9]``. Class names work for ClassLabel columns.
        streaming: read the split as a stream (for datasets too large to download first).
        data_dir: folder passed to the builder (``imagefolder`` layouts).
        data_files: files passed to the builder.
    """

    path: str
    name: str | None = None
    split: str = "train"
    image_column: str = "image"
    filter: str | None = None
    streaming: bool = False
    data_dir: str | None = None
    data_files: str | list[str] | None = None

    @classmethod
    def from_dict(cls, values: dict) -> DomainSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown data key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        if "path" not in values:
            raise ValueError("a data source needs a 'path' (a Hub dataset id or a local folder)")
        return cls(**values)

    def for_split(self, split: str) -> DomainSpec:
        """The same source, another split, read whole (held-out splits are not streamed)."""
        return replace(self, split=split, streaming=False)

    def describe(self) -> str:
        text = self.path + (f" [{self.name}]" if self.name else "") + (f" ({self.data_dir})" if self.data_dir else "")
        return f"{text} split={self.split}" + (f" where {self.filter}" if self.filter else "")


def parse_filter(expression: str) -> tuple[str, str, object]:
    """``"label == 6"`` -> ("label", "==", 6). Values are Python literals, or bare words taken as strings."""
    match = _FILTER.match(expression)
    if not match:
        raise ValueError(f"cannot read filter {expression!r}; write it as 'column == value' (or != < <= > >= in)")
    column, op, raw = match.groups()
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw.strip("'\"")
    op = " ".join(op.split())
    if op in ("in", "not in") and not isinstance(value, (list, tuple, set)):
        raise ValueError(f"filter {expression!r}: '{op}' needs a list, e.g. [6, 9]")
    return column, op, value


_OPS = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}


def load_domain(spec: DomainSpec, what: str = "domain"):
    """The split of ``spec`` as a ``datasets`` Dataset (or IterableDataset when streaming), filtered, with the
    image column left undecoded (bytes/paths) so that a corrupt image can be skipped instead of failing a batch.

    Raises ValueError naming the problem: unknown dataset, split, column or filter value, or an empty domain."""
    import datasets

    try:
        ds = datasets.load_dataset(
            spec.path,
            spec.name,
            split=spec.split,
            streaming=spec.streaming,
            data_dir=spec.data_dir,
            data_files=spec.data_files,
        )
    except datasets.exceptions.DatasetNotFoundError:
        raise ValueError(f"{what}: dataset {spec.path!r} not found (no such local folder or Hub dataset)") from None
    except FileNotFoundError as err:
        raise ValueError(f"{what}: dataset {spec.path!r} not found ({first_line(err)})") from None
    except ValueError as err:
        message = first_line(err)
        if "split" in message.lower():
            raise ValueError(f"{what}: {spec.path} has no split {spec.split!r} ({message})") from None
        raise ValueError(f"{what}: cannot load {spec.path}: {message}") from None
    except ConnectionError as err:
        raise ValueError(
            f"{what}: dataset {spec.path!r} is not a local folder, and the Hub cannot be reached to "
            f"look for it ({type(err).__name__})"
        ) from None

    columns = list(ds.features or {})
    if spec.image_column not in columns:
        raise ValueError(
            f"{what}: no column {spec.image_column!r} in {spec.describe()} (columns: {', '.join(columns)})"
        )
    if not isinstance(ds.features[spec.image_column], datasets.Image):
        raise ValueError(f"{what}: column {spec.image_column!r} holds {ds.features[spec.image_column]}, not images")
    ds = ds.cast_column(spec.image_column, datasets.Image(decode=False))

    if spec.filter:
        column, op, value = parse_filter(spec.filter)
        if column not in columns:
            raise ValueError(
                f"{what}: filter {spec.filter!r} names no column of {spec.path} (columns: {', '.join(columns)})"
            )
        value = _resolve_filter_value(ds.features[column], value, spec.filter, what)
        ds = ds.filter(_row_filter(op, value), input_columns=[column], batched=True)
        if not spec.streaming and len(ds) == 0:
            raise ValueError(
                f"{what}: filter {spec.filter!r} leaves {spec.describe()} empty{_values_hint(spec, column)}"
            )
    if not spec.streaming and len(ds) == 0:
        raise ValueError(f"{what}: {spec.describe()} has no rows")
    return ds


def _resolve_filter_value(feature, value, expression: str, what: str):
    """Class names -> ids for ClassLabel columns; ids out of range are unknown values."""
    import datasets

    if not isinstance(feature, datasets.ClassLabel):
        return value
    values = value if isinstance(value, (list, tuple, set)) else [value]
    resolved = []
    for v in values:
        if isinstance(v, str) and v in feature.names:
            v = feature.str2int(v)
        if not isinstance(v, (int, np.integer)) or not 0 <= v < feature.num_classes:
            raise ValueError(f"{what}: filter {expression!r}: unknown value {v!r}; valid: {', '.join(feature.names)}")
        resolved.append(int(v))
    return resolved if isinstance(value, (list, tuple, set)) else resolved[0]


def _row_filter(op: str, value):
    def keep(column_values):
        array = np.asarray(column_values)
        if op == "in":
            return np.isin(array, list(value)).tolist()
        if op == "not in":
            return (~np.isin(array, list(value))).tolist()
        return _OPS[op](array, value).tolist()

    return keep


def _values_hint(spec: DomainSpec, column: str) -> str:
    import datasets

    try:
        ds = datasets.load_dataset(
            spec.path, spec.name, split=spec.split, data_dir=spec.data_dir, data_files=spec.data_files
        )
        values = sorted(set(ds.unique(column)), key=str)
    except Exception:  # the hint is a courtesy; the error stands without it
        return ""
    shown = ", ".join(map(str, values[:20])) + (", ..." if len(values) > 20 else "")
    return f" ({column} values present: {shown})"


#: The most memory a domain's decoded images may take (they are held as uint8, and stacked once).
MAX_DECODED_BYTES = 8 * 2**30


def _decode_cell(cell, channels: int) -> np.ndarray:
    if cell is None:
        raise ValueError("missing image")
    return imaging.image_to_array(imaging.open_image(cell["bytes"] if cell.get("bytes") else cell["path"]), channels)


def _to_square(array: np.ndarray, size: int) -> torch.Tensor:
    x = imaging.resize_tensor(torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None], (size, size))
    return (x[0].clamp(0, 1) * 255).round().to(torch.uint8)


def decode_domain(ds, image_column: str, channels: int, size: int, max_images: int | None = None):
    """Decode (and resize to ``size`` x ``size``) every image of a domain into one uint8 tensor [N, C, size, size].

    Unreadable images are skipped and counted, not fatal. Returns (images, skipped). The memory this needs is
    checked before the first image is decoded (from the number of rows), and again as a stream arrives: a ValueError
    says what to lower."""
    per_image = 2 * channels * size * size  # each image, and its place in the stacked tensor
    rows = len(ds) if hasattr(ds, "__len__") else None
    rows = min(rows, max_images) if rows is not None and max_images is not None else rows

    def too_much(count: int) -> ValueError:
        return ValueError(
            f"{count} images of {size}x{size} would take {count * per_image / 2**30:.1f} GB once decoded, above the "
            f"limit of {MAX_DECODED_BYTES / 2**30:.0f} GB: lower data.load_size or use fewer images"
        )

    if rows is not None and rows * per_image > MAX_DECODED_BYTES:
        raise too_much(rows)
    images, skipped = [], 0
    for row in ds:
        if max_images is not None and len(images) >= max_images:
            break
        if (len(images) + 1) * per_image > MAX_DECODED_BYTES:
            raise too_much(len(images) + 1)
        try:
            array = _decode_cell(row[image_column], channels)
        except (ValueError, OSError, TypeError):
            skipped += 1
            continue
        images.append(_to_square(array, size))
    if not images:
        return torch.empty(0, channels, size, size, dtype=torch.uint8), skipped
    return torch.stack(images), skipped


@dataclass
class TrainingDomain:
    """One domain as the trainer holds it: every training image decoded once, and the held-out split."""

    label: str
    spec: DomainSpec
    images: torch.Tensor  # uint8 [N, C, load_size, load_size]
    held: torch.Tensor | None  # uint8 [M, C, image_size, image_size], or None without an eval split
    skipped: int  # unreadable training images


def load_training_domain(
    spec: DomainSpec,
    label: str,
    eval_split: str | None,
    channels: int,
    load_size: int,
    image_size: int,
    eval_images: int,
    what: str,
) -> TrainingDomain:
    """Load and decode one domain for training (ValueError naming the problem, e.g. no readable image)."""
    images, skipped = decode_domain(load_domain(spec, what), spec.image_column, channels, load_size)
    if len(images) == 0:
        raise ValueError(f"{what}: no readable image in {spec.describe()}")
    held = None
    if eval_split is not None:
        split = load_domain(spec.for_split(eval_split), f"{what} evaluation split")
        held = decode_domain(split, spec.image_column, channels, image_size, eval_images)[0]
    return TrainingDomain(label, spec, images, held, skipped)


def decode_pairs(
    ds, columns: tuple[str, str] | str, channels: int, size: int, max_rows: int | None = None, *, swap=False
):
    """Decode the pairs of a paired source into two aligned uint8 tensors [N, C, size, size] (row i of both is
    one pair): ``columns`` names the A and B image columns, or one column whose images hold A on the left half and B
    on the right (``swap``: B left, A right). A row with a missing or unreadable image, two images of different
    sizes, or (one column) an odd width is skipped. Returns (a, b, skipped: {reason: count})."""
    per_row = 4 * channels * size * size
    rows = len(ds) if hasattr(ds, "__len__") else None
    rows = min(rows, max_rows) if rows is not None and max_rows is not None else rows
    if rows is not None and rows * per_row > MAX_DECODED_BYTES:
        raise ValueError(
            f"{rows} pairs of {size}x{size} would take {rows * per_row / 2**30:.1f} GB once decoded, above the "
            f"limit of {MAX_DECODED_BYTES / 2**30:.0f} GB: lower data.load_size or use fewer images"
        )
    a, b, skipped = [], [], {}
    for row in ds:
        if max_rows is not None and len(a) >= max_rows:
            break
        try:
            if isinstance(columns, str):
                whole = _decode_cell(row[columns], channels)
                if whole.shape[1] % 2:
                    raise _Skip("an odd width (no two halves)")
                half = whole.shape[1] // 2
                first, second = whole[:, :half], whole[:, half:]
                x, y = (second, first) if swap else (first, second)
            else:
                x, y = (_decode_cell(row[column], channels) for column in columns)
                if x.shape[:2] != y.shape[:2]:
                    raise _Skip("two images of different sizes")
        except _Skip as reason:
            skipped[str(reason)] = skipped.get(str(reason), 0) + 1
            continue
        except (ValueError, OSError, TypeError):
            skipped["an unreadable or missing image"] = skipped.get("an unreadable or missing image", 0) + 1
            continue
        a.append(_to_square(x, size))
        b.append(_to_square(y, size))
    if not a:
        empty = torch.empty(0, channels, size, size, dtype=torch.uint8)
        return empty, empty.clone(), skipped
    return torch.stack(a), torch.stack(b), skipped


class _Skip(Exception):
    """A row that is not a pair, and why."""


def load_paired_domains(
    spec_a: DomainSpec,
    column_b: str | None,
    labels: tuple[str, str],
    aligned: str,
    eval_split: str | None,
    channels: int,
    load_size: int,
    image_size: int,
    eval_images: int,
) -> tuple[TrainingDomain, TrainingDomain, dict]:
    """Domains A and B of a paired source, row i of each one pair (its held-out pairs from the eval split alike),
    and the rows skipped ({reason: count}). ``aligned``: "" (two columns, A's and ``column_b``), "AB" or "BA"."""
    what = f"pairs ({labels[0]} -> {labels[1]})"
    columns = spec_a.image_column if aligned else (spec_a.image_column, column_b)
    ds = load_domain(spec_a, what)
    if not aligned:
        ds = _with_image_column(ds, column_b, spec_a, what)
    a, b, skipped = decode_pairs(ds, columns, channels, load_size, swap=aligned == "BA")
    if len(a) == 0:
        why = "; ".join(f"{n} with {reason}" for reason, n in skipped.items()) or "no rows"
        raise ValueError(f"{what}: no readable pair in {spec_a.describe()} ({why})")
    held_a = held_b = None
    if eval_split is not None:
        split = load_domain(spec_a.for_split(eval_split), f"{what} evaluation split")
        if not aligned:
            split = _with_image_column(split, column_b, spec_a, what)
        held_a, held_b, _ = decode_pairs(split, columns, channels, image_size, eval_images, swap=aligned == "BA")
    spec_b = replace(spec_a, image_column=column_b or spec_a.image_column)
    count = sum(skipped.values())
    return (
        TrainingDomain(labels[0], spec_a, a, held_a, count),
        TrainingDomain(labels[1], spec_b, b, held_b, count),
        skipped,
    )


def _with_image_column(ds, column: str, spec: DomainSpec, what: str):
    import datasets

    if column not in (ds.features or {}):
        raise ValueError(f"{what}: no column {column!r} in {spec.describe()} (columns: {', '.join(ds.features)})")
    if not isinstance(ds.features[column], datasets.Image):
        raise ValueError(f"{what}: column {column!r} holds {ds.features[column]}, not images")
    return ds.cast_column(column, datasets.Image(decode=False))


@dataclass
class PairedSampler:
    """Which pairs make up each step: row i of A with row i of B, every pair once per epoch in an order drawn from
    (seed, epoch) alone (exact resume), each process taking its own slice of every global batch."""

    length: int
    batch_size: int
    seed: int = 0
    world_size: int = 1
    rank: int = 0
    _cache: dict = field(default_factory=dict, repr=False)

    def indices(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = (step * self.world_size + self.rank) * self.batch_size
        rows = []
        for position in range(start, start + self.batch_size):
            epoch, offset = divmod(position, self.length)
            if epoch not in self._cache:
                self._cache = {
                    epoch: torch.randperm(
                        self.length, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                    )
                }
            rows.append(int(self._cache[epoch][offset]))
        index = torch.tensor(rows)
        return index, index


@dataclass
class UnpairedSampler:
    """Which A and B images make up each training step: unaligned, reproducible from (seed, step) alone.

    An epoch is ``max(len_a, len_b)`` positions. Position p of epoch e takes A image ``perm_e[p] % len_a`` (every A
    image once per epoch when A is the larger domain) and an independently drawn random B image, as the official
    implementation does. Each process of a multi-process run takes its own slice of every global batch. Because
    the indices depend only on (seed, step), resuming at a step continues the exact same data order.
    """

    len_a: int
    len_b: int
    batch_size: int
    seed: int = 0
    world_size: int = 1
    rank: int = 0
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def epoch_length(self) -> int:
        return max(self.len_a, self.len_b)

    def _epoch(self, epoch: int):
        if epoch not in self._cache:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(self.epoch_length, generator=g) % self.len_a
            b = torch.randint(self.len_b, (self.epoch_length,), generator=g)
            self._cache = {epoch: (perm, b)}  # keep one epoch: steps move forward
        return self._cache[epoch]

    def indices(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = (step * self.world_size + self.rank) * self.batch_size
        a, b = [], []
        for position in range(start, start + self.batch_size):
            epoch, offset = divmod(position, self.epoch_length)
            perm, b_draws = self._epoch(epoch)
            a.append(int(perm[offset]))
            b.append(int(b_draws[offset]))
        return torch.tensor(a), torch.tensor(b)


def augment(images: torch.Tensor, size: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random ``size`` x ``size`` crop and optional horizontal flip of a uint8 batch [N, C, L, L]."""
    n, _, height, width = images.shape
    out = []
    for i in range(n):
        top = int(torch.randint(height - size + 1, (), generator=generator))
        left = int(torch.randint(width - size + 1, (), generator=generator))
        crop = images[i, :, top : top + size, left : left + size]
        if flip and bool(torch.rand((), generator=generator) < 0.5):
            crop = crop.flip(-1)
        out.append(crop)
    return torch.stack(out)


def stroke_augment(
    images: torch.Tensor,
    generator: torch.Generator,
    p_dilate: float = 0.3,
    p_erode: float = 0.1,
    degrees: float = 8.0,
    scale: float = 0.1,
    translate: float = 1.5,
) -> torch.Tensor:
    """Per-sample stroke width and affine jitter of a uint8 batch [N, C, H, W] of light strokes on a dark background
    (MNIST digits), so that the generators also see the thick and thin, slightly turned strokes people draw.

    Each image independently: thickened with probability ``p_dilate`` by blending it with its 3x3 dilation
    (max-pool) at a strength drawn from [0, 1], else thinned with probability ``p_erode`` by blending with its 3x3
    erosion at a strength from [0, 0.5] (a full erosion deletes 2-pixel strokes); then rotated by up to
    +-``degrees``, scaled by 1 +- ``scale`` and shifted by up to +-``translate`` pixels (bilinear, background entering
    at the borders). No flips: a mirrored 6 is not a 6. The two domains are augmented by separate calls, so they stay
    unpaired; every random number comes from ``generator`` in a fixed order, so a batch is reproducible from the
    generator's seed (exact resume)."""
    n, _, height, width = images.shape
    if n == 0:
        return images
    u = torch.rand(n, 6, generator=generator).to(images.device)  # stroke, strength, angle, scale, shift x, shift y
    x = images.float()
    grown = F.max_pool2d(x, 3, stride=1, padding=1)
    shrunk = -F.max_pool2d(-x, 3, stride=1, padding=1)
    choice, strength = u[:, 0].view(n, 1, 1, 1), u[:, 1].view(n, 1, 1, 1)
    thinned = torch.where(choice < p_dilate + p_erode, x + strength / 2 * (shrunk - x), x)
    x = torch.where(choice < p_dilate, x + strength * (grown - x), thinned)
    angle = (u[:, 2] * 2 - 1) * degrees * torch.pi / 180
    factor = 1 + (u[:, 3] * 2 - 1) * scale
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor  # output -> input coordinates: inverse zoom
    shift_x, shift_y = (u[:, 4] * 2 - 1) * translate * 2 / width, (u[:, 5] * 2 - 1) * translate * 2 / height
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def training_batch(
    images: torch.Tensor,
    indices,
    size: int,
    flip: bool,
    generator: torch.Generator,
    device: torch.device,
    value_range=(-1.0, 1.0),
    strokes: bool = False,
) -> torch.Tensor:
    """The batch ``images[indices]`` (uint8, decoded domain), cropped and flipped by ``augment`` (and with
    ``strokes``, varied by ``stroke_augment``), on ``device`` in the model's ``value_range``. Domains held on the
    host go to a GPU as uint8 (a quarter of the bytes of float) from pinned memory without blocking, and are
    augmented there, so the copy overlaps the previous step's kernels."""
    batch = images[indices]
    if batch.device.type == "cpu" and device.type == "cuda":
        batch = batch.pin_memory().to(device, non_blocking=True)
    batch = augment(batch, size, flip, generator)
    if strokes:
        batch = stroke_augment(batch, generator)
    return imaging.to_network(batch, value_range).to(device)


def paired_batch(images_a: torch.Tensor, images_b: torch.Tensor, indices, **batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs ``indices`` of two aligned domains as ``training_batch`` makes a batch, each pair cropped, flipped
    (and stroke-varied) alike: the two images travel as one, channel-stacked."""
    both = torch.cat([images_a[indices], images_b[indices]], dim=1)
    out = training_batch(both, torch.arange(len(both)), **batch)
    return out[:, : images_a.shape[1]], out[:, images_a.shape[1] :]


def preview_grid(rows: list[torch.Tensor], value_range=(-1.0, 1.0)) -> np.ndarray:
    """Stack rows of images [N, C, H, W] (model range) into one uint8 HxWx3 grid, 2-pixel gutters."""
    tiles = []
    for row in rows:
        row = imaging.to_unit(row.detach().cpu(), value_range)
        if row.shape[1] == 1:
            row = row.repeat(1, 3, 1, 1)
        row = F.pad(row, (1, 1, 1, 1), value=1.0)
        tiles.append(torch.cat(list(row), dim=2))
    grid = torch.cat(tiles, dim=1)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
