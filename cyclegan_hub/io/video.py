"""Video files, read and written as a stream through PyAV (the optional ``video`` extra): nothing here translates.

- ``check_video`` opens a file and refuses it (one ValueError line naming the problem) when it is not a video, or
  when its headers declare frames larger, more frames or a longer duration than the limits allow: all before a frame
  is decoded. It then decodes the first frame, for the display matrix (the rotation a player applies).
- ``VideoReader`` demuxes the file in order: the first video stream's frames, decoded one at a time (as RGB PIL
  images with their timestamps), and every audio stream's packets as they are stored, for a copy. The limits are
  checked again while decoding, in case the headers said less than the file holds.
- ``VideoWriter`` encodes frames into a new file (a path or a seekable binary file object, such as the temporary
  file of ``files.atomic_write``) with the source's frame rate, time base, timestamps, frame durations and display
  matrix, and copies the audio packets untouched (a remux, no re-encoding). The codec is H.264 where the installed
  FFmpeg can encode it (``pick_codec``). yuv420p needs even sides: a frame with an odd width or height is padded by
  one pixel on the right or bottom, a copy of the last column or row (nothing is cropped away).
- ``map_frames`` runs a function over a reader's frames a bounded batch at a time into a writer: memory does not
  grow with the length of the video.
"""

from __future__ import annotations

import functools
import math
import os
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO

from PIL import Image

