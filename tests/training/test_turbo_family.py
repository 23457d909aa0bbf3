"""The one-step family through the same trainer: the authors' step reduces the cycle loss on a toy pair (in float32
and in bf16 autocast), gradient checkpointing changes memory and not the result, a run resumes exactly, its
checkpoint stores the shared UNet adapter once, and the exported pair loads as one-step translators."""

import contextlib
import json
from pathlib import Path

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("transformers")

import torch
from safetensors.torch import load_file

from cyclegan_hub.hub.repos import load_generator
from cyclegan_hub.models.turbo import OneStepTranslator
from cyclegan_hub.training import config as configs
from cyclegan_hub.training.families import StepParts
from tests.support.authors_lpips import make_trunk
from tests.support.turbo_base import make_base, tiny_clip
from tests.training.conftest import ROOT

DATA = ROOT / "training" / "data" / "mnist-6-9"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny base, with a VGG16 trunk of random weights beside it for LPIPS (``write_config`` points at it)."""
    folder = tmp_path_factory.mktemp("turbo-train")
    make_trunk(folder / "vgg16")
    return make_base(folder / "tiny-sd-turbo")


def write_config(folder, base, extra: str = "") -> str:
    path = folder / "turbo.toml"
    path.write_text(
        f'[domain_a]\nlabel = "6"\npath = "{DATA}"\nfilter = "label == 6"\n'
        f'[domain_b]\nlabel = "9"\npath = "{DATA}"\nfilter = "label == 9"\n'
        "[data]\nimage_size = 16\nload_size = 16\nchannels = 3\nflip = false\neval_images = 4\n"
        f'[model]\nfamily = "cyclegan-turbo"\nbase_model = "{base}"\nunet_rank = 4\nd_base_channels = 8\n'
        f'd_layers = 2\ncaption_a = "a six"\ncaption_b = "a nine"\nlpips_model = "{Path(base).parent / "vgg16"}"\n'
        f"{extra}"
        "[train]\nbatch_size = 2\nlog_every = 1\nsample_every = 2\ncheckpoint_every = 2\nlr = 1e-3\nbeta1 = 0.9\n"
        "lambda_cycle = 1.0\nlambda_identity = 1.0\n"
    )
    return str(path)


def steps(config, n: int, autocast=contextlib.nullcontext, seed: int = 0):
    torch.manual_seed(seed)
    nets = config.family.build(config)
    optimizers = config.family.optimizers(nets, config, torch.device("cpu"))
    parts = StepParts(nets, nets, optimizers, {}, config, autocast, torch.Tensor.backward)
    step = config.family.make_step(parts)
    generator = torch.Generator().manual_seed(1)
    # smooth images (coarse noise, upsampled): what a VAE with 4x fewer latent pixels can hold
    real_a, real_b = (
        torch.nn.functional.interpolate(torch.rand(2, 3, 4, 4, generator=generator) * 2 - 1, size=16, mode="bilinear")
        for _ in range(2)
    )
    return nets, [step(real_a, real_b) for _ in range(n)]


def test_the_step_reduces_the_cycle_loss_in_float32_and_in_bf16(base, tmp_path):
    config = configs.load(write_config(tmp_path, base))
    nets, losses = steps(config, 5)
    assert losses[-1][0] < 0.85 * losses[0][0], [float(x[0]) for x in losses]
    assert nets["G"].unet is nets["F"].unet and nets["G"].vae is not nets["F"].vae
    assert [p.dtype for p in nets["G"].parameters() if p.requires_grad] == [torch.float32] * len(
        [p for p in nets["G"].parameters() if p.requires_grad]
    )
    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    nets, losses = steps(config, 5, autocast=bf16)
    assert all(torch.isfinite(x).all() for x in losses)
    assert losses[-1][0] < 0.85 * losses[0][0], [float(x[0]) for x in losses]
    # master weights stay float32 under autocast: the update is not lost to bf16 rounding
    assert all(p.dtype == torch.float32 for p in nets["G"].parameters())


def test_gradient_checkpointing_gives_the_same_training(base, tmp_path):
    plain = configs.load(write_config(tmp_path, base))
    saving = configs.load(write_config(tmp_path, base, "gradient_checkpointing = true\n"))
    nets_a, losses_a = steps(plain, 2)
    nets_b, losses_b = steps(saving, 2)
    assert nets_b["G"].gradient_checkpointing and not nets_a["G"].gradient_checkpointing
    torch.testing.assert_close(torch.stack(losses_a), torch.stack(losses_b), rtol=1e-4, atol=1e-5)
    state_a, state_b = nets_a["G"].state_dict(), nets_b["G"].state_dict()
    assert all(torch.allclose(state_a[k], state_b[k], rtol=1e-4, atol=1e-6) for k in state_a)


def test_a_one_step_run_trains_checkpoints_and_resumes_exactly(base, tmp_path, monkeypatch):
    from training import train as train_module

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    args = [
        "--config",
        write_config(tmp_path, base),
        "--max-steps",
        "4",
        "--set",
        "train.ema=true",
        "--set",
        "data.eval_images=2",
    ]
    assert train_module.cli([*args, "--output-dir", str(tmp_path / "straight")]) == 0
    assert train_module.cli([*args, "--output-dir", str(tmp_path / "resumed"), "--max-steps", "2"]) == 0
    assert train_module.cli([*args, "--output-dir", str(tmp_path / "resumed"), "--resume", "latest"]) == 0
    for direction in ("generator_AtoB", "generator_BtoA"):
        straight = load_file(tmp_path / "straight" / direction / "model.safetensors")
        resumed = load_file(tmp_path / "resumed" / direction / "model.safetensors")
        assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)
        assert not [k for k in straight if "base_layer" in k and "conv_in" not in k and "skip_conv" not in k]
    # the shared UNet adapter is stored once in the checkpoint, under G; the EMA copies hold only trained tensors
    stored = load_file(tmp_path / "straight" / "checkpoints" / "step-000004" / "models.safetensors")
    assert any(k.startswith("G.unet.") for k in stored) and not any(k.startswith("F.unet.") for k in stored)
    ema = [k for k in stored if k.startswith("ema_G.")]
    assert ema and not [k for k in ema if "base_layer" in k and "conv_in" not in k and "skip_conv" not in k]
    state = json.loads((tmp_path / "straight" / "checkpoints" / "step-000004" / "training_state.json").read_text())
    assert state["optimizers"]["G"]["class"] == "AdamW"
    assert (tmp_path / "straight" / "samples" / "step-000004.png").is_file()
    model = load_generator(str(tmp_path / "straight" / "generator_BtoA"))
    assert type(model) is OneStepTranslator and model.config["caption"] == "a six"
    assert model.config["source_domain"] == "9" and model.config["base_model"] == str(base)
    card = (tmp_path / "straight" / "generator_AtoB" / "README.md").read_text()
    assert "CycleGAN-Turbo translator: 6 → 9" in card and "## Training" in card
    assert "on `tiny-sd-turbo` (a local folder)" in card and str(tmp_path) not in card.replace(str(base), "")


def test_settings_the_family_cannot_take_are_one_line(base, tmp_path, capsys):
    from training import train as train_module

    config = write_config(tmp_path, base)
    assert train_module.cli(["--config", config, "--set", "data.channels=1", "--output-dir", str(tmp_path / "r")]) == 1
    assert "translates RGB images: data.channels = 3" in capsys.readouterr().err
    assert (
        train_module.cli(
            ["--config", config, "--set", "model.discriminator='stylegan'", "--output-dir", str(tmp_path / "r")]
        )
        == 1
    )
    assert "model.discriminator" in capsys.readouterr().err
    missing = tmp_path / "no-clip"
    assert (
        train_module.cli(
            [
                "--config",
                config,
                "--set",
                "model.discriminator='clip'",
                "--set",
                f"model.clip_model='{missing}'",
                "--output-dir",
                str(tmp_path / "r"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"train.py: error: cannot load the CLIP image encoder {missing}")


def test_the_clip_discriminator_trains_its_heads_on_a_frozen_encoder(base, tmp_path):
    clip = tmp_path / "tiny-clip"
    tiny_clip(3).save_pretrained(clip)
    extra = f'discriminator = "clip"\nclip_model = "{clip}"\n'
    config = configs.load(write_config(tmp_path, base, extra), ["train.gan_mode='vanilla'"])
    torch.manual_seed(0)
    nets = config.family.build(config)
    d_a, d_b = nets["D_A"], nets["D_B"]
    assert d_a.encoder is d_b.encoder  # one frozen encoder for both
    assert all(k.startswith(("heads.", "embedding_head.")) for k in d_a.state_dict())  # the encoder is not state
    before = {k: v.clone() for k, v in d_a.state_dict().items()}
    encoder_before = {k: v.clone() for k, v in d_a.encoder.state_dict().items()}
    logits = d_a(torch.rand(2, 3, 16, 16) * 2 - 1)
    assert [tuple(x.shape) for x in logits] == [(2, 2, 2), (2, 2, 2), (2, 1)]  # two token-grid maps, the embedding
    nets, losses = steps(config, 3)
    assert all(torch.isfinite(x).all() for x in losses)
    after = nets["D_A"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the heads trained
    assert all(torch.equal(encoder_before[k], v) for k, v in nets["D_A"].encoder.state_dict().items())  # frozen


def test_two_processes_train_the_shared_adapter_as_one_process_does(base, tmp_path):
    """G and F share one UNet adapter under two DDP wrappers: 2 processes x batch 1 reach the weights of 1 process x
    batch 2 (the same samples). LoRA's B matrices start at zero, so their size is the size of the update."""
    from tests.training.conftest import run_train

    # the posterior's mean: sampled latents would draw different noise in one process and in two
    config = write_config(tmp_path, base, 'train_encode = "mean"\n')
    common = ["--config", config, "--max-steps", "2", "--checkpoint-every", "2"]
    weights = {}
    for name, processes, batch in (("ddp", 2, "1"), ("single", 1, "2")):
        run_train(*common, "--batch-size", batch, "--output-dir", str(tmp_path / name), processes=processes)
        stored = load_file(tmp_path / name / "checkpoints" / "step-000002" / "models.safetensors")
        weights[name] = {k: v for k, v in stored.items() if k.startswith(("G.", "F.")) and ".lora_B." in k}
    assert any(k.startswith("G.unet.") for k in weights["single"])  # the shared adapter is among them
    gap = sum(float(((weights["ddp"][k] - v) ** 2).sum()) for k, v in weights["single"].items()) ** 0.5
    update = sum(float((v**2).sum()) for v in weights["single"].values()) ** 0.5
    assert update > 0 and gap < 0.05 * update, (gap, update)


