"""One-way models (pix2pix, CUT: no reverse) served like any pair: one direction, no round trip, everything else
(batching, limits, cost) the pair's; found from a run folder with generator_AtoB/ only, a folder or a Hub repo whose
twin is not there, or a class that says ``one_way``."""

import logging
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_hub.hub.repos import MissingModel, load_generator
from cyclegan_hub.models.pix2pix import Pix2PixGenerator
from cyclegan_hub.serving.pairs import (
    PairTranslator,
    ServingLimits,
    frame_like_mnist,
    load_pair,
    load_pairs,
    load_served,
    resolve_pair,
)
from tests.conftest import ROOT
from tests.serving.test_pairs import tiny

SIX = Image.open(ROOT / "space" / "examples" / "6-test0.png")


def pix2pix(channels=1, size=32, src="erased", dst="digit"):
    torch.manual_seed(0)
    return Pix2PixGenerator(
        in_channels=channels,
        out_channels=channels,
        base_channels=4,
        n_downsampling=5,
        image_size=size,
        source_domain=src,
        target_domain=dst,
    )


def one_way_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "served one way" in r.getMessage()]


def test_a_one_way_model_has_one_direction_and_no_round_trip():
    model = pix2pix()
    served = PairTranslator(model)
    assert served.one_way and served.name == "erased -> digit" and list(served.directions) == ["erased -> digit"]
    assert served.digits and served.max_batch == 16  # a small gray model batches like the digit pairs
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    result = served.translate(SIX, "erased -> digit")
    assert result.reconstructed is None and result.cycle_error is None and calls == [1]  # no round trip run
    expected = model.translate(frame_like_mnist(SIX, 32))
    assert np.array_equal(np.asarray(result.translated), np.asarray(expected))
    with pytest.raises(ValueError, match="unknown direction 'digit -> erased'; valid: 'erased -> digit'"):
        served.translate(SIX, "digit -> erased")
    with pytest.raises(ValueError, match="no image"):
        served.translate(None, "erased -> digit")
    assert served.estimate((28, 28)) > 0 and served.cost((28, 28)) > served.cost(None)


