"""pix2pix's zoo by name (``pix2pix/edges2shoes``, ...), downloaded from a local HTTP server that serves a randomized
official ``UnetGenerator`` (unet_256, batch norm, dropout modules) as their ``models-pytorch/NAME.pth``: converted
into a ``Pix2PixGenerator`` equal to their network as their test script runs it, one way only, with the CycleGAN
zoo's download checks; and a pix2pix run's ``latest_net_G.pth`` converted with ``--inference``."""

import copy
import hashlib
import json

import pytest
import torch
from torch import nn

from cyclegan_hub import CycleGenerator
from cyclegan_hub.cli import main
from cyclegan_hub.convert import zoo
from cyclegan_hub.models.modeling import HubModule
from cyclegan_hub.models.pix2pix import Pix2PixGenerator
from tests.convert.test_zoo import FileServer, _saved
from tests.support.official_layout import UnetGenerator, randomized

NAMES = ("facades_label2photo", "sat2map", "map2sat", "edges2shoes", "day2night")
PATH = "/pix2pix/models-pytorch/edges2shoes.pth"


@pytest.fixture(scope="module")
def official():
    """Their pix2pix generator: unet_256, batch norm, dropout on (small: 8 base channels)."""
    return randomized(UnetGenerator(3, 3, num_downs=8, ngf=8, norm="batch", dropout=True), seed=7)


@pytest.fixture
def server(official):
    with FileServer({PATH: _saved(official)}) as served:
        yield served


def as_their_test_script(official: nn.Module) -> nn.Module:
    """Their network as their test.py runs it (``train()``: batch norm on the batch's own statistics), dropout off;
    a copy, so that its running statistics stay the file's."""
    net = copy.deepcopy(official).train()
    for module in net.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    return net


def convert(server, tmp_path, name="pix2pix/edges2shoes", *extra, output="out"):
    args = ["convert", "--zoo", name, "--zoo-mirror", server.url, "--cache-dir", str(tmp_path / "cache")]
    return main([*args, *extra, "--output", str(tmp_path / output)])


