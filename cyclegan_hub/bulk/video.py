"""A whole video translated: frames decoded, translated a batch at a time by the one translation path, encoded as
a stream, the audio copied untouched; memory stays the same for a clip of a second or of an hour.

Kept from the source: the frame count, frame rate, time base, every frame's timestamp and duration (so the
duration), the display matrix (the rotation a player applies; frames are translated as stored, not turned; PyAV
18 or later writes it, an older PyAV cannot and says so in one line), the colour matrix, range and tags, the video
stream's language and title, the container's tags, and every audio stream, packet for packet (a remux). The
video is encoded with H.264 (libx264 at CRF 18) where the installed FFmpeg can, else MPEG-4 part 2 (said in one
line); a .webm output gets VP9. A source with an odd width or height comes out one pixel wider or taller: yuv420p
needs even sides, and the translated frame is padded with a copy of its last column or row (nothing is cropped).
Subtitle and data streams, and video streams after the first, are left out.

The file is written beside ``output`` under a hidden temporary name and renamed when complete: an interrupted or
failed run leaves no half video. The source is refused before a frame is decoded when it is not a video or its
headers declare frames, a frame count or a duration above the limits.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import tiles, translation
from ..io import video as video_io
from ..io.files import atomic_write


def _progress_bar(info: video_io.VideoInfo):
    """A bar counting frames, with the time left where the headers declare the frame count; none without tqdm."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=info.frames, unit="frames", desc=info.name, dynamic_ncols=True)


@dataclass
class VideoReport:
    """What a video translation did."""

    source: str
    output: str
    frames: int
    seconds: float
    codec: str
    size: tuple[int, int]
    source_size: tuple[int, int]
    audio: tuple[str, ...]
    rotation: float
    rotation_kept: bool = True

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        size = f"{self.size[0]}x{self.size[1]}"
        if self.size != self.source_size:
            size += f" (padded from {self.source_size[0]}x{self.source_size[1]})"
        parts = [f"{self.frames} frames", size, self.codec]
        if self.rotation:
            parts.append(f"rotation {self.rotation:g} deg " + ("kept" if self.rotation_kept else "LOST"))
        parts.append(f"audio copied ({', '.join(self.audio)})" if self.audio else "no audio")
        parts.append(f"{self.seconds:.1f} s, {self.frames_per_second:.1f} frames/s")
        return ", ".join(parts)


def translate_video(
    model,
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    batch_size: int | None = None,
    precision: str = "auto",
    max_side: int | None = None,
    resize_to: int | tuple[int, int] | None = None,
    device=None,
    progress: bool = True,
    max_frame_side: int | None = None,
    max_frames: int | None = None,
    max_seconds: float | None = None,
    codec: str | None = None,
    smooth: float = 0.0,
    on_frames: Callable[[int, int | None], object] | None = None,
) -> VideoReport:
    """Translate every frame of the video ``source`` with ``model`` into the video file ``output``.

    Args:
        model: a generator (any family) or an ONNX session, as ``translation.translate`` takes.
        output: a .mp4, .m4v, .mov, .mkv, .webm or .avi file name; written atomically.
        batch_size: frames per forward pass and the most frames held at once (default: the model's batch).
        precision, max_side, resize_to, device: as ``translation.translate`` (max_side None: its default).
        progress: a progress bar (frames, time left) on stderr.
        max_frame_side, max_frames, max_seconds: the source is refused (ValueError) when its headers declare more
            (defaults: ``io.video.MAX_FRAME_SIDE``, ``MAX_FRAMES``, ``MAX_SECONDS``); checked again while decoding.
        codec: an FFmpeg encoder name instead of the automatic choice.
        smooth: carry the norm statistics from frame to frame with this momentum (``tiles.SmoothedStatistics``:
            0, the default, normalises each frame by its own; 0.9 steadies a still scene's shimmer). Frames are then
            translated whole, resized down to 1024 pixels a side where larger (tiles take a thumbnail's statistics).
        on_frames: called after every batch with (frames written, frames the headers declare or None): a
            progress display of one's own (the Space's).

    Raises:
        ValueError: one line naming the problem (not a video, over a limit, PyAV missing, a container that cannot
            hold the audio); the output is then left as it was.
    """
    video_io.require_av()
    source, output = Path(source), Path(output)
    container = video_io.container_for(output)
    if output.exists() and source.exists() and output.resolve() == source.resolve():
        raise ValueError(f"{output} is the input: choose another output (inputs are never overwritten)")
    bounds = video_io.limits(max_frame_side, max_frames, max_seconds)
    batch_size = batch_size or model.translation_spec.batch_size
    options = dict(batch_size=batch_size, precision=precision, resize_to=resize_to, device=device)
    if max_side is not None:  # else the translation path's own default
        options["max_side"] = max_side
    elif smooth:  # carried statistics are a whole frame's: frames above 1024 px are resized down, not tiled
        options["max_side"] = 1024
    chosen, codec = codec is None, codec or video_io.pick_codec(container)
    started = time.perf_counter()
    state: dict = {}
    with video_io.VideoReader(source, bounds) as reader:
        info = reader.info

        smoothing = tiles.SmoothedStatistics(model, smooth) if smooth else None

        def translate(images):
            if smoothing is None:
                return translation.translate(model, images, **options)
            with smoothing:
                return translation.translate(model, images, **options)

        def write(f) -> None:
            with video_io.VideoWriter(
                f, info, container=container, audio=reader.audio, codec=codec, name=output.name
            ) as writer:
                if chosen and not video_io.is_h264(codec) and container != "webm":
                    say = f"cyclegan-hub: this FFmpeg has no H.264 encoder; {output.name} is encoded with {codec}"
                    print(say, file=sys.stderr)
                if not writer.rotation_kept:
                    say = (
                        f"cyclegan-hub: this PyAV cannot write a display matrix; {output.name} loses the "
                        f"{info.rotation:g} deg rotation (pip install -U 'av>=18')"
                    )
                    print(say, file=sys.stderr)
                bar = _progress_bar(info) if progress else None  # once the output is set up: nothing is refused later
                try:
                    done = [0]

                    def on_batch(count: int) -> None:
                        done[0] += count
                        if bar is not None:
                            bar.update(count)
                        if on_frames is not None:
                            on_frames(done[0], info.frames)

                    video_io.map_frames(reader, writer, translate, batch_size, on_batch)
                finally:
                    if bar is not None:
                        bar.close()
                state.update(frames=writer.frames_written, size=(writer.width, writer.height))
                state["rotation_kept"] = writer.rotation_kept

        atomic_write(output, write)
    return VideoReport(
        source=str(source),
        output=str(output),
        frames=state["frames"],
        seconds=time.perf_counter() - started,
        codec=codec,
        size=state["size"],
        source_size=(info.width, info.height),
        audio=info.audio,
        rotation=info.rotation,
        rotation_kept=state["rotation_kept"],
    )
