"""The bundled mnist-6-9 dataset and the shipped evaluation digit classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cyclegan_hub.models.mnist_classifier import WEIGHTS_PATH, classify_digits, load_mnist_classifier

datasets = pytest.importorskip("datasets")

DATASET_DIR = Path(__file__).resolve().parents[2] / "training" / "data" / "mnist-6-9"


@pytest.fixture(scope="module")
def mnist69():
    return datasets.load_dataset(str(DATASET_DIR))


def to_model_range(pil_images) -> torch.Tensor:
    """PIL "L" images (white digit on black) -> [N, 1, 28, 28] in [-1, 1]."""
    pixels = np.stack([np.asarray(im, dtype=np.float32) for im in pil_images])
    return torch.from_numpy(pixels).div(127.5).sub(1.0).unsqueeze(1)


def test_dataset_splits_features_and_labels(mnist69):
    assert set(mnist69) == {"train", "test"}
    assert (mnist69["train"].num_rows, mnist69["test"].num_rows) == (800, 200)
    features = mnist69["test"].features
    assert isinstance(features["image"], datasets.Image)
    assert features["label"].names == [str(d) for d in range(10)]
    assert features["mnist5k_index"].dtype == "int32"
    for split, per_class in (("train", 400), ("test", 100)):
        labels = np.asarray(mnist69[split]["label"])
        assert sorted(set(labels.tolist())) == [6, 9]
        assert (labels == 6).sum() == (labels == 9).sum() == per_class
    image = mnist69["test"][0]["image"]
    assert (image.mode, image.size) == ("L", (28, 28))


def test_train_and_test_do_not_overlap(mnist69):
    train_rows = set(mnist69["train"]["mnist5k_index"])
    test_rows = set(mnist69["test"]["mnist5k_index"])
    assert len(train_rows) == 800 and len(test_rows) == 200
    assert not train_rows & test_rows


@pytest.mark.parametrize("digit", [6, 9])
def test_classifier_reads_held_out_digits(mnist69, digit):
    test = mnist69["test"].filter(lambda ex: ex["label"] == digit)
    predictions = classify_digits(to_model_range(test["image"]))
    assert predictions.dtype == torch.long and predictions.shape == (100,)
    assert (predictions == digit).float().mean().item() >= 0.97


def test_classifier_resizes_larger_images(mnist69):
    # Generators may emit e.g. 32x32; the classifier resizes to 28x28 itself.
    test = mnist69["test"]
    images = torch.nn.functional.interpolate(to_model_range(test["image"]), size=(32, 32), mode="bilinear")
    accuracy = (classify_digits(images) == torch.tensor(test["label"])).float().mean().item()
    assert accuracy >= 0.95


@pytest.mark.parametrize("shape", [(4, 28, 28), (4, 3, 28, 28), (28, 28)])
def test_wrong_shape_is_rejected(shape):
    with pytest.raises(ValueError, match=r"\[N, 1, H, W\]"):
        classify_digits(torch.zeros(shape))


def test_shipped_weights_load_in_eval_mode():
    assert WEIGHTS_PATH.is_file() and WEIGHTS_PATH.stat().st_size < 1_500_000
    model = load_mnist_classifier()
    assert not model.training
