"""Build the bundled paired MNIST inpainting dataset: a digit with a block erased -> the whole digit.

Reads the bundled MNIST 6/9 dataset (``training/data/mnist-6-9``, made by
``training/make_mnist_dataset.py``) and, for every row, erases one 10x10 block
of the digit (sets it to 0, the background) to make an aligned pair::

    python training/make_mnist_pairs.py

Output (``training/data/mnist-inpaint/`` by default)::

    data/train-00000-of-00001.parquet   800 pairs (from mnist-6-9 train)
    data/test-00000-of-00001.parquet    200 pairs (from mnist-6-9 test)

Columns: ``imageA`` (the digit with the block erased), ``imageB`` (the
original digit), ``label`` and ``mnist5k_index`` (copied from the source, so
the test rows stay out of the evaluation classifier's training data exactly as
in mnist-6-9).

The block always removes ink: its top-left corner is drawn uniformly among the
positions whose 10x10 window holds at least 25% of the digit's ink mass (sum of
pixel values); if no window reaches that share, the window with the most ink is
taken. Each row draws from ``numpy.random.default_rng([seed, split, row])``
and the PNGs are encoded by PIL without metadata, so the output is
byte-for-byte reproducible with the same library versions. The dataset card
(README.md) in the output folder is maintained by hand and is not touched by
this script.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

SPLITS = ("train", "test")
BLOCK = 10
MIN_INK_SHARE = 0.25
DEFAULT_SEED = 69
DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_SOURCE = DATA_DIR / "mnist-6-9"
DEFAULT_OUTPUT = DATA_DIR / "mnist-inpaint"


def window_ink(image: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Ink mass (sum of pixel values) of every ``block`` x ``block`` window, indexed by its top-left corner."""
    windows = np.lib.stride_tricks.sliding_window_view(image.astype(np.int64), (block, block))
    return windows.sum(axis=(-2, -1))


def pick_block(image: np.ndarray, rng: np.random.Generator, block: int = BLOCK) -> tuple[int, int]:
    """Top-left (row, col) of the block to erase: uniform among windows holding >= MIN_INK_SHARE of the ink."""
    ink = window_ink(image, block)
    total = int(image.astype(np.int64).sum())
    # Integer comparison (ink / total >= 1/4), no float rounding at the threshold.
    candidates = np.argwhere(ink * round(1 / MIN_INK_SHARE) >= total)  # row-major order
    if len(candidates) == 0:
        r, c = np.unravel_index(int(np.argmax(ink)), ink.shape)
        return int(r), int(c)
    r, c = candidates[rng.integers(len(candidates))]
    return int(r), int(c)


def erase_block(image: np.ndarray, top: int, left: int, block: int = BLOCK) -> np.ndarray:
    """A copy of ``image`` with the ``block`` x ``block`` square at (top, left) set to 0 (background)."""
    erased = image.copy()
    erased[top : top + block, left : left + block] = 0
    return erased


def png_bytes(image: np.ndarray) -> bytes:
    """Deterministic PNG encoding of a 2-D uint8 array as mode "L": PIL defaults, no metadata chunks."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="mnist-6-9 dataset folder")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="dataset folder")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="block placement seed")
    args = parser.parse_args(argv)

    # Heavy imports after argparse so --help stays instant.
    import datasets

    source = datasets.load_dataset(str(args.source))
    (args.output / "data").mkdir(parents=True, exist_ok=True)
    for split_id, split in enumerate(SPLITS):
        rows = source[split]
        features = datasets.Features(
            {
                "imageA": datasets.Image(),
                "imageB": datasets.Image(),
                "label": rows.features["label"],
                "mnist5k_index": rows.features["mnist5k_index"],
            }
        )
        columns = {"imageA": [], "imageB": [], "ink_share": []}
        for row, example in enumerate(rows):
            image = np.asarray(example["image"].convert("L"), dtype=np.uint8)
            if image.shape != (28, 28):
                raise ValueError(f"{split} row {row}: expected a 28x28 image, got {image.shape}")
            top, left = pick_block(image, np.random.default_rng([args.seed, split_id, row]))
            erased = erase_block(image, top, left)
            columns["imageA"].append({"bytes": png_bytes(erased), "path": None})
            columns["imageB"].append({"bytes": png_bytes(image), "path": None})
            total = int(image.sum(dtype=np.int64))
            columns["ink_share"].append((total - int(erased.sum(dtype=np.int64))) / max(total, 1))
        ds = datasets.Dataset.from_dict(
            {
                "imageA": columns["imageA"],
                "imageB": columns["imageB"],
                "label": rows["label"],
                "mnist5k_index": rows["mnist5k_index"],
            },
            features=features,
        )
        path = args.output / "data" / f"{split}-00000-of-00001.parquet"
        ds.to_parquet(str(path))
        share = np.asarray(columns["ink_share"])
        print(f"{split}: {len(ds)} pairs, ink erased min {share.min():.1%} mean {share.mean():.1%} -> {path}")


if __name__ == "__main__":
    main()
