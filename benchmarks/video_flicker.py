"""Flicker of translated video: each frame normalised by its own statistics, against statistics carried from frame to
frame (``translate --smooth-statistics``, ``tiles.SmoothedStatistics``).

    python benchmarks/video_flicker.py                 # 24 frames of 320x240
    python benchmarks/video_flicker.py --frames 48 --size 640x480 --momentum 0.8

The clip has a static camera: a still photo-like scene with sensor noise, and a person-sized bright object that walks
in from the left and out again, so each frame's statistics change. The generator is the paper's ResNet-9 with
signal-carrying random weights (``photo_latency.signal_carrying``). Flicker is the mean absolute change between
consecutive frames, in 8-bit levels: over the still background (away from the object's path), and over the whole
frame, each beside the input's. Reported: per-frame and smoothed flicker, and the smoothed frames' PSNR against the
per-frame ones (how much the translation itself changes).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image

from cyclegan_hub import CycleGenerator, tiles

from common import emit, machine


def clip(width: int, height: int, frames: int, noise: float, seed: int = 0) -> tuple[list[Image.Image], np.ndarray]:
    """The frames, and the mask of the still background (rows away from the object's band)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.nn.functional.interpolate(
        torch.rand(1, 3, 8, 8, generator=gen), size=(height, width), mode="bicubic"
    )
    scene = (coarse[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.float64)
    rng = np.random.default_rng(seed)
    band = slice(height // 4, height // 2)
    side = height // 4
    images = []
    for t in range(frames):
        frame = scene + rng.normal(0, noise, scene.shape)
        left = int((t / max(1, frames - 1)) * (width + side)) - side
        frame[band, max(0, left) : max(0, left + side)] = 250
        images.append(Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8)))
    background = np.ones((height, width), dtype=bool)
    background[: height * 5 // 8] = False  # the object's band, and the network's reach around it
    return images, background


def flicker(frames: list[np.ndarray], mask: np.ndarray | None = None) -> float:
    changes = [np.abs(b - a)[mask] if mask is not None else np.abs(b - a) for a, b in zip(frames, frames[1:])]
    return float(np.mean([c.mean() for c in changes]))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--size", default="320x240")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--noise", type=float, default=2.0, help="sensor noise, in 8-bit levels (standard deviation)")
    p.add_argument("--output")
    args = p.parse_args()
    from photo_latency import signal_carrying

    torch.manual_seed(0)
    g = signal_carrying(CycleGenerator(image_size=256))
    width, height = map(int, args.size.split("x"))
    frames, background = clip(width, height, args.frames, args.noise)
    inputs = [np.asarray(f, dtype=np.float64) for f in frames]
    plain = [np.asarray(f, dtype=np.float64) for f in g.translate(frames, batch_size=4, precision="fp32")]
    with tiles.SmoothedStatistics(g, args.momentum):
        steady = [np.asarray(f, dtype=np.float64) for f in g.translate(frames, batch_size=4, precision="fp32")]
    result = {
        "benchmark": "video_flicker",
        "frames": args.frames,
        "size": args.size,
        "momentum": args.momentum,
        "noise": args.noise,
        "input_flicker_background": round(flicker(inputs, background), 3),
        "per_frame_flicker_background": round(flicker(plain, background), 3),
        "smoothed_flicker_background": round(flicker(steady, background), 3),
        "input_flicker_whole": round(flicker(inputs), 3),
        "per_frame_flicker_whole": round(flicker(plain), 3),
        "smoothed_flicker_whole": round(flicker(steady), 3),
        "smoothed_psnr_vs_per_frame_db": round(float(np.mean([psnr(a, b) for a, b in zip(plain, steady)])), 2),
    }
    r = result
    summary = (
        f"background flicker: input {r['input_flicker_background']}, per frame {r['per_frame_flicker_background']}, "
        f"smoothed {r['smoothed_flicker_background']} (levels); whole frame: input {r['input_flicker_whole']}, "
        f"per frame {r['per_frame_flicker_whole']}, smoothed {r['smoothed_flicker_whole']}; smoothed vs per frame "
        f"{r['smoothed_psnr_vs_per_frame_db']} dB"
    )
    emit(result | {"machine": machine()}, summary, args.output)


if __name__ == "__main__":
    main()
