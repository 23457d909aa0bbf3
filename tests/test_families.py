"""A second model family plugs in from this one file, through the public extension points only (its record in
``cyclegan_hub.families``, a ``HubModule`` with ``Options`` and a ``TranslationSpec``, a trainer ``Family``, a
converter): it is translated, served, trained, checkpointed, resumed, converted and deployed with its extra like
CycleGAN, without any module of the package knowing of it."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from cyclegan_hub import CycleGenerator, translation
from cyclegan_hub import families as records
from cyclegan_hub.cli import main
from cyclegan_hub.hub.repos import load_generator
from cyclegan_hub.models.modeling import HubModule
from cyclegan_hub.models.options import Options, integer, text, value_range
from cyclegan_hub.serving.pairs import PairTranslator, load_pair
from cyclegan_hub.training import families, losses
from cyclegan_hub.training.schema import model_section
from cyclegan_hub.translation import TranslationSpec
from tests.conftest import hub_env
from tests.training.conftest import ROOT


class ToyTranslator(HubModule, library_name="toy-translation", tags=["toy"]):
    """A stride-2 encoder and a nearest-upsampling decoder: small, but it needs padding to a multiple of 2."""

    model_type = "toy"
    options = Options(
        in_channels=integer(1, "input channels", 1, 3),
        out_channels=integer(1, "output channels", 1, 3),
        width=integer(4, "hidden channels", 1, 16, card="width", train="width"),
        source_domain=text("A", "input domain"),
        target_domain=text("B", "output domain"),
        image_size=integer(28, "training size", 1, 512),
        value_range=value_range((-1.0, 1.0), "[low, high] of the network"),
    )

    def __init__(self, **config):
        super().__init__()
        self.config = config
        self.down = nn.Conv2d(config["in_channels"], config["width"], 3, stride=2, padding=1)
        self.up = nn.Conv2d(config["width"], config["out_channels"], 3, padding=1)
        self.translation_spec = TranslationSpec(
            config["in_channels"], config["out_channels"], tuple(config["value_range"]), size_multiple=2, min_size=2
        )

    def forward(self, x):
        hidden = torch.relu(self.down(x))
        return torch.tanh(self.up(nn.functional.interpolate(hidden, scale_factor=2.0)) + x[:, :1])


def _build(config):
    a, b, width = config.domain_a.label, config.domain_b.label, config.model.width
    shared = dict(in_channels=config.data.channels, out_channels=config.data.channels, width=width)
    return {
        "G": ToyTranslator(source_domain=a, target_domain=b, **shared),
        "F": ToyTranslator(source_domain=b, target_domain=a, **shared),
    }


def _make_step(parts):
    g, f, opt = parts.nets["G"], parts.nets["F"], parts.optimizers["GF"]

    def step(real_a, real_b):
        with parts.autocast():
            loss = losses.cycle_loss(f(g(real_a)), real_a) + losses.cycle_loss(g(f(real_b)), real_b)
        opt.zero_grad(set_to_none=True)
        parts.backward(loss)
        opt.step()
        return loss.detach().float()[None]

    return step


TOY = families.register(
    families.Family(
        name="toy",
        model_section=model_section("ToyModel", "``[model]``: the toy family.", "toy", *ToyTranslator.options),
        build=_build,
        optimizers=lambda nets, config, device: {
            "GF": torch.optim.SGD([*nets["G"].parameters(), *nets["F"].parameters()], lr=0.05, momentum=0.9)
        },
        pools=lambda config: {},
        make_step=_make_step,
        loss_names=("cycle",),
    )
)


class ToyConverter:
    """Reads a toy network's bare state dict (``torch.save``d) with the width it was built with."""

    def checkpoint(self, source, output, *, reverse, revision, settings, options) -> list[str]:
        state = torch.load(source, weights_only=True)
        domains = dict(source_domain=options["source_domain"] or "A", target_domain=options["target_domain"] or "B")
        net = ToyTranslator(width=int(settings["toy_width"]), **domains)
        net.load_state_dict(state)
        net.save_pretrained(output)
        return [f"{source}: a toy network of width {settings['toy_width']}", f"wrote {output}"]

    def zoo(self, model, output, **kwargs) -> list[str]:
        raise AssertionError("the toy family has no zoo")


TOY_CONVERTER = ToyConverter()

TOY_RECORD = records.register(
    records.Record(
        name="toy",
        title="Toy",
        models=__name__,
        trainer=__name__,
        converter=f"{__name__}:TOY_CONVERTER",
        convert_options=(records.CliOption("--toy-width", "the toy network's hidden channels", required=True),),
        extra="toy",
    )
)


def toy_pair(tmp_path):
    torch.manual_seed(0)
    g, f = ToyTranslator(source_domain="6", target_domain="9"), ToyTranslator(source_domain="9", target_domain="6")
    for net, name in ((g, "toy-6to9"), (f, "toy-9to6")):
        net.save_pretrained(tmp_path / name)
    return g, f


def test_a_toy_family_translates_any_size_through_the_one_path(tmp_path):
    g, f = toy_pair(tmp_path)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (13, 9), dtype=np.uint8))
    out, back = g.translate(image, return_reconstruction_with=f)
    assert out.size == back.size == (9, 13) and out.mode == "L"
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255 * 2 - 1)[None, None]
    with torch.no_grad():
        expected = ((translation.run(g, x)[0, 0] + 1) / 2 * 255).clamp(0, 255).round().to(torch.uint8).numpy()
    assert np.abs(np.asarray(out).astype(int) - expected.astype(int)).max() <= 1


