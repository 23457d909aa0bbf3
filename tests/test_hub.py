"""Push with the real huggingface_hub client to a local Hub server; read back through olah, an independent mirror."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from cyclegan_hub.hub import twin_repo_id

from .conftest import cli, hub_env
from .hub_server import HubServer, git
from .training.conftest import ROOT, TINY, run_train

pytestmark = pytest.mark.slow


def test_twin_names():
    assert twin_repo_id("user/mnist-6to9") == "user/mnist-9to6"
    assert twin_repo_id("user/horse2zebra") == "user/zebra2horse"
    assert twin_repo_id("me/cyclegan-summer2winter-256") == "me/cyclegan-winter2summer-256"
    assert twin_repo_id("me/van_gogh") == "me/van_gogh-reverse"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "mnist-6to9"
    run_train(*TINY, "--max-steps", "2", "--output-dir", str(out))
    return out


def committed_files(hub: HubServer, repo: str, repo_type: str = "model") -> list[str]:
    return sorted(git(hub.repo_path(repo_type, repo), "ls-files").splitlines())


def test_push_writes_two_complete_repos_in_one_commit_each(hub, run_dir, tmp_path):
    env = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "hf")}
    result = cli("push", str(run_dir), "--repo-id", "user/mnist-6to9", env=env)
    assert result.returncode == 0, result.stderr
    assert "pushed user/mnist-6to9" in result.stdout and "pushed user/mnist-9to6" in result.stdout
    assert "write-token" not in result.stdout + result.stderr
    assert hub.commits == ["models/user/mnist-6to9@main", "models/user/mnist-9to6@main"]
    for repo, twin, (src, dst) in (("user/mnist-6to9", "user/mnist-9to6", ("6", "9")), ("user/mnist-9to6", "user/mnist-6to9", ("9", "6"))):
        files = committed_files(hub, repo)
        assert files == [".gitattributes", "README.md", "config.json", "model.safetensors", "sample.png"]
        assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
        card = (hub.repo_path("model", repo) / "README.md").read_text()
        meta = yaml.safe_load(card.split("---")[1])
        assert meta["library_name"] == "cyclegan-hub" and meta["pipeline_tag"] == "image-to-image"
        assert "unpaired-image-translation" in meta["tags"] and meta["license"] == "mit"
        results = meta["model-index"][0]["results"][0]["metrics"]
        assert {m["type"] for m in results} == {"translation_accuracy_a2b", "cycle_accuracy_a2b", "cycle_l1_a2b"}
        assert f'CycleGenerator.from_pretrained("{repo}")' in card
        assert f"[{twin}]" in card and "![input | translated | reconstructed](sample.png)" in card
        assert f"# CycleGAN generator: {src} → {dst}" in card and "## Training" in card and "@inproceedings{zhu2017" in card
        assert "write-token" not in card
        config = json.loads((hub.repo_path("model", repo) / "config.json").read_text())
        assert (config["source_domain"], config["target_domain"]) == (src, dst)


def test_push_errors_are_one_line_and_push_nothing(hub, run_dir, tmp_path):
    base = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "hf")}
    cases = [
        (base | {"HF_TOKEN": ""}, [], "no Hugging Face token"),
        (base | {"HF_TOKEN": "wrong"}, [], "rejected the token (401)"),
        (base | {"HF_TOKEN": "other-token"}, [], "no write access to user/mnist-6to9 (403)"),
        (base, ["500", "500", "500"], "refused the push to user/mnist-6to9 (500)"),
        (base, ["drop", "drop", "drop"], "could not reach the Hub for user/mnist-6to9 after 3 attempts"),
    ]
    for env, faults, message in cases:
        hub.fail_next = list(faults)
        result = cli("push", str(run_dir), "--repo-id", "user/mnist-6to9", env=env)
        assert result.returncode == 1, result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr
        assert "Traceback" not in result.stderr
        for repo in ("user/mnist-6to9", "user/mnist-9to6"):
            path = hub.repo_path("model", repo)
            assert not path.exists() or committed_files(hub, repo) == [".gitattributes"]
    assert hub.commits == []
    # a transient failure is retried and the push goes through
    hub.fail_next = ["drop"]
    assert cli("push", str(run_dir), "--repo-id", "user/mnist-6to9", env=base).returncode == 0
    # a folder that is not a run
    result = cli("push", str(tmp_path), "--repo-id", "user/x", env=base)
    assert result.returncode == 1 and "has no generator_AtoB/ with weights" in result.stderr


def test_push_to_a_branch_with_training_state(hub, run_dir, tmp_path):
    env = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "hf")}
    result = cli("push", str(run_dir), "--repo-id", "user/digits", "--reverse-repo-id", "user/digits-back",
                 "--revision", "exp", "--include-training-state", "--commit-message", "first try", env=env)
    assert result.returncode == 0, result.stderr
    repo = hub.repo_path("model", "user/digits")
    files = sorted(git(repo, "ls-tree", "-r", "--name-only", "exp").splitlines())
    assert "training_state/optimizers.safetensors" in files and "training_state/training_state.json" in files
    assert git(repo, "log", "-1", "--format=%s", "exp") == "first try"
    assert committed_files(hub, "user/digits") == [".gitattributes"]  # main untouched


# ---- reads through olah ----------------------------------------------------------------------------------------

PULL = """
import hashlib, sys, torch
from cyclegan_hub import CycleGenerator
torch.manual_seed(0)
x = torch.rand(4, 1, 28, 28) * 2 - 1
for name in sys.argv[1:]:
    g = CycleGenerator.from_pretrained(name)
    with torch.no_grad():
        print(name, hashlib.sha256(g(x).numpy().tobytes()).hexdigest(), g.config["source_domain"], g.config["target_domain"])
