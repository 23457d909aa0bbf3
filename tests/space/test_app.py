"""The Space through its real server: gradio_client for the API, Chromium for the page."""

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file

from cyclegan_hub.mnist_classifier import classify_digits

from ..image_cases import BAD_FILES, animated_gif, float_tiff, png_bytes
from .conftest import CHROMIUM_FLAGS, ROOT, chromium_path

pytestmark = pytest.mark.slow
EXAMPLES = ROOT / "space" / "examples"


def read_digit(path) -> int:
    x = torch.from_numpy(np.asarray(Image.open(path).convert("L"), np.float32) / 127.5 - 1)[None, None]
    return int(classify_digits(x)[0])


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def test_api_lists_translate_with_png_outputs(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert "/translate" in api["named_endpoints"]
    translated, reconstructed, error = client.predict(handle_file(EXAMPLES / "6-test0.png"), "6 -> 9", api_name="/translate")
    assert Path(translated).suffix == ".png" and Path(reconstructed).suffix == ".png"
    assert 0 <= float(error) < 0.2


@pytest.mark.parametrize("example,direction,expected", [("6-test0.png", "6 -> 9", (9, 6)), ("6-test1.png", "6 -> 9", (9, 6)),
                                                        ("9-test0.png", "9 -> 6", (6, 9)), ("9-test1.png", "9 -> 6", (6, 9))])
def test_a_six_becomes_a_nine_and_back(client, example, direction, expected):
    assert read_digit(EXAMPLES / example) == expected[1]
    translated, reconstructed, _ = client.predict(handle_file(EXAMPLES / example), direction, api_name="/translate")
    assert (read_digit(translated), read_digit(reconstructed)) == expected


def test_identical_concurrent_requests_each_download_a_whole_image(app_url):
    """Many users pressing Translate on the same example at once: every response is a complete PNG of the same
    digits (gradio caches outputs by content, and rewrote a shared file while serving it: gradio-app/gradio#8878)."""
    from concurrent.futures import ThreadPoolExecutor

    clients = [Client(app_url, verbose=False) for _ in range(4)]

    def one(i):
        return clients[i % 4].predict(handle_file(EXAMPLES / "6-test0.png"), "6 -> 9", api_name="/translate")[:2]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(48)))
    pixels = {(np.asarray(Image.open(t)).tobytes(), np.asarray(Image.open(r)).tobytes()) for t, r in results}
    assert len(pixels) == 1  # every download decodes, to the same pair of images
    assert len({t for t, _ in results}) == 48  # each response its own file


def test_a_dark_on_light_drawing_is_framed_like_mnist(client, tmp_path):
    six = np.asarray(Image.open(EXAMPLES / "6-test0.png").convert("L"))
    drawing = Image.fromarray(255 - six).resize((300, 300), Image.Resampling.BILINEAR)  # black ink on white, large
    canvas = Image.new("L", (500, 400), 255)
    canvas.paste(drawing, (150, 60))
    canvas.save(tmp_path / "drawing.png")
    translated, _, _ = client.predict(handle_file(tmp_path / "drawing.png"), "6 -> 9", api_name="/translate")
    assert read_digit(translated) == 9


def _odd_images(tmp_path) -> dict[str, Path]:
    six = Image.open(EXAMPLES / "6-test0.png")
    files = {
        "16-bit.png": Image.fromarray(np.asarray(six, np.uint16) * 257),
        "cmyk.jpg": six.convert("RGB").convert("CMYK"),
        "palette.png": six.convert("P"),
        "one-pixel.png": Image.new("L", (1, 1), 255),
        "thin.png": Image.new("RGB", (2000, 3), (255, 255, 255)),
    }
    paths = {}
    for name, image in files.items():
        image.save(tmp_path / name)
        paths[name] = tmp_path / name
    for name, data in (("animated.gif", animated_gif()), ("float.tif", float_tiff())):
        (tmp_path / name).write_bytes(data)
        paths[name] = tmp_path / name
    return paths


