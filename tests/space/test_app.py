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

from cyclegan_hub.models.mnist_classifier import classify_digits
from tests.space.conftest import CHROMIUM_FLAGS, ROOT, chromium_path
from tests.support.image_cases import BAD_FILES, animated_gif

pytestmark = pytest.mark.slow
EXAMPLES = ROOT / "space" / "examples"


def read_digit(path) -> int:
    x = torch.from_numpy(np.asarray(Image.open(path).convert("L"), np.float32) / 127.5 - 1)[None, None]
    return int(classify_digits(x)[0])


def visitor(i: int) -> dict:
    """A visitor of its own: the address the Space's proxy appends (the session app trusts one hop)."""
    return {"X-Forwarded-For": f"192.0.2.{i + 1}"}


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def test_api_lists_translate_with_png_outputs(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert "/translate" in api["named_endpoints"]
    translated, reconstructed, error = client.predict(
        handle_file(EXAMPLES / "6-test0.png"), "6 -> 9", api_name="/translate"
    )
    assert Path(translated).suffix == ".png" and Path(reconstructed).suffix == ".png"
    assert 0 <= float(error) < 0.2


@pytest.mark.parametrize(
    "example,direction,expected",
    [
        ("6-test0.png", "6 -> 9", (9, 6)),
        ("6-test1.png", "6 -> 9", (9, 6)),
        ("9-test0.png", "9 -> 6", (6, 9)),
        ("9-test1.png", "9 -> 6", (6, 9)),
    ],
)
def test_a_six_becomes_a_nine_and_back(client, example, direction, expected):
    assert read_digit(EXAMPLES / example) == expected[1]
    translated, reconstructed, _ = client.predict(handle_file(EXAMPLES / example), direction, api_name="/translate")
    assert (read_digit(translated), read_digit(reconstructed)) == expected


def test_identical_concurrent_requests_each_download_a_whole_image(app_url):
    """Many users pressing Translate on the same example at once: every response is a complete PNG of the same
    digits (gradio caches outputs by content, and rewrote a shared file while serving it: gradio-app/gradio#8878)."""
    from concurrent.futures import ThreadPoolExecutor

    def three(i):
        # One client per thread: a gradio_client Client may drop one of two predictions it streams at once, which
        # would be the client's fault, not the Space's.
        client = Client(app_url, verbose=False, headers=visitor(i))
        example = handle_file(EXAMPLES / "6-test0.png")
        return [client.predict(example, "6 -> 9", api_name="/translate")[:2] for _ in range(3)]

    with ThreadPoolExecutor(16) as pool:
        results = [pair for triple in pool.map(three, range(16)) for pair in triple]
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
    for name, data in (("animated.gif", animated_gif()),):
        (tmp_path / name).write_bytes(data)
        paths[name] = tmp_path / name
    return paths


def test_odd_but_valid_images_are_translated(client, tmp_path):
    for name, path in _odd_images(tmp_path).items():
        translated, _, _ = client.predict(handle_file(path), "6 -> 9", api_name="/translate")
        assert Image.open(translated).size == (28, 28), name


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_get_a_clear_message_and_the_server_survives(client, tmp_path, name):
    data, phrase = BAD_FILES[name]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(Exception) as info:
        client.predict(handle_file(tmp_path / name), "6 -> 9", api_name="/translate")
    message = str(info.value)
    assert phrase in message and name in message and "/tmp" not in message
    translated, _, _ = client.predict(handle_file(EXAMPLES / "6-test0.png"), "6 -> 9", api_name="/translate")
    assert read_digit(translated) == 9


def test_unknown_direction_is_refused(client):
    with pytest.raises(Exception, match="not in the list of choices|unknown direction"):
        client.predict(handle_file(EXAMPLES / "6-test0.png"), "6 -> 7", api_name="/translate")


def open_page(page, url: str) -> None:
    """Load the app and wait until it has rendered (the session heartbeat keeps a connection open: never idle)."""
    page.goto(url, wait_until="load")
    page.get_by_role("button", name="Translate", exact=True).wait_for(state="visible", timeout=60_000)


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
        open_page(page, app_url)
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
        open_page(page, app_url)
        page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "6-test0.png"))
        page.get_by_label("6 -> 9").check()
        page.get_by_role("button", name="Translate", exact=True).click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('img')].filter(i => i.src && i.naturalWidth > 0).length >= 3",
            timeout=30_000,
        )
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
    from cyclegan_hub.models.cyclegan import INSTALL_URL

    requirements = (ROOT / "space" / "requirements.txt").read_text().splitlines()
    assert requirements == [f"cyclegan-hub[space,video] @ {INSTALL_URL}", f"gradio=={gradio.__version__}"]


