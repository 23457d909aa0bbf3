"""Whole datasets translated: a ``datasets`` split in, a translated dataset out (Parquet shards that
``load_dataset`` reads, a card, pushed as a dataset repo).

Rows keep every column; the translated image is added (``output_column``), the source image kept or dropped, and
with a reverse model the round trip and its error added too. The rows are cut into shards of ``shard_rows`` input
rows, numbered in order: shard k holds what rows [k * shard_rows, (k + 1) * shard_rows) gave, in their order. A shard
is written to a hidden temporary file and renamed when complete, so a folder never holds a half-written shard where
``load_dataset`` would read it; a rerun skips the shards that exist (resume after any interruption, SIGKILL
included) and no row is written twice. Processes (``accelerate launch``/``torchrun``: ``RANK``, ``WORLD_SIZE``)
each take every n-th shard, so any number of them give the same files as one. Images are decoded on worker threads
while the network runs; a row whose image is missing, unreadable or too large is skipped and named (or the run
stops, with ``on_error="stop"``).
"""

from __future__ import annotations

import collections
import io
import itertools
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .. import tiles, translation
from ..io import imaging
from ..io.errors import first_line
from ..io.files import atomic_write, atomic_write_json, atomic_write_text, read_file

SHARD_ROWS = 1000
STATE_NAME = "translation_state.json"
#: A row's image is refused above these (the same gate as every other input).
MAX_PIXELS = imaging.MAX_PIXELS
MAX_BYTES = 64 * 2**20
#: The most pixels a batch of rows holds decoded (by their headers): rows are batched up to the batch size or this,
#: and an image larger than it goes alone. Three batches are held at once (one translated, two decoding), each
#: image translated at full resolution in tiles of ``tiles.DEFAULT_TILE_PIXELS``: memory is bounded by these, not by
#: the rows' sizes.
BATCH_PIXELS = 16_000_000


@dataclass
class Report:
    """What a translation did: rows in and out, the skipped rows (index and why), time."""

    rows_in: int = 0
    rows_out: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0
    shards_done: int = 0
    shards_resumed: int = 0

    def summary(self) -> str:
        rate = self.rows_in / self.seconds if self.seconds else 0.0
        return (
            f"rows in {self.rows_in}, rows out {self.rows_out}, skipped {len(self.skipped)}, "
            f"{self.seconds:.1f} s, {rate:.1f} rows/s"
        )


def _decode(cell):
    """(PIL image, the cell with its bytes embedded, None) or (None, None, why) for one row's undecoded image cell
    (bytes, or a path to a local file, which the output must not depend on)."""
    if not isinstance(cell, dict) or not (cell.get("bytes") or cell.get("path")):
        return None, None, "no image"
    path = Path(cell["path"]).name if cell.get("path") else None
    try:
        data = cell.get("bytes") or read_file(cell["path"], MAX_BYTES, what=path)
        stream = io.BytesIO(data)
        stream.name = path or "the image"
        image = imaging.open_image(stream, max_pixels=MAX_PIXELS, max_bytes=MAX_BYTES)
    except (ValueError, FileNotFoundError, OSError, TypeError) as err:
        return None, None, first_line(err, 300)
    return image, {"bytes": data, "path": path}, None


def _declared_pixels(cell) -> int:
    """The pixels a row's image cell declares in its header, nothing decoded (0 where there is none to read: the
    decode names the problem)."""
    if not isinstance(cell, dict):
        return 0
    try:
        source = io.BytesIO(cell["bytes"]) if cell.get("bytes") else cell.get("path")
        if not source:
            return 0
        with Image.open(source) as image:
            width, height = image.size
    except (OSError, ValueError, TypeError, Image.DecompressionBombError):
        return 0
    return width * height


