"""Serving pairs: both directions of each pair, the round trip, request batching, and bounded memory.

``PairTranslator`` holds a forward and a reverse generator and names the two directions after the domains
("6 -> 9", "9 -> 6"); a one-way model (pix2pix, CUT: no reverse) is served by the same class as one direction
("edges -> shoe") without a round trip. Concurrent ``translate`` calls are gathered into batches by the pair's own
worker thread (up to ``max_batch`` requests, waiting at most ``max_wait_ms`` for company), so that 16 clients cost a
few forward passes rather than 16, one forward pass of a pair runs at a time, and a slow photo pair never queues the
digit pair.

Every input is bounded before it is decoded (``ServingLimits``: bytes, pixels) and shrunk to ``max_side`` right after
(photos: up to 1024 pixels a side by default), so a request's memory does not depend on what it sends.
``load_pairs`` turns pair names (a folder, a run folder, a Hub repo id, with the reverse named or found by the twin
naming convention) into translators; a model whose class is one way, or whose reverse is not found, is served one
way (and a line says so).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import translation
from ..bulk.video import translate_video
from ..hub.repos import RUN_GENERATORS, MissingModel, check_pair, load_generator, twin_repo_id
from ..io import imaging
from ..io import video as video_io
from ..models.cyclegan import CycleGenerator

LOG = logging.getLogger("cyclegan_hub.serving")


@dataclass(frozen=True)
class ServingLimits:
    """What one request may cost. Defaults: a 16 GB, 2-vCPU Space answering 16 requests at once: inputs of at most
    24 MP (96 MB as RGBA), two decoded at a time and shrunk to ``photo_side`` at once (16 concurrent worst-case
    uploads measured under 0.7 GB above the idle app), one photo translated at a time per pair."""

    max_bytes: int = 20 * 2**20  # an upload larger than this is refused before it is read (the app sets the same)
    max_pixels: int = 24_000_000  # checked from the image header, before decoding
    photo_side: int = 1024  # photos are translated at up to this many pixels on the longer side
    decoding: int = 2  # large inputs decoded at once, across all pairs (each briefly holds up to ~200 MB)
    temp_bytes: int = 2 * 2**30  # the Space's temporary files (uploads, outputs) in all
    temp_age: float = 3600.0  # seconds a temporary file is kept at most
    # A video (the Video tab): refused from its headers above these, before a frame is decoded, and checked again
    # frame by frame while decoding; its frames translated at up to ``video_side`` pixels a side, one video at a
    # time per app (a 10 s clip at 24 frames/s: about a minute on 2 CPUs).
    video_seconds: float = 10.0
    video_frames: int = 300
    video_frame_side: int = 1920  # the largest frame accepted (declared and decoded)
    video_side: int = 256


#: Images up to this many pixels are decoded without waiting for a decoding slot: they hold little memory, and a
#: visitor's digit does not wait behind another client's 24 MP photo.
SMALL_IMAGE = 1_000_000

#: Seconds of CPU to decode one pixel (PNG or JPEG; measured in benchmarks/space_load.py): a job's cost counts its
#: decode by the pixels its header declares, whatever its size in bytes.
DECODE_SECONDS_PER_PIXEL = 25e-9

#: Seconds of CPU every request costs the server whatever its image: the queue, the event stream, two PNGs encoded
#: and written (measured in benchmarks/space_load.py: a flood of digit jobs).
JOB_SECONDS = 0.05


@dataclass
class Result:
    translated: Image.Image
    reconstructed: Image.Image | None  # None for a one-way model: there is no reverse to go back with
    cycle_error: float | None  # mean |F(G(x)) - x| on a 0-1 pixel scale; None for a one-way model
    size: tuple[int, int]  # (width, height) the network ran at
    seconds: float


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


def _return_memory() -> None:
    """Give the pages of a large decoded image back to the system (glibc keeps freed memory in per-thread arenas,
    so 16 server threads would each keep their largest image's worth)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


#: One video translated at a time in the process: its frames run beside the pairs' image batches.
_VIDEO = threading.Lock()

_DECODING: dict[int, threading.BoundedSemaphore] = {}
_DECODING_LOCK = threading.Lock()


def _decoding(slots: int) -> threading.BoundedSemaphore:
    """One semaphore per limit, shared by every translator of the process: at most ``slots`` full-size decodes."""
    with _DECODING_LOCK:
        return _DECODING.setdefault(slots, threading.BoundedSemaphore(slots))


def is_one_way(generator: CycleGenerator) -> bool:
    """Whether ``generator``'s family translates one way only (``one_way = True`` on its class: pix2pix)."""
    return bool(getattr(generator, "one_way", False))


class PairTranslator:
    """Both directions of a CycleGAN pair behind one thread-safe, batching ``translate(image, direction)``; or, with
    no ``reverse``, a one-way model's single direction (``one_way``), with no round trip."""

    def __init__(
        self,
        forward: CycleGenerator,
        reverse: CycleGenerator | None = None,
        *,
        name: str | None = None,
        max_batch: int | None = None,
        max_wait_ms: float = 5.0,
        limits: ServingLimits = ServingLimits(),
        device: str | None = None,
    ):
        a, b = forward.config["source_domain"], forward.config["target_domain"]
        self.one_way = reverse is None
        if self.one_way:
            self.name = name or f"{a} -> {b}"
            self.directions = {f"{a} -> {b}": (forward, None)}
        else:
            check_pair(forward, reverse)
            self.name = name or f"{a} ↔ {b}"
            self.directions = {f"{a} -> {b}": (forward, reverse), f"{b} -> {a}": (reverse, forward)}
        self.digits = is_small_digit_model(forward)
        # Digits batch well (a forward pass of 16 costs little more than one); photos go one at a time, which
        # bounds the activations (a ResNet-9 at 1024 px holds ~1 GB) whatever the number of waiting requests.
        self.max_batch = max_batch or (16 if self.digits else 1)
        self.max_wait, self.limits, self.device = max_wait_ms / 1000, limits, device
        self.heavy = any(g.translation_spec.heavy for g in (forward, reverse) if g is not None)
        self._timing = self._calibrate() if self._on_cpu() else None
        self._requests: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._serve, name=f"cyclegan-{a}-{b}", daemon=True)
        self._worker.start()

    def _on_cpu(self) -> bool:
        weights = next(self.directions[next(iter(self.directions))][0].parameters(), None)
        where = torch.device(self.device) if self.device else (weights.device if weights is not None else None)
        return where is None or where.type == "cpu"

    @torch.inference_mode()
    def _calibrate(self) -> tuple[float, float]:
        """Seconds of one round trip (both networks; a one-way model: its one) at 64x64 and at 128x128 on this machine
        (a digit pair: at its size, twice): what ``estimate`` extrapolates from. Measured once, when the pair is
        loaded."""
        forward, reverse = self.directions[next(iter(self.directions))]
        timings = []
        sides = (forward.config["image_size"],) * 2 if self.digits else (64, 128)
        for side in sides:
            x = torch.zeros(1, forward.translation_spec.in_channels, side, side)
            start = time.perf_counter()
            y = translation.run(forward, x)
            if reverse is not None:
                translation.run(reverse, y)
            timings.append(max(time.perf_counter() - start, 1e-6))
        return timings[0], timings[1]

    def estimate(self, size: tuple[int, int]) -> float | None:
        """Seconds a translation of an image of ``size`` (width, height) will take on this CPU (None off the CPU):
        the 128 px timing scaled by pixels, with the exponent measured between 64 and 128 px (attention makes it
        more than linear); a digit pair runs at its own size whatever the input's."""
        if self._timing is None:
            return None
        small, large = self._timing
        if self.digits:
            return small
        height, width = imaging.fit_within((size[1], size[0]), self.limits.photo_side)
        exponent = min(2.0, max(1.0, np.log(large / small) / np.log(4.0)))
        return large * (width * height / 128**2) ** exponent

    def cost(self, size: tuple[int, int] | None) -> float:
        """What a request for an image of ``size`` (width, height; None: unknown) will cost in seconds of CPU: the
        request itself, its decode by the pixels its header declares, and the network (``estimate``)."""
        if size is None:
            return JOB_SECONDS
        return JOB_SECONDS + size[0] * size[1] * DECODE_SECONDS_PER_PIXEL + (self.estimate(size) or 0.0)

    def video_limits(self) -> video_io.Limits:
        return video_io.Limits(self.limits.video_frame_side, self.limits.video_frames, self.limits.video_seconds)

    def check_video(self, source, direction: str) -> video_io.VideoInfo:
        """What the video at ``source`` declares, refused (ValueError, one line) before any frame is decoded when it
        is larger than ``max_bytes``, not a video, or over the video limits; or when ``direction`` is a heavy
        model's (a one-step diffusion pair takes seconds a frame on a CPU: images only)."""
        if direction not in self.directions:
            raise ValueError(f"unknown direction {direction!r}; valid: {', '.join(map(repr, self.directions))}")
        if self.heavy:
            raise ValueError(f"{self.name} is a one-step diffusion pair: it translates images here, not videos")
        if not source:
            raise ValueError("no video: upload one first")
        name = os.path.basename(source)
        size = os.path.getsize(source) if os.path.isfile(source) else 0
        if size > self.limits.max_bytes:
            raise ValueError(f"{name} is larger than {self.limits.max_bytes // 2**20} MB")
        return video_io.check_video(source, self.video_limits(), name=name)

    def video_side(self, direction: str) -> int:
        """The side a video's frames are translated at, at most: a digit pair's own size (its images are framed
        like MNIST at that size), else ``video_side``."""
        forward = self.directions[direction][0]
        return forward.config["image_size"] if self.digits else self.limits.video_side

    def video_cost(self, info: video_io.VideoInfo) -> float:
        """Seconds of CPU a video will cost, from its headers (a video that declares no length: the most frames it
        may have): every frame decoded and translated at ``video_side``."""
        frames = info.frames or self.limits.video_frames
        height, width = imaging.fit_within((info.height, info.width), self.limits.video_side)
        per_frame = info.width * info.height * DECODE_SECONDS_PER_PIXEL + (self.estimate((width, height)) or 0.0)
        return JOB_SECONDS + frames * per_frame

    def translate_video(self, source, direction: str, output: str | os.PathLike, on_frames=None):
        """Translate the video at ``source`` into ``output`` (``bulk.video.translate_video``: frames, timing and
        audio kept, written whole or not at all), frames at up to ``video_side(direction)`` pixels a side, one video
        at a time in this process. ``on_frames(done, total)`` after each batch. Returns its ``VideoReport``."""
        self.check_video(source, direction)
        forward = self.directions[direction][0]
        with _VIDEO:
            return translate_video(
                forward,
                source,
                output,
                max_side=self.video_side(direction),
                progress=False,
                max_frame_side=self.limits.video_frame_side,
                max_frames=self.limits.video_frames,
                max_seconds=self.limits.video_seconds,
                device=self.device,
                on_frames=on_frames,
            )

    def rename_directions(self, labels: dict[str, str]) -> None:
        """Show directions under other labels (``load_pairs`` does so when two pairs share domain names)."""
        self.directions = {labels.get(k, k): v for k, v in self.directions.items()}

    def prepare(self, source, direction: str) -> Image.Image:
        """Decode and check one input (ValueError naming the problem), bounded and framed for ``direction``."""
        if direction not in self.directions:
            raise ValueError(f"unknown direction {direction!r}; valid: {', '.join(map(repr, self.directions))}")
        if source is None:
            raise ValueError("no image: upload, paste, photograph or draw one first")
        with self._decode_slot(source):
            try:
                image = imaging.open_image(
                    source,
                    max_pixels=self.limits.max_pixels,
                    max_bytes=self.limits.max_bytes,
                    formats=imaging.WEB_FORMATS,
                )
            except BaseException:
                _return_memory()  # every refusal gives back what its partial decode took
                raise
            full_size = image.width * image.height
            image = imaging.shrink_image(image, self.limits.photo_side)  # from here on, bounded by the side
        if full_size > 4_000_000:  # only a large photo leaves pages worth trimming: digits skip it
            _return_memory()
        if self.digits:
            return frame_like_mnist(image, self.directions[direction][0].config["image_size"])
        return image

    def _decode_slot(self, source):
        """A decoding slot for a large image (or one whose size cannot be read here); nothing for a small one."""
        if isinstance(source, (str, os.PathLike)):
            try:
                _, (width, height) = imaging.read_header(source, imaging.WEB_FORMATS)
                if width * height <= SMALL_IMAGE:
                    return contextlib.nullcontext()
            except (ValueError, OSError):  # the decode itself names the problem
                pass
        return _decoding(self.limits.decoding)

    def translate(self, source, direction: str, timeout: float = 300.0, *, direct: bool = False) -> Result:
        """Translate ``source`` in ``direction`` (ValueError naming a problem with the input). ``direct`` runs it
        in the calling thread instead of the pair's batching worker (inside ``spaces.GPU``, which must hold the
        call that uses the GPU)."""
        image = self.prepare(source, direction)
        if direct:
            return self._run([image], direction)[0]
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
        start = time.perf_counter()
        outputs = translation.translate(
            forward,
            images,
            return_reconstruction_with=reverse,
            batch_size=self.max_batch,
            max_side=self.limits.photo_side,
            device=self.device,
        )
        seconds = (time.perf_counter() - start) / len(images)
        if reverse is None:  # one way: the translation only
            return [Result(out, None, None, image.size, seconds) for image, out in zip(images, outputs)]
        translated, reconstructed = outputs
        results = []
        for image, out, back in zip(images, translated, reconstructed):
            x = imaging.image_to_array(image, reverse.config["out_channels"])
            y = imaging.image_to_array(back, reverse.config["out_channels"])
            results.append(Result(out, back, float(np.abs(x - y).mean()), image.size, seconds))
        return results


