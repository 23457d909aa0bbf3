"""A public Space that no request can starve: each hostile request of the security probe, sent to the real app (a
subprocess, reached over HTTP as a visitor reaches it), is refused in one line while the server's memory (its RSS)
stays bounded and a normal visitor is served at the same time."""

import http.client
import json
import threading
import time
import urllib.parse

import pytest
import torch

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file

from cyclegan_hub import CycleGenerator
from tests.space.conftest import ROOT, start_app, stop_app
from tests.space.raw import config, post, queue, rss_mb, upload
from tests.support.hostile_images import huge_png, ico_over_png, many_chunk_png, many_scan_jpeg
from tests.support.image_cases import float_tiff

EXAMPLES = ROOT / "space" / "examples"
HOSTILE_LABEL = "<img src=http://127.0.0.1:9/pixel.gif> [win](http://e.vil)"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The Space with the bundled digits and a pair whose domain name is markup."""
    folder = tmp_path_factory.mktemp("labels")
    for name, (a, b) in (("g", (HOSTILE_LABEL, "zebra")), ("f", ("zebra", HOSTILE_LABEL))):
        torch.manual_seed(0)
        CycleGenerator(base_channels=4, n_blocks=1, image_size=32, source_domain=a, target_domain=b).save_pretrained(
            folder / name
        )
    proc, url = start_app({"CYCLEGAN_MODELS": f"{folder / 'g'},{folder / 'f'}"})
    # one normal translation first: what the first request allocates once (lazy init) is not counted as growth
    Client(url, verbose=False).predict(handle_file(EXAMPLES / "6-test0.png"), "6 -> 9", api_name="/translate")
    yield proc, url
    stop_app(proc)


def _sketch_event(url: str) -> int:
    page = config(url)
    editors = {c["id"] for c in page["components"] if c.get("type") == "imageeditor"}
    for index, dependency in enumerate(page["dependencies"]):
        if any(target[0] in editors for target in dependency["targets"]):
            return dependency.get("id", index)
    raise AssertionError("no drawing-pad event")


def test_the_drawing_pad_event_decodes_only_through_the_gate(app):
    """The pad's event (the page's other function, reachable through the queue by its index) sent a 13000x13000 PNG
    (656 KB) took +2.2 GB and 17 s; its layer list had no length. Now: refused from the header, in one line."""
    proc, url = app
    status, text = upload(url, {"huge.png": huge_png(13000)})
    assert status == 200, text
    file = {"path": json.loads(text)[0], "meta": {"_type": "gradio.FileData"}}
    fn = _sketch_event(url)
    before = rss_mb(proc.pid)
    result = queue(url, fn, [{"background": None, "layers": [file], "composite": file}])
    assert not result["success"]
    assert "the drawing: huge.png is 13000x13000 pixels (169 MP), above the limit of 4 MP" in json.dumps(result)
    assert rss_mb(proc.pid) - before < 100
    many = queue(url, fn, [{"background": None, "layers": [file] * 1000, "composite": file}])
    assert not many["success"] and "a drawing may have at most 4 layers, not 1000" in json.dumps(many)
    # and through the main event, the same file is refused by the same gate
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match=r"is 13000x13000 pixels \(169 MP\), above the limit of 24 MP"):
        client.predict(handle_file_bytes(huge_png(13000)), "6 -> 9", api_name="/translate")


def handle_file_bytes(data: bytes, suffix: str = ".png"):
    import tempfile

    handle = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)
    handle.write(data)
    handle.close()
    return handle_file(handle.name)


@pytest.mark.parametrize(
    "data, suffix, message",
    [
        (ico_over_png(huge_png(13000)), ".ico", "is not an image in a format read here (PNG, JPEG, WEBP, GIF, BMP)"),
        (many_scan_jpeg(3000), ".jpg", "is a JPEG of 3010 scans, above the limit of 100"),
        (many_chunk_png(100_000), ".png", "is a PNG of more than 20000 chunks or 1000 ancillary chunks"),
        (float_tiff(), ".tif", "is not an image in a format read here (PNG, JPEG, WEBP, GIF, BMP)"),
    ],
    ids=["ico-over-a-huge-png", "jpeg-of-thousands-of-scans", "png-of-100k-chunks", "tiff-is-not-served"],
)
def test_hostile_images_are_refused_while_a_visitor_is_served(app, data, suffix, message):
    proc, url = app
    client = Client(url, verbose=False)
    before = rss_mb(proc.pid)
    normal: dict = {}

    def visitor():
        start = time.perf_counter()
        nine, _, _ = client.predict(handle_file(EXAMPLES / "6-test0.png"), "6 -> 9", api_name="/translate")
        normal["seconds"], normal["file"] = time.perf_counter() - start, nine

    thread = threading.Thread(target=visitor)
    thread.start()
    with pytest.raises(Exception) as info:
        client.predict(handle_file_bytes(data, suffix), "6 -> 9", api_name="/translate")
    thread.join(60)
    assert message in str(info.value) and "\n" not in str(info.value).strip()
    assert "file" in normal  # the visitor got a digit back
    assert rss_mb(proc.pid) - before < 100


def test_bodies_over_the_cap_are_refused_before_they_are_read(app):
    proc, url = app
    before = rss_mb(proc.pid)
    # a 400 MB JSON body announced: refused from its Content-Length, nothing read
    status, text = post(url, "/gradio_api/queue/join", b"{}", length=400 * 2**20)
    assert (status, json.loads(text)["detail"]) == (413, "the request body is larger than 28 MB")
    # sent without a length (chunked): refused as soon as it passes the cap
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    chunk = b"x" * 2**20

    def body():
        for _ in range(64):
            yield chunk

    try:
        connection.request(
            "POST",
            "/gradio_api/queue/join",
            body=body(),
            encode_chunked=True,
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        assert response.status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server closed the connection after refusing
    # more files in one upload than the page ever sends
    status, text = upload(url, {f"{i}.png": b"\x89PNG" for i in range(1000)})
    assert (status, json.loads(text)["detail"]) == (413, "more than 8 files in one upload")
    assert rss_mb(proc.pid) - before < 100


def test_queue_bypassing_routes_are_closed_and_file_errors_name_no_server_path(app):
    _, url = app
    status, text = post(url, "/gradio_api/run/translate", b'{"data": [null, "6 -> 9"]}')
    assert status == 404 and "this route is closed" in text
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("GET", "/gradio_api/file=../../../etc/passwd")
    response = connection.getresponse()
    body = response.read().decode()
    assert response.status == 404 and json.loads(body) == {"detail": "file not found"} and str(ROOT) not in body


def test_a_direction_sent_as_an_object_is_one_line(app):
    _, url = app
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match=r"the direction must be a text such as '6 -> 9'"):
        client.predict(handle_file(EXAMPLES / "6-test0.png"), {"direction": ["6 -> 9"]}, api_name="/translate")


def test_labels_from_a_model_are_text_on_the_page(app):
    _, url = app
    heading = next(c["props"]["value"] for c in config(url)["components"] if c.get("type") == "html")
    assert heading.startswith("<h1>CycleGAN: ") and heading.count("<") == 2  # <h1> and </h1>: nothing else is markup
    assert "&lt;img src=http://127.0.0.1:9/pixel.gif&gt; [win](http://e.vil)" in heading


def test_markup_in_a_models_domain_names_creates_and_fetches_nothing_in_a_browser(app, tmp_path):
    """The pair whose domain is ``<img src=...> [win](...)``, picked, used and translated in Chromium: the heading,
    the picker, the directions and the note after the translation show it as text; nothing is fetched from the
    planted addresses and no element is made from it, before and after the translation."""
    from PIL import Image

    from tests.space.conftest import CHROMIUM_FLAGS
    from tests.space.test_app import _browser, open_page

    _, url = app
    sync_api, browser_path = _browser()
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (120, 80, 40)).save(photo)
    requested: list[str] = []

    def planted() -> list[str]:
        made = page.evaluate("() => [...document.querySelectorAll('img, a')].map(e => e.outerHTML)")
        made = [h for h in made if "127.0.0.1:9" in h or "127%5C" in h or "e.vil" in h or "e%5C.vil" in h]
        return made + [u for u in requested if "127.0.0.1:9" in u or "e.vil" in u]

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("request", lambda request: requested.append(request.url))
        open_page(page, url)
        page.get_by_label("Pair").click()
        page.get_by_role("option", name="zebra").click()
        direction = page.locator("label", has_text="-> zebra").first
        direction.wait_for(state="visible", timeout=30_000)
        heading = page.locator("h1").first.inner_text()
        assert "<img src=http://127.0.0.1:9/pixel.gif> [win](http://e.vil) ↔ zebra" in heading
        assert planted() == []
        page.locator("input[type=file]").first.set_input_files(str(photo))
        direction.click()
        page.get_by_role("button", name="Translate", exact=True).click()
        error_box = page.get_by_label("Cycle error", exact=False)
        sync_api.expect(error_box).not_to_have_value("", timeout=30_000)
        page.get_by_text("ran at").wait_for(timeout=30_000)
        note = page.get_by_text("ran at").inner_text()
        assert note.startswith("<img src=http://127.0.0.1:9/pixel.gif> [win](http://e.vil) -> zebra: ran at 40x30")
        assert planted() == []
        browser.close()