def _png(image) -> dict:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def translate_rows(
    generator,
    rows: Iterable[dict],
    *,
    image_column: str = "image",
    output_column: str = "translated",
    keep_source: bool = True,
    reverse=None,
    batch_size: int | None = None,
    workers: int = 2,
    precision: str = "auto",
    on_error: str = "skip",
    start: int = 0,
    report: Report | None = None,
    tile_pixels: int = tiles.DEFAULT_TILE_PIXELS,
    tile_statistics: str = tiles.DEFAULT_STATISTICS,
) -> Iterator[dict]:
    """The translated rows of ``rows`` (dicts with the image cell undecoded), in order. ``start`` is the index of
    the first row (for the names of skipped rows). Every image is translated at its full resolution; one larger
    than ``tile_pixels`` in tiles that share its norm statistics (``translation.translate``: ``tile_statistics``)."""
    if on_error not in ("skip", "stop"):
        raise ValueError(f"on_error must be 'skip' or 'stop', not {on_error!r}")
    report = report if report is not None else Report()
    batch = batch_size or generator.translation_spec.batch_size

    def batches() -> Iterator[list[tuple[int, dict]]]:
        """Rows in batches of ``batch``, or fewer whose headers declare ``BATCH_PIXELS`` in all."""
        chunk, pixels = [], 0
        for index, row in enumerate(rows, start):
            report.rows_in += 1
            size = _declared_pixels(row.get(image_column))
            if chunk and pixels + size > BATCH_PIXELS:
                yield chunk
                chunk, pixels = [], 0
            chunk.append((index, row))
            pixels += size
            if len(chunk) >= batch:
                yield chunk
                chunk, pixels = [], 0
        if chunk:
            yield chunk

    def run(chunk, decoded, pool) -> Iterator[dict]:
        kept = []
        for (index, row), (image, cell, why) in zip(chunk, decoded):
            if image is None:
                if on_error == "stop":
                    raise ValueError(f"row {index}: {why}")
                report.skipped.append((index, why))
            else:
                kept.append(({**row, image_column: cell}, image))
        if not kept:
            return
        images = [image for _, image in kept]
        options = dict(batch_size=batch, precision=precision, tile_pixels=tile_pixels, tile_statistics=tile_statistics)
        if reverse is not None:
            out, back = translation.translate(generator, images, return_reconstruction_with=reverse, **options)
        else:
            out, back = translation.translate(generator, images, **options), None
        encoded = list(pool.map(_png, out))
        round_trips = list(pool.map(_png, back)) if back is not None else None
        for k, (row, image) in enumerate(kept):
            result = {key: value for key, value in row.items() if keep_source or key != image_column}
            result[output_column] = encoded[k]
            if back is not None:
                channels = 1 if reverse.translation_spec.out_channels == 1 else 3
                x, y = imaging.image_to_array(image, channels), imaging.image_to_array(back[k], channels)
                result[f"{output_column}_round_trip"] = round_trips[k]
                result[f"{output_column}_cycle_error"] = float(np.abs(x - y).mean())
            report.rows_out += 1
            yield result

    # decoding runs ahead on the worker threads (two batches) while the network translates the current one
    with ThreadPoolExecutor(max(1, workers)) as pool:
        source, pending = batches(), collections.deque()

        def submit() -> None:
            chunk = next(source, None)
            if chunk is not None:
                pending.append((chunk, [pool.submit(_decode, row.get(image_column)) for _, row in chunk]))

        submit()
        submit()
        while pending:
            chunk, futures = pending.popleft()
            submit()
            yield from run(chunk, [future.result() for future in futures], pool)


def output_features(features, options: dict):
    """The output's features for ``translate_rows`` options: the input's (the source image dropped if asked), the
    translated image, and with a reverse model the round trip and its error."""
    import datasets

    image_column = options.get("image_column", "image")
    output_column = options.get("output_column", "translated")
    out = {k: v for k, v in features.items() if options.get("keep_source", True) or k != image_column}
    if image_column in out:
        out[image_column] = datasets.Image()
    out[output_column] = datasets.Image()
    if options.get("reverse") is not None:
        out[f"{output_column}_round_trip"] = datasets.Image()
        out[f"{output_column}_cycle_error"] = datasets.Value("float32")
    return datasets.Features(out)


def translate_dataset(generator, dataset, *, report: Report | None = None, **options):
    """``dataset`` (a ``datasets.Dataset`` or ``IterableDataset`` whose image column may be decoded or not) with
    every image translated by ``generator``: a ``Dataset`` (an ``IterableDataset`` for a stream). ``options``: see
    ``translate_rows``; ``report`` collects counts and skipped rows."""
    import datasets

    image_column = options.get("image_column", "image")
    if image_column not in (dataset.features or {}):
        raise ValueError(f"no column {image_column!r} (columns: {', '.join(dataset.features or {})})")
    undecoded = dataset.cast_column(image_column, datasets.Image(decode=False))
    features = output_features(undecoded.features, options)
    report = report if report is not None else Report()

    def rows():
        yield from translate_rows(generator, undecoded, report=report, **options)

    if isinstance(dataset, datasets.IterableDataset):
        return datasets.IterableDataset.from_generator(rows, features=features)
    try:
        # a fresh fingerprint: the rows are translated now (a cache hit would skip the model and the report)
        return datasets.Dataset.from_generator(rows, features=features, fingerprint=uuid.uuid4().hex)
    except datasets.exceptions.DatasetGenerationError as err:  # the row that stopped it, as the caller's error
        cause = err.__cause__
        raise (cause if isinstance(cause, ValueError) else err) from None


# ---------------------------------------------------------------------------------------------------------------
# to a folder of Parquet shards, resumable and multi-process
# ---------------------------------------------------------------------------------------------------------------


