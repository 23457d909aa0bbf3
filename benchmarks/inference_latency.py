"""Generator inference: latency and throughput by image size and batch, fast path against an eager fp32 baseline.

    python benchmarks/inference_latency.py --device cpu --sizes 28 256 --batches 1 16
    python benchmarks/inference_latency.py --device cuda --precision bf16 --channels-last --sizes 256 1024 --batches 1 64
    python benchmarks/inference_latency.py --model space/models/mnist-6to9 --sizes 28 --batches 256 --compile --translate

Default network: the paper's ResNet-9 for RGB (``--model`` times a trained one). ``--translate`` also times the
whole ``CycleGenerator.translate`` path on PIL images (decode-free: arrays in memory), batched.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from cyclegan_hub import CycleGenerator
from cyclegan_hub.hub.repos import load_generator

from common import dtype_of, emit, machine, median, plain_convolutions, timed


def forward_rate(g, size, batch, device, precision, channels_last, steps, warmup):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = (torch.rand(batch, g.config["in_channels"], size, size, device=device) * 2 - 1).contiguous(memory_format=fmt)
    dtype = dtype_of(precision)

    def one():
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            g(x)

    ms = median(timed(one, steps, warmup, device)) * 1000
    return {"size": size, "batch": batch, "ms": round(ms, 3), "images_per_s": round(batch / (ms / 1000), 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a trained generator (Hub id or folder); default: the paper's ResNet-9 RGB")
    p.add_argument("--sizes", type=int, nargs="+", default=[28, 256, 512, 1024])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument(
        "--translate",
        action="store_true",
        help="also time translate() on PIL images (the first size, in batches of the largest --batches)",
    )
    p.add_argument("--translate-images", type=int, default=1024, help="images per translate() call (default 1024)")
    p.add_argument("--output")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    base = (load_generator(args.model) if args.model else CycleGenerator()).to(device).eval()
    fast = (load_generator(args.model) if args.model else CycleGenerator()).to(device).eval()
    fast.load_state_dict(base.state_dict())
    plain_convolutions(base)  # the baseline is plain PyTorch layers, eager fp32
    if args.channels_last:
        fast.to(memory_format=torch.channels_last)
    if args.compile:
        fast.compile()  # in place: translate() then runs the compiled forward too
    fast_call = fast
    rows = []
    for size in args.sizes:
        for batch in args.batches:
            b = forward_rate(base, size, batch, device, "fp32", False, args.steps, args.warmup)
            f = forward_rate(
                fast_call, size, batch, device, args.precision, args.channels_last, args.steps, args.warmup
            )
            rows.append(
                {"size": size, "batch": batch, "baseline": b, "fast": f, "speedup": round(b["ms"] / f["ms"], 3)}
            )
    result = {
        "benchmark": "inference_latency",
        "device": args.device,
        "precision": args.precision,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "model": args.model or "resnet9-rgb",
        "rows": rows,
        "machine": machine(),
    }
    if args.translate:
        from PIL import Image

        size = args.sizes[0]
        channels = base.config["in_channels"]
        shape = (size, size) if channels == 1 else (size, size, 3)
        images = [
            Image.fromarray(np.random.default_rng(i).integers(0, 255, shape, dtype=np.uint8))
            for i in range(args.translate_images)
        ]
        batch = max(args.batches)
        rates = {}
        for name, g in (("baseline", base), ("fast", fast)):

            def one(g=g):
                g.translate(images, batch_size=batch, device=device)

            ms = median(timed(one, args.steps, args.warmup, device)) * 1000
            rates[name] = round(len(images) / (ms / 1000), 1)
        result["translate"] = {
            "size": size,
            "images": len(images),
            "batch": batch,
            "images_per_s": rates,
            "speedup": round(rates["fast"] / rates["baseline"], 3),
        }
    best = max(rows, key=lambda r: r["fast"]["images_per_s"])
    summary = "; ".join(
        f"{r['size']}px b{r['batch']}: {r['fast']['images_per_s']} img/s ({r['speedup']}x)" for r in rows
    )
    if "translate" in result:
        t = result["translate"]
        summary += f"; translate() at {t['size']}px: {t['images_per_s']['fast']} img/s ({t['speedup']}x)"
    emit(
        result,
        f"inference on {args.device} {args.precision}: {summary}; best {best['fast']['images_per_s']} img/s",
        args.output,
    )


if __name__ == "__main__":
    main()
