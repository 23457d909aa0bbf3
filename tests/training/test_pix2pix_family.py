"""pix2pix through the trainer on the bundled paired task (a digit with a block erased -> the whole digit): a short
run beats the input itself on the held-out pairs, a run resumes exactly, the exported model is one paired
translator whose card says so, and `push` sends it as one repo."""

import json

import yaml
from safetensors.torch import load_file

from cyclegan_hub.models.modeling import HubModule
from cyclegan_hub.models.pix2pix import Pix2PixGenerator
from tests.conftest import cli, hub_env
from tests.training.conftest import ROOT, run_train

CONFIG = ROOT / "training" / "configs" / "mnist-inpaint.toml"


def test_a_short_run_beats_the_input_itself_on_held_out_pairs(tmp_path):
    out = tmp_path / "run"
    result = run_train(
        "--config", str(CONFIG), "--output-dir", str(out), "--max-steps", "100", "--set", "train.eval_every=0"
    )
    assert "pairs erased -> digit: 800 from" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_pairs"] == 200
    # the input itself: 14.6 dB, its digit read as the true one's half of the time (a quarter or more of the ink gone)
    assert metrics["psnr_AtoB"] > metrics["psnr_identity"] + 0.5, metrics
    assert metrics["digit_agreement_AtoB"] > metrics["digit_agreement_identity"] + 0.1, metrics
    assert not (out / "generator_BtoA").exists()
    model = HubModule.from_pretrained(out / "generator_AtoB")
    assert type(model) is Pix2PixGenerator and model.config["inference"] == "image_statistics"
    card = (out / "generator_AtoB" / "README.md").read_text()
    assert "# pix2pix generator: erased → digit" in card and "trained on **paired** examples" in card
    assert "pairs of mnist-inpaint split=train: A = column imageA, B = column imageB" in card
    assert "| digit agreement (classifier reads the true output's digit) |" in card
    meta = yaml.safe_load(card.split("---")[1])
    assert "paired-image-translation" in meta["tags"] and "unpaired-image-translation" not in meta["tags"]


def test_a_paired_run_resumes_exactly(tmp_path):
    small = ["--config", str(CONFIG), "--set", "train.batch_size=4", "--set", "data.eval_images=8"]
    small += ["--set", "model.base_channels=4", "--set", "train.ema=true", "--checkpoint-every", "2"]
    run_train(*small, "--output-dir", str(tmp_path / "straight"), "--max-steps", "4")
    run_train(*small, "--output-dir", str(tmp_path / "resumed"), "--max-steps", "2")
    run_train(*small, "--output-dir", str(tmp_path / "resumed"), "--max-steps", "4", "--resume", "latest")
    straight = load_file(tmp_path / "straight" / "checkpoints" / "step-000004" / "models.safetensors")
    resumed = load_file(tmp_path / "resumed" / "checkpoints" / "step-000004" / "models.safetensors")
    assert {k.split(".")[0] for k in straight} == {"G", "D", "ema_G"}  # running statistics included
    assert straight.keys() == resumed.keys() and all((straight[k] == resumed[k]).all() for k in straight)


def test_push_sends_a_paired_run_as_one_repo(hub, tmp_path):
    small = ["--config", str(CONFIG), "--set", "train.batch_size=4", "--set", "data.eval_images=8"]
    run_train(*small, "--set", "model.base_channels=4", "--output-dir", str(tmp_path / "run"), "--max-steps", "2")
    env = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "hf")}
    result = cli("push", str(tmp_path / "run"), "--repo-id", "user/mnist-inpaint", env=env)
    assert result.returncode == 0, result.stderr
    assert hub.commits == ["models/user/mnist-inpaint@main"]
    card = (hub.repo_path("model", "user/mnist-inpaint") / "README.md").read_text()
    assert "# pix2pix generator: erased → digit" in card
    wrong = cli("push", str(tmp_path / "run"), "--repo-id", "u/a", "--reverse-repo-id", "u/b", env=env)
    assert wrong.returncode == 1 and "holds one direction (a one-way model)" in wrong.stderr.strip().splitlines()[-1]
