"""The Space's Video tab: a short clip translated through the real server (gradio_client and Chromium), with its
frames, timing and sound kept; a clip over the limits, or a file that is not a video, refused in one line before
a frame is decoded."""

import io

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file

from cyclegan_hub.hub.repos import load_generator
from tests.bulk.test_video import as_420, encoder, read, write_tone
from tests.space.conftest import CHROMIUM_FLAGS, ROOT
from tests.space.test_app import EXAMPLES, _browser, open_page, read_digit, visitor

pytestmark = pytest.mark.slow
SIDE, FRAMES, RATE = 56, 10, 5


def digit_clip(path, frames: int = FRAMES, rate: int = RATE, audio: bool = True):
    """A 6 from the examples, twice its size, sliding right a pixel a frame; a sine tone when AAC is there."""
    six = np.asarray(Image.open(EXAMPLES / "6-test0.png").convert("L").resize((SIDE - 8, SIDE - 8)))
    container = av.open(str(path), "w")
    stream = container.add_stream(encoder("libx264", "mpeg4"), rate=rate)
    stream.width = stream.height = SIDE
    stream.pix_fmt = "yuv420p"
    sound = container.add_stream("aac", rate=8000) if audio and encoder("aac") else None
    if sound is not None:
        sound.layout = "mono"
    for i in range(frames):
        canvas = np.zeros((SIDE, SIDE), np.uint8)
        shift = i // 2 % 8
        canvas[4 : SIDE - 4, shift : shift + SIDE - 8] = six
        frame = av.VideoFrame.from_ndarray(np.repeat(canvas[..., None], 3, 2), format="rgb24")
        frame.pts = i
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
    if sound is not None:
        write_tone(container, sound, frames * 2)
    container.close()
    return path


def read_digit_frames(path) -> list[int]:
    """The digit the classifier reads in every frame of the video at ``path`` (each shrunk to 28x28)."""
    digits = []
    for image, _, _ in read(path)[1]:
        small = image.convert("L").resize((28, 28), Image.Resampling.BOX)
        buffer = io.BytesIO()
        small.save(buffer, "PNG")
        digits.append(read_digit(buffer))
    return digits


def test_a_clip_is_translated_frame_by_frame_with_its_timing_and_sound(app_url, tmp_path):
    source = digit_clip(tmp_path / "six.mp4")
    client = Client(app_url, verbose=False, headers=visitor(701))
    output, note = client.predict(handle_file(source), "6 -> 9", api_name="/translate_video")
    assert note.startswith(f"6 -&gt; 9: {FRAMES} frames, {SIDE}x{SIDE}, ")
    assert read_digit_frames(output) == [9] * FRAMES
    facts_in, frames_in, audio_in = read(source)
    facts_out, frames_out, audio_out = read(output)
    assert len(frames_out) == FRAMES and facts_out["rate"] == facts_in["rate"] == RATE
    assert abs(facts_out["duration"] - facts_in["duration"]) < 1e-6
    assert audio_out == audio_in  # the sound, packet for packet
    forward = load_generator(str(ROOT / "space" / "models" / "mnist-6to9"))
    for (image_in, pts_in, _), (image_out, pts_out, _) in zip(frames_in, frames_out):
        assert pts_out == pts_in
        expected = as_420(forward.translate(image_in, max_side=28).convert("RGB"))  # a digit pair's own size
        got = np.asarray(image_out.convert("RGB"), np.float32)
        assert np.abs(got - expected).mean() < 3  # within the codec's loss


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: digit_clip(p, frames=60, rate=5, audio=False), "six.mp4 lasts 12 s, above the limit of 10 s"),
        (lambda p: p.write_bytes(b"\0\0\0\x18ftypisom" + b"\0" * 4000) and p, "six.mp4 is not a video file"),
        (lambda p: p.write_bytes(b"not a video" * 100) and p, r"six.mp4 is not a video file \(MP4, MOV, WebM"),
    ],
)
def test_a_clip_over_the_limits_or_not_a_video_is_refused_in_one_line(app_url, tmp_path, make, message):
    source = make(tmp_path / "six.mp4")
    client = Client(app_url, verbose=False, headers=visitor(702))
    with pytest.raises(Exception, match=message) as err:
        client.predict(handle_file(source), "6 -> 9", api_name="/translate_video")
    assert "\n" not in str(err.value) and "/tmp" not in str(err.value)


def test_browser_translates_a_video_in_its_tab(app_url, tmp_path):
    source = digit_clip(tmp_path / "six.mp4")
    sync_api, browser_path = _browser()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        open_page(page, app_url)
        page.get_by_role("tab", name="Video").click()
        page.locator("input[type=file]").last.set_input_files(str(source))
        page.wait_for_timeout(1500)  # the upload lands
        page.get_by_role("button", name="Translate video").click()
        sync_api.expect(page.get_by_text(f"6 -> 9: {FRAMES} frames")).to_be_visible(timeout=120_000)
        output = page.locator(".block", has=page.get_by_text("Translated video", exact=True)).locator("video")
        sync_api.expect(output.first).to_be_visible()
        page.wait_for_timeout(1000)  # the first frame is drawn
        shots = ROOT / "tests" / "artifacts"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / "space-video.png"), full_page=True)
        browser.close()