def resolve_pair(spec: str) -> tuple[str, str]:
    """A pair name -> (forward, reverse): ``FORWARD,REVERSE``; a run folder (generator_AtoB/, generator_BtoA/: the
    second may be missing, a one-way run); or one generator (folder or Hub repo id) whose reverse has the twin name
    (``mnist-6to9`` -> ``mnist-9to6``). The reverse is a name only: whether it exists is for the loader to find."""
    forward, sep, reverse = (part.strip() for part in spec.partition(","))
    if sep:
        if not forward or not reverse:
            raise ValueError(f"pair {spec!r}: write FORWARD,REVERSE")
        return forward, reverse
    folder = Path(forward)
    if (folder / RUN_GENERATORS[0]).is_dir():
        return str(folder / RUN_GENERATORS[0]), str(folder / RUN_GENERATORS[1])
    if folder.is_dir():
        return forward, str(folder.with_name(twin_repo_id(folder.name)))
    return forward, twin_repo_id(forward)


def _load(repo: str, spec: str, failure: str, load: dict) -> CycleGenerator:
    try:
        return load_generator(repo, **load)
    except ValueError as err:
        raise ValueError(f"{failure.format(spec=spec, repo=repo)}: {err}") from None


def load_pair(spec: str, failure: str = "pair {spec}", **load) -> tuple[tuple[str, str], list[CycleGenerator]]:
    """The two generators a pair name resolves to, loaded (``load``: ``load_generator``'s keywords) and checked to be
    the two directions of one pair: ((forward name, reverse name), [forward, reverse]). A model that cannot be
    loaded is a ValueError prefixed by ``failure`` (formatted with ``spec`` and ``repo``)."""
    names = resolve_pair(spec)
    models = [_load(repo, spec, failure, load) for repo in names]
    check_pair(*models, names=names)
    return names, models