#: File suffixes read as videos (and the container each is written as).
VIDEO_SUFFIXES = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
#: Videos are refused above these, from their headers before a frame is decoded (and again while decoding).
MAX_FRAME_SIDE = 8192
MAX_FRAMES = 100_000
MAX_SECONDS = 4 * 3600.0
#: The encoders tried, best first: H.264, then MPEG-4 part 2 (in every FFmpeg build); VP9, VP8, AV1 for WebM.
H264_ENCODERS = ("libx264", "libopenh264", "h264")
FALLBACK_ENCODERS = ("mpeg4",)
WEBM_ENCODERS = ("libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1")
#: Encoder options: near-transparent quality (a translated video is a product, not a preview).
ENCODER_OPTIONS = {"libx264": {"crf": "18", "preset": "medium"}, "libvpx-vp9": {"crf": "24", "b": "0"}}
EXTRA_HINT = "reading and writing videos needs PyAV: pip install 'cyclegan-hub[video]'"
#: The containers read (FFmpeg's demuxer names): video files, not the stills, text (``tty``) and exotic formats
#: that FFmpeg would also read as a video stream.
VIDEO_DEMUXERS = frozenset({"mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "ogg", "asf", "mxf"})
_STREAM_TAGS = ("language", "title", "rotate")  # rotate: FFmpeg before 5 read the rotation as this tag
_MUXER_TAGS = ("encoder", "major_brand", "minor_version", "compatible_brands")


def require_av():
    """The ``av`` module, or one ValueError line naming the extra to install."""
    try:
        import av
    except ImportError:
        raise ValueError(EXTRA_HINT) from None
    return av


def is_video_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def looks_like_video(path: str | os.PathLike) -> bool:
    """Whether the file's first bytes are those of a container ``VIDEO_SUFFIXES`` names (MP4/MOV: a ``ftyp``
    box; Matroska/WebM: the EBML magic; AVI: a RIFF AVI header): what an upload must pass before it is kept,
    without FFmpeg (``check_video`` reads the headers when it is used)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3" or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")


@dataclass(frozen=True)
class VideoInfo:
    """What a video's headers declare (``frames`` and ``seconds`` None where they say nothing), and the display
    matrix of its first frame (9 int32 in FFmpeg's layout, None when there is none) with its rotation in degrees
    counter-clockwise."""

    name: str
    container: str
    codec: str
    width: int
    height: int
    frames: int | None
    rate: Fraction | None
    time_base: Fraction
    seconds: float | None
    audio: tuple[str, ...]
    display_matrix: tuple[int, ...] | None = None
    rotation: float = 0.0
    #: the video stream's tags kept on the copy (language, title, the ``rotate`` tag of old FFmpeg builds) and
    #: the container's (title, creation_time, ...), less what the muxer writes for itself
    stream_tags: tuple[tuple[str, str], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    #: the first frame's colour tags as FFmpeg numbers them (0: unspecified): matrix, range, primaries, transfer;
    #: frames are decoded and encoded with the same matrix and range, and the copy carries the same tags
    color: tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass(frozen=True)
class Limits:
    max_frame_side: int = MAX_FRAME_SIDE
    max_frames: int = MAX_FRAMES
    max_seconds: float = MAX_SECONDS


def limits(
    max_frame_side: int | None = None, max_frames: int | None = None, max_seconds: float | None = None
) -> Limits:
    """The limits, each at its default where None."""
    return Limits(
        MAX_FRAME_SIDE if max_frame_side is None else max_frame_side,
        MAX_FRAMES if max_frames is None else max_frames,
        MAX_SECONDS if max_seconds is None else max_seconds,
    )


def _av_error(name: str, err: Exception) -> ValueError:
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return ValueError(f"{name}: {text}".splitlines()[0])


def _open_input(path: Path, name: str):
    """An input container for a regular file; ValueError for anything FFmpeg cannot read as a container."""
    av = require_av()
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such file") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{name} is a folder, not a video file")
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block FFmpeg's probe forever; a device never ends
        raise ValueError(f"{name} is not a regular file (a device, pipe or socket)")
    if info.st_size == 0:
        raise ValueError(f"{name} is an empty file")
    try:
        container = av.open(str(path), "r")
    except av.error.FFmpegError as err:
        raise ValueError(f"{name} is not a video file ({_av_error('FFmpeg', err)})") from None
    if not set(container.format.name.split(",")) & VIDEO_DEMUXERS:
        kind = container.format.long_name or container.format.name
        container.close()
        raise ValueError(f"{name} is not a video file (FFmpeg reads it as {kind})")
    return container


def _video_stream(container, name: str):
    streams = [s for s in container.streams.video if not int(getattr(s, "disposition", 0)) & 0x400]  # attached pictures
    if not streams:
        raise ValueError(f"{name} holds no video stream")
    return streams[0]


def _declared(container, stream) -> tuple[int | None, Fraction | None, float | None]:
    """(frames, rate, seconds) from the headers alone: frames estimated from the duration where not stored."""
    rate = stream.average_rate or stream.base_rate or None
    seconds = None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / 1_000_000  # AV_TIME_BASE
    frames = stream.frames or None
    if frames is None and seconds is not None and rate:
        frames = round(seconds * rate)
    return frames, rate, seconds


def _check_limits(name: str, width: int, height: int, frames, seconds, bounds: Limits) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f"{name} declares no frame size")
    if max(width, height) > bounds.max_frame_side:
        raise ValueError(f"{name} has frames of {width}x{height}, above the limit of {bounds.max_frame_side} px a side")
    if frames is not None and frames > bounds.max_frames:
        raise ValueError(f"{name} has {frames} frames, above the limit of {bounds.max_frames}")
    if seconds is not None and seconds > bounds.max_seconds:
        raise ValueError(f"{name} lasts {seconds:.0f} s, above the limit of {bounds.max_seconds:.0f} s")


def _matrix(frame) -> tuple[int, ...] | None:
    for data in frame.side_data:
        if str(getattr(data.type, "name", data.type)).upper().endswith("DISPLAYMATRIX"):
            raw = bytes(data)
            if len(raw) == 36:
                return struct.unpack("=9i", raw)
    return None


_COLOR_KEYS = ("colorspace", "color_range", "color_primaries", "color_trc")


def _color(frame) -> tuple[int, int, int, int]:
    return tuple(int(getattr(frame, key, 0) or 0) for key in _COLOR_KEYS)


def _rotation(matrix: tuple[int, ...]) -> float:
    """The counter-clockwise rotation a display matrix applies, in degrees (libavutil's av_display_rotation_get)."""
    scale_x, scale_y = math.hypot(matrix[0], matrix[3]), math.hypot(matrix[1], matrix[4])
    if not scale_x or not scale_y:
        return 0.0
    return round(-math.degrees(math.atan2(matrix[1] / scale_y, matrix[0] / scale_x)), 3) + 0.0  # never -0.0


def _color_options(color: tuple[int, int, int, int], side: str) -> dict:
    """``reformat`` options for a YUV matrix and range that are stated (not RGB or unspecified): ``side`` src or
    dst."""
    colorspace, color_range, _, _ = color
    options = {}
    if colorspace in (1, 4, 5, 6, 7, 9, 10):  # BT.709, FCC, BT.470BG, SMPTE 170M, SMPTE 240M, BT.2020
        options[f"{side}_colorspace"] = colorspace
    if color_range in (1, 2):  # limited (MPEG), full (JPEG)
        options[f"{side}_color_range"] = color_range
    return options


def _reformat(frame, color: tuple[int, int, int, int], side: str, **options):
    """``frame.reformat`` with the stated matrix and range, or with swscale's defaults where this PyAV names no
    such matrix (PyAV 12 knows BT.709 and BT.601 kin only)."""
    try:
        return frame.reformat(**options, **_color_options(color, side))
    except (KeyError, ValueError, TypeError):
        return frame.reformat(**options)


def _to_image(frame) -> Image.Image:
    """RGB, read with the frame's own matrix and range (a full-range source would otherwise come out washed out)."""
    return _reformat(frame, _color(frame), "src", format="rgb24").to_image()


def check_video(source: str | os.PathLike, bounds: Limits | None = None, *, name: str | None = None) -> VideoInfo:
    """What ``source`` declares, refused (ValueError, one line) when it is not a video or declares more than
    ``bounds``: checked from the container's headers before any frame is decoded. Then the first frame is decoded,
    for the display matrix and to refuse a video that holds no decodable frame."""
    av = require_av()
    bounds = bounds or Limits()
    path = Path(source)
    name = name or path.name
    container = _open_input(path, name)
    try:
        stream = _video_stream(container, name)
        context = stream.codec_context
        width, height = context.width, context.height
        frames, rate, seconds = _declared(container, stream)
        _check_limits(name, width, height, frames, seconds, bounds)
        audio = tuple(s.codec_context.name for s in container.streams.audio)
        stream.thread_type = "AUTO"
        try:
            first = next(iter(container.decode(stream)), None)
        except av.error.FFmpegError as err:
            raise _av_error(f"{name}: its first frame cannot be decoded", err) from None
        if first is None:
            raise ValueError(f"{name} holds no video frame")
        matrix = _matrix(first)
        return VideoInfo(
            name=name,
            container=container.format.name,
            codec=context.name,
            width=width,
            height=height,
            frames=frames,
            rate=rate,
            time_base=stream.time_base,
            seconds=seconds,
            audio=audio,
            display_matrix=matrix,
            rotation=_rotation(matrix) if matrix is not None else 0.0,
            stream_tags=tuple((k, v) for k, v in stream.metadata.items() if k in _STREAM_TAGS),
            tags=tuple((k, v) for k, v in container.metadata.items() if k not in _MUXER_TAGS),
            color=_color(first),
        )
    finally:
        container.close()


@dataclass
class Frame:
    """A decoded frame: the picture (RGB) and where it sits in time (``pts`` and ``duration`` in ``time_base``)."""

    image: Image.Image
    pts: int | None
    duration: int
    time_base: Fraction


class VideoReader:
    """A video opened for reading (a context manager): ``info`` (from ``check_video``), and ``items()``, the
    video frames (``Frame``) and audio packets (``av.Packet``, for ``VideoWriter.copy``) in file order."""

    def __init__(self, source: str | os.PathLike, bounds: Limits | None = None, *, name: str | None = None):
        self.path = Path(source)
        self.name = name or self.path.name
        self.bounds = bounds or Limits()
        self.info = check_video(self.path, self.bounds, name=self.name)
        self.container = _open_input(self.path, self.name)
        self.video = _video_stream(self.container, self.name)
        self.video.thread_type = "AUTO"
        self.audio = list(self.container.streams.audio)
        self.frames_read = 0

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def items(self) -> Iterator[Frame | object]:
        av = require_av()
        default_duration = self._default_duration()
        try:
            for packet in self.container.demux(self.video, *self.audio):
                if packet.stream.type == "audio":
                    if packet.dts is not None:  # the demuxer's empty flush packets are not data
                        yield packet
                    continue
                for frame in packet.decode():
                    yield self._frame(frame, default_duration)
        except av.error.FFmpegError as err:
            raise _av_error(f"{self.name}: frame {self.frames_read + 1} cannot be decoded", err) from None

    def frames(self) -> Iterator[Frame]:
        """The video frames alone."""
        return (item for item in self.items() if isinstance(item, Frame))

    def _default_duration(self) -> int:
        rate, base = self.info.rate, self.video.time_base
        return max(1, round(1 / (rate * base))) if rate and base else 1

    def _frame(self, frame, default_duration: int) -> Frame:
        self.frames_read += 1
        bounds = self.bounds
        if self.frames_read > bounds.max_frames:
            raise ValueError(f"{self.name} holds more than {bounds.max_frames} frames (the limit)")
        if max(frame.width, frame.height) > bounds.max_frame_side:
            raise ValueError(
                f"{self.name}: frame {self.frames_read} is {frame.width}x{frame.height}, "
                f"above the limit of {bounds.max_frame_side} px a side"
            )
        base = frame.time_base or self.video.time_base
        if frame.pts is not None and base and float(frame.pts * base) > bounds.max_seconds + 1:
            raise ValueError(f"{self.name} lasts more than {bounds.max_seconds:.0f} s (the limit)")
        duration = getattr(frame, "duration", None) or default_duration
        return Frame(_to_image(frame), frame.pts, duration, base)


@functools.cache
def _encoder_opens(name: str) -> str | None:
    """The encoder's own name when ``name`` resolves to one that opens here (a hardware wrapper without its
    hardware does not), else None."""
    av = require_av()
    try:
        context = av.CodecContext.create(name, "w")
        context.width, context.height, context.pix_fmt = 64, 64, "yuv420p"
        context.time_base = Fraction(1, 25)
        context.framerate = Fraction(25)
        context.open()
        return context.codec.name
    except Exception:  # not in this build, or it fails to open (av.error.FFmpegError and kin)
        return None


def pick_codec(container: str = "mp4") -> str:
    """The encoder a video goes out with: H.264 (libx264 first) where this FFmpeg encodes it, else MPEG-4 part 2;
    for WebM, VP9, VP8 or AV1."""
    candidates = WEBM_ENCODERS if container == "webm" else H264_ENCODERS + FALLBACK_ENCODERS
    for name in candidates:
        found = _encoder_opens(name)
        if found:
            return found
    raise ValueError(f"this FFmpeg has no encoder for .{container} video (tried {', '.join(candidates)})")


def is_h264(codec: str) -> bool:
    return "264" in codec


def container_for(target: str | os.PathLike) -> str:
    suffix = Path(target).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"{Path(target).name}: give a video file name ({', '.join(sorted(VIDEO_SUFFIXES))})")
    return VIDEO_SUFFIXES[suffix]


def even_size(width: int, height: int) -> tuple[int, int]:
    return width + width % 2, height + height % 2


def pad_to_even(image: Image.Image) -> Image.Image:
    """``image`` with one more column (row) copied from its last when its width (height) is odd."""
    width, height = even_size(*image.size)
    if (width, height) == image.size:
        return image
    padded = Image.new(image.mode, (width, height))
    padded.paste(image, (0, 0))
    if width != image.width:
        padded.paste(image.crop((image.width - 1, 0, image.width, image.height)), (image.width, 0))
    if height != image.height:
        padded.paste(padded.crop((0, image.height - 1, width, image.height)), (0, image.height))
    return padded


def _copy_stream(output, source):
    """An output stream with ``source``'s codec parameters, for its packets as they are."""
    if hasattr(output, "add_stream_from_template"):  # PyAV 13+
        return output.add_stream_from_template(source)
    return output.add_stream(template=source)  # PyAV 12


class VideoWriter:
    """A video being written (a context manager; ``close`` finishes the file, ``abort`` gives it up); ``name`` is
    how errors name it.

    The video stream takes ``info``'s size (made even), frame rate, time base and display matrix; ``audio`` (the
    reader's input audio streams) become copies, fed packet by packet with ``copy``. Everything is set up, and the
    header written, in the constructor: a codec the container cannot hold is refused before any frame is read."""

    def __init__(
        self,
        target: str | os.PathLike | IO[bytes],
        info: VideoInfo,
        *,
        container: str,
        audio=(),
        codec: str | None = None,
        name: str | None = None,
    ):
        av = require_av()
        self.info = info
        self.codec = codec or pick_codec(container)
        # how errors name the file: a temporary file object's name is its descriptor
        self.name = name or Path(str(target if isinstance(target, (str, os.PathLike)) else container)).name
        self.width, self.height = even_size(info.width, info.height)
        try:
            self.output = av.open(
                target if not isinstance(target, (str, os.PathLike)) else str(target), "w", format=container
            )
        except av.error.FFmpegError as err:
            raise _av_error(f"{self.name} cannot be written", err) from None
        try:
            self._setup(av, audio, container)
        except BaseException:
            self.output.close()
            raise
        self.frames_written = 0
        self._last_pts = None

    def _setup(self, av, audio, container: str) -> None:
        info = self.info
        # The codec's clock is the source's, so that timestamps carry over exactly; MPEG-4 part 2 cannot count
        # past 65535 ticks a second, so it gets the frame rate's clock and the timestamps are rescaled.
        # AVI counts frames, not time: its clock is the frame rate.
        base = info.time_base
        if (self.codec == "mpeg4" and base.denominator > 65535) or self.output.format.name == "avi":
            base = 1 / info.rate if info.rate else Fraction(1, 1000)
        self.time_base = base
        options = dict(ENCODER_OPTIONS.get(self.codec, {}))
        stream = self.output.add_stream(self.codec, rate=info.rate or None, options=options)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
        stream.time_base = base
        stream.codec_context.time_base = base
        for key, value in zip(_COLOR_KEYS, info.color):
            if value and hasattr(stream.codec_context, key):
                setattr(stream.codec_context, key, value)
        # PyAV 18 writes the display matrix itself, flips included; older PyAV cannot write one (``rotation_kept``)
        self.rotation_kept = info.display_matrix is None or hasattr(stream, "set_display_matrix")
        if info.display_matrix is not None and self.rotation_kept:
            stream.set_display_matrix(info.display_matrix)
        for key, value in info.stream_tags:
            stream.metadata[key] = value
        for key, value in info.tags:
            self.output.metadata[key] = value
        self.video = stream
        self.audio = {}
        for source in audio:
            try:
                self.audio[source.index] = _copy_stream(self.output, source)
            except (ValueError, av.error.FFmpegError) as err:
                raise ValueError(
                    f"{self.name}: a .{Path(self.name).suffix[1:] or container} file cannot hold the "
                    f"{source.codec_context.name} audio, which is copied untouched ({_av_error('FFmpeg', err)}); "
                    "write .mkv or .mp4"
                ) from None
        try:
            self.output.start_encoding()
        except av.error.FFmpegError as err:
            kinds = ", ".join([self.codec, *(s.codec_context.name for s in audio)])
            raise _av_error(f"{self.name}: a .{self.output.format.name} file cannot hold {kinds}", err) from None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def write(self, image: Image.Image, pts: int | None, duration: int, time_base: Fraction) -> None:
        """Encode one picture shown at ``pts`` for ``duration`` (both in ``time_base``; pts None: after the last)."""
        av = require_av()
        if image.size != (self.info.width, self.info.height):  # a frame whose size changed mid-stream
            image = image.resize((self.info.width, self.info.height), Image.Resampling.BICUBIC)
        frame = av.VideoFrame.from_image(pad_to_even(image.convert("RGB")))
        frame = _reformat(frame, self.info.color, "dst", format="yuv420p")
        if time_base != self.time_base:
            scale = Fraction(time_base) / self.time_base
            pts = None if pts is None else round(pts * scale)
            duration = max(1, round(duration * scale))
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = 0 if self._last_pts is None else self._last_pts + max(1, duration if pts is None else 1)
        frame.pts, frame.time_base = pts, self.time_base
        if hasattr(frame, "duration"):  # PyAV 14+: the encoder passes it on (the last frame's, the file's end)
            frame.duration = duration
        self._last_pts = pts
        self._mux(self.video.encode(frame))
        self.frames_written += 1

    def copy(self, packet) -> None:
        """Mux an input audio packet into its copy, bytes untouched."""
        target = self.audio.get(packet.stream.index)
        if target is None:
            return
        packet.stream = target
        self._mux([packet])

    def _mux(self, packets) -> None:
        av = require_av()
        try:
            self.output.mux(packets)
        except av.error.FFmpegError as err:
            raise _av_error(f"{self.name} cannot be written", err) from None

    def close(self) -> None:
        """Flush the encoder and write the trailer: the file is complete."""
        try:
            self._mux(self.video.encode(None))
        finally:
            self.output.close()

    def abort(self) -> None:
        try:
            self.output.close()
        except Exception:  # closing a half-written file may fail again; the caller removes it
            pass


def map_frames(
    reader: VideoReader,
    writer: VideoWriter,
    function: Callable[[list[Image.Image]], list[Image.Image]],
    batch_size: int,
    on_batch: Callable[[int], object] | None = None,
) -> int:
    """Decode ``reader``'s frames, apply ``function`` to ``batch_size`` of them at a time (a list of images in, as
    many out, in order), and encode the results with the source timestamps; audio packets are copied as they come.
    At most ``batch_size`` decoded frames are held at once. Returns the number of frames written."""
    batch: list[Frame] = []

    def flush() -> None:
        outputs = function([frame.image for frame in batch])
        if len(outputs) != len(batch):
            raise ValueError(f"the frame function returned {len(outputs)} images for {len(batch)} frames")
        for frame, image in zip(batch, outputs):
            writer.write(image, frame.pts, frame.duration, frame.time_base)
        if on_batch is not None:
            on_batch(len(batch))
        batch.clear()

    for item in reader.items():
        if isinstance(item, Frame):
            batch.append(item)
            if len(batch) >= batch_size:
                flush()
        else:
            writer.copy(item)
    if batch:
        flush()
    return writer.frames_written
