"""A one-way model (pix2pix: a run folder with generator_AtoB/ only) served by the real Space beside the bundled
MNIST pair: through the API (the translation, no round trip) and in Chromium (picked, drawn on, translated)."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file

from cyclegan_hub.models.pix2pix import Pix2PixGenerator
from cyclegan_hub.serving.pairs import frame_like_mnist
from tests.space.conftest import CHROMIUM_FLAGS, ROOT, start_app, stop_app
from tests.space.test_app import EXAMPLES, _browser, open_page, read_digit

pytestmark = pytest.mark.slow
ONE_WAY = "erased -> digit"


@pytest.fixture(scope="module")
def one_way_app(tmp_path_factory):
    """The Space serving the bundled 6 <-> 9 pair and a pix2pix run folder; (url, model, startup output)."""
    torch.manual_seed(0)
    model = Pix2PixGenerator(
        in_channels=1,
        out_channels=1,
        base_channels=4,
        n_downsampling=5,
        image_size=32,
        source_domain="erased",
        target_domain="digit",
    )
    run = tmp_path_factory.mktemp("pix2pix") / "run"
    model.save_pretrained(run / "generator_AtoB")
    proc, url = start_app({"CYCLEGAN_MODELS": str(run)})
    os.set_blocking(proc.stdout.fileno(), False)  # what it printed while starting, without waiting for its end
    startup = (os.read(proc.stdout.fileno(), 1 << 20) or b"").decode(errors="replace")
    yield url, model, startup
    stop_app(proc)


def test_the_one_way_model_translates_without_a_round_trip_and_the_pair_still_does(one_way_app):
    url, model, startup = one_way_app
    (line,) = [line for line in startup.splitlines() if "served one way" in line]  # said once, when loaded
    assert line.endswith(": served one way (erased -> digit, no round trip): a pix2pix model translates one way")
    client = Client(url, verbose=False)
    translated, reconstructed, error = client.predict(
        handle_file(EXAMPLES / "6-test0.png"), ONE_WAY, api_name="/translate"
    )
    assert reconstructed is None and error == ""
    expected = model.translate(frame_like_mnist(Image.open(EXAMPLES / "6-test0.png"), 32))
    assert np.abs(np.asarray(Image.open(translated), int) - np.asarray(expected, int)).max() <= 1
    nine, six, error = client.predict(handle_file(EXAMPLES / "6-test0.png"), "6 -> 9", api_name="/translate")
    assert (read_digit(nine), read_digit(six)) == (9, 6) and 0 <= float(error) < 0.2
    with pytest.raises(
        Exception, match="unknown direction 'digit -> erased'; valid: '6 -> 9', '9 -> 6', 'erased -> digit'"
    ):
        client.predict(handle_file(EXAMPLES / "6-test0.png"), "digit -> erased", api_name="/translate")


def test_browser_picks_the_one_way_model_draws_and_translates(one_way_app):
    sync_api, browser_path = _browser()
    url = one_way_app[0]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        open_page(page, url)
        round_trip = page.get_by_text("Round trip (reconstruction)")
        sync_api.expect(round_trip).to_be_visible()  # the pair first: its round trip is there
        page.get_by_label("Model").click()
        page.get_by_role("option", name=ONE_WAY).click()
        sync_api.expect(page.get_by_label(ONE_WAY)).to_be_visible(timeout=10_000)
        sync_api.expect(round_trip).to_be_hidden(timeout=10_000)  # one way: no round trip, no cycle error
        sync_api.expect(page.get_by_label("Cycle error", exact=False)).to_be_hidden()
        page.get_by_role("tab", name="Draw").click()
        brush = page.locator("button[aria-label='Brush']").first
        brush.wait_for(state="visible")
        page.wait_for_timeout(1000)  # the canvas settles
        brush.click()
        page.wait_for_timeout(500)
        box = page.locator("canvas").first.bounding_box()
        x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x0 - 40, y0 - 60)
        page.mouse.down()
        page.mouse.move(x0 + 30, y0 + 60, steps=10)
        page.mouse.up()
        page.wait_for_timeout(3000)  # the drawing becomes the input
        page.get_by_role("button", name="Translate", exact=True).click()
        sync_api.expect(page.get_by_text(f"{ONE_WAY}: ran at 32x32")).to_be_visible(timeout=60_000)
        output = page.locator(".block", has=page.get_by_text("Translated", exact=True)).locator("img")
        sync_api.expect(output.first).to_be_visible()  # the translation is shown
        sync_api.expect(round_trip).to_be_hidden()
        shots = ROOT / "tests" / "artifacts"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / "space-one-way.png"), full_page=True)
        browser.close()