def test_one_way_requests_are_batched_and_each_gets_its_own_answer():
    model = pix2pix()
    served = PairTranslator(model, max_batch=16, max_wait_ms=50)
    batches = []
    model.register_forward_hook(lambda m, i, o: batches.append(i[0].shape[0]))
    images = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (28, 28), dtype=np.uint8)) for i in range(8)]
    results = [None] * 8
    threads = [
        threading.Thread(target=lambda k=k: results.__setitem__(k, served.translate(images[k], "erased -> digit")))
        for k in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(batches) < 8 and max(batches) > 1
    for image, result in zip(images, results):
        alone = model.translate(frame_like_mnist(image, 32))
        assert np.abs(np.asarray(result.translated, int) - np.asarray(alone, int)).max() <= 1
        assert result.reconstructed is None


def test_a_one_way_photo_model_keeps_the_photo_limits():
    limits = ServingLimits(max_pixels=4_000_000, photo_side=64)
    served = PairTranslator(tiny("edges", "shoe", 3, 256), limits=limits)  # a converted CUT model: a CycleGenerator
    assert served.one_way and not served.digits and served.max_batch == 1
    result = served.translate(Image.new("RGB", (400, 300), "white"), "edges -> shoe")
    assert result.translated.size == (64, 48) and result.reconstructed is None
    with pytest.raises(ValueError, match=r"above the limit of 4 MP"):
        served.translate(Image.new("L", (3000, 2000)), "edges -> shoe")


def test_a_run_folder_with_only_generator_atob_is_served_one_way(tmp_path, caplog):
    model = pix2pix()
    model.save_pretrained(tmp_path / "run" / "generator_AtoB")
    tiny("6", "9").save_pretrained(tmp_path / "mnist-6to9")
    tiny("9", "6").save_pretrained(tmp_path / "mnist-9to6")
    assert resolve_pair(str(tmp_path / "run")) == (
        str(tmp_path / "run" / "generator_AtoB"),
        str(tmp_path / "run" / "generator_BtoA"),
    )
    with caplog.at_level(logging.WARNING, "cyclegan_hub.serving"):
        served, pair = load_pairs([str(tmp_path / "run"), str(tmp_path / "mnist-6to9")])
    assert served.one_way and list(served.directions) == ["erased -> digit"]
    assert not pair.one_way and list(pair.directions) == ["6 -> 9", "9 -> 6"]  # the pair beside it, unchanged
    (line,) = one_way_lines(caplog)
    assert (
        line
        == f"{tmp_path / 'run'}: served one way (erased -> digit, no round trip): a pix2pix model translates one way"
    )
    result = served.translate(SIX, "erased -> digit")
    assert result.reconstructed is None and result.translated.size == (32, 32)


def test_a_one_way_class_is_never_paired_with_its_twin(tmp_path, caplog):
    pix2pix(src="edges", dst="shoes").save_pretrained(
        tmp_path / "edges2shoes"
    )  # built from a config: one_way from its class
    pix2pix(src="shoes", dst="edges").save_pretrained(tmp_path / "shoes2edges")
    with caplog.at_level(logging.WARNING, "cyclegan_hub.serving"):
        names, models = load_served(str(tmp_path / "edges2shoes"))
    assert names == (str(tmp_path / "edges2shoes"),) and len(models) == 1 and type(models[0]) is Pix2PixGenerator
    assert len(one_way_lines(caplog)) == 1


def test_a_folder_without_a_twin_is_served_one_way_and_a_broken_twin_still_fails(tmp_path, caplog):
    tiny("horse", "zebra", 3, 64).save_pretrained(tmp_path / "cut-horse2zebra")  # a converted CUT model: no twin
    with caplog.at_level(logging.WARNING, "cyclegan_hub.serving"):
        (served,) = load_pairs([str(tmp_path / "cut-horse2zebra")])
    assert served.one_way and list(served.directions) == ["horse -> zebra"] and served.name == "horse -> zebra"
    (line,) = one_way_lines(caplog)
    assert line.endswith(f"no reverse found: {tmp_path / 'cut-zebra2horse'} is not a folder")
    # a twin that is there but is not a model, or not the other direction: an error, as for any pair
    (tmp_path / "cut-zebra2horse").mkdir()
    with pytest.raises(ValueError, match=r"pair .*cut-horse2zebra: .*cut-zebra2horse is not a .* folder"):
        load_pairs([str(tmp_path / "cut-horse2zebra")])
    tiny("horse", "cat", 3, 64).save_pretrained(tmp_path / "cut-zebra2horse")
    with pytest.raises(ValueError, match="not the two directions of one pair"):
        load_pairs([str(tmp_path / "cut-horse2zebra")])
    # FORWARD,REVERSE names the reverse: it must be there
    with pytest.raises(ValueError, match="no-such-reverse: no such model folder"):
        load_pairs([f"{tmp_path / 'cut-horse2zebra'},{tmp_path / 'no-such-reverse'}"])
    with pytest.raises(ValueError, match="no such model folder"):
        load_pair(str(tmp_path / "run-that-is-not-there"))


def _cache(folder, repo_id: str, model) -> None:
    """``repo_id`` in a Hub cache at ``folder``, as a download leaves it (read with HF_HUB_OFFLINE=1)."""
    commit = "0" * 40
    repo = folder / f"models--{repo_id.replace('/', '--')}"
    model.save_pretrained(repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def test_a_hub_repo_whose_twin_is_not_there_is_served_one_way(tmp_path, caplog, monkeypatch):
    _cache(tmp_path / "cache", "user/cut-horse2zebra", tiny("horse", "zebra", 3, 64))
    with caplog.at_level(logging.WARNING, "cyclegan_hub.serving"):
        names, models = load_served("user/cut-horse2zebra", cache_dir=str(tmp_path / "cache"))
    assert names == ("user/cut-horse2zebra",) and len(models) == 1
    (line,) = one_way_lines(caplog)
    assert line.startswith("user/cut-horse2zebra: served one way (horse -> zebra, no round trip): no reverse found:")
    assert "user/cut-zebra2horse" in line
    # the twin cached too: a pair
    _cache(tmp_path / "cache", "user/cut-zebra2horse", tiny("zebra", "horse", 3, 64))
    names, models = load_served("user/cut-horse2zebra", cache_dir=str(tmp_path / "cache"))
    assert names == ("user/cut-horse2zebra", "user/cut-zebra2horse") and len(models) == 2

    # a twin the Hub has but will not give (gated, a server error) is an error, not a one-way model
    def gated(model, **kwargs):
        if model == "user/cut-zebra2horse":
            raise ValueError("user/cut-zebra2horse is gated: accept its terms on the Hub and log in (HF_TOKEN)")
        return load_generator(model, **kwargs)

    monkeypatch.setattr("cyclegan_hub.serving.pairs.load_generator", gated)
    with pytest.raises(ValueError, match="pair user/cut-horse2zebra: user/cut-zebra2horse is gated"):
        load_served("user/cut-horse2zebra", cache_dir=str(tmp_path / "cache"))


def test_only_a_model_that_is_not_there_is_missing(monkeypatch):
    import httpx2
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    from cyclegan_hub.models.modeling import HubModule

    response = httpx2.Response(404, request=httpx2.Request("GET", "https://huggingface.co/api/models/user/x"))
    for error, missing in (
        (RepositoryNotFoundError("404", response=response), True),
        (LocalEntryNotFoundError("offline"), True),
        (GatedRepoError("403", response=response), False),
    ):

        def fail(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(HubModule, "from_pretrained", fail)
        with pytest.raises(ValueError) as info:
            load_generator("user/x")
        assert isinstance(info.value, MissingModel) is missing, error
    with pytest.raises(MissingModel, match="no such model folder"):
        load_generator("./no/such/folder")


def test_the_page_hides_the_round_trip_of_a_one_way_model():
    from cyclegan_hub.serving.app import build_demo, make_pick

    served, pair = PairTranslator(pix2pix()), PairTranslator(tiny("6", "9"), tiny("9", "6"))
    demo = build_demo([served, pair])
    components = {c["props"].get("label"): c["props"] for c in demo.config["components"] if "props" in c}
    assert components["Round trip (reconstruction)"]["visible"] is False  # the first model is one way
    assert [name for name, _ in components["Model"]["choices"]] == ["erased -> digit", "6 ↔ 9"]
    assert any(c["type"] == "imageeditor" for c in demo.config["components"])  # the Draw tab, for every model
    pick = make_pick({served.name: served, pair.name: pair})
    direction, _, _, reconstructed, error = pick("erased -> digit")
    assert direction["choices"] == ["erased -> digit"] and reconstructed["visible"] is False
    assert error["visible"] is False
    direction, _, _, reconstructed, error = pick("6 ↔ 9")
    assert direction["value"] == "6 -> 9" and reconstructed["visible"] is True and error["visible"] is True


def test_bundled_models_without_a_twin_are_served_one_way(tmp_path, monkeypatch):
    from cyclegan_hub.serving.app import pair_specs

    monkeypatch.delenv("CYCLEGAN_MODELS", raising=False)
    models = tmp_path / "models"
    for a, b in (("6", "9"), ("9", "6")):
        tiny(a, b).save_pretrained(models / f"mnist-{a}to{b}")
    pix2pix().save_pretrained(models / "erased2digit")
    (models / "notes").mkdir()  # not a model: not served
    assert pair_specs(tmp_path) == [f"{models / 'erased2digit'}", f"{models / 'mnist-6to9'},{models / 'mnist-9to6'}"]


def test_serve_takes_one_model(monkeypatch, tmp_path):
    from cyclegan_hub.cli import main
    from cyclegan_hub.serving import app

    seen = []
    monkeypatch.setattr(app, "build_demo", lambda specs, **kwargs: seen.append(specs))
    monkeypatch.setattr(app, "launch", lambda demo: None)
    assert main(["serve", "--model", str(tmp_path / "edges2shoes")]) == 0
    assert main(["serve", "--pair", str(tmp_path / "run")]) == 0
    assert seen == [[str(tmp_path / "edges2shoes")], [str(tmp_path / "run")]]
