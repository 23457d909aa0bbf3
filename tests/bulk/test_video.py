"""Videos in, videos out: a clip synthesized here with PyAV (H.264 or MPEG-4, AAC audio, a 90-degree display
matrix where PyAV writes one) translated frame by frame with the timing, rotation and audio of the source kept,
written atomically, and refused in one line when it is not a video or is over a limit."""

import sys
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av")

from cyclegan_hub.bulk.video import translate_video
from cyclegan_hub.cli import main
from cyclegan_hub.io import video as video_io

FRAMES, WIDTH, HEIGHT, RATE = 12, 48, 32, 8
#: PyAV 18 writes display matrices (older PyAV reads them only): the clips are rotated where it does
MATRIX = hasattr(av.video.stream.VideoStream, "set_display_rotation")
ROTATION = 90 if MATRIX else 0


def encoder(*names):
    for name in names:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:
            continue
    return None


def picture(i: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A smooth gradient with a moving square: something a codec keeps well at any quality."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 20 * i)], axis=-1).astype(np.uint8)
    image[4:12, 2 + 3 * i : 10 + 3 * i] = 230
    return image


def make_clip(path, *, frames=FRAMES, width=WIDTH, height=HEIGHT, rate=RATE, audio=True, rotation=90, codec=None):
    """A clip with ``frames`` frames at ``rate`` fps, an AAC track (when this FFmpeg encodes AAC) and a display
    matrix of ``rotation`` degrees."""
    codec = codec or encoder("libx264", "mpeg4")
    container = av.open(str(path), "w")
    stream = container.add_stream(codec, rate=rate)
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv444p" if (width % 2 or height % 2) else "yuv420p"
    if rotation and MATRIX:
        stream.set_display_rotation(rotation)
    sound = None
    if audio and encoder("aac"):
        sound = container.add_stream("aac", rate=8000)
        sound.layout = "mono"
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(picture(i, width, height), format="rgb24")
        frame.pts = i
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
    if sound is not None:
        write_tone(container, sound, frames)
    container.close()
    return path


def write_tone(container, sound, chunks: int) -> None:
    """``chunks`` x 1024 samples of a tone rising from chunk to chunk into ``sound`` (mono, 8 kHz), flushed."""
    for i in range(chunks):
        samples = (0.3 * np.sin(np.arange(1024) * 0.05 * (i + 1))).astype(np.float32)[None]
        chunk = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 8000, i * 1024
        container.mux(sound.encode(chunk))
    container.mux(sound.encode())


def as_420(image) -> np.ndarray:
    """``image`` through yuv420p and back: what any H.264 or MPEG-4 video can hold of it before compression."""
    frame = av.VideoFrame.from_image(image).reformat(format="yuv420p")
    return frame.to_ndarray(format="rgb24").astype(np.float32)


def read(path):
    """What a player sees: video frames (image, pts, rotation), audio packets (bytes, pts), stream facts."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        facts = dict(
            rate=stream.average_rate,
            time_base=stream.time_base,
            duration=float(stream.duration * stream.time_base) if stream.duration else container.duration / 1e6,
            size=(stream.codec_context.width, stream.codec_context.height),
            codec=stream.codec_context.name,
        )
        frames = [(f.to_image(), f.pts, getattr(f, "rotation", 0)) for f in container.decode(stream)]
    audio = []
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = [(bytes(p), p.pts) for p in container.demux(audio=0) if p.dts is not None]
    return facts, frames, audio


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture
def model_dir(tiny_rgb, tmp_path):
    tiny_rgb.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_a_clip_keeps_its_frames_timing_rotation_and_audio(tiny_rgb, clip, tmp_path):
    out = tmp_path / "out.mp4"
    report = translate_video(tiny_rgb, clip, out, batch_size=5, progress=False)
    src_facts, src_frames, src_audio = read(clip)
    out_facts, out_frames, out_audio = read(out)

    assert report.frames == len(out_frames) == len(src_frames) == FRAMES
    assert out_facts["rate"] == src_facts["rate"] == RATE
    assert out_facts["time_base"] == src_facts["time_base"]
    assert abs(out_facts["duration"] - src_facts["duration"]) <= 1 / RATE
    assert [pts for _, pts, _ in out_frames] == [pts for _, pts, _ in src_frames]
    assert out_facts["size"] == src_facts["size"] == (WIDTH, HEIGHT)
    assert {rotation for _, _, rotation in out_frames} == {ROTATION} and report.rotation == ROTATION
    assert out_facts["codec"] == ("h264" if video_io.is_h264(report.codec) else report.codec)
    if encoder("aac"):
        assert src_audio and out_audio == src_audio  # every packet, byte for byte, at the same time
    # each frame is its own input's translation, up to codec loss: the untrained model's output is pixel noise,
    # which 4:2:0 chroma alone moves by ~14/255, so the reference is the translation through 4:2:0 and back
    expected = [as_420(tiny_rgb.translate(source)) for source, _, _ in src_frames]
    translated = [np.asarray(image, dtype=np.float32) for image, _, _ in out_frames]
    distances = np.array([[np.abs(e - t).mean() for t in translated] for e in expected])
    assert distances.diagonal().max() < 8, distances.diagonal()  # on the 0..255 scale
    assert (distances.argmin(axis=1) == np.arange(FRAMES)).all()


def test_frames_go_through_in_bounded_batches(clip, tmp_path):
    batches = []

    def identity(images):
        batches.append(len(images))
        return images

    with video_io.VideoReader(clip) as reader, open(tmp_path / "copy.mkv", "wb") as f:
        with video_io.VideoWriter(f, reader.info, container="matroska", audio=reader.audio) as writer:
            assert video_io.map_frames(reader, writer, identity, 5) == FRAMES
    assert batches == [5, 5, 2]
    _, frames, _ = read(tmp_path / "copy.mkv")
    assert len(frames) == FRAMES and frames[0][2] == ROTATION


def test_odd_sides_are_padded_by_one_pixel(tiny_rgb, tmp_path):
    # FFV1 (lossless, in every FFmpeg) holds odd sides, which H.264 and MPEG-4 in 4:2:0 cannot
    source = make_clip(tmp_path / "odd.mkv", frames=3, width=47, height=33, audio=False, rotation=0, codec="ffv1")
    report = translate_video(tiny_rgb, source, tmp_path / "odd.mp4", progress=False)
    assert report.size == (48, 34) and report.source_size == (47, 33)
    _, frames, _ = read(tmp_path / "odd.mp4")
    pixels = np.asarray(frames[0][0], dtype=np.float32)
    # the added column and row repeat their neighbours (up to codec loss)
    assert np.abs(pixels[:, -1] - pixels[:, -2]).mean() < 8 and np.abs(pixels[-1] - pixels[-2]).mean() < 8


def test_a_failure_mid_way_leaves_no_output_and_no_temporary_file(tiny_rgb, clip, tmp_path, monkeypatch):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the previous output")
    written = []
    original = video_io.VideoWriter.write

    def failing(self, *args, **kwargs):
        if len(written) == 7:
            raise RuntimeError("the encoder broke")
        written.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(video_io.VideoWriter, "write", failing)
    with pytest.raises(RuntimeError, match="the encoder broke"):
        translate_video(tiny_rgb, clip, out, batch_size=4, progress=False)
    assert len(written) == 7
    assert out.read_bytes() == b"the previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_the_command_translates_a_video(model_dir, clip, tmp_path, capsys):
    out = tmp_path / "out.mov"
    assert main(["translate", "--model", str(model_dir), str(clip), "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"{FRAMES} frames" in captured.out and ("rotation 90 deg kept" in captured.out or not MATRIX)
    assert f"{FRAMES}/{FRAMES}" in captured.err  # the progress bar: frames done of the declared count, time left
    facts, frames, _ = read(out)
    assert len(frames) == FRAMES and facts["rate"] == RATE


def truncated(path):
    """A clip cut in half (its index, at the end, lost)."""
    data = make_clip(path.with_name("whole.mp4")).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def audio_only(path):
    container = av.open(str(path), "w")
    sound = container.add_stream("aac" if encoder("aac") else "mp2", rate=8000)
    sound.layout = "mono"
    for i in range(4):
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 8000, i * 1024
        container.mux(sound.encode(chunk))
    container.mux(sound.encode())
    container.close()


def no_frames(path):
    """A video stream declared, and not one frame in it."""
    container = av.open(str(path), "w", format="matroska")
    stream = container.add_stream(encoder("libx264", "mpeg4"), rate=8)
    stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    container.start_encoding()  # the header is written; no packet follows
    container.close()


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (truncated, [], "in.mp4 is not a video file (FFmpeg: "),
        (audio_only, [], "in.mp4 holds no video stream"),
        (no_frames, [], "in.mp4 is not a video file (FFmpeg: End of file)"),
        (lambda p: p.write_text("hello " * 200), [], "is not a video file"),
        (lambda p: Image.new("RGB", (8, 8)).save(p, format="PNG"), [], "is not a video file"),
        (lambda p: p.write_bytes(b""), [], "is an empty file"),
        (lambda p: make_clip(p), ["--max-frames", "5"], "has 12 frames, above the limit of 5"),
        (lambda p: make_clip(p), ["--max-frame-side", "40"], "frames of 48x32, above the limit of 40 px a side"),
        (lambda p: make_clip(p), ["--max-seconds", "1"], "lasts 2 s, above the limit of 1 s"),
    ],
    ids=["truncated", "audio-only", "no-frames", "text", "png", "empty", "frames", "side", "seconds"],
)
def test_the_command_refuses_in_one_line(model_dir, tmp_path, capsys, make, extra, message):
    source = tmp_path / "in.mp4"
    make(source)
    out = tmp_path / "out.mp4"
    assert main(["translate", "--model", str(model_dir), str(source), "--output", str(out), *extra]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_a_variable_frame_rate_keeps_every_frame_at_its_time(tiny_rgb, tmp_path):
    """Frames 33 ms to 300 ms apart: each comes out at its own time (none dropped, duplicated or evened out)."""
    times = [0, 33, 100, 133, 400, 700]
    container = av.open(str(tmp_path / "vfr.mkv"), "w")
    stream = container.add_stream(encoder("libx264", "mpeg4"), rate=30)
    stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    stream.time_base = Fraction(1, 1000)
    for i, t in enumerate(times):
        frame = av.VideoFrame.from_ndarray(picture(i, 32, 32), format="rgb24")
        frame.pts, frame.time_base = t, stream.time_base
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
    container.close()
    report = translate_video(tiny_rgb, tmp_path / "vfr.mkv", tmp_path / "out.mkv", progress=False)
    _, frames, _ = read(tmp_path / "out.mkv")
    with av.open(str(tmp_path / "out.mkv")) as c:
        base = c.streams.video[0].time_base
    assert report.frames == len(times) and [round(pts * base * 1000) for _, pts, _ in frames] == times


def test_limits_are_read_from_the_headers_before_decoding(clip, monkeypatch):
    decoded = []  # every decoded frame passes through one of these two
    for name in ("_matrix", "_to_image"):
        monkeypatch.setattr(
            video_io, name, lambda frame, seen=getattr(video_io, name): decoded.append(1) or seen(frame)
        )
    with pytest.raises(ValueError, match="above the limit of 5$"):
        video_io.VideoReader(clip, video_io.limits(max_frames=5))
    assert decoded == []
    info = video_io.check_video(clip)
    assert decoded == [1]  # the first frame alone, for the display matrix
    assert (info.width, info.height, info.frames, info.rate, info.rotation) == (WIDTH, HEIGHT, FRAMES, RATE, ROTATION)


def test_without_h264_the_codec_is_mpeg4_and_said_in_one_line(tiny_rgb, clip, tmp_path, monkeypatch, capsys):
    opens = video_io._encoder_opens
    monkeypatch.setattr(
        video_io, "_encoder_opens", lambda name: None if name in video_io.H264_ENCODERS else opens(name)
    )
    report = translate_video(tiny_rgb, clip, tmp_path / "out.mp4", progress=False)
    assert report.codec == "mpeg4"
    assert capsys.readouterr().err == "cyclegan-hub: this FFmpeg has no H.264 encoder; out.mp4 is encoded with mpeg4\n"
    facts, frames, _ = read(tmp_path / "out.mp4")
    assert facts["codec"] == "mpeg4" and len(frames) == FRAMES and frames[0][2] == ROTATION


@pytest.mark.skipif(not encoder("aac"), reason="this FFmpeg encodes no AAC")
def test_audio_a_container_cannot_hold_is_refused_before_translating(model_dir, clip, tmp_path, capsys):
    out = tmp_path / "out.webm"  # WebM holds Vorbis and Opus only; the AAC track is copied, never re-encoded
    assert main(["translate", "--model", str(model_dir), str(clip), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot hold the aac audio" in err, err
    assert list(tmp_path.glob("*out.webm*")) == []


def test_the_output_must_be_a_video_file_and_pyav_is_named_when_missing(model_dir, clip, tmp_path, capsys, monkeypatch):
    assert main(["translate", "--model", str(model_dir), str(clip), "--output", str(tmp_path / "out.png")]) == 1
    assert "the output of a video is a video file" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "av", None)
    assert main(["translate", "--model", str(model_dir), str(clip), "--output", str(tmp_path / "out.mp4")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'cyclegan-hub[video]'" in err
