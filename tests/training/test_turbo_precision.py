"""bf16 learns: the authors' users who trained CycleGAN-Turbo with bf16 weights got translators that only
reconstruct their input (img2img-turbo issues 53 and 87). Here bf16 is autocast over float32 master weights, and a
toy unpaired task shows it learns as float32 does: red shapes become blue ones, and after 100 steps in either
precision G's outputs have moved from where they started, towards blue, by comparable amounts (figures printed)."""

import contextlib

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("transformers")

import torch

from cyclegan_hub.training import config as configs
from cyclegan_hub.training.families import StepParts
from tests.support.turbo_base import make_base
from tests.training.conftest import ROOT

DATA = ROOT / "training" / "data" / "mnist-6-9"
STEPS = 100


def shapes(color: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` 16x16 images in [-1, 1]: a gray field with a square of one primary colour (0 red, 2 blue) somewhere."""
    images = torch.full((n, 3, 16, 16), -0.2)
    for i in range(n):
        size = int(torch.randint(5, 9, (1,), generator=generator))
        top, left = (int(v) for v in torch.randint(0, 16 - size, (2,), generator=generator))
        images[i, :, top : top + size, left : left + size] = -1.0
        images[i, color, top : top + size, left : left + size] = 1.0
    return images


def blueness(images: torch.Tensor) -> float:
    return float((images[:, 2] - images[:, 0]).mean())


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("precision")
    base = make_base(folder / "base")
    path = folder / "shapes.toml"
    path.write_text(
        f'[domain_a]\nlabel = "red"\npath = "{DATA}"\n[domain_b]\nlabel = "blue"\npath = "{DATA}"\n'
        "[data]\nimage_size = 16\nload_size = 16\nchannels = 3\nflip = false\n"
        f'[model]\nfamily = "cyclegan-turbo"\nbase_model = "{base}"\nunet_rank = 4\nd_base_channels = 8\n'
        'd_layers = 2\ncaption_a = "red"\ncaption_b = "blue"\nlambda_cycle_lpips = 0.0\nlambda_idt_lpips = 0.0\n'
        "[train]\nbatch_size = 2\nlr = 1e-3\nbeta1 = 0.9\nlambda_cycle = 1.0\nlambda_identity = 0.5\n"
    )
    return configs.load(str(path))


def train(config, autocast) -> dict:
    torch.manual_seed(0)
    nets = config.family.build(config)
    optimizers = config.family.optimizers(nets, config, torch.device("cpu"))
    step = config.family.make_step(StepParts(nets, nets, optimizers, {}, config, autocast, torch.Tensor.backward))
    generator = torch.Generator().manual_seed(1)
    held_out = shapes(0, 8, generator)
    g = nets["G"]

    def outputs():
        g.eval()
        with torch.no_grad():
            out = g(held_out)
        g.train()
        return out

    start = outputs()
    for _ in range(STEPS):
        step(shapes(0, 2, generator), shapes(2, 2, generator))
    end = outputs()
    return {
        "moved": float((end - start).abs().mean()),
        "bluer": blueness(end) - blueness(start),
        "master_dtypes": {p.dtype for p in g.parameters() if p.requires_grad},
    }


def test_bf16_autocast_learns_as_float32_does(config):
    fp32 = train(config, contextlib.nullcontext)
    bf16 = train(config, lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    print(
        f"\n{STEPS} steps, red -> blue squares: output moved {fp32['moved']:.4f} (fp32) vs {bf16['moved']:.4f} (bf16);"
        f" blueness {fp32['bluer']:+.4f} (fp32) vs {bf16['bluer']:+.4f} (bf16)"
    )
    assert fp32["master_dtypes"] == bf16["master_dtypes"] == {torch.float32}
    assert fp32["moved"] > 0.02 and fp32["bluer"] > 0.02
    assert bf16["moved"] > 0.5 * fp32["moved"] and bf16["bluer"] > 0.5 * fp32["bluer"]
