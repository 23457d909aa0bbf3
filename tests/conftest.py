import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
OLAH = ROOT / ".venv-olah" / "bin" / "olah-cli"
TOKENS = {"write-token": ["user"], "other-token": ["someone-else"]}


@contextlib.contextmanager
def no_hang(seconds: int = 120, what: str = "the call"):
    """A guard, not a timing: a call that never returns fails the test instead of hanging the suite. Tests assert
    behaviour (what was read, what was built); time belongs in benchmarks/."""

    def fail(signum, frame):
        raise TimeoutError(f"{what} did not return within {seconds} s: it hangs")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# Tests never reach the real Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def tiny_gray():
    """A tiny 1-channel generator (8 channels, one residual block), as in the tests of every other piece."""
    from cyclegan_hub import CycleGenerator

    torch.manual_seed(0)
    return CycleGenerator(
        in_channels=1, out_channels=1, base_channels=8, n_blocks=1, image_size=32, source_domain="6", target_domain="9"
    )


@pytest.fixture
def tiny_rgb():
    from cyclegan_hub import CycleGenerator

    torch.manual_seed(0)
    return CycleGenerator(base_channels=8, n_blocks=1, image_size=32, source_domain="horse", target_domain="zebra")


# ---- a local Hub: HubServer receives pushes, olah serves reads from the same git repos ------------------------


@pytest.fixture
def hub(tmp_path):
    from tests.support.hub_server import HubServer

    with HubServer(tmp_path / "mirrors", TOKENS) as server:
        yield server


def hub_env(endpoint: str, token: str | None = "write-token") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        {
            "HF_ENDPOINT": endpoint,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HOME": str(Path(os.environ.get("PYTEST_TMP", "/tmp")) / f"hf-home-{os.getpid()}"),
        }
    )
    if token:
        env["HF_TOKEN"] = token
    return env


def cli(*args, env, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cyclegan_hub.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def olah(hub, tmp_path):
    if not OLAH.exists():
        if os.environ.get("CI"):
            pytest.fail("olah is missing: `make test` installs it into .venv-olah")
        pytest.skip("olah is not installed (make olah)")
    port = free_port()
    config = tmp_path / "olah.toml"
    config.write_text(f"""
[basic]
host = "127.0.0.1"
port = {port}
repos-path = "{tmp_path / "olah_repos"}"
mirrors-path = ["{hub.root}"]
hf-scheme = "http"
hf-netloc = "127.0.0.1:9"
hf-lfs-netloc = "127.0.0.1:9"
mirror-scheme = "http"
mirror-netloc = "127.0.0.1:{port}"
mirror-lfs-netloc = "127.0.0.1:{port}"
[accessibility]
offline = true
""")
    proc = subprocess.Popen(
        [str(OLAH), "-c", str(config)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/", timeout=1)
            break
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.25)
    yield url
    proc.terminate()
    proc.wait(20)
