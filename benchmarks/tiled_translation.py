"""Full resolution in tiles (``cyclegan_hub.tiles``): how close to the whole run, how visible the seams, what it
costs.

    python benchmarks/tiled_translation.py                        # 1448x1086, then 8000x6000
    python benchmarks/tiled_translation.py --sizes 1448x1086 --large 4000x3000 --large-statistics thumbnail

Two networks, since no trained photo model can be downloaded here: the paper's ResNet-9 with signal-carrying random
weights (``photo_latency.signal_carrying``: a harsh judge, it amplifies any change of its statistics), and the
bundled MNIST 6 -> 9 generator (trained weights; gray). Two pictures: smooth colour fields plus per-pixel texture
(``picture``), and a natural image's spectrum (power falling as 1/f^2, ``natural``) with a little sensor noise.

1. Where the whole image still fits: ``translate`` with the default budget (tiles of 1 MP, 64 pixels of overlap)
   against the whole image in one pass: PSNR for each source of the tiles' statistics (``"tiles"``: pooled from a
   first pass over the tiles, the default; ``"thumbnail"``: a copy shrunk to 1 MP) and for the whole image's own
   statistics (the mechanism's ceiling). Seams: the mean absolute difference between neighbouring columns (and
   rows) of the tiled output where tiles meet, against the same measure everywhere (1.0: a border is like any other
   place).
2. A large photo (8000x6000 by default), in a fresh process: the peak resident memory while it is translated
   (the peak reset once the picture is made, Linux's clear_refs), seconds, and the seconds per pixel against one
   1024x1024 image translated whole in the same process (the baseline of the ratio).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cyclegan_hub import CycleGenerator, tiles, translation
from cyclegan_hub.io import imaging

from common import emit, machine


def model() -> CycleGenerator:
    from photo_latency import signal_carrying

    torch.manual_seed(0)
    return signal_carrying(CycleGenerator(image_size=256))


def picture(width: int, height: int, seed: int = 0) -> Image.Image:
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.nn.functional.interpolate(
        torch.rand(1, 3, 8, 8, generator=gen), size=(height, width), mode="bicubic"
    )
    fine = torch.rand(1, 3, height, width, generator=gen) * 0.15
    pixels = ((coarse + fine).clamp(0, 1) * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    return Image.fromarray(pixels)


def natural(width: int, height: int, seed: int = 0, noise: float = 0.01) -> Image.Image:
    """A natural image's statistics: random phases under a 1/f amplitude spectrum (power 1/f^2, as photos have),
    colours mixed, plus sensor noise of ``noise``."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    channels = []
    for _ in range(3):
        spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f
        spectrum[0, 0] = 0
        channels.append(np.fft.irfft2(spectrum, s=(height, width)))
    x = np.stack(channels, -1) @ np.array([[1, 0.3, 0.2], [0.3, 1, 0.3], [0.2, 0.3, 1]])
    x = (x - x.mean()) / x.std() * 0.18 + 0.5 + rng.normal(size=x.shape) * noise
    return Image.fromarray((np.clip(x, 0, 1) * 255).round().astype(np.uint8))


def digits_model() -> CycleGenerator:
    return CycleGenerator.from_pretrained(
        Path(__file__).resolve().parents[1] / "space" / "models" / "mnist-6to9"
    ).eval()


def psnr(a, b) -> float:
    mse = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def seam_ratio(image: Image.Image, starts: list[int], overlap: int, axis: int) -> float:
    """Mean |difference between neighbours| across ``axis`` in the middle of each blend zone, over the same
    everywhere."""
    x = np.asarray(image, dtype=np.float64)
    x = x[..., None] if x.ndim == 2 else x
    steps = np.abs(np.diff(x, axis=axis)).mean(axis=(1 - axis, 2))
    middles = [start + overlap // 2 for start in starts[1:] if start + overlap // 2 < len(steps)]
    return float(steps[middles].mean() / steps.mean()) if middles else 1.0


def whole_image_statistics(g, image: Image.Image) -> Image.Image:
    """Tiles as translate makes them, normalised with the whole image's own statistics (from one pass on it)."""
    pixels = np.array(image)
    x = torch.from_numpy(pixels[..., None] if pixels.ndim == 2 else pixels).permute(2, 0, 1)[None]
    spec = g.translation_spec

    def prepare(u):
        return imaging.to_network(u, list(spec.value_range))

    def finish(y):
        return imaging.to_unit(y.float(), list(spec.value_range))

    size = tiles.tile_size(tiles.DEFAULT_TILE_PIXELS, spec.size_multiple, tiles.DEFAULT_OVERLAP)
    with torch.inference_mode():
        out = tiles.run_tiled(
            lambda t: translation.run(g, t), g, x, prepare, finish, prepare(x), size, multiple=spec.size_multiple
        )
    pixels = out[0].permute(1, 2, 0).numpy()
    return Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)


