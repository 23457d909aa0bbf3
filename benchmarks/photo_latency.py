"""Photo translation on a CPU: the paper's ResNet-9 at 256, 512 and 1024, eager fp32 against each fast path.

    python benchmarks/photo_latency.py                       # every variant at 256, 512, 1024 (a few minutes)
    python benchmarks/photo_latency.py --sizes 512 --repeats 3 --variants eager-fp32 bf16 onnxruntime

Every variant runs in this process on the same input, interleaved with the baseline (eager fp32, plain PyTorch
layers), so each ratio compares like with like on a shared, noisy machine. Reported per size and variant: median
seconds per image, the peak memory it added (RSS above the process before it), and the PSNR of its 8-bit output
against the fp32 baseline's (a fast path qualifies at >= 40 dB). The network: the paper's ResNet-9 (11.4 M
parameters) with weights drawn so that every layer carries signal (He-normal; the paper's N(0, 0.02) init gives an
almost constant output that would flatter any PSNR), or ``--model`` for trained/converted weights. The input is a
smooth random photo-like image, the same for all variants.
"""

from __future__ import annotations

import argparse
import copy
import gc
import math
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from cyclegan_hub import CycleGenerator, translation
from cyclegan_hub.hub.repos import load_generator
from cyclegan_hub.io import imaging

from common import emit, machine, median, plain_convolutions

VARIANTS = ("eager-fp32", "channels-last", "bf16", "bf16-channels-last", "compile", "onnxruntime", "tiles-2x2")


def signal_carrying(g: CycleGenerator, seed: int = 0) -> CycleGenerator:
    """He-normal weights: each convolution keeps its input's scale, so the output is an image, not a constant."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                fan_in = (
                    m.weight[0].numel()
                    if isinstance(m, torch.nn.Conv2d)
                    else m.weight.shape[0] * m.weight[0, 0].numel()
                )
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * math.sqrt(2 / fan_in))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    return g.eval()


def photo_like(size: int, seed: int = 0) -> torch.Tensor:
    """[1, 3, size, size] in [-1, 1]: smooth colour fields plus fine texture."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=gen), size=(size, size), mode="bicubic")
    fine = torch.rand(1, 3, size, size, generator=gen) * 0.15
    return (coarse + fine).clamp(0, 1) * 2 - 1


def to_pixels(x: torch.Tensor) -> np.ndarray:
    return (imaging.to_unit(x.float(), (-1, 1)) * 255).round().to(torch.uint8).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


class PeakMemory:
    """Peak RSS above the level when entered, sampled every 10 ms."""

    def __enter__(self):
        gc.collect()
        self.process, self.base, self.peak, self.running = psutil.Process(), psutil.Process().memory_info().rss, 0, True
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss - self.base)
            time.sleep(0.01)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def run_tiled(generator, x: torch.Tensor, tiles: int = 2, overlap: int = 32) -> torch.Tensor:
    """``generator.run`` on a ``tiles`` x ``tiles`` grid of overlapping crops of ``x``, blended linearly across the
    overlaps. Bounds the activations of very large images; instance norm then sees each tile's statistics, not the
    image's, which shows as seams (measured here: 14.8 dB at 1024, so translate never tiles)."""
    height, width = x.shape[-2:]
    out = torch.zeros_like(x[:, : generator.config["out_channels"]], dtype=torch.float32)
    weight = torch.zeros(1, 1, height, width)
    for i in range(tiles):
        for j in range(tiles):
            top, bottom = max(0, i * height // tiles - overlap), min(height, (i + 1) * height // tiles + overlap)
            left, right = max(0, j * width // tiles - overlap), min(width, (j + 1) * width // tiles + overlap)
            y = translation.run(generator, x[..., top:bottom, left:right]).float()
            ramp_h = torch.minimum(torch.arange(bottom - top) + 1, torch.arange(bottom - top).flip(0) + 1).clamp(
                max=overlap
            )
            ramp_w = torch.minimum(torch.arange(right - left) + 1, torch.arange(right - left).flip(0) + 1).clamp(
                max=overlap
            )
            mask = (ramp_h[:, None] * ramp_w[None, :]).float()[None, None]
            out[..., top:bottom, left:right] += y * mask
            weight[..., top:bottom, left:right] += mask
    return out / weight


def make_runner(name: str, g: CycleGenerator, size: int, workdir: Path):
    """A function x -> y for one variant (set up once, outside the timing)."""
    if name == "eager-fp32":
        base = plain_convolutions(copy.deepcopy(g))
        return lambda x: base(x)
    if name == "channels-last":
        net = copy.deepcopy(g).to(memory_format=torch.channels_last)
        return lambda x: net(x.contiguous(memory_format=torch.channels_last))
    if name in ("bf16", "bf16-channels-last"):
        net = copy.deepcopy(g)
        last = name.endswith("channels-last")
        if last:
            net.to(memory_format=torch.channels_last)

        def run(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(x.contiguous(memory_format=torch.channels_last) if last else x).float()

        return run
    if name == "compile":
        net = torch.compile(copy.deepcopy(g))
        return lambda x: net(x)
    if name == "onnxruntime":
        from cyclegan_hub.models.onnx import OnnxGenerator, export_onnx

        path = workdir / "g.onnx"
        if not path.exists():
            export_onnx(g, path)
        runtime = OnnxGenerator(path, threads=os.cpu_count())
        return lambda x: runtime(x)
    if name == "tiles-2x2":
        return lambda x: run_tiled(g, x, tiles=2, overlap=32)
    raise ValueError(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a trained or converted generator (Hub id or folder)")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per variant and size (median reported)")
    p.add_argument("--output")
    args = p.parse_args()
    torch.manual_seed(0)
    g = load_generator(args.model) if args.model else signal_carrying(CycleGenerator())
    rows = []
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        for size in args.sizes:
            x = photo_like(size)
            reference = to_pixels(make_runner("eager-fp32", g, size, Path(tmp))(x))
            base_s = None
            for name in ["eager-fp32", *(v for v in args.variants if v != "eager-fp32")]:
                if name == "tiles-2x2" and size < 1024:
                    continue  # tiling only pays, if ever, for large images
                try:
                    run = make_runner(name, g, size, Path(tmp))
                    run(x)  # warm-up (compilation, ONNX session, oneDNN primitives)
                    times = []
                    with PeakMemory() as memory:
                        for _ in range(args.repeats):
                            start = time.perf_counter()
                            y = run(x)
                            times.append(time.perf_counter() - start)
                    seconds = median(times)
                except Exception as err:  # a variant that cannot run here is recorded, the others still run
                    rows.append({"size": size, "variant": name, "error": str(err).splitlines()[0][:200]})
                    continue
                base_s = base_s or seconds
                rows.append(
                    {
                        "size": size,
                        "variant": name,
                        "seconds": round(seconds, 3),
                        "speedup": round(base_s / seconds, 2),
                        "peak_mb": round(memory.peak / 2**20),
                        "psnr_db": round(psnr(to_pixels(y), reference), 1),
                    }
                )
                print(rows[-1], flush=True)
    lines = ["| size | variant | s/image | vs eager fp32 | peak MB | PSNR vs fp32 |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['size']} | {r['variant']} | failed: {r['error']} | | | |")
        else:
            lines.append(
                f"| {r['size']} | {r['variant']} | {r['seconds']} | {r['speedup']}x | {r['peak_mb']} | {r['psnr_db']} dB |"
            )
    emit({"benchmark": "photo_latency", "rows": rows, "machine": machine()}, "\n".join(lines), args.output)


if __name__ == "__main__":
    main()