def test_a_converted_authors_checkpoint_fine_tunes_and_resumes_exactly(base, tmp_path, monkeypatch, capsys):
    """The authors' released file, converted as a pair, is the starting point of a run (lr 0: one step later the
    exported pair is the converted pair, tensor for tensor), and such a run resumes exactly."""
    from cyclegan_hub.cli import main
    from tests.support.authors_turbo import make_checkpoint
    from training import train as train_module

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    released = tmp_path / "day2night.pkl"
    torch.save(make_checkpoint(base, rank_unet=4, rank_vae=4, seed=1), released)
    pair = tmp_path / "converted"
    convert = ["convert", str(released), "--base-model", str(base), "--caption", "a nine", "--output", str(pair)]
    assert main([*convert, "--reverse-caption", "a six"]) == 0
    config = write_config(tmp_path, base)
    args = ["--config", config, "--init-from", str(pair), "--set", "data.eval_images=2"]
    assert (
        train_module.cli([*args, "--output-dir", str(tmp_path / "lr0"), "--max-steps", "1", "--set", "train.lr=0"]) == 0
    )
    for direction in ("generator_AtoB", "generator_BtoA"):
        started = load_file(tmp_path / "lr0" / direction / "model.safetensors")
        converted = load_file(pair / direction / "model.safetensors")
        assert started.keys() == converted.keys() and all(torch.equal(started[k], converted[k]) for k in started)

    assert train_module.cli([*args, "--output-dir", str(tmp_path / "straight"), "--max-steps", "2"]) == 0
    assert train_module.cli([*args, "--output-dir", str(tmp_path / "resumed"), "--max-steps", "1"]) == 0
    again = [*args, "--output-dir", str(tmp_path / "resumed"), "--max-steps", "2", "--resume", "latest"]
    assert train_module.cli(again) == 0
    for direction in ("generator_AtoB", "generator_BtoA"):
        straight = load_file(tmp_path / "straight" / direction / "model.safetensors")
        resumed = load_file(tmp_path / "resumed" / direction / "model.safetensors")
        converted = load_file(pair / direction / "model.safetensors")
        assert all(torch.equal(straight[k], resumed[k]) for k in straight)
        assert any(not torch.equal(straight[k], converted[k]) for k in straight)  # it trained

    # a model that is not the run's network: one line naming its first difference and the key that would match it
    wrong = [*args, "--output-dir", str(tmp_path / "x"), "--max-steps", "1", "--set", "model.unet_rank=8"]
    assert train_module.cli(wrong) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("train.py: error: --init-from: G from ") and "its unet_rank is 4, this run's 8" in err
    assert "(set model.unet_rank = 4 to start from it)" in err
    assert not (tmp_path / "x" / "generator_AtoB").exists()