def load_served(spec: str, failure: str = "pair {spec}", **load) -> tuple[tuple[str, ...], list[CycleGenerator]]:
    """What ``spec`` serves: a pair, as ``load_pair`` loads it; or one model served one way, ((name,), [model]),
    when the spec names one model (not ``FORWARD,REVERSE``) and its class is one way (pix2pix: no reverse is looked
    for) or its reverse is not there (no twin folder, a run folder with generator_AtoB/ only, no twin repo on the
    Hub, or none in the cache while the Hub cannot be reached). A line on the ``cyclegan_hub.serving`` log says it
    is served one way, and why. A reverse that is there but cannot be loaded, or is not the other direction, is a
    ValueError as for ``load_pair``."""
    if "," in spec:
        return load_pair(spec, failure, **load)
    names = resolve_pair(spec)
    forward = _load(names[0], spec, failure, load)
    why = None
    if is_one_way(forward):
        why = f"a {forward.config.get('model_type', type(forward).__name__)} model translates one way"
    elif os.path.isdir(names[0]) and not os.path.isdir(names[1]):  # a folder: its twin is a folder, or nothing
        why = f"no reverse found: {names[1]} is not a folder"
    else:
        try:
            reverse = load_generator(names[1], **load)
        except MissingModel as err:
            why = f"no reverse found: {err}"
        except ValueError as err:
            raise ValueError(f"{failure.format(spec=spec, repo=names[1])}: {err}") from None
    if why is not None:
        a, b = forward.config["source_domain"], forward.config["target_domain"]
        LOG.warning("%s: served one way (%s -> %s, no round trip): %s", spec, a, b, why)
        return names[:1], [forward]
    check_pair(forward, reverse, names=names)
    return names, [forward, reverse]


def load_pairs(
    specs: list[str], *, limits: ServingLimits = ServingLimits(), device: str | None = None
) -> list[PairTranslator]:
    """Load every pair once (``load_served``: a one-way model as one direction; ValueError naming the pair that
    cannot be served). Direction labels stay unique across pairs: two pairs with the same domains get their model
    names added."""
    pairs = []
    for spec in specs:
        _, models = load_served(spec, device=device or "cpu")
        pairs.append(PairTranslator(*models, limits=limits, device=device))
    seen: dict[str, int] = {}
    for pair in pairs:
        for label in pair.directions:
            seen[label] = seen.get(label, 0) + 1
    for pair, spec in zip(pairs, specs):
        if any(seen[label] > 1 for label in pair.directions):
            short = os.path.basename(spec.split(",")[0].rstrip("/")) or spec
            pair.rename_directions({label: f"{label} ({short})" for label in pair.directions})
            pair.name = f"{pair.name} ({short})"
    return pairs