"""


def test_pull_by_repo_id_through_olah_gives_identical_outputs_and_works_offline(hub, olah, run_dir, tmp_path):
    push_env = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "push-home")}
    assert cli("push", str(run_dir), "--repo-id", "user/mnist-6to9", env=push_env).returncode == 0
    local = subprocess.run([sys.executable, "-c", PULL, str(run_dir / "generator_AtoB"), str(run_dir / "generator_BtoA")],
                           capture_output=True, text=True, check=True, timeout=120).stdout.split()
    pull_env = hub_env(olah, token=None) | {"HF_HOME": str(tmp_path / "pull-home")}
    remote = subprocess.run([sys.executable, "-c", PULL, "user/mnist-6to9", "user/mnist-9to6"], env=pull_env,
                            capture_output=True, text=True, timeout=180)
    assert remote.returncode == 0, remote.stderr[-2000:]
    remote = remote.stdout.split()
    assert remote[1::4] == local[1::4]  # identical outputs
    assert remote[2::4] == ["6", "9"] and remote[3::4] == ["9", "6"]
    # cached: offline from now on
    offline = subprocess.run([sys.executable, "-c", PULL, "user/mnist-6to9"], env=pull_env | {"HF_HUB_OFFLINE": "1"},
                             capture_output=True, text=True, timeout=120)
    assert offline.returncode == 0 and offline.stdout.split()[1] == local[1]
    # the CLI translates by repo id
    out = tmp_path / "nine.png"
    result = cli("translate", "--model", "user/mnist-6to9", str(ROOT / "space" / "examples" / "6-test0.png"), "-o", str(out),
                 env=pull_env | {"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert out.is_file()


def test_bundled_dataset_served_by_olah_trains_by_hub_id(hub, olah, tmp_path):
    repo = hub.root / "datasets" / "user" / "mnist-6-9"
    shutil.copytree(ROOT / "training" / "data" / "mnist-6-9", repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "bundled dataset")
    env = hub_env(olah, token=None) | {"HF_HOME": str(tmp_path / "home")}
    check = subprocess.run([sys.executable, "-c", "import datasets; d = datasets.load_dataset('user/mnist-6-9');"
                            "print(d['train'].num_rows, d['test'].num_rows, sorted(set(d['test']['label'])))"],
                           env=env, capture_output=True, text=True, timeout=180)
    assert check.returncode == 0, check.stderr[-2000:]
    assert check.stdout.split("\n")[-2] == "800 200 [6, 9]"
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), *TINY, "--max-steps", "1",
                             "--output-dir", str(out), "--set", 'domain_a.path="user/mnist-6-9"',
                             "--set", 'domain_b.path="user/mnist-6-9"'], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "400 images from user/mnist-6-9 split=train where label == 6" in result.stdout
    assert json.loads((out / "card.json").read_text())["datasets"] == ["user/mnist-6-9"]


def test_resume_from_the_hub(hub, olah, run_dir, tmp_path):
    push_env = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "push-home")}
    assert cli("push", str(run_dir), "--repo-id", "user/mnist-6to9", "--include-training-state", env=push_env).returncode == 0
    env = hub_env(olah, token=None) | {"HF_HOME": str(tmp_path / "home")}
    out = tmp_path / "finetune"
    result = subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), *TINY, "--max-steps", "3",
                             "--output-dir", str(out), "--resume", "user/mnist-6to9"], env=env, capture_output=True,
                            text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "at step 2" in result.stdout
    assert json.loads((out / "metrics.json").read_text())["step"] == 3
