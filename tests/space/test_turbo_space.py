"""A one-step (CycleGAN-Turbo) pair served like any pair: beside the MNIST pair in the Space (API and Chromium),
inside ``spaces.GPU`` where that package is installed, with its CPU time said before it runs; pushed and pulled
through the local Hub, its base included."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("transformers")

import numpy as np
import torch
from gradio_client import Client, handle_file
from PIL import Image

from tests.conftest import cli, hub_env
from tests.space.conftest import CHROMIUM_FLAGS, ROOT, start_app, stop_app
from tests.space.test_app import EXAMPLES, _browser, open_page, read_digit
from tests.support.authors_turbo import make_checkpoint
from tests.support.hub_server import git
from tests.support.turbo_base import make_base

FAKE_SPACES = ROOT / "tests" / "space" / "fake_spaces"


@pytest.fixture(scope="module")
def turbo_run(tmp_path_factory):
    """A converted one-step pair as a run folder: day -> night (a2b) and night -> day (b2a) of one checkpoint."""
    from cyclegan_hub.convert.turbo import TurboSource, write_turbo

    folder = tmp_path_factory.mktemp("turbo-space")
    base = make_base(folder / "tiny-sd-turbo")
    torch.save(make_checkpoint(base, rank_unet=4, rank_vae=4, seed=2), folder / "day2night.pkl")
    run = folder / "day2night-run"
    write_turbo(
        folder / "day2night.pkl",
        run,
        base_model=str(base),
        caption="driving in the night",
        reverse=TurboSource(folder / "day2night.pkl", "b2a", "driving in the day"),
    )
    return run


@pytest.fixture(scope="module")
def turbo_app(turbo_run, tmp_path_factory):
    log = tmp_path_factory.mktemp("spaces") / "gpu-calls.log"
    env = {
        "CYCLEGAN_MODELS": str(turbo_run),
        "PYTHONPATH": os.pathsep.join([str(FAKE_SPACES), str(ROOT)]),
        "FAKE_SPACES_LOG": str(log),
    }
    proc, url = start_app(env, timeout=180)
    yield url, log
    stop_app(proc)


def test_the_one_step_pair_answers_beside_the_digits_inside_spaces_gpu(turbo_app, tmp_path):
    url, log = turbo_app
    client = Client(url, verbose=False)
    nine, six, _ = client.predict(handle_file(EXAMPLES / "6-test0.png"), "6 -> 9", api_name="/translate")
    assert (read_digit(nine), read_digit(six)) == (9, 6)
    assert not log.exists() or log.read_text() == ""  # the digit pair runs as it always did
    street = tmp_path / "street.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(street)
    night, day, error = client.predict(handle_file(street), "day -> night", api_name="/translate")
    assert Image.open(night).size == (70, 50) and Image.open(day).mode == "RGB"
    assert 0 <= float(error) <= 1
    assert log.read_text().split() == ["<lambda>"]  # the one-step pair went through spaces.GPU
    if importlib.util.find_spec("av") is not None:  # a video is for the light models: one line, nothing decoded
        from tests.space.test_video_space import digit_clip

        clip = digit_clip(tmp_path / "street.mp4", frames=3, audio=False)
        with pytest.raises(Exception, match="is a one-step diffusion pair: it translates images here, not videos"):
            client.predict(handle_file(clip), "day -> night", api_name="/translate_video")


def test_browser_shows_the_cpu_time_then_translates(turbo_app, tmp_path):
    url, _ = turbo_app
    sync_api, browser_path = _browser()
    Image.new("RGB", (300, 200), (30, 60, 140)).save(tmp_path / "street.png")
    shots = ROOT / "tests" / "artifacts"
    shots.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        open_page(page, url)
        page.get_by_label("Pair").click()
        page.get_by_role("option", name="day ↔ night").click()
        sync_api.expect(page.get_by_label("day -> night")).to_be_visible(timeout=10_000)
        page.locator("input[type=file]").first.set_input_files(str(tmp_path / "street.png"))
        sync_api.expect(page.get_by_text("runs on the CPU here: about")).to_be_visible(timeout=20_000)
        page.get_by_role("button", name="Translate", exact=True).click()
        sync_api.expect(page.get_by_text("day -> night: ran at 300x200")).to_be_visible(timeout=60_000)
        page.screenshot(path=str(shots / "space-turbo.png"), full_page=True)
        browser.close()


def test_push_and_pull_through_the_local_hub(hub, olah, turbo_run, tmp_path):
    env = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "push-home")}
    result = cli("push", str(turbo_run), "--repo-id", "user/day2night", env=env)
    assert result.returncode == 1 and "base model is a local folder" in result.stderr and not hub.commits
    assert len(result.stderr.strip().splitlines()) == 1
    # the base on the (local) Hub, as stabilityai/sd-turbo is on the real one
    base = json.loads((turbo_run / "generator_AtoB" / "config.json").read_text())["base_model"]
    upload = (
        "import sys; from huggingface_hub import HfApi; api = HfApi(); api.create_repo('user/tiny-sd-turbo');"
        "api.upload_folder(repo_id='user/tiny-sd-turbo', folder_path=sys.argv[1])"
    )
    done = subprocess.run([sys.executable, "-c", upload, base], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = cli(
        "push", str(turbo_run), "--repo-id", "user/day2night", "--base-model-id", "user/tiny-sd-turbo", env=env
    )
    assert result.returncode == 0, result.stderr
    for repo in ("user/day2night", "user/night2day"):
        config = json.loads((hub.repo_path("model", repo) / "config.json").read_text())
        assert config["base_model"] == "user/tiny-sd-turbo" and str(tmp_path) not in json.dumps(config)
    for repo in ("user/day2night", "user/night2day"):
        files = sorted(git(hub.repo_path("model", repo), "ls-files").splitlines())
        assert [f for f in files if f != "sample.png"] == [
            ".gitattributes",
            "README.md",
            "config.json",
            "model.safetensors",
        ]
        card = (hub.repo_path("model", repo) / "README.md").read_text()
        assert "CycleGAN-Turbo translator" in card and "[user/" in card and "base_model: user/tiny-sd-turbo" in card
        assert base not in card
    # pulled through olah (an independent mirror), by repo id: the same translation as the run folder's
    pull = (
        "import sys, numpy as np; from PIL import Image; from cyclegan_hub.models.modeling import HubModule;"
        "m = HubModule.from_pretrained(sys.argv[1]); x = Image.new('RGB', (40, 24), (90, 160, 30));"
        "print(type(m).__name__, int(np.asarray(m.translate(x), dtype=np.int64).sum()))"
    )
    outputs = []
    for model, environment in (
        (str(turbo_run / "generator_AtoB"), dict(os.environ)),
        ("user/day2night", hub_env(olah, token=None) | {"HF_HOME": str(tmp_path / "pull")}),
    ):
        done = subprocess.run(
            [sys.executable, "-c", pull, model], env=environment, capture_output=True, text=True, timeout=180, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout.split())
    assert outputs[0] == outputs[1] and outputs[0][0] == "OneStepTranslator"  # the base, too, came through the Hub

    # deploy-space checks the hardware before loading anything (the hardware request and the requirements of a
    # one-step pair: test_deploy.py)
    result = cli(
        "deploy-space", "--space-id", "user/turbo-demo", "--model", "user/day2night", "--hardware", "a-big-gpu", env=env
    )
    assert result.returncode == 1 and "unknown Space hardware 'a-big-gpu'; valid: cpu-basic" in result.stderr
    assert json.loads((turbo_run / "generator_AtoB" / "config.json").read_text())["model_type"] == "cyclegan-turbo"