def test_odd_but_valid_images_are_translated(client, tmp_path):
    for name, path in _odd_images(tmp_path).items():
        start = time.time()
        translated, _, _ = client.predict(handle_file(path), "6 -> 9", api_name="/translate")
        assert Image.open(translated).size == (28, 28), name
        assert time.time() - start < 20, name


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_get_a_clear_message_and_the_server_survives(client, tmp_path, name):
    data, phrase = BAD_FILES[name]
    (tmp_path / name).write_bytes(data)
    start = time.time()
    with pytest.raises(Exception) as info:
        client.predict(handle_file(tmp_path / name), "6 -> 9", api_name="/translate")
    message = str(info.value)
    assert phrase in message and name in message and "/tmp" not in message
    assert time.time() - start < 20
    translated, _, _ = client.predict(handle_file(EXAMPLES / "6-test0.png"), "6 -> 9", api_name="/translate")
    assert read_digit(translated) == 9


def test_unknown_direction_is_refused(client):
    with pytest.raises(Exception, match="not in the list of choices|unknown direction"):
        client.predict(handle_file(EXAMPLES / "6-test0.png"), "6 -> 7", api_name="/translate")


def _browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    browser_path = chromium_path()
    if browser_path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium)")
        pytest.skip("Chromium is not installed")
    return sync_api, browser_path


def test_browser_draw_a_six_and_translate(app_url):
    sync_api, browser_path = _browser()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app_url, wait_until="networkidle")
        page.get_by_role("tab", name="Draw").click()
        brush = page.locator("button[aria-label='Brush']").first
        brush.wait_for(state="visible")
        page.wait_for_timeout(1000)  # the canvas settles
        brush.click()
        page.wait_for_timeout(500)
        box = page.locator("canvas").first.bounding_box()
        x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        stroke = [(20, -90), (-10, -50), (-30, 0), (-30, 50), (0, 80), (30, 60), (30, 20), (0, 5), (-30, 30)]
        page.mouse.move(x0 + stroke[0][0], y0 + stroke[0][1])
        page.mouse.down()
        for dx, dy in stroke[1:]:
            page.mouse.move(x0 + dx, y0 + dy, steps=8)
        page.mouse.up()
        page.wait_for_timeout(3000)  # the drawing becomes the input
        page.get_by_role("button", name="Translate", exact=True).click()
        error_box = page.get_by_label("Cycle error", exact=False)
        sync_api.expect(error_box).not_to_have_value("", timeout=30_000)
        assert 0 <= float(error_box.input_value()) < 0.2
        browser.close()


def test_browser_upload_translate_and_screenshot(app_url, tmp_path):
    sync_api, browser_path = _browser()
    shots = ROOT / "tests" / "artifacts"
    shots.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app_url, wait_until="networkidle")
        page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "6-test0.png"))
        page.get_by_label("6 -> 9").check()
        page.get_by_role("button", name="Translate", exact=True).click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('img')].filter(i => i.src && i.naturalWidth > 0).length >= 3",
            timeout=30_000)
        error_box = page.get_by_label("Cycle error", exact=False)
        sync_api.expect(error_box).not_to_have_value("", timeout=30_000)
        cycle_error = float(error_box.input_value())
        page.screenshot(path=str(shots / "space.png"), full_page=True)
        browser.close()
    assert 0 <= cycle_error < 0.2
    assert (shots / "space.png").stat().st_size > 10_000


def test_space_card_front_matter_is_a_space_config():
    import gradio
    import yaml

    meta = yaml.safe_load((ROOT / "space" / "README.md").read_text().split("---")[1])
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__ and meta["app_file"] == "app.py"
    assert meta["title"] and meta["emoji"] and meta["license"] == "mit" and "cyclegan" in meta["tags"]
    assert len(meta["models"]) == 2
    requirements = (ROOT / "space" / "requirements.txt").read_text().split()
    assert f"gradio=={gradio.__version__}" in requirements and "cyclegan-hub" in requirements
