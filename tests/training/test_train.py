"""The trainer end to end: smoke runs (1 and 2 processes), exact resume, kill-and-resume, bad inputs."""

import dataclasses
import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from cyclegan_hub import CycleGenerator
from cyclegan_hub.training import config as configs
from cyclegan_hub.training import families
from tests.training.conftest import ROOT, TINY, TRAIN, run_train
from training import train as train_module

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
    assert metrics["step"] == 2 and 0 <= metrics["translation_accuracy_AtoB"] <= 1 and metrics["n_images_a"] == 16
    card = (out / "generator_AtoB" / "README.md").read_text()
    assert "translation accuracy" in card and "2 steps of batch 4 x 1 process(es)" in card
    assert json.loads((out / "run_config.json").read_text())["train"]["max_steps"] == 2
    log = [json.loads(line) for line in (out / "eval_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2] and 0 < log[0]["elapsed_s"] < log[1]["elapsed_s"]
    assert {k: v for k, v in log[1].items() if k not in ("elapsed_s", "step")} == {
        k: v for k, v in metrics.items() if k != "step"
    }
    for path in [out / "generator_AtoB" / "model.safetensors", *(out / "checkpoints" / "step-000002").iterdir()]:
        assert path.stat().st_mode & 0o777 == 0o644, path  # what open() gives under umask 022, not 0600
    assert (out / "samples" / "step-000002.png").is_file()
    assert list((out / "logs").rglob("events.out.tfevents.*"))
    assert (out / "checkpoints" / "latest").read_text() == "step-000002"
    assert "train: 100%" in result.stderr  # the progress bar


def test_two_processes_ddp_over_gloo(tmp_path):
    out = tmp_path / "ddp"
    run_train(*TINY, "--max-steps", "2", "--output-dir", str(out), processes=2)
    state = json.loads((out / "checkpoints" / "step-000002" / "training_state.json").read_text())
    assert state["num_processes"] == 2 and state["step"] == 2
    assert {p.name for p in (out / "checkpoints" / "step-000002").glob("rank-*")} == {
        "rank-0.safetensors",
        "rank-1.safetensors",
    }
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
    return (
        load_file(str(path / "models.safetensors")),
        load_file(str(path / "optimizers.safetensors")),
        load_file(str(path / "rank-0.safetensors")),
        json.loads((path / "training_state.json").read_text()),
    )


def test_resume_is_exact_weight_for_weight(tmp_path):
    common = [*TINY, "--checkpoint-every", "3", *"--set train.pool_size=3 --set data.flip=true".split()]
    common += "--set data.load_size=32 --set train.lr_constant_steps=2 --set train.lr_decay_steps=4".split()
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
    assert a[3]["schedulers"] == b[3]["schedulers"] and a[3]["step"] == b[3]["step"] == 6


def test_sigkill_at_any_moment_leaves_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "killed"
    args = [
        sys.executable,
        str(TRAIN),
        *TINY,
        "--max-steps",
        "400",
        "--checkpoint-every",
        "1",
        "--checkpoints-total-limit",
        "2",
        "--output-dir",
        str(out),
    ]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
    )
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
    result = run_train(
        *TINY, "--max-steps", str(int(latest.split("-")[1]) + 1), "--output-dir", str(out), "--resume", "latest"
    )
    assert f"resumed from {out / 'checkpoints' / latest} at step" in result.stdout


@pytest.mark.parametrize(
    "extra,message",
    [
        (
            ["--set", 'domain_a.path="no/such-dataset-here"'],
            "domain A (6): dataset 'no/such-dataset-here' is not a local folder, and the Hub cannot be reached",
        ),
        (["--set", 'domain_b.image_column="picture"'], "domain B (9): no column 'picture'"),
        (["--set", 'domain_a.filter="label == 12"'], "unknown value 12; valid: 0, 1"),
        (
            ["--set", 'domain_b.filter="label == 3"'],
            "training/data/mnist-6-9 split=train where label == 3 empty (label values present: 6, 9)",
        ),
        (["--set", "model.d_layers=3"], "gives a 1x1 patch map on 28x28 images; use fewer layers"),
        (["--set", "model.colour=3"], "--set model.colour: unknown key; valid: family, architecture"),
        (["--set", "train.lr=1e38"], "train.lr = 1e+38: use a value from 0.0 to 1.0"),
        (
            ["--set", "train.compile=fast"],
            'train.compile = "fast": use one of false, true, "default", "reduce-overhead"',
        ),
        (["--set", "train.eval_every=-5"], "train.eval_every = -5: use a value from 0 to"),
    ],
)
def test_bad_inputs_give_one_line_errors(tmp_path, extra, message):
    result = run_train(*TINY, "--max-steps", "2", "--output-dir", str(tmp_path / "bad"), *extra, check=False)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: ") and message in last, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_divergence_stops_with_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    real = families.CYCLEGAN
    calls = {"n": 0}

    def make_step_that_diverges(parts):
        step = real.make_step(parts)

        def diverging(*args):
            calls["n"] += 1
            losses = step(*args)
            return losses * float("nan") if calls["n"] > 2 else losses

        return diverging

    monkeypatch.setitem(families.FAMILIES, "cyclegan", dataclasses.replace(real, make_step=make_step_that_diverges))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = tmp_path / "nan"
    code = train_module.cli([*TINY, "--max-steps", "6", "--checkpoint-every", "2", "--output-dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert (
        "training diverged by step 3: loss_G_gan, loss_cycle, loss_identity, loss_D_A, loss_D_B became NaN/inf" in err
    )
    assert f"the last good checkpoint is {out / 'checkpoints' / 'step-000002'}" in err


def test_full_disk_is_a_clear_error_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    import errno

    import cyclegan_hub.models.modeling

    real_save = cyclegan_hub.models.modeling.safetensors.torch.save_file
    calls = {"n": 0}

    def save_file_then_fill_the_disk(tensors, path, *args, **kwargs):
        if "checkpoints" in str(path):
            calls["n"] += 1
            if calls["n"] > 3:  # the first checkpoint (3 tensor files) fits; the second does not
                raise OSError(errno.ENOSPC, "No space left on device", path)
        real_save(tensors, path, *args, **kwargs)

    monkeypatch.setattr(cyclegan_hub.models.modeling.safetensors.torch, "save_file", save_file_then_fill_the_disk)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = tmp_path / "full"
    code = train_module.cli([*TINY, "--max-steps", "4", "--checkpoint-every", "2", "--output-dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert "no space left on the device while writing the checkpoint of step 4" in err and "step-000002" in err
    assert (out / "checkpoints" / "latest").read_text() == "step-000002"
    _checkpoint(out, 2)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest", "step-000002"]  # nothing half-written


def test_help_documents_the_flags():
    result = subprocess.run([sys.executable, str(TRAIN), "--help"], capture_output=True, text=True, timeout=120)
    for flag in (
        "--config",
        "--output-dir",
        "--max-steps",
        "--seed",
        "--resume",
        "--checkpoint-every",
        "--mixed-precision",
        "--checkpoints-total-limit",
        "--set",
    ):
        assert flag in result.stdout


@pytest.mark.parametrize("config", sorted((ROOT / "training" / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(config):
    cfg = configs.load(config)
    from cyclegan_hub import PatchDiscriminator

    d = PatchDiscriminator(in_channels=cfg.data.channels, n_layers=cfg.model.d_layers)
    assert min(d.output_size(cfg.data.image_size, cfg.data.image_size)) >= 2
    assert cfg.train.lr_constant_steps + cfg.train.lr_decay_steps == cfg.train.max_steps


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--set", "train.lambda_cycle=ten"], 'train.lambda_cycle = "ten": expected a number'),
        (["--set", "train.lambda_cycle=-1"], "train.lambda_cycle = -1.0: use a value from 0.0 to 1000.0"),
        (["--set", "train.lambda_cycle=true"], "train.lambda_cycle = true: expected a number"),
        (["--set", "train.lamda_cycle=5"], "--set train.lamda_cycle: unknown key (did you mean 'lambda_cycle'?)"),
        (["--push-to-hub"], "--push-to-hub needs --hub-repo-id (hub.repo_id)"),
        (["--push-to-hub", "--hub-repo-id", "user/x"], "--push-to-hub needs a Hugging Face token"),
        (["--set", 'domain_a.label="\\u001b[31m6"'], "domain_a.label holds the control character U+001B"),
        (["--set", f'domain_b.label="{"9" * 101}"'], "domain_b.label must be a text of 1 to 100 characters"),
    ],
)
def test_config_mistakes_are_one_line_before_any_data_is_read(tmp_path, extra, message):
    out = tmp_path / "never"
    env_token = {"HF_TOKEN": "", "HF_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, str(TRAIN), *TINY, "--output-dir", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**__import__("os").environ, **env_token},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"train.py: error: {result.stderr.split('error: ', 1)[1].strip()}"]
    assert message in result.stderr
    assert not out.exists() and "images" not in result.stdout + result.stderr  # before data, models or training


def test_without_a_config_the_trainer_says_what_to_give():
    result = subprocess.run(
        [sys.executable, str(TRAIN), "--max-steps", "2"], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "domain_a.path is not set: give --config" in result.stderr


def test_a_finished_run_folder_is_not_mixed_with_a_new_run(tmp_path):
    out = tmp_path / "run"
    common = [*TINY, "--max-steps", "2", "--output-dir", str(out), "--set", "train.eval_every=1"]
    run_train(*common)
    again = run_train(*common, check=False)
    assert again.returncode == 1
    assert (
        f"{out} already holds a run" in again.stderr
        and "--resume latest" in again.stderr
        and "--overwrite" in again.stderr
    )
    (out / "notes.txt").write_text("mine")
    run_train(*common, "--overwrite")
    log = [json.loads(line)["step"] for line in (out / "eval_log.jsonl").read_text().splitlines()]
    assert log == [1, 2]  # the old run's evaluations are gone, not appended to
    assert (out / "notes.txt").read_text() == "mine"  # --overwrite removes what a run writes, nothing else
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest", "step-000002"]


def test_ema_trains_where_torchvision_cannot_be_imported(tmp_path):
    """A torchvision whose compiled ops do not match torch (a CPU torch wheel beside a default-index torchvision)
    dies on import; diffusers' EMA imported it. The trainer's EMA is torch's own and never imports torchvision."""
    stub = tmp_path / "stub" / "torchvision"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    env = {
        **__import__("os").environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "PYTHONPATH": f"{tmp_path / 'stub'}:{ROOT}",
    }
    broken = subprocess.run([sys.executable, "-c", "import torchvision"], env=env, capture_output=True, text=True)
    assert "torchvision::nms does not exist" in broken.stderr  # the environment is really broken
    out = tmp_path / "ema"
    result = subprocess.run(
        [sys.executable, str(TRAIN), *TINY, "--max-steps", "2", "--output-dir", str(out), "--set", "train.ema=true"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    CycleGenerator.from_pretrained(out / "generator_AtoB")


def test_init_from_an_official_checkpoint_starts_from_its_weights(tmp_path):
    from tests.support.official_layout import NLayerDiscriminator, ResnetGenerator, randomized

    official = tmp_path / "official"
    official.mkdir()
    nets = {
        "G_A": ResnetGenerator(1, 1, ngf=4, n_blocks=1),
        "G_B": ResnetGenerator(1, 1, ngf=4, n_blocks=1),
        "D_A": NLayerDiscriminator(1, ndf=4, n_layers=2),
        "D_B": NLayerDiscriminator(1, ndf=4, n_layers=2),
    }
    for seed, (name, net) in enumerate(nets.items()):
        torch.save(randomized(net, seed).state_dict(), official / f"latest_net_{name}.pth")
    out = tmp_path / "finetune"
    # lr 0: the one step changes no weight, so the exported pair is the official pair as converted
    result = run_train(
        *TINY,
        "--max-steps",
        "1",
        "--output-dir",
        str(out),
        "--init-from-official",
        str(official),
        "--set",
        "train.lr=0",
    )
    assert "initialised G, F, D_A, D_B from the official checkpoint latest" in result.stdout
    x = torch.rand(3, 1, 28, 36) * 2 - 1
    for folder, name in (("generator_AtoB", "G_A"), ("generator_BtoA", "G_B")):
        ours = CycleGenerator.from_pretrained(out / folder)
        with torch.inference_mode():
            assert (ours(x) - nets[name](x)).abs().max() < 1e-5
    models = _checkpoint(out, 1)[0]
    d_b = {k[4:]: v for k, v in models.items() if k.startswith("D_B.")}  # our D_B judges domain B: official D_A
    assert all(torch.equal(d_b[k], v) for k, v in nets["D_A"].state_dict().items())
    wrong = run_train(
        *TINY,
        "--max-steps",
        "1",
        "--output-dir",
        str(tmp_path / "wrong"),
        "--init-from-official",
        str(official),
        "--set",
        "model.n_blocks=2",
        check=False,
    )
    assert "the official G has n_blocks = 1, this config 2" in wrong.stderr.strip().splitlines()[-1]


def test_the_readme_layout_for_your_own_images_trains_as_written(tmp_path):
    """The README's folder layout and config, as written (only sizes shrunk for a test), train and evaluate."""
    import numpy as np
    from PIL import Image

    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- own-images-config -->")[1].split("<!-- /own-images-config -->")[0]
    toml = block.split("```toml")[1].split("```")[0]
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("test", 3)):
        for domain, tint in (("horse", (150, 100, 60)), ("zebra", (230, 230, 230))):
            folder = tmp_path / "my-data" / split / domain
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(rng.normal(tint, 40, (48, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg")
    (tmp_path / "my-data.toml").write_text(toml)
    out = tmp_path / "run"
    small = "--set data.image_size=32 --set data.load_size=36 --set model.base_channels=4 --set model.n_blocks=1"
    small += " --set model.d_base_channels=4 --set model.d_layers=2"
    config = tmp_path / "my-data.toml"
    result = run_train("--config", str(config), "--output-dir", str(out), "--max-steps", "2", *small.split())
    assert "domain A (horse): 6 images" in result.stdout and "domain B (zebra): 6 images" in result.stdout
    assert [json.loads(line)["n_images_a"] for line in (out / "eval_log.jsonl").read_text().splitlines()] == [3]
    g = CycleGenerator.from_pretrained(out / "generator_AtoB")
    assert (g.config["source_domain"], g.config["target_domain"]) == ("horse", "zebra")
    assert str(tmp_path) not in (out / "generator_AtoB" / "README.md").read_text()  # the card names folders, not paths


def test_resume_refuses_a_tampered_checkpoint_in_one_line(tmp_path):
    out = tmp_path / "run"
    run_train(*TINY, "--max-steps", "2", "--output-dir", str(out))
    state_file = out / "checkpoints" / "step-000002" / "training_state.json"
    text = state_file.read_text()
    assert str(tmp_path) not in text and str(ROOT) not in text  # no path of this machine in what push may publish
    meta = json.loads(text)
    for change, message in (
        (lambda m: m.update(step=-100), "step must be a whole number >= 0, got -100"),
        (
            lambda m: m["optimizers"]["G"]["param_groups"][0].update(betas=[5, -1]),
            "optimizers.G.betas must be 2 numbers from 0 to 0.999999",
        ),
    ):
        tampered = json.loads(json.dumps(meta))
        change(tampered)
        state_file.write_text(json.dumps(tampered))
        result = run_train(*TINY, "--max-steps", "4", "--output-dir", str(out), "--resume", "latest", check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert message in result.stderr.strip().splitlines()[-1]
    (out / "checkpoints" / "latest").write_text("../../..")
    result = run_train(*TINY, "--max-steps", "4", "--output-dir", str(out), "--resume", "latest", check=False)
    assert (
        "checkpoints/latest names '../../..', not a step folder of this run" in result.stderr.strip().splitlines()[-1]
    )


def test_the_converted_layouts_options_train_too(tmp_path):
    """CUT's anti-aliased sampling, HugGAN's zero-padded resize and affine InstanceNorm are [model] keys like any
    other: a run with them trains, checkpoints the norms' scales and saves the options in config.json."""
    out = tmp_path / "run"
    options = ['model.downsampling="antialias"', 'model.upsampling="antialias"', 'model.norm="instance_affine"']
    run_train(*TINY, "--max-steps", "2", "--output-dir", str(out), *(a for o in options for a in ("--set", o)))
    g = CycleGenerator.from_pretrained(out / "generator_AtoB")
    assert (g.config["downsampling"], g.config["upsampling"], g.config["norm"]) == (
        "antialias",
        "antialias",
        "instance_affine",
    )
    scales = [m.weight for m in g.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert scales and all(s is not None for s in scales)
    first = _checkpoint(out, 2)[0]
    assert any(k.endswith(".weight") and v.dim() == 1 for k, v in first.items())