def test_zoo_lists_the_pix2pix_models_by_their_download_script_names(capsys):
    assert main(["zoo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in NAMES:
        line = next(line for line in lines if line.startswith(f"pix2pix/{name} "))
        assert line.endswith(f"http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{name}.pth")
        assert " pix2pix " in line and "U-Net-256" in line and "BSD" in line
    shoes = next(line for line in lines if line.startswith("pix2pix/edges2shoes "))
    assert shoes.split()[:5] == ["pix2pix/edges2shoes", "pix2pix", "edges", "->", "shoe"]
    # CycleGAN's sat2map is still its own entry
    assert any(line.startswith("sat2map ") and "cyclegan/pretrained_models/sat2map.pth" in line for line in lines)
    assert all(zoo.ZOO[f"pix2pix/{name}"].reverse is None for name in NAMES)


def test_a_zoo_model_converts_into_a_pix2pix_generator_equal_to_theirs(server, official, tmp_path, capsys):
    assert convert(server, tmp_path) == 0, capsys.readouterr().err
    report = capsys.readouterr().out
    assert "a pix2pix generator (inference = image_statistics)" in report
    out = tmp_path / "out"
    g = HubModule.from_pretrained(out)
    assert type(g) is Pix2PixGenerator
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "pix2pix" and config["inference"] == "image_statistics"
    assert (config["source_domain"], config["target_domain"], config["dropout"]) == ("edges", "shoe", 0.5)
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        ours, theirs = g(x), as_their_test_script(official)(x)
        running = copy.deepcopy(official).eval()(x)
    difference = (ours - theirs).abs().max().item()
    assert difference <= 1e-5, difference
    assert (ours - running).abs().max().item() > 1e-3  # the measurement tells the two behaviours apart
    card = (out / "README.md").read_text()
    digest = hashlib.sha256(server.files[PATH]).hexdigest()
    assert "released by the authors of pix2pix" in card and "Isola" in card
    assert f"downloaded from {server.url}{PATH} (SHA-256 `{digest}`)" in card
    assert 'inference = "image_statistics"' in card and "license: bsd" in card
    # kept apart from CycleGAN's files of the same names
    assert (tmp_path / "cache" / "pix2pix" / "edges2shoes.pth").read_bytes() == server.files[PATH]


def test_inference_chooses_the_running_statistics(server, official, tmp_path, capsys):
    assert convert(server, tmp_path, "pix2pix/edges2shoes", "--inference", "running") == 0, capsys.readouterr().err
    g = HubModule.from_pretrained(tmp_path / "out")
    assert g.config["inference"] == "running"
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.inference_mode():
        assert (g(x) - copy.deepcopy(official).eval()(x)).abs().max().item() <= 1e-5
    assert 'inference = "running"' in (tmp_path / "out" / "README.md").read_text()


def test_pix2pix_is_one_way(server, tmp_path, capsys):
    assert convert(server, tmp_path, "pix2pix/sat2map", "--with-reverse") == 1
    err = capsys.readouterr().err.strip()
    assert "pix2pix/sat2map has no released reverse direction (pix2pix models translate one way" in err
    assert "pix2pix/map2sat is a model of its own" in err and "\n" not in err
    assert server.ranges == [] and not (tmp_path / "out").exists()
    assert convert(server, tmp_path, "horse2zebra", "--inference", "running") == 1
    assert "--inference go with a pix2pix checkpoint, and horse2zebra is not one" in capsys.readouterr().err


def test_a_truncated_download_is_refused_then_resumed(server, official, tmp_path, capsys, monkeypatch):
    server.drop_after = 10_000
    assert convert(server, tmp_path) == 1
    err = capsys.readouterr().err.strip()
    assert "the download stopped at 10,000 of" in err and "run the same command again to resume it" in err
    assert "\n" not in err and not (tmp_path / "out").exists()
    assert (tmp_path / "cache" / "pix2pix" / "edges2shoes.pth.part").stat().st_size == 10_000
    monkeypatch.setattr(zoo, "MAX_PIX2PIX_BYTES", 50_000)  # the rest announced: over a 50 kB cap
    assert convert(server, tmp_path) == 1
    assert "edges2shoes.pth is 3 MB, above the limit of 0 MB; not downloaded" in capsys.readouterr().err
    monkeypatch.undo()
    assert convert(server, tmp_path) == 0
    assert server.ranges[-1] == "bytes=10000-"
    assert type(HubModule.from_pretrained(tmp_path / "out")) is Pix2PixGenerator


def test_a_local_pix2pix_run_converts_with_inference(official, tmp_path, capsys):
    folder = tmp_path / "checkpoints" / "edges2shoes_pretrained"  # where their download script puts it
    folder.mkdir(parents=True)
    torch.save(official.state_dict(), folder / "latest_net_G.pth")
    assert main(["convert", str(folder), "--inference", "image_statistics", "--output", str(tmp_path / "p")]) == 0
    g = HubModule.from_pretrained(tmp_path / "p")
    assert type(g) is Pix2PixGenerator and (g.config["source_domain"], g.config["target_domain"]) == ("edges", "shoe")
    assert "released by the authors of pix2pix" in (tmp_path / "p" / "README.md").read_text()
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.inference_mode():
        assert (g(x) - as_their_test_script(official)(x)).abs().max().item() <= 1e-5
    # without it, the same file is a CycleGAN generator as before (running statistics)
    assert main(["convert", str(folder / "latest_net_G.pth"), "--output", str(tmp_path / "c")]) == 0
    assert type(HubModule.from_pretrained(tmp_path / "c")) is CycleGenerator
    reverse = ["--reverse", str(folder / "latest_net_G.pth"), "--inference", "running"]
    assert main(["convert", str(folder), *reverse, "--output", str(tmp_path / "r")]) == 1
    assert "pix2pix models translate one way" in capsys.readouterr().err
