"""Serving a pair: both directions, the round trip, and request batching for apps such as the Space.

``PairTranslator`` holds a forward and a reverse generator and names the two directions after the domains
("6 -> 9", "9 -> 6"). Concurrent ``translate`` calls are gathered into batches by a single worker thread (up to
``max_batch`` requests, waiting at most ``max_wait_ms`` for company), so that 16 clients cost a few forward passes
rather than 16, and only one forward pass runs at a time: memory stays bounded whatever the load.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from . import imaging
from .generator import CycleGenerator


@dataclass
class Result:
    translated: Image.Image
    reconstructed: Image.Image
    cycle_error: float  # mean |F(G(x)) - x| on a 0-1 pixel scale


def is_small_digit_model(generator: CycleGenerator) -> bool:
    """Models trained on small single-channel images (MNIST) need their input framed like MNIST."""
    return generator.config["in_channels"] == 1 and generator.config["image_size"] <= 64


def frame_like_mnist(image: Image.Image, size: int = 28) -> Image.Image:
    """A digit drawn or photographed anywhere -> an MNIST-style ``size`` x ``size`` image.

    MNIST digits are light strokes on black, scaled to fit a 20x20 box and centred by their centre of mass in 28x28.
    Dark-on-light images (a pen drawing, a sketchpad) are inverted first."""
    gray = np.asarray(image.convert("L") if image.mode != "L" else image, dtype=np.float32) / 255
    if gray.mean() > 0.5:
        gray = 1 - gray
    ink = gray > 0.2
    if not ink.any():
        return Image.fromarray(np.zeros((size, size), np.uint8))
    rows, cols = np.where(ink)
    crop = gray[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    box = round(size * 20 / 28)
    scale = box / max(crop.shape)
    height, width = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    digit = Image.fromarray((crop * 255).astype(np.uint8)).resize((width, height), Image.Resampling.LANCZOS)
    canvas = np.zeros((size, size), np.float32)
    pixels = np.asarray(digit, np.float32)
    total = pixels.sum() or 1.0
    cy = (pixels.sum(1) * np.arange(height)).sum() / total
    cx = (pixels.sum(0) * np.arange(width)).sum() / total
    top = int(np.clip(round(size / 2 - cy), 0, size - height))
    left = int(np.clip(round(size / 2 - cx), 0, size - width))
    canvas[top : top + height, left : left + width] = pixels
    return Image.fromarray(canvas.astype(np.uint8))


class PairTranslator:
    """Both directions of a CycleGAN pair behind one thread-safe, batching ``translate(image, direction)``."""

    def __init__(self, forward: CycleGenerator, reverse: CycleGenerator, *, max_batch: int = 16,
                 max_wait_ms: float = 5.0, max_side: int = imaging.DEFAULT_MAX_SIDE, device: str | None = None):
        a, b = forward.config["source_domain"], forward.config["target_domain"]
        if (reverse.config["source_domain"], reverse.config["target_domain"]) != (b, a):
            raise ValueError(
                f"the two generators are not a pair: {a} -> {b} and "
                f"{reverse.config['source_domain']} -> {reverse.config['target_domain']}"
            )
        self.directions = {f"{a} -> {b}": (forward, reverse), f"{b} -> {a}": (reverse, forward)}
        self.max_batch, self.max_wait, self.max_side, self.device = max_batch, max_wait_ms / 1000, max_side, device
        self._requests: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._serve, name="cyclegan-batcher", daemon=True)
        self._worker.start()

    def prepare(self, source, direction: str) -> Image.Image:
        """Decode and check one input (ValueError naming the problem), framed for the model of ``direction``."""
        if direction not in self.directions:
            raise ValueError(f"unknown direction {direction!r}; valid: {', '.join(map(repr, self.directions))}")
        if source is None:
            raise ValueError("no image: upload, paste, photograph or draw one first")
        image = imaging.open_image(source)
        generator = self.directions[direction][0]
        if is_small_digit_model(generator):
            return frame_like_mnist(image, generator.config["image_size"])
        return image

    def translate(self, source, direction: str, timeout: float = 60.0) -> Result:
        image = self.prepare(source, direction)
        future: Future = Future()
        self._requests.put((image, direction, future))
        return future.result(timeout=timeout)

    def _serve(self) -> None:
        while True:
            batch = [self._requests.get()]
            try:
                while len(batch) < self.max_batch:
                    batch.append(self._requests.get(timeout=self.max_wait))
            except queue.Empty:
                pass
            for direction in {d for _, d, _ in batch}:
                items = [(image, future) for image, d, future in batch if d == direction]
                try:
                    results = self._run([image for image, _ in items], direction)
                    for (_, future), result in zip(items, results):
                        future.set_result(result)
                except Exception as err:  # a failure answers every waiting request; the worker keeps serving
                    for _, future in items:
                        if not future.done():
                            future.set_exception(err)

    @torch.inference_mode()
    def _run(self, images: list[Image.Image], direction: str) -> list[Result]:
        forward, reverse = self.directions[direction]
        translated, reconstructed = forward.translate(
            images, return_reconstruction_with=reverse, batch_size=self.max_batch, max_side=self.max_side,
            device=self.device,
        )
        results = []
        for image, out, back in zip(images, translated, reconstructed):
            x = imaging.image_to_array(image, reverse.config["out_channels"])
            y = imaging.image_to_array(back, reverse.config["out_channels"])
            results.append(Result(out, back, float(np.abs(x - y).mean())))
        return results

