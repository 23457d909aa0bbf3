"""The trainer end to end: smoke runs (1 and 2 processes), exact resume, kill-and-resume, bad inputs."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from cyclegan_hub import CycleGenerator

from .conftest import ROOT, TINY, TRAIN, run_train

pytestmark = pytest.mark.slow


def test_two_step_smoke_run_writes_a_complete_run_folder(tmp_path):
    out = tmp_path / "run"
    result = run_train(*TINY, "--max-steps", "2", "--output-dir", str(out), "--set", "train.eval_every=1")
    assert "domain A (6): 400 images" in result.stdout and "domain B (9): 400 images" in result.stdout
    for name in ("generator_AtoB", "generator_BtoA"):
        assert sorted(p.name for p in (out / name).iterdir()) == ["README.md", "config.json", "model.safetensors"]
    g = CycleGenerator.from_pretrained(out / "generator_AtoB")
    f = CycleGenerator.from_pretrained(out / "generator_BtoA")
    assert (g.config["source_domain"], g.config["target_domain"], g.config["in_channels"]) == ("6", "9", 1)
    assert (f.config["source_domain"], f.config["target_domain"]) == ("9", "6")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == 2 and 0 <= metrics["translation_accuracy_a2b"] <= 1 and metrics["n_images_a"] == 16
    card = (out / "generator_AtoB" / "README.md").read_text()
    assert "translation accuracy" in card and "2 steps of batch 4 x 1 process(es)" in card
    assert json.loads((out / "run_config.json").read_text())["train"]["max_steps"] == 2
    log = [json.loads(line) for line in (out / "eval_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2] and 0 < log[0]["elapsed_s"] < log[1]["elapsed_s"]
    assert {k: v for k, v in log[1].items() if k not in ("elapsed_s", "step")} == {k: v for k, v in metrics.items() if k != "step"}
    assert (out / "samples" / "step-000002.png").is_file()
    assert list((out / "logs").rglob("events.out.tfevents.*"))
    assert (out / "checkpoints" / "latest").read_text() == "step-000002"
    assert "train: 100%" in result.stderr  # the progress bar


def test_two_processes_ddp_over_gloo(tmp_path):
    out = tmp_path / "ddp"
    run_train(*TINY, "--max-steps", "2", "--output-dir", str(out), processes=2)
    state = json.loads((out / "checkpoints" / "step-000002" / "training_state.json").read_text())
    assert state["num_processes"] == 2 and state["step"] == 2
    assert {p.name for p in (out / "checkpoints" / "step-000002").glob("rank-*")} == {"rank-0.safetensors", "rank-1.safetensors"}
    CycleGenerator.from_pretrained(out / "generator_AtoB")


def test_two_processes_train_as_one_with_the_same_global_batch(tmp_path):
    """DDP is data parallelism, not a different recipe: 2 processes x batch 2 take the same samples as 1 process x
    batch 4 (ranks take slices of the global batch) and reach the same weights (without the image pool, which is
    per process), while 1 process x batch 2 (other data) does not."""
    common = [*TINY, "--max-steps", "2", "--checkpoint-every", "2", "--set", "train.pool_size=0"]
    runs = {"ddp": (2, "2"), "single": (1, "4"), "half": (1, "2")}
    weights = {}
    for name, (processes, batch) in runs.items():
        run_train(*common, "--batch-size", batch, "--output-dir", str(tmp_path / name), processes=processes)
        # Convolution weights only: a bias just before an instance norm has a zero gradient up to float noise,
        # which Adam scales to full-size steps of random sign, so biases differ between any two reduction orders.
        weights[name] = {k: v for k, v in _checkpoint(tmp_path / name, 2)[0].items() if k.endswith(".weight")}

    def distance(a, b):
        return sum(float(((a[k] - b[k]) ** 2).sum()) for k in a) ** 0.5

    assert distance(weights["ddp"], weights["single"]) < 0.05 * distance(weights["half"], weights["single"])


def _checkpoint(run, step):
    path = run / "checkpoints" / f"step-{step:06d}"
    return load_file(str(path / "models.safetensors")), load_file(str(path / "optimizers.safetensors")), \
        load_file(str(path / "rank-0.safetensors")), json.loads((path / "training_state.json").read_text())


def test_resume_is_exact_weight_for_weight(tmp_path):
    common = [*TINY, "--checkpoint-every", "3", "--set", "train.pool_size=3", "--set", "data.flip=true",
              "--set", "data.load_size=32", "--set", "train.lr_constant_steps=2", "--set", "train.lr_decay_steps=4"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_train(*common, "--max-steps", "6", "--output-dir", str(straight))
    run_train(*common, "--max-steps", "3", "--output-dir", str(resumed))
    result = run_train(*common, "--max-steps", "6", "--output-dir", str(resumed), "--resume", "latest")
    assert "resumed from" in result.stdout and "step 3" in result.stdout
    a, b = _checkpoint(straight, 6), _checkpoint(resumed, 6)
    for part_a, part_b in zip(a[:3], b[:3]):  # weights, optimizer moments, pools and RNG
        assert part_a.keys() == part_b.keys()
        for key in part_a:
            assert torch.equal(part_a[key], part_b[key]), key
    assert a[3]["sched_g"] == b[3]["sched_g"] and a[3]["step"] == b[3]["step"] == 6


def test_sigkill_at_any_moment_leaves_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "killed"
    args = [sys.executable, str(TRAIN), *TINY, "--max-steps", "400", "--checkpoint-every", "1",
            "--checkpoints-total-limit", "2", "--output-dir", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    deadline = time.time() + 240
    while time.time() < deadline and not (out / "checkpoints" / "step-000004").exists():
        time.sleep(0.05)
    time.sleep(0.37)  # somewhere inside a later step or checkpoint write
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    kept = sorted(p.name for p in (out / "checkpoints").glob("step-*"))
    assert 1 <= len(kept) <= 3  # the limit prunes old ones (a third may be mid-prune)
    latest = (out / "checkpoints" / "latest").read_text()
    _checkpoint(out, int(latest.split("-")[1]))  # every file of it reads
    result = run_train(*TINY, "--max-steps", str(int(latest.split("-")[1]) + 1), "--output-dir", str(out), "--resume", "latest")
    assert f"resumed from {out / 'checkpoints' / latest}" in result.stdout


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--set", 'domain_a.path="no/such-dataset-here"'], "domain A (6): dataset 'no/such-dataset-here' is not a local folder, and the Hub cannot be reached"),
        (["--set", 'domain_b.image_column="picture"'], "domain B (9): no column 'picture'"),
        (["--set", 'domain_a.filter="label == 12"'], "unknown value 12; valid: 0, 1"),
        (["--set", 'domain_b.filter="label == 3"'], "training/data/mnist-6-9 split=train where label == 3 empty (label values present: 6, 9)"),
        (["--set", "model.d_layers=3"], "gives a 1x1 patch map on 28x28 images; use fewer layers"),
        (["--set", "model.colour=3"], "unknown key(s) in [model]: colour"),
        (["--set", "train.lr=1e38", "--max-steps", "30"], "training diverged by step"),
        (["--set", "train.compile=fast"], "train.compile = 'fast': use one of False, True, 'default', 'reduce-overhead'"),
        (["--set", "train.eval_every=-5"], "train.eval_every = -5: use a number of steps"),
    ],
)
def test_bad_inputs_give_one_line_errors(tmp_path, extra, message):
    result = run_train(*TINY, "--max-steps", "2", "--output-dir", str(tmp_path / "bad"), *extra, check=False)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: ") and message in last, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_full_disk_is_a_clear_error_and_keeps_the_last_checkpoint(tmp_path, train_module, monkeypatch, capsys):
    import errno

    real_save = train_module.save_file
    calls = {"n": 0}

    def save_file_then_fill_the_disk(tensors, path):
        calls["n"] += 1
        if calls["n"] > 4:  # the first checkpoint (4 files) fits; the second does not
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real_save(tensors, path)

    monkeypatch.setattr(train_module, "save_file", save_file_then_fill_the_disk)
    out = tmp_path / "full"
    code = train_module.cli([*TINY, "--max-steps", "4", "--checkpoint-every", "2", "--output-dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert "no space left on the device while writing the checkpoint of step 4" in err and "step-000002" in err
    assert (out / "checkpoints" / "latest").read_text() == "step-000002"
    _checkpoint(out, 2)
    assert not (out / "checkpoints" / "step-000004").exists()


def test_help_documents_the_flags():
    result = subprocess.run([sys.executable, str(TRAIN), "--help"], capture_output=True, text=True, timeout=120)
    for flag in ("--config", "--output-dir", "--max-steps", "--seed", "--resume", "--checkpoint-every",
                 "--mixed-precision", "--checkpoints-total-limit", "--set"):
        assert flag in result.stdout


@pytest.mark.parametrize("config", sorted((ROOT / "training" / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(train_module, config):
    cfg = train_module.load_config(train_module.parse_args(["--config", str(config)]))
    for section in ("domain_a", "domain_b"):
        train_module.split_domain(cfg[section])
    from cyclegan_hub import PatchDiscriminator

    d = PatchDiscriminator(in_channels=cfg["data"]["channels"], n_layers=cfg["model"]["d_layers"])
    assert min(d.output_size(cfg["data"]["image_size"], cfg["data"]["image_size"])) >= 2
    t = cfg["train"]
    assert t["lr_constant_steps"] + t["lr_decay_steps"] == t["max_steps"]


def test_every_rng_round_trips(train_module):
    import random

    import numpy as np

    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = train_module.rng_state()
    expected = (random.random(), float(np.random.rand()), float(torch.rand(())))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    train_module.set_rng_state(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expected
