"""deploy-space against the local Hub, then the uploaded Space installed in a fresh venv and started for real; and
the bundled space/ folder installed as its requirements.txt says."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import gradio
import pytest
import yaml

from tests.conftest import ROOT, cli, hub_env
from tests.space.conftest import start_app, stop_app
from tests.support.hub_server import git

pytestmark = pytest.mark.slow


def venv_with_requirements(folder: Path, venv: Path) -> Path:
    """A fresh venv holding exactly what ``folder/requirements.txt`` asks for, as a Space installs it (torch pinned
    in the same command: on these machines that selects the CPU build already on disk)."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "torch==2.13.0", "-r", "requirements.txt"]
    install = subprocess.run(pip, cwd=folder, capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    return venv


def push_bundled_pair(hub, tmp_path) -> dict:
    run = tmp_path / "run"
    shutil.copytree(ROOT / "space" / "models" / "mnist-6to9", run / "generator_AtoB")
    shutil.copytree(ROOT / "space" / "models" / "mnist-9to6", run / "generator_BtoA")
    env = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "home")}
    result = cli("push", str(run), "--repo-id", "user/mnist-6to9", env=env)
    assert result.returncode == 0, result.stderr
    return env


def push_converted_pair(tmp_path, env) -> None:
    """A tiny official-layout horse <-> zebra pair, converted and pushed as twin repos."""
    import torch

    from tests.support.official_layout import ResnetGenerator, randomized

    for seed, name in enumerate(("horse2zebra", "zebra2horse")):
        torch.save(randomized(ResnetGenerator(ngf=4, n_blocks=2), seed).state_dict(), tmp_path / f"{name}.pth")
    result = cli(
        "convert",
        str(tmp_path / "horse2zebra.pth"),
        "--reverse",
        str(tmp_path / "zebra2horse.pth"),
        "--output",
        str(tmp_path / "h2z"),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    result = cli("push", str(tmp_path / "h2z"), "--repo-id", "user/horse2zebra", env=env)
    assert result.returncode == 0, result.stderr


def test_deploy_then_install_and_run_what_was_uploaded(hub, olah, tmp_path):
    env = push_bundled_pair(hub, tmp_path)
    push_converted_pair(tmp_path, env)
    # a stray secret and an untracked note in the package folder: neither may reach the public Space
    strays = [ROOT / "cyclegan_hub" / ".env", ROOT / "cyclegan_hub" / "untracked_notes.py"]
    strays[0].write_text("HF_TOKEN=hf_not_a_real_token\n")
    strays[1].write_text("# a local scratch file\n")
    try:
        result = cli(
            "deploy-space",
            "--space-id",
            "user/cyclegan-demo",
            "--model",
            "user/mnist-6to9",
            "--model",
            "user/horse2zebra",
            "--hardware",
            "cpu-upgrade",
            env=env,
            timeout=600,
        )
    finally:
        for stray in strays:
            stray.unlink()
    assert result.returncode == 0, result.stderr
    space = hub.repo_path("space", "user/cyclegan-demo")
    files = sorted(git(space, "ls-files").splitlines())
    wheels = [f for f in files if f.endswith(".whl")]
    assert [f for f in files if not f.endswith(".whl")] == [".gitattributes", "README.md", "app.py", "requirements.txt"]
    assert len(wheels) == 1 and wheels[0].startswith("cyclegan_hub-")
    with zipfile.ZipFile(space / wheels[0]) as wheel:
        packed = sorted(n for n in wheel.namelist() if ".dist-info/" not in n)
    tracked = sorted(git(ROOT, "ls-files", "cyclegan_hub").splitlines())
    assert packed == tracked  # exactly the package's own files: no .env, no untracked note
    assert (space / "app.py").read_text() == (ROOT / "space" / "app.py").read_text()  # one app, not a copy
    assert not list(space.rglob("*.safetensors"))  # models are configuration, not bundled weights
    meta = yaml.safe_load((space / "README.md").read_text().split("---")[1])
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__ and meta["app_file"] == "app.py"
    assert meta["models"] == ["user/mnist-6to9", "user/mnist-9to6", "user/horse2zebra", "user/zebra2horse"]
    assert meta["license"] == "mit" and "cyclegan" in meta["tags"] and meta["suggested_hardware"] == "cpu-upgrade"
    assert hub.hardware == {"user/cyclegan-demo": "cpu-upgrade"}  # requested through huggingface_hub
    assert meta["title"] and meta["emoji"]
    requirements = (space / "requirements.txt").read_text().split()
    assert requirements == [f"./{wheels[0]}[video]", f"gradio=={gradio.__version__}"]

    # The Space: a fresh checkout of what was uploaded, a fresh venv with exactly its requirements.
    checkout = tmp_path / "space-checkout"
    subprocess.run(["git", "clone", "-q", str(space), str(checkout)], check=True)
    venv = venv_with_requirements(checkout, tmp_path / "venv")
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import cyclegan_hub; print(cyclegan_hub.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=checkout,
    ).stdout
    assert str(venv) in where  # the package came from the uploaded wheel, not from this checkout

    proc, url = start_app(
        {
            "HF_ENDPOINT": olah,
            "HF_HUB_OFFLINE": "0",
            "HF_HOME": str(tmp_path / "space-home"),
            "HF_HUB_DISABLE_XET": "1",
            "CYCLEGAN_MODELS": "",
        },
        app=checkout / "app.py",
        python=str(venv / "bin" / "python"),
        timeout=300,
    )
    try:
        from gradio_client import Client, handle_file

        from tests.space.test_app import read_digit

        client = Client(url, verbose=False)
        translated, reconstructed, _ = client.predict(
            handle_file(ROOT / "space" / "examples" / "6-test0.png"), "6 -> 9", api_name="/translate"
        )
        assert read_digit(translated) == 9 and read_digit(reconstructed) == 6
        from PIL import Image

        Image.new("RGB", (96, 64), (120, 90, 40)).save(tmp_path / "horse.png")
        zebra, horse, _ = client.predict(handle_file(tmp_path / "horse.png"), "horse -> zebra", api_name="/translate")
        assert Image.open(zebra).size == (96, 64) and Image.open(zebra).mode == "RGB"
        from tests.space.test_video_space import FRAMES, digit_clip

        clip = digit_clip(tmp_path / "six.mp4", audio=False)  # the Space's requirements install PyAV
        _, note = client.predict(handle_file(clip), "6 -> 9", api_name="/translate_video")
        assert note.startswith(f"6 -&gt; 9: {FRAMES} frames")
    finally:
        stop_app(proc)


def test_the_space_folder_installs_as_its_requirements_say(tmp_path):
    """space/ pushed to a Space as it is: requirements.txt installs cyclegan-hub from its repository by a URL that
    pip accepts. Here that repository is a clone of this one, reached by file URL instead of GitHub."""
    requirements = (ROOT / "space" / "requirements.txt").read_text()
    from cyclegan_hub.models.cyclegan import INSTALL_URL

    assert INSTALL_URL in requirements and f"gradio=={gradio.__version__}" in requirements.split()
    clone = tmp_path / "repository"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    folder = tmp_path / "space"
    shutil.copytree(ROOT / "space", folder, ignore=shutil.ignore_patterns(".gradio", "*.pyi", "__pycache__"))
    (folder / "requirements.txt").write_text(requirements.replace(INSTALL_URL, f"git+file://localhost{clone}"))
    venv = venv_with_requirements(folder, tmp_path / "venv")
    proc, url = start_app(
        {"HF_HUB_OFFLINE": "1", "CYCLEGAN_MODELS": ""},
        app=folder / "app.py",
        python=str(venv / "bin" / "python"),
        timeout=300,
    )
    try:
        from gradio_client import Client, handle_file

        from tests.space.test_app import read_digit

        translated, _, _ = Client(url, verbose=False).predict(
            handle_file(folder / "examples" / "6-test0.png"), "6 -> 9", api_name="/translate"
        )
        assert read_digit(translated) == 9
    finally:
        stop_app(proc)


def test_deploy_checks_the_models_before_uploading(hub, tmp_path):
    env = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "home")}
    result = cli("deploy-space", "--space-id", "user/demo", "--model", "user/nothing-here", env=env)
    assert result.returncode == 1 and "user/nothing-here cannot be served" in result.stderr
    result = cli(
        "deploy-space",
        "--space-id",
        "user/demo",
        "--model",
        "user/a,user/b",
        "--model",
        "user/c",
        "--reverse-model",
        "user/d",
        env=env,
    )
    assert result.returncode == 1 and "--reverse-model names the reverse of a single --model" in result.stderr
    hub.create_repo("model", "user/not-a-gan")
    repo = hub.repo_path("model", "user/not-a-gan")
    (repo / "README.md").write_text("# a text model\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "card")
    result = cli(
        "deploy-space",
        "--space-id",
        "user/demo",
        "--model",
        "user/not-a-gan",
        "--reverse-model",
        "user/not-a-gan",
        env=env,
    )
    assert result.returncode == 1 and "user/not-a-gan cannot be served" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not hub.repo_path("space", "user/demo").exists()
    no_token = env | {"HF_TOKEN": ""}
    result = cli("deploy-space", "--space-id", "user/demo", "--model", "user/x", env=no_token)
    assert result.returncode == 1 and "no Hugging Face token" in result.stderr


def test_an_installed_package_deploys_a_wheel_of_its_own_recorded_files(tmp_path):
    """Without a checkout (installed from a wheel), deploy-space rebuilds the wheel from what the installed
    distribution records: the package's files and its metadata, nothing else from site-packages."""
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    (target / "cyclegan_hub" / "stray.py").write_text("# not recorded by the distribution\n")
    code = (
        "import sys, zipfile, pathlib; from cyclegan_hub.serving import deploy;"
        "assert deploy.source_checkout() is None;"
        "wheel = deploy.installed_wheel(pathlib.Path(sys.argv[1]));"
        "print('\\n'.join(sorted(zipfile.ZipFile(wheel).namelist())))"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = result.stdout.split()
    tracked = sorted(git(ROOT, "ls-files", "cyclegan_hub").splitlines())
    assert sorted(n for n in names if ".dist-info/" not in n) == tracked
    assert {n.split("/", 1)[1] for n in names if ".dist-info/" in n} == {
        "METADATA",
        "WHEEL",
        "RECORD",
        "entry_points.txt",
    }


def test_requirements_follow_the_pairs_and_the_hardware():
    from cyclegan_hub.serving.deploy import space_requirements

    wheel = "cyclegan_hub-0.1.0-py3-none-any.whl"
    pinned = f"gradio=={gradio.__version__}"
    assert space_requirements(wheel, [], "cpu-basic").split() == [f"./{wheel}[video]", pinned]
    # a one-step pair needs the turbo extra; ZeroGPU hardware needs the spaces package for spaces.GPU
    assert space_requirements(wheel, ["turbo"], "zero-a10g").split() == [f"./{wheel}[turbo,video]", pinned, "spaces"]
    assert space_requirements(wheel, ["turbo"], "t4-small").split() == [f"./{wheel}[turbo,video]", pinned]