# ---- what a request may make the server do ------------------------------------------------------------------------


def raw_call(url: str, data: list) -> str:
    """The API called as an attacker would, without gradio_client: the event stream's text."""
    import json
    import urllib.request

    request = urllib.request.Request(
        url + "gradio_api/call/translate",
        data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    event = json.loads(urllib.request.urlopen(request, timeout=10).read())["event_id"]
    with urllib.request.urlopen(url + f"gradio_api/call/translate/{event}", timeout=30) as response:
        return response.read().decode()


@pytest.mark.parametrize(
    "path",
    [str(EXAMPLES / "6-test0.png"), "/etc/hostname", "/no/such/file.png", "/tmp", "/dev/zero"],
    ids=["server-image", "server-text", "missing", "folder", "device"],
)
def test_a_request_cannot_make_the_server_read_its_files(app_url, path):
    from cyclegan_hub.serving.app import NOT_UPLOADED

    for payload in ({"path": path}, {"path": path, "url": None, "is_stream": False}):
        text = raw_call(app_url, [payload, "6 -> 9"])  # /dev/zero is not read: the answer comes
        assert text.startswith("event: error") and NOT_UPLOADED in text  # the same answer for every path: no oracle
    with_meta = raw_call(app_url, [{"path": path, "meta": {"_type": "gradio.FileData"}}, "6 -> 9"])
    assert with_meta.startswith("event: error")  # Gradio's own check for payloads that say they are files
    translated, _, _ = Client(app_url, verbose=False).predict(
        handle_file(EXAMPLES / "6-test0.png"), "6 -> 9", api_name="/translate"
    )  # a real upload still works
    assert read_digit(translated) == 9


def test_uploads_are_bounded_in_bytes_and_pixels(app_url, tmp_path):
    import urllib.error
    import urllib.request

    from cyclegan_hub.serving.pairs import ServingLimits

    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(ServingLimits().max_bytes + 1))
    boundary = "cyclegan-test"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + big.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        app_url + "gradio_api/upload", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 413
    Image.new("L", (8000, 8000)).save(tmp_path / "64mp.png")  # 64 MP in a few hundred KB
    with pytest.raises(Exception, match=r"64mp.png is 8000x8000 pixels \(64 MP\), above the limit of 24 MP"):
        Client(app_url, verbose=False).predict(handle_file(tmp_path / "64mp.png"), "6 -> 9", api_name="/translate")


def test_sixteen_concurrent_worst_case_uploads_stay_inside_the_memory_budget(app_process, tmp_path):
    """The budget (ServingLimits): a 16 GB Space answering 16 requests at once. The worst upload within the limits
    is a 24 MP RGBA image (96 MB decoded from a 100 KB file); 16 of them at once must stay under 1.5 GB above the
    idle app (decoding is bounded to two at a time, each input shrunk to 1024 px right after)."""
    from concurrent.futures import ThreadPoolExecutor

    proc, url = app_process

    def rss_mb() -> float:
        for line in open(f"/proc/{proc.pid}/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
        return 0.0

    worst = tmp_path / "worst.png"
    Image.new("RGBA", (6000, 3990), (255, 255, 255, 255)).save(worst)
    clients = [Client(url, verbose=False, headers=visitor(i)) for i in range(16)]
    clients[0].predict(handle_file(worst), "6 -> 9", api_name="/translate")  # warm: first-use allocations
    idle, peak, done = rss_mb(), [0.0], []

    def watch():
        while not done:
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.02)

    import threading

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(16) as pool:
        errors = list(
            pool.map(lambda i: clients[i].predict(handle_file(worst), "6 -> 9", api_name="/translate")[2], range(16))
        )
    done.append(True)
    watcher.join()
    assert all(0 <= float(e) < 1 for e in errors)  # every request was answered
    assert peak[0] - idle < 1536, f"idle {idle:.0f} MB, peak {peak[0]:.0f} MB"