def test_a_toy_model_loads_by_its_config_and_is_served_as_a_pair(tmp_path):
    g, f = toy_pair(tmp_path)
    assert json.loads((tmp_path / "toy-6to9" / "config.json").read_text())["model_type"] == "toy"
    loaded = load_generator(str(tmp_path / "toy-6to9"))
    assert type(loaded) is ToyTranslator and loaded.config == g.config
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), g.state_dict().values()))
    with pytest.raises(ValueError, match=r"is a 'toy' model, not a CycleGenerator; load it with HubModule"):
        CycleGenerator.from_pretrained(tmp_path / "toy-6to9")
    _, models = load_pair(str(tmp_path / "toy-6to9"))
    pair = PairTranslator(*models)
    result = pair.translate(str(ROOT / "space" / "examples" / "6-test0.png"), "6 -> 9")
    assert result.translated.size == (28, 28) and result.cycle_error >= 0


def test_a_toy_family_trains_checkpoints_and_resumes_exactly(tmp_path, monkeypatch):
    from training import train as train_module

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    config = tmp_path / "toy.toml"
    data = ROOT / "training" / "data" / "mnist-6-9"
    config.write_text(
        f'[domain_a]\nlabel = "6"\npath = "{data}"\nfilter = "label == 6"\n'
        f'[domain_b]\nlabel = "9"\npath = "{data}"\nfilter = "label == 9"\n'
        "[data]\nimage_size = 28\nload_size = 28\nchannels = 1\nflip = false\n"
        '[model]\nfamily = "toy"\nwidth = 3\n'
        "[train]\nbatch_size = 4\nlog_every = 1\nsample_every = 2\ncheckpoint_every = 2\n"
    )
    base = ["--config", str(config), "--max-steps", "4"]
    assert train_module.cli([*base, "--output-dir", str(tmp_path / "straight")]) == 0
    assert train_module.cli([*base, "--output-dir", str(tmp_path / "resumed"), "--max-steps", "2"]) == 0
    assert train_module.cli([*base, "--output-dir", str(tmp_path / "resumed"), "--resume", "latest"]) == 0
    for direction in ("generator_AtoB", "generator_BtoA"):
        straight = load_file(tmp_path / "straight" / direction / "model.safetensors")
        resumed = load_file(tmp_path / "resumed" / direction / "model.safetensors")
        assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)
    model = load_generator(str(tmp_path / "straight" / "generator_AtoB"))
    assert type(model) is ToyTranslator and model.config["width"] == 3 and model.config["source_domain"] == "6"
    state = json.loads((tmp_path / "straight" / "checkpoints" / "step-000004" / "training_state.json").read_text())
    assert state["optimizers"]["GF"]["class"] == "SGD"
    assert (tmp_path / "straight" / "samples" / "step-000004.png").is_file()
    run_config = json.loads((tmp_path / "straight" / "run_config.json").read_text())
    assert run_config["model"] == {"family": "toy", "width": 3}


def test_a_toy_checkpoint_converts_through_its_record(tmp_path, capsys):
    net = ToyTranslator(width=3)
    torch.save(net.state_dict(), tmp_path / "toy.pt")
    assert main(["convert", str(tmp_path / "toy.pt"), "-o", str(tmp_path / "out"), "--toy-width", "3"]) == 0
    assert "a toy network of width 3" in capsys.readouterr().out
    loaded = HubModule.from_pretrained(tmp_path / "out")
    assert type(loaded) is ToyTranslator and loaded.config["width"] == 3
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values()))
    with pytest.raises(SystemExit):  # the parser is built from the records
        main(["convert", "--help"])
    assert "Toy checkpoints" in capsys.readouterr().out


def toy_cli(*args, env) -> subprocess.CompletedProcess:
    """The CLI in a process that has imported this file (its record registered), as a user's plugin would be."""
    code = "import sys, tests.test_families; from cyclegan_hub.cli import main; raise SystemExit(main(sys.argv[1:]))"
    run = [sys.executable, "-c", code, *args]
    return subprocess.run(run, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.mark.slow
def test_deploy_space_installs_the_toy_familys_extra(hub, tmp_path):
    g, f = toy_pair(tmp_path / "run")
    (tmp_path / "run" / "toy-6to9").rename(tmp_path / "run" / "generator_AtoB")
    (tmp_path / "run" / "toy-9to6").rename(tmp_path / "run" / "generator_BtoA")
    env = hub_env(hub.url) | {"HF_HOME": str(tmp_path / "home")}
    pushed = toy_cli("push", str(tmp_path / "run"), "--repo-id", "user/toy-6to9", env=env)
    assert pushed.returncode == 0, pushed.stderr
    deployed = toy_cli("deploy-space", "--space-id", "user/toy-demo", "--model", "user/toy-6to9", env=env)
    assert deployed.returncode == 0, deployed.stderr
    requirements = (hub.repo_path("space", "user/toy-demo") / "requirements.txt").read_text().split()
    assert requirements[0].endswith(".whl[toy,video]")
