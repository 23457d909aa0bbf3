"""The one-step family trains by its authors' recipe: from the same weights, batch and random numbers, one step and
three steps of this project's trainer step give the losses and the trained tensors of their training loop
(``tests/support/authors_turbo_training.py``: their generator updates with LPIPS, their vision-aided critics with
DiffAugment, their clipping and AdamW, in float32), on a tiny base, a tiny CLIP and a VGG16 of random weights."""

import contextlib

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("transformers")

import torch
from safetensors.torch import load_file

from cyclegan_hub.models.turbo import ADAPTER, OneStepTranslator
from cyclegan_hub.training import config as configs
from cyclegan_hub.training import perceptual
from cyclegan_hub.training.families import StepParts
from tests.support import authors_critic, authors_lpips
from tests.support.authors_turbo import caption_embedding
from tests.support.authors_turbo_training import AuthorsTraining
from tests.support.turbo_base import make_base, tiny_clip
from tests.training.conftest import ROOT

DATA = ROOT / "training" / "data" / "mnist-6-9"
#: their command's settings (lr raised from 1e-5 so that three steps move the adapters measurably)
ARGS = dict(
    lora_rank_unet=4,
    lora_rank_vae=4,
    learning_rate=1e-4,
    max_grad_norm=10.0,
    lambda_gan=0.5,
    lambda_cycle=1.0,
    lambda_idt=1.0,
    lambda_cycle_lpips=10.0,
    lambda_idt_lpips=1.0,
)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recipe")
    trunk = authors_lpips.make_trunk(folder / "vgg16")
    tiny_clip(12).save_pretrained(folder / "clip")
    return make_base(folder / "base"), trunk, folder / "clip", folder


def our_config(base, trunk, clip, folder):
    path = folder / "recipe.toml"
    path.write_text(
        f'[domain_a]\nlabel = "6"\npath = "{DATA}"\nfilter = "label == 6"\n'
        f'[domain_b]\nlabel = "9"\npath = "{DATA}"\nfilter = "label == 9"\n'
        "[data]\nimage_size = 16\nload_size = 16\nchannels = 3\nflip = false\n"
        f'[model]\nfamily = "cyclegan-turbo"\nbase_model = "{base}"\nunet_rank = {ARGS["lora_rank_unet"]}\n'
        f"vae_rank = {ARGS['lora_rank_vae']}\nvae_lora_scale = {8 / ARGS['lora_rank_vae']}\nunet_lora_scale = 1.0\n"
        'caption_a = "a six"\ncaption_b = "a nine"\ndiscriminator = "clip"\n'
        f'clip_model = "{clip}"\naugment = "color,translation,cutout"\ntrain_encode = "sample"\n'
        f"lambda_gan = {ARGS['lambda_gan']}\nlambda_cycle_lpips = {ARGS['lambda_cycle_lpips']}\n"
        f'lambda_idt_lpips = {ARGS["lambda_idt_lpips"]}\nlpips_model = "{trunk}"\n'
        f"weight_decay = 0.01\nmax_grad_norm = {ARGS['max_grad_norm']}\n"
        f"[train]\nbatch_size = 2\nlr = {ARGS['learning_rate']}\nbeta1 = 0.9\nbeta2 = 0.999\n"
        f'lambda_cycle = {ARGS["lambda_cycle"]}\nlambda_identity = {ARGS["lambda_idt"]}\ngan_mode = "vanilla"\n'
    )
    return configs.load(str(path))