def test_the_app_deletes_old_uploads_and_outputs():
    from cyclegan_hub.serving.app import DELETE_CACHE, build_demo
    from cyclegan_hub.serving.pairs import PairTranslator
    from tests.serving.test_pairs import tiny

    demo = build_demo([PairTranslator(tiny("6", "9"), tiny("9", "6"))])
    assert demo.delete_cache == DELETE_CACHE == (1800, 3600)


def test_space_script_is_the_library_script():
    from cyclegan_hub.serving.app import SPACE_SCRIPT

    assert (ROOT / "space" / "app.py").read_text() == SPACE_SCRIPT


# ---- several pairs: the bundled digits and a converted photo pair -------------------------------------------------


@pytest.fixture(scope="module")
def two_pair_app(tmp_path_factory):
    from cyclegan_hub.convert.command import convert_checkpoint
    from tests.space.conftest import start_app, stop_app
    from tests.support.official_layout import randomized
    from tests.support.other_layouts import CUTGenerator, HugGANGenerator

    # a pair of two other implementations' layouts: CUT one way, HugGAN / eriklindernoren the other
    folder = tmp_path_factory.mktemp("converted")
    torch.save(randomized(CUTGenerator(ngf=4, n_blocks=2), 0).state_dict(), folder / "latest_net_G.pth")
    torch.save(randomized(HugGANGenerator(3, blocks=2, features=4), 1).state_dict(), folder / "G_BA_200.pth")
    convert_checkpoint(
        str(folder / "latest_net_G.pth"),
        folder / "h2z",
        reverse=str(folder / "G_BA_200.pth"),
        source_domain="horse",
        target_domain="zebra",
        name="horse2zebra",
    )
    proc, url = start_app({"CYCLEGAN_MODELS": str(folder / "h2z")})
    yield url
    stop_app(proc)


def test_two_pairs_answer_through_the_api(two_pair_app, tmp_path):
    client = Client(two_pair_app, verbose=False)
    nine, six, _ = client.predict(handle_file(EXAMPLES / "6-test0.png"), "6 -> 9", api_name="/translate")
    assert (read_digit(nine), read_digit(six)) == (9, 6)
    Image.new("RGB", (1500, 1000), (200, 150, 60)).save(tmp_path / "horse.jpg")
    zebra, horse, error = client.predict(handle_file(tmp_path / "horse.jpg"), "horse -> zebra", api_name="/translate")
    assert Image.open(zebra).size == (1024, 683) and Image.open(horse).mode == "RGB"  # the preview size, said in the UI
    assert 0 <= float(error) <= 1
    with pytest.raises(
        Exception, match="unknown direction 'horse -> cat'; valid: '6 -> 9', '9 -> 6', 'horse -> zebra'"
    ):
        client.predict(handle_file(tmp_path / "horse.jpg"), "horse -> cat", api_name="/translate")


def test_browser_picks_the_photo_pair_and_translates(two_pair_app, tmp_path):
    sync_api, browser_path = _browser()
    Image.new("RGB", (300, 200), (30, 140, 60)).save(tmp_path / "field.png")
    shots = ROOT / "tests" / "artifacts"
    shots.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        open_page(page, two_pair_app)
        sync_api.expect(page.get_by_label("6 -> 9")).to_be_visible()
        page.get_by_label("Pair").click()
        page.get_by_role("option", name="horse ↔ zebra").click()
        sync_api.expect(page.get_by_label("horse -> zebra")).to_be_visible(timeout=10_000)
        sync_api.expect(page.get_by_label("6 -> 9")).to_have_count(0)  # the digit directions are gone from the radio
        page.locator("input[type=file]").first.set_input_files(str(tmp_path / "field.png"))
        page.get_by_label("zebra -> horse").check()
        page.get_by_role("button", name="Translate", exact=True).click()
        sync_api.expect(page.get_by_text("zebra -> horse: ran at 300x200")).to_be_visible(timeout=60_000)
        error_box = page.get_by_label("Cycle error", exact=False)
        assert 0 <= float(error_box.input_value()) <= 1
        page.screenshot(path=str(shots / "space-two-pairs.png"), full_page=True)
        browser.close()
