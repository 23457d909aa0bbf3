"""The CycleGANs already on the Hub (the HugGAN sprint's repos: a pickled ``pytorch_model.bin`` and a README, no
config) convert by repo id through the real huggingface_hub client against the local Hub server; loading such a repo
directly says which command converts it."""

import subprocess
import sys

import torch

from cyclegan_hub import CycleGenerator
from tests.conftest import ROOT, cli, hub_env
from tests.support.hub_server import git
from tests.support.official_layout import randomized
from tests.support.other_layouts import HugGANGenerator


def _huggan_repo(hub, repo_id: str) -> tuple[torch.nn.Module, str]:
    original = randomized(HugGANGenerator(3, blocks=2, features=8), seed=5)
    repo = hub.repo_path("model", repo_id)
    hub.create_repo("model", repo_id)
    torch.save(original.state_dict(), repo / "pytorch_model.bin")
    (repo / "README.md").write_text("---\ntags:\n- huggan\n- gan\n---\n# CycleGAN sim2real\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "HugGAN push")
    return original, git(repo, "rev-parse", "HEAD")


def test_a_huggan_repo_converts_by_repo_id_and_from_pretrained_says_how(hub, tmp_path):
    original, commit = _huggan_repo(hub, "huggan/sim2real_cyclegan")
    env = hub_env(hub.url, token=None) | {"HF_HOME": str(tmp_path / "home")}

    # loading it as a model: one line naming the command, nothing unpickled
    from PIL import Image

    Image.new("RGB", (40, 30)).save(tmp_path / "street.png")
    loaded = cli(
        "translate",
        "--model",
        "huggan/sim2real_cyclegan",
        str(tmp_path / "street.png"),
        "--output",
        str(tmp_path / "x.png"),
        env=env,
    )
    assert loaded.returncode == 1, loaded.stderr
    assert loaded.stderr.strip().splitlines() == [
        "cyclegan-hub: error: huggan/sim2real_cyclegan holds a pickled checkpoint (pytorch_model.bin) and no config.json; "
        "from_pretrained reads only safetensors: convert it once with "
        "`cyclegan-hub convert huggan/sim2real_cyclegan --output converted/sim2real_cyclegan`"
    ]

    out = tmp_path / "converted" / "sim2real_cyclegan"
    done = cli(
        "convert",
        "huggan/sim2real_cyclegan",
        "--source-domain",
        "sim",
        "--target-domain",
        "real",
        "--output",
        str(out),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "pytorch_model.bin: ResNet-2 generator (HugGAN / eriklindernoren layout)" in done.stdout
    card = (out / "README.md").read_text()
    assert f"`pytorch_model.bin` of the Hub repo `huggan/sim2real_cyclegan` at revision `{commit}`" in card
    g = CycleGenerator.from_pretrained(out)
    assert (g.config["source_domain"], g.config["target_domain"]) == ("sim", "real")
    x = torch.rand(1, 3, 64, 96) * 2 - 1
    with torch.inference_mode():
        assert (g(x) - original(x)).abs().max().item() <= 1e-5


def test_a_repo_id_that_does_not_exist_is_one_line(hub, tmp_path):
    env = hub_env(hub.url, token=None) | {"HF_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "cyclegan_hub.cli", "convert", "nobody/nothing", "--output", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == "cyclegan-hub: error: nobody/nothing: no such file, folder or Hub model repo (or revision)"
    )
    assert not (tmp_path / "out").exists()