def process_rank() -> tuple[int, int]:
    """(rank, world size) as accelerate and torchrun set them; (0, 1) alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.parquet"


def _shards(dataset, shard_rows: int, streaming: bool):
    """(index, a function giving the shard's rows), in order. A stream is read once; the rows of shards this
    process does not write are passed over without being decoded."""
    if not streaming:
        total = len(dataset)
        for index in range(-(-total // shard_rows)):
            stop = min(total, (index + 1) * shard_rows)
            yield index, (lambda i=index, e=stop: dataset.select(range(i * shard_rows, e)))
        return
    iterator, index = iter(dataset), 0
    while rows := list(itertools.islice(iterator, shard_rows)):
        yield index, (lambda r=rows: r)
        index += 1


def translate_to_folder(
    generator,
    dataset,
    output: str | os.PathLike,
    *,
    split: str = "train",
    shard_rows: int = SHARD_ROWS,
    progress: bool = True,
    **options,
) -> Report:
    """Translate ``dataset`` (image column undecoded, as ``load_domain`` gives it) into ``output/data/*.parquet``:
    the layout ``load_dataset(output)`` reads. Resumes: shards that exist are kept. This process writes the shards
    whose index modulo the world size is its rank."""
    import datasets
    import pyarrow.parquet as pq

    output = Path(output)
    data = output / "data"
    data.mkdir(parents=True, exist_ok=True)
    rank, world = process_rank()
    streaming = isinstance(dataset, datasets.IterableDataset)
    features = output_features(dataset.features, options)
    report, started = Report(), time.perf_counter()
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=None if streaming else len(dataset), unit="rows", desc="translate", dynamic_ncols=True)
    for index, rows_of in _shards(dataset, shard_rows, streaming):
        target = data / shard_name(split, index)
        if index % world != rank:
            continue
        if target.exists():
            report.shards_resumed += 1
            continue
        shard_report = Report()
        rows = rows_of()
        out = list(translate_rows(generator, rows, start=index * shard_rows, report=shard_report, **options))
        table = datasets.Dataset.from_list(out, features=features).data.table
        sidecar = {"rows_in": shard_report.rows_in, "rows_out": shard_report.rows_out, "skipped": shard_report.skipped}
        atomic_write_json(output / ".shards" / f"{target.stem}.json", sidecar)  # before the shard: it marks done
        atomic_write(target, lambda f, t=table: pq.write_table(t, f))
        report.rows_in += shard_report.rows_in
        report.rows_out += shard_report.rows_out
        report.skipped += shard_report.skipped
        report.shards_done += 1
        if bar is not None:
            bar.update(shard_report.rows_in * world)
    if bar is not None:
        bar.close()
    report.seconds = time.perf_counter() - started
    return report


def totals(output: str | os.PathLike) -> Report:
    """Counts over every shard of ``output`` (whichever process or run wrote it), from the shards' sidecars."""
    report = Report()
    for sidecar in sorted((Path(output) / ".shards").glob("*.json")):
        entry = json.loads(sidecar.read_text())
        report.rows_in += entry["rows_in"]
        report.rows_out += entry["rows_out"]
        report.skipped += [tuple(item) for item in entry["skipped"]]
    return report


def examples(output: str | os.PathLike, image_column: str, output_column: str, count: int = 4) -> list:
    """(source, translated) image pairs from the first rows of the first shard, for the card."""
    import pyarrow.parquet as pq
    from PIL import Image

    shards = sorted((Path(output) / "data").glob("*.parquet"))
    if not shards:
        return []
    table = pq.read_table(shards[0]).slice(0, count).to_pylist()
    pairs = []
    for row in table:
        cells = [row.get(image_column), row.get(output_column)]
        if all(isinstance(c, dict) and c.get("bytes") for c in cells):
            pairs.append([Image.open(io.BytesIO(c["bytes"])) for c in cells])
    return pairs


def write_card(
    output: str | os.PathLike, *, source: str, model: str, command: str, report: Report, examples: list | None = None
) -> None:
    """The dataset card: where the rows came from, the model, the command, counts and skipped rows, examples."""
    skipped = "\n".join(f"- row {index}: {why}" for index, why in report.skipped[:50]) or "none"
    more = f"\n- ... and {len(report.skipped) - 50} more" if len(report.skipped) > 50 else ""
    grid = ""
    if examples:
        from PIL import Image

        height = max(image.height for pair in examples for image in pair)
        width = sum(image.width for image in examples[0]) + 4
        sheet = Image.new("RGB", (width, (height + 4) * len(examples)), "white")
        for row, pair in enumerate(examples):
            left = 0
            for image in pair:
                sheet.paste(image.convert("RGB"), (left, row * (height + 4)))
                left += image.width + 4
        atomic_write(Path(output) / "examples.png", lambda f: sheet.save(f, "PNG"))
        grid = "![source | translated](examples.png)\n\n"
    # No `configs` block: with one, `datasets` caches a local folder by its name and the block's patterns, not by its
    # files, so two outputs in folders of the same name load the same cached rows. Without one, the Hub and
    # `load_dataset` find the split from the shard names (data/train-NNNNN.parquet) and cache by the files.
    text = f"""---
task_categories:
- image-to-image
tags:
- cyclegan-hub
- image-to-image
---

# Translated with cyclegan-hub

Every image of `{source}` translated by the model `{model}`; every other column kept, row for row, in order.

{grid}| | |
|---|---|
| source | `{source}` |
| model | `{model}` |
| command | `{command}` |
| rows in | {report.rows_in} |
| rows out | {report.rows_out} |
| rows skipped | {len(report.skipped)} |

## Skipped rows

{skipped}{more}
"""
    atomic_write_text(Path(output) / "README.md", text)