def theirs_lpips(trunk):
    features = authors_lpips.tv_vgg16_features()
    state = load_file(trunk / "model.safetensors")
    features.load_state_dict({k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")})
    net = authors_lpips.LPIPS(features)
    heads = load_file(perceptual.HEADS_PATH)
    for index, lin in enumerate(net.lins):
        lin.model[1].weight.data.copy_(heads[f"lin{index}"])
    return net.requires_grad_(False)


def their_name(ours: str, theirs: dict, adapters) -> str:
    """Their parameter's name for one of ours (``ours`` without its network prefix)."""
    for adapter in adapters:
        name = ours.replace(f".{ADAPTER}.", f".{adapter}.")
        if name in theirs:
            return name
    raise KeyError(ours)


def trained(nets) -> dict:
    """Our trained tensors (and the skip convolutions), by direction and name."""
    out = {}
    for direction, net in (("a2b", nets["G"]), ("b2a", nets["F"])):
        for name, p in net.named_parameters():
            if p.requires_grad or ".skip_conv_" in name:
                out[(direction, name)] = p
    return out


def pairs(nets, authors):
    """(ours, theirs) for every trained tensor: the UNet's from their three adapters, each VAE's from its own."""
    unet = dict(authors.unet.named_parameters())
    vaes = {"a2b": authors.vae_enc.vae, "b2a": authors.vae_enc.vae_b2a}
    vaes = {direction: dict(vae.named_parameters()) for direction, vae in vaes.items()}
    for (direction, name), p in trained(nets).items():
        if name.startswith("unet."):
            adapters = ("default_encoder", "default_decoder", "default_others")
            yield name, p, unet[their_name(name.removeprefix("unet."), unet, adapters)]
        else:
            yield name, p, vaes[direction][their_name(name.removeprefix("vae."), vaes[direction], ("vae_skip",))]


def start_alike(nets, authors) -> None:
    """Their generators' starting weights into ours; our critics' heads into theirs (disc_a judges B: our D_B)."""
    with torch.no_grad():
        for _, ours, theirs in pairs(nets, authors):
            ours.copy_(theirs)
    for theirs, ours in ((authors.net_disc_a, nets["D_B"]), (authors.net_disc_b, nets["D_A"])):
        theirs.load_state_dict(authors_critic.heads_from(ours), strict=False)


def compare_tensors(nets, authors, tolerance: float) -> float:
    """Every trained tensor equals theirs to ``tolerance`` (absolute) or 1e-5 (relative); returns the largest
    difference."""
    largest = 0.0
    for name, ours, theirs in pairs(nets, authors):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=tolerance, msg=lambda m, n=name: f"{n}: {m}")
        largest = max(largest, float((ours - theirs).abs().max()))
    return largest


@pytest.fixture
def draws_like_their_scheduler(monkeypatch):
    """Their one step is diffusers' ``DDPMScheduler.step`` per image, which draws a noise tensor of the latents'
    shape and adds it scaled by the variance of a step to t = -1 (1e-10); this project computes that step without
    drawing. So that the posterior samples of the following passes come from the same random numbers, our
    translator draws (and drops) the same tensors here."""
    denoise = OneStepTranslator.denoise

    def drawing(self, latents):
        out = denoise(self, latents)
        for _ in range(latents.shape[0]):
            torch.randn(latents.shape[1:], dtype=latents.dtype, device=latents.device)
        return out

    monkeypatch.setattr(OneStepTranslator, "denoise", drawing)


@pytest.mark.parametrize("steps", [1, 3])
def test_the_step_equals_the_authors_training_step(parts, steps, draws_like_their_scheduler, monkeypatch):
    monkeypatch.setattr(authors_critic, "HEADS_DTYPE", [torch.float64])
    base, trunk, clip, folder = parts
    config = our_config(base, trunk, clip, folder)
    torch.manual_seed(0)
    nets = config.family.build(config)
    nets["D_A"].encoder.double()  # float64 on both sides: see below
    for net in nets.values():
        net.double()
    optimizers = config.family.optimizers(nets, config, torch.device("cpu"))
    step = config.family.make_step(
        StepParts(nets, nets, optimizers, {}, config, contextlib.nullcontext, torch.Tensor.backward)
    )
    encoder = nets["D_A"].encoder
    torch.manual_seed(1)
    authors = AuthorsTraining(
        str(base),
        ARGS,
        caption_embedding(str(base), "a nine"),
        caption_embedding(str(base), "a six"),
        lambda: authors_critic.Discriminator(encoder),
        theirs_lpips(trunk),
    )
    # Both sides run in float64, so that their float rounding (1e-16 here) stays far below what the comparison
    # resolves: in float32 it shows where a gradient is next to nothing, since AdamW moves every value by about lr
    perceptual.load_lpips(str(trunk)).double()
    for part in (authors.unet, authors.vae_enc, authors.net_disc_a, authors.net_disc_b, authors.net_lpips):
        part.double()
    authors.fixed_a2b_emb_base = authors.fixed_a2b_emb_base.double()
    authors.fixed_b2a_emb_base = authors.fixed_b2a_emb_base.double()
    start_alike(nets, authors)
    before = {key: p.detach().clone() for key, p in trained(nets).items()}
    # what trains upstream: the skip convolutions' own weights are frozen by peft, their adapters train
    assert not authors.vae_enc.vae.decoder.skip_conv_1.base_layer.weight.requires_grad
    assert not nets["G"].vae.decoder.skip_conv_1.base_layer.weight.requires_grad
    generator = torch.Generator().manual_seed(2)
    real_a, real_b = (
        torch.nn.functional.interpolate(
            torch.rand(2, 3, 4, 4, generator=generator) * 2 - 1, size=16, mode="bilinear"
        ).double()
        for _ in range(2)
    )
    torch.manual_seed(3)
    ours = [step(real_a, real_b) for _ in range(steps)]
    torch.manual_seed(3)
    theirs = [authors.step(real_a, real_b) for _ in range(steps)]
    lam = ARGS["lambda_gan"]
    for mine, their in zip(ours, theirs):
        expected = [
            their["cycle"],
            their["gan"],
            their["idt"],
            their["disc_b"] / (2 * lam),
            their["disc_a"] / (2 * lam),
        ]
        torch.testing.assert_close(mine.double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-5, atol=0)
    lr = ARGS["learning_rate"]
    largest = compare_tensors(nets, authors, tolerance=1e-9)
    print(f"\n{steps} step(s): largest difference of a trained value {largest:.2e} (lr {lr:g})")
    changed = [key for key, p in trained(nets).items() if not torch.equal(before[key], p)]
    assert any(name.startswith("unet.") for _, name in changed) and any(".lora_" in n for _, n in changed)
