"""Rows/s of translating a whole dataset (``translate_to_folder``: decode on worker threads, translate, encode,
write Parquet shards) against the bare forward of the same network on already-decoded tensors, in one run.

    python benchmarks/dataset_translate.py --digits 2000 --photos 24

Digits: the bundled MNIST 6s through the shipped 6->9 generator (28x28 gray PNGs). Photos: 256x256 JPEGs (drawn
noise + shapes, quality 90) through the paper's ResNet-9 (random weights: the speed is the weights' shape, not their
values). The goal is >= 0.9x the bare forward: decoding and writing overlapped with compute.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time

import numpy as np
import torch

from common import ROOT, emit, machine

sys.path.insert(0, str(ROOT))


def bare_forward(generator, tensors: list[torch.Tensor], batch: int) -> float:
    """Rows/s of the network alone on decoded, value-ranged tensors, batched as the translation batches them."""
    from cyclegan_hub import translation

    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(tensors), batch):
            translation.run(generator, torch.stack(tensors[i : i + batch]))
    return len(tensors) / (time.perf_counter() - start)


def measure(generator, dataset, image_column: str, batch: int, workers: int) -> dict:
    from cyclegan_hub.bulk.translate import translate_to_folder
    from cyclegan_hub.io import imaging

    low, high = generator.translation_spec.value_range
    channels = generator.translation_spec.in_channels
    tensors = []
    for row in dataset:
        image = imaging.open_image(row[image_column]["bytes"] or row[image_column]["path"])
        x = torch.from_numpy(imaging.image_to_array(image, channels)).permute(2, 0, 1)
        tensors.append(x * (high - low) + low)
    bare_forward(generator, tensors[:batch], batch)  # warm up
    bare = bare_forward(generator, tensors, batch)
    with tempfile.TemporaryDirectory() as tmp:
        report = translate_to_folder(
            generator,
            dataset,
            tmp,
            shard_rows=500,
            progress=False,
            batch_size=batch,
            workers=workers,
            image_column=image_column,
        )
    full = report.rows_in / report.seconds
    return {
        "rows": len(tensors),
        "batch": batch,
        "workers": workers,
        "bare_rows_per_s": round(bare, 1),
        "dataset_rows_per_s": round(full, 1),
        "ratio": round(full / bare, 3),
    }


def photos(count: int, size: int = 256):
    import datasets
    from PIL import Image, ImageDraw

    rows = []
    for i in range(count):
        rng = np.random.default_rng(i)
        image = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
        ImageDraw.Draw(image).ellipse((30, 40, 200, 220), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        rows.append({"bytes": buffer.getvalue(), "path": None})
    ds = datasets.Dataset.from_dict({"image": rows, "id": list(range(count))})
    return ds.cast_column("image", datasets.Image(decode=False))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--digits", type=int, default=2000)
    p.add_argument("--photos", type=int, default=24)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--output")
    args = p.parse_args()
    from cyclegan_hub import CycleGenerator
    from cyclegan_hub.training.data import DomainSpec, load_domain

    rows = {}
    digits = load_domain(DomainSpec(path=str(ROOT / "training" / "data" / "mnist-6-9"), filter="label == 6"))
    digits = digits.select(range(min(args.digits, len(digits))))
    generator = CycleGenerator.from_pretrained(ROOT / "space" / "models" / "mnist-6to9")
    rows["digits"] = measure(generator, digits, "image", 16, args.workers)
    torch.manual_seed(0)
    photo_model = CycleGenerator(image_size=256).eval()
    for m in photo_model.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
            torch.nn.init.kaiming_normal_(m.weight)
    rows["photos_256"] = measure(photo_model, photos(args.photos), "image", 1, args.workers)
    result = {"benchmark": "dataset_translate", "rows": rows, "machine": machine()}
    emit(
        result,
        "; ".join(
            f"{k}: {v['dataset_rows_per_s']} rows/s = {v['ratio']}x the bare forward ({v['bare_rows_per_s']} rows/s)"
            for k, v in rows.items()
        ),
        args.output,
    )


if __name__ == "__main__":
    main()
