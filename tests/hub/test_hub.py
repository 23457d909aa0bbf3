"""Push with the real huggingface_hub client to a local Hub server; read back through olah, an independent mirror."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from cyclegan_hub.hub.repos import twin_repo_id
from tests.conftest import cli, hub_env
from tests.support.hub_server import HubServer, git
from tests.training.conftest import ROOT, TINY, run_train

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
    for repo, twin, (src, dst) in (
        ("user/mnist-6to9", "user/mnist-9to6", ("6", "9")),
        ("user/mnist-9to6", "user/mnist-6to9", ("9", "6")),
    ):
        files = committed_files(hub, repo)
        assert files == [".gitattributes", "README.md", "config.json", "model.safetensors", "sample.png"]
        assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
        card = (hub.repo_path("model", repo) / "README.md").read_text()
        meta = yaml.safe_load(card.split("---")[1])
        assert meta["library_name"] == "cyclegan-hub" and meta["pipeline_tag"] == "image-to-image"
        assert "unpaired-image-translation" in meta["tags"] and meta["license"] == "mit"
        results = meta["model-index"][0]["results"][0]["metrics"]
        assert {m["type"] for m in results} == {"translation_accuracy", "cycle_accuracy", "cycle_l1"}
        # huggingface_hub's own card classes read the metadata back: the figures of the card's table
        from huggingface_hub import ModelCard

        data = ModelCard.load(hub.repo_path("model", repo) / "README.md").data
        metrics = json.loads((run_dir / "metrics.json").read_text())
        own = "AtoB" if repo == "user/mnist-6to9" else "BtoA"
        by_type = {r.metric_type: r.metric_value for r in data.eval_results}
        assert by_type["translation_accuracy"] == round(metrics[f"translation_accuracy_{own}"], 4)
        assert data.datasets is None and data.base_model is None  # bundled data: no Hub dataset to name
        assert str(ROOT) not in card and "/tmp" not in card  # no path of this machine
        assert f'CycleGenerator.from_pretrained("{repo}")' in card
        assert f"[{twin}]" in card and "![input | translated | reconstructed](sample.png)" in card
        assert (
            f"# CycleGAN generator: {src} → {dst}" in card
            and "## Training" in card
            and "@inproceedings{zhu2017" in card
        )
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
    result = cli(
        "push",
        str(run_dir),
        "--repo-id",
        "user/digits",
        "--reverse-repo-id",
        "user/digits-back",
        "--revision",
        "exp",
        "--include-training-state",
        "--commit-message",
        "first try",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    repo = hub.repo_path("model", "user/digits")
    files = sorted(git(repo, "ls-tree", "-r", "--name-only", "exp").splitlines())
    assert sorted(f for f in files if f.startswith("training_state/")) == [
        "training_state/models.safetensors",
        "training_state/optimizers.safetensors",
        "training_state/rank-0.safetensors",
        "training_state/training_state.json",
    ]
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
    local = subprocess.run(
        [sys.executable, "-c", PULL, str(run_dir / "generator_AtoB"), str(run_dir / "generator_BtoA")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    pull_env = hub_env(olah, token=None) | {"HF_HOME": str(tmp_path / "pull-home")}
    remote = subprocess.run(
        [sys.executable, "-c", PULL, "user/mnist-6to9", "user/mnist-9to6"],
        env=pull_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert remote.returncode == 0, remote.stderr[-2000:]
    remote = remote.stdout.split()
    assert remote[1::4] == local[1::4]  # identical outputs
    assert remote[2::4] == ["6", "9"] and remote[3::4] == ["9", "6"]
    # cached: offline from now on
    offline = subprocess.run(
        [sys.executable, "-c", PULL, "user/mnist-6to9"],
        env=pull_env | {"HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert offline.returncode == 0 and offline.stdout.split()[1] == local[1]
    # the CLI translates by repo id
    out = tmp_path / "nine.png"
    result = cli(
        "translate",
        "--model",
        "user/mnist-6to9",
        str(ROOT / "space" / "examples" / "6-test0.png"),
        "-o",
        str(out),
        env=pull_env | {"HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert out.is_file()


def test_bundled_dataset_served_by_olah_trains_by_hub_id(hub, olah, tmp_path):
    repo = hub.root / "datasets" / "user" / "mnist-6-9"
    shutil.copytree(ROOT / "training" / "data" / "mnist-6-9", repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "bundled dataset")
    env = hub_env(olah, token=None) | {"HF_HOME": str(tmp_path / "home")}
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import datasets; d = datasets.load_dataset('user/mnist-6-9');"
            "print(d['train'].num_rows, d['test'].num_rows, sorted(set(d['test']['label'])))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert check.returncode == 0, check.stderr[-2000:]
    assert check.stdout.split("\n")[-2] == "800 200 [6, 9]"
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "training" / "train.py"),
            *TINY,
            "--max-steps",
            "1",
            "--output-dir",
            str(out),
            "--set",
            'domain_a.path="user/mnist-6-9"',
            "--set",
            'domain_b.path="user/mnist-6-9"',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "400 images from user/mnist-6-9 split=train where label == 6" in result.stdout
    assert json.loads((out / "card.json").read_text())["datasets"] == ["user/mnist-6-9"]
    from huggingface_hub import ModelCard

    data = ModelCard.load(out / "generator_AtoB" / "README.md").data  # the card's metadata, read by the Hub's classes
    assert data.datasets == ["user/mnist-6-9"] and {r.metric_type for r in data.eval_results} >= {
        "translation_accuracy"
    }


def test_resume_from_the_hub(hub, olah, run_dir, tmp_path):
    push_env = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "push-home")}
    assert (
        cli("push", str(run_dir), "--repo-id", "user/mnist-6to9", "--include-training-state", env=push_env).returncode
        == 0
    )
    env = hub_env(olah, token=None) | {"HF_HOME": str(tmp_path / "home")}
    out = tmp_path / "finetune"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "training" / "train.py"),
            *TINY,
            "--max-steps",
            "3",
            "--output-dir",
            str(out),
            "--resume",
            "user/mnist-6to9",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "at step 2" in result.stdout
    assert json.loads((out / "metrics.json").read_text())["step"] == 3


def copy_run(run_dir, tmp_path):
    copy = tmp_path / "run-copy"
    shutil.copytree(run_dir, copy, symlinks=True)
    return copy


def test_push_never_follows_a_link_out_of_the_run(hub, run_dir, tmp_path):
    env = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "hf")}
    secret = tmp_path / "secret.png"
    from PIL import Image

    Image.new("RGB", (8, 8), (255, 0, 0)).save(secret)
    run = copy_run(run_dir, tmp_path)
    newest = sorted((run / "samples").glob("step-*.png"))[-1]
    os.symlink(secret, run / "samples" / "step-999999.png")  # the newest sample is a link to another file
    (run / "samples" / "step-999998.png").write_text("not an image")
    result = cli("push", str(run), "--repo-id", "user/mnist-6to9", env=env)
    assert result.returncode == 0, result.stderr
    assert "skipped samples/step-999999.png: not a regular file of its own inside the run (a link?)" in result.stderr
    assert "skipped samples/step-999998.png: " in result.stderr and "not an image" in result.stderr
    pushed = hub.repo_path("model", "user/mnist-6to9") / "sample.png"
    assert pushed.read_bytes() == newest.read_bytes()  # the newest real sample, not what the link points to

    # weights or config behind a link: refused, nothing pushed
    run = copy_run(run_dir, tmp_path / "2")
    weights = run / "generator_BtoA" / "model.safetensors"
    os.rename(weights, tmp_path / "elsewhere.safetensors")
    os.symlink(tmp_path / "elsewhere.safetensors", weights)
    hub.commits.clear()
    result = cli("push", str(run), "--repo-id", "user/other-6to9", env=env)
    assert result.returncode == 1 and "model.safetensors is not a regular file of its own inside" in result.stderr
    assert hub.commits == [] and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("attack", ["pointer-out", "pointer-absolute", "linked-step"])
def test_training_state_comes_only_from_the_run_folder(hub, run_dir, tmp_path, attack):
    env = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "hf")}
    run = copy_run(run_dir, tmp_path)
    checkpoints = run / "checkpoints"
    outside = tmp_path / "outside" / "step-000002"
    shutil.copytree(checkpoints / "step-000002", outside)
    if attack == "pointer-out":
        (checkpoints / "latest").write_text("../../outside/step-000002")
    elif attack == "pointer-absolute":
        (checkpoints / "latest").write_text(str(outside))
    else:
        shutil.rmtree(checkpoints / "step-000002")
        os.symlink(outside, checkpoints / "step-000002")
    result = cli("push", str(run), "--repo-id", "user/mnist-6to9", "--include-training-state", env=env)
    assert result.returncode == 1 and hub.commits == []
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not a step folder of this run" in result.stderr or "has no checkpoint" in result.stderr


@pytest.mark.parametrize("attack", ["hard-link", "not-safetensors"])
def test_training_state_files_are_the_runs_own_safetensors(hub, run_dir, tmp_path, attack):
    """A hard link (st_nlink > 1) puts bytes from outside the run under a name inside it; a training-state file that
    is not safetensors is not training state. Both are refused in one line, before anything is uploaded."""
    env = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "hf")}
    run = copy_run(run_dir, tmp_path)
    step = run / "checkpoints" / "step-000002"
    target = step / "optimizers.safetensors"
    if attack == "hard-link":
        secret = tmp_path / "secret.safetensors"
        shutil.copyfile(target, secret)
        target.unlink()
        os.link(secret, target)
        expected = "optimizers.safetensors is not a regular file of its own inside"
    else:
        target.write_bytes(b"PK\x03\x04 a zip, not tensors" * 10)
        expected = "optimizers.safetensors is not a"
    result = cli("push", str(run), "--repo-id", "user/mnist-6to9", "--include-training-state", env=env)
    assert result.returncode == 1 and hub.commits == [], result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and expected in result.stderr