def fits(sizes: list[tuple[int, int]], trained_sizes: list[tuple[int, int]]) -> list[dict]:
    rows = []
    networks = (("resnet9-random", model(), sizes), ("mnist-6to9-trained", digits_model(), trained_sizes))
    for network, g, network_sizes in networks:
        for width, height in network_sizes:
            for name, make in (("texture", picture), ("natural", natural)):
                image = make(width, height)
                if g.config["in_channels"] == 1:
                    image = image.convert("L")
                whole = g.translate(image, tile_pixels=10**10, precision="fp32")
                pooled = g.translate(image, precision="fp32", tile_statistics="tiles")
                thumb = g.translate(image, precision="fp32", tile_statistics="thumbnail")
                exact = whole_image_statistics(g, image)
                side = tiles.tile_size(tiles.DEFAULT_TILE_PIXELS, g.size_multiple, tiles.DEFAULT_OVERLAP)
                cols = tiles.tile_grid(width, side, tiles.DEFAULT_OVERLAP, g.size_multiple)[1]
                rows_ = tiles.tile_grid(height, side, tiles.DEFAULT_OVERLAP, g.size_multiple)[1]
                rows.append(
                    {
                        "network": network,
                        "picture": name,
                        "size": f"{width}x{height}",
                        "tiles": len(cols) * len(rows_),
                        "auto": tiles.statistics_for("auto", width * height, tiles.DEFAULT_TILE_PIXELS),
                        "psnr_tiles_db": round(psnr(pooled, whole), 2),
                        "psnr_thumbnail_db": round(psnr(thumb, whole), 2),
                        "psnr_whole_image_statistics_db": round(psnr(exact, whole), 2),
                        "seam_ratio_columns": round(seam_ratio(pooled, cols, tiles.DEFAULT_OVERLAP, 1), 3),
                        "seam_ratio_rows": round(seam_ratio(pooled, rows_, tiles.DEFAULT_OVERLAP, 0), 3),
                        "seam_ratio_whole": round(seam_ratio(whole, cols, tiles.DEFAULT_OVERLAP, 1), 3),
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _status(key: str) -> int:
    """A /proc/self/status figure in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def reset_peak_rss() -> int:
    """Reset the process's peak resident memory to what it holds now (Linux: clear_refs 5); returns that."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def peak_rss() -> int:
    return _status("VmHWM")


def large(width: int, height: int, statistics: str) -> dict:
    """In this process: a 1024x1024 image whole (the baseline), then the large one; peak memory and seconds."""
    g = model()
    base = picture(1024, 1024, seed=1)
    g.translate(picture(256, 256), precision="fp32")  # warm up
    start = time.perf_counter()
    g.translate(base, precision="fp32")
    base_s = time.perf_counter() - start
    del base
    image = picture(width, height, seed=2)
    gc.collect()
    before = reset_peak_rss()  # making the picture peaks higher than translating it: measure from here
    start = time.perf_counter()
    out = g.translate(image, precision="fp32", tile_statistics=statistics)
    seconds = time.perf_counter() - start
    peak = peak_rss()
    assert out.size == (width, height)
    per_pixel, base_per_pixel = seconds / (width * height), base_s / 1024**2
    return {
        "size": f"{width}x{height}",
        "statistics": statistics,
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(peak / 2**30, 2),
        "rss_before_gb": round(before / 2**30, 2),
        "baseline_1024_seconds": round(base_s, 2),
        "per_pixel_ratio": round(per_pixel / base_per_pixel, 3),
    }


def sizes(text: str) -> list[tuple[int, int]]:
    return [tuple(map(int, size.split("x"))) for size in text.split(",") if size]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sizes", default="1448x1086", help="sizes that still fit whole (WxH, comma-separated; empty: skip)"
    )
    p.add_argument("--trained-sizes", default="1448x1086,4096x3072", help="the same for the trained MNIST generator")
    p.add_argument("--large", default="8000x6000", help="the large photo (WxH; empty: skip)")
    p.add_argument("--large-statistics", default="auto", choices=tiles.STATISTICS, help="the large photo's statistics")
    p.add_argument("--output")
    p.add_argument("--one-large", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one_large:
        size, statistics = args.one_large.split(":")
        print(json.dumps(large(*map(int, size.split("x")), statistics)))
        return
    torch.set_num_threads(min(2, torch.get_num_threads()))
    result = {
        "benchmark": "tiled_translation",
        "fits": fits(sizes(args.sizes), sizes(args.trained_sizes)),
    }
    if args.large:
        cmd = [sys.executable, str(Path(__file__)), "--one-large", f"{args.large}:{args.large_statistics}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = proc.stdout.strip().splitlines()
        result["large"] = json.loads(lines[-1]) if proc.returncode == 0 else {"error": proc.stderr.strip()[-300:]}
    summary = " | ".join(
        f"{r['network']} {r['picture']} {r['size']} (auto: {r['auto']}): tiles {r['psnr_tiles_db']} dB, thumbnail "
        f"{r['psnr_thumbnail_db']} dB, whole-image statistics {r['psnr_whole_image_statistics_db']} dB, "
        f"seams {r['seam_ratio_columns']}/{r['seam_ratio_rows']}"
        for r in result["fits"]
    )
    if "large" in result and "error" not in result["large"]:
        big = result["large"]
        summary += (
            f" | {big['size']} ({big['statistics']}): {big['seconds']} s, peak RSS {big['peak_rss_gb']} GB, "
            f"{big['per_pixel_ratio']}x the per-pixel time of a 1024x1024 image"
        )
    emit(result | {"machine": machine()}, summary, args.output)


if __name__ == "__main__":
    main()
