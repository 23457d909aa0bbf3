"""The bundled paired mnist-inpaint dataset (a digit with a block erased -> the whole digit) and its script."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
pq = pytest.importorskip("pyarrow.parquet")

from training import make_mnist_pairs

ROOT = Path(__file__).resolve().parents[2]
DATASET_DIR = ROOT / "training" / "data" / "mnist-inpaint"
SOURCE_DIR = ROOT / "training" / "data" / "mnist-6-9"
SHARDS = ("data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet")
BLOCK = 10


@pytest.fixture(scope="module")
def pairs():
    return datasets.load_dataset(str(DATASET_DIR))


def pixels(images) -> np.ndarray:
    return np.stack([np.asarray(im, dtype=np.int64) for im in images])


def window_sums(mask: np.ndarray) -> np.ndarray:
    """[N, H, W] -> [N, H-9, W-9]: the sum over every 10x10 window, indexed by its top-left corner."""
    return np.lib.stride_tricks.sliding_window_view(mask, (BLOCK, BLOCK), axis=(1, 2)).sum(axis=(-2, -1))


def test_splits_columns_and_rows_follow_the_source(pairs):
    source = datasets.load_dataset(str(SOURCE_DIR))
    assert set(pairs) == {"train", "test"}
    assert (pairs["train"].num_rows, pairs["test"].num_rows) == (800, 200)
    features = pairs["test"].features
    assert list(features) == ["imageA", "imageB", "label", "mnist5k_index"]
    assert isinstance(features["imageA"], datasets.Image) and isinstance(features["imageB"], datasets.Image)
    assert features["label"] == source["test"].features["label"]
    for split in ("train", "test"):
        # Same rows in the same order: the test rows stay out of the digit classifier's training data.
        assert pairs[split]["mnist5k_index"] == source[split]["mnist5k_index"]
        assert pairs[split]["label"] == source[split]["label"]
        np.testing.assert_array_equal(pixels(pairs[split]["imageB"]), pixels(source[split]["image"]))
    example = pairs["test"][0]
    for column in ("imageA", "imageB"):
        assert (example[column].mode, example[column].size) == ("L", (28, 28))


@pytest.mark.parametrize("split", ["train", "test"])
def test_one_erased_square_removes_at_least_a_quarter_of_the_ink(pairs, split):
    a, b = pixels(pairs[split]["imageA"]), pixels(pairs[split]["imageB"])
    assert a.shape == b.shape == (pairs[split].num_rows, 28, 28)
    changed = a != b
    # Some 10x10 window is all 0 in A and holds every pixel where A differs from B.
    blank = window_sums(a == 0) == BLOCK * BLOCK
    covers_changes = window_sums(changed) == changed.sum(axis=(1, 2))[:, None, None]
    assert (blank & covers_changes).any(axis=(1, 2)).all()
    ink, erased = b.sum(axis=(1, 2)), (b - a).sum(axis=(1, 2))
    assert (4 * erased >= ink).all(), f"min share of ink erased {(erased / ink).min():.3f} < 0.25"


def test_script_rebuilds_the_shipped_files(tmp_path, capsys):
    make_mnist_pairs.main(["--output", str(tmp_path)])
    assert "train: 800 pairs" in capsys.readouterr().out
    for shard in SHARDS:
        shipped, rebuilt = DATASET_DIR / shard, tmp_path / shard
        # Content first (every PNG byte), for a readable failure; then the files themselves.
        assert pq.read_table(rebuilt).equals(pq.read_table(shipped)), f"{shard}: rows differ"
        writer = pq.read_metadata(shipped).created_by
        if writer != pq.read_metadata(rebuilt).created_by:
            pytest.skip(f"shipped {shard} was written by {writer}; byte identity needs the same pyarrow")
        assert rebuilt.read_bytes() == shipped.read_bytes(), f"{shard} is not byte-identical"
