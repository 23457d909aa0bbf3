"""Whole datasets translated, with real ``datasets`` objects: rows kept in order with every column, bad rows named
and counted, any number of processes giving the same files as one, and a run killed with SIGKILL resumed to exactly
the rows of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

datasets = pytest.importorskip("datasets")

from cyclegan_hub import CycleGenerator, translate_dataset
from cyclegan_hub.bulk.translate import Report
from tests.conftest import ROOT

MODEL = ROOT / "space" / "models" / "mnist-6to9"


def imagefolder(root, count=12, bad=(5,)):
    """An imagefolder with two labels, images of several sizes, and unreadable files at the ``bad`` indices."""
    for i in range(count):
        folder = root / ("six" if i % 3 else "nine")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:03d}.png"
        if i in bad:
            path.write_bytes(b"not an image at all")
        else:
            pixels = np.random.default_rng(i).integers(0, 255, (20 + i % 4, 24 + i % 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path)
    return root


def cli(*args, env=None, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "cyclegan_hub.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env or {**os.environ, "HF_DATASETS_OFFLINE": "1"},
        **kwargs,
    )


def rows(folder):
    ds = datasets.load_dataset(str(folder), split="train")
    return [{k: (np.asarray(v).tolist() if isinstance(v, Image.Image) else v) for k, v in row.items()} for row in ds]


def test_a_local_imagefolder_is_translated_row_for_row_with_every_column(tmp_path):
    source = imagefolder(tmp_path / "in")
    spec = f'{{path="imagefolder", data_dir="{source}"}}'
    done = cli(
        "translate",
        "--model",
        str(MODEL),
        "--dataset",
        spec,
        "--output",
        str(tmp_path / "out"),
        "--shard-rows",
        "5",
        "--reverse-model",
        str(ROOT / "space" / "models" / "mnist-9to6"),
    )
    assert done.returncode == 0, done.stderr
    original = datasets.load_dataset("imagefolder", data_dir=str(source), split="train").cast_column(
        "image", datasets.Image(decode=False)
    )
    bad = next(i for i, row in enumerate(original) if row["image"]["path"].endswith("005.png"))
    assert "rows in 12, rows out 11, skipped 1" in done.stdout
    assert f"skipped row {bad}: 005.png is not an image in a format read here" in done.stdout
    translated = datasets.load_dataset(str(tmp_path / "out"), split="train")
    assert translated.column_names == [
        "image",
        "label",
        "translated",
        "translated_round_trip",
        "translated_cycle_error",
    ]
    kept = [row for i, row in enumerate(original) if i != bad]
    assert translated.num_rows == len(kept) == 11
    g = CycleGenerator.from_pretrained(MODEL)
    for row, out in zip(kept, translated):
        source_image = Image.open(row["image"]["path"])
        assert out["label"] == row["label"] and np.array_equal(np.asarray(out["image"]), np.asarray(source_image))
        assert out["translated"].size == source_image.size
        assert np.array_equal(np.asarray(out["translated"]), np.asarray(g.translate(source_image)))
        assert 0 <= out["translated_cycle_error"] <= 1
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| rows skipped | 1 |" in card and f"- row {bad}: 005.png is not an image" in card
    assert "# Translated with cyclegan-hub" in card and (tmp_path / "out" / "examples.png").is_file()
    assert str(tmp_path) not in card and str(ROOT) not in card  # local data and models by folder name only
    assert "`imagefolder (in), split train`" in card and "--model mnist-6to9" in card


def test_two_outputs_in_folders_of_the_same_name_load_back_as_themselves(tmp_path):
    """Two translated datasets, each in a folder named ``out``, loaded in one process through one cache that an
    earlier load of a third ``out`` already filled: each loads its own rows (a card's ``configs`` block made
    ``datasets`` cache them by folder name)."""
    from cyclegan_hub.bulk.translate import totals, translate_to_folder, write_card

    g = CycleGenerator.from_pretrained(MODEL)
    cache = tmp_path / "cache"

    def translated(folder, ids):
        images = [Image.fromarray(np.full((12, 10), 40 * v, np.uint8)) for v in range(len(ids))]
        ds = datasets.Dataset.from_dict({"image": images, "id": ids}).cast_column("image", datasets.Image(decode=False))
        translate_to_folder(g, ds, folder, progress=False)
        write_card(folder, source="digits", model="mnist-6to9", command="translate", report=totals(folder))
        return folder

    first = translated(tmp_path / "earlier" / "out", ["x", "y"])
    assert datasets.load_dataset(str(first), split="train", cache_dir=str(cache))["id"] == ["x", "y"]
    a = translated(tmp_path / "a" / "out", ["a1", "a2", "a3"])
    b = translated(tmp_path / "b" / "out", ["b1", "b2", "b3"])
    for folder, ids in [(a, ["a1", "a2", "a3"]), (b, ["b1", "b2", "b3"])]:
        back = datasets.load_dataset(str(folder), split="train", cache_dir=str(cache))
        assert back["id"] == ids and back.column_names == ["image", "id", "translated"]
        assert "Every image of `digits` translated by the model `mnist-6to9`" in (folder / "README.md").read_text()


def test_a_row_whose_error_has_no_message_is_named_and_skipped(monkeypatch):
    """A decoder that raises an exception with an empty message: the row is skipped and named by the error's type,
    the run goes on (the error's first line used to be taken by hand: an IndexError that crashed the run)."""
    from cyclegan_hub.bulk import translate as bulk

    real = bulk.imaging.open_image
    rows = [Image.fromarray(np.full((12, 10), v, np.uint8)) for v in (10, 20, 30)]

    def fussy(stream, **kwargs):
        image = real(stream, **kwargs)
        if np.asarray(image).mean() == 20:
            raise ValueError("")
        return image

    monkeypatch.setattr(bulk.imaging, "open_image", fussy)
    ds = datasets.Dataset.from_dict({"image": rows, "id": ["a", "b", "c"]})
    report = Report()
    out = translate_dataset(CycleGenerator.from_pretrained(MODEL), ds, report=report)
    assert list(out["id"]) == ["a", "c"] and report.skipped == [(1, "ValueError")]


def test_the_python_api_gives_datasets_for_lists_and_streams(tmp_path):
    images = [Image.fromarray(np.full((16, 12), v, np.uint8)) for v in (0, 80, 160)]
    ds = datasets.Dataset.from_dict({"image": images, "id": ["a", "b", "c"]}).cast_column("image", datasets.Image())
    g = CycleGenerator.from_pretrained(MODEL)
    report = Report()
    out = translate_dataset(g, ds, report=report, keep_source=False)
    assert isinstance(out, datasets.Dataset) and out.column_names == ["id", "translated"]
    assert list(out["id"]) == ["a", "b", "c"] and report.rows_in == report.rows_out == 3
    stream = translate_dataset(g, ds.to_iterable_dataset(), output_column="nine")
    assert isinstance(stream, datasets.IterableDataset)
    assert [row["id"] for row in stream] == ["a", "b", "c"]
    assert all(row["nine"].size == (12, 16) for row in stream)
    with pytest.raises(ValueError, match=r"row 1: "):
        broken = datasets.Dataset.from_dict({"image": [{"bytes": b"\x89PNG", "path": None}] * 2})
        list(
            translate_dataset(
                g, broken.cast_column("image", datasets.Image(decode=False)), on_error="stop", batch_size=1, start=1
            )
        )


def test_large_rows_are_translated_at_full_resolution_in_bounded_batches_and_passes(tiny_rgb, monkeypatch):
    """A dataset mixing small images and ones above a forward pass's budget: every row comes out at its own size;
    no batch holds more decoded pixels than the bound (a larger image goes alone), and no forward pass sees more
    than a tile's worth (checked from what was handed to the network, not from time)."""
    from cyclegan_hub import tiles, translation
    from cyclegan_hub.bulk import translate as bulk

    monkeypatch.setattr(bulk, "BATCH_PIXELS", 200_000)
    sizes = [(40, 30), (620, 410), (50, 60), (300, 300), (300, 300), (64, 48)]
    gen = np.random.default_rng(0)
    coarse = [Image.fromarray(gen.integers(0, 255, (6, 8, 3), dtype=np.uint8)) for _ in sizes]
    images = [c.resize(size, Image.Resampling.BICUBIC) for c, size in zip(coarse, sizes)]  # smooth colour fields
    whole = tiny_rgb.translate(images[1], tile_pixels=10**9)
    batches, passes = [], []
    real = translation.translate

    def counting(model, pictures, **kwargs):
        batches.append(sum(p.width * p.height for p in pictures))
        return real(model, pictures, **kwargs)

    monkeypatch.setattr(bulk.translation, "translate", counting)
    hook = tiny_rgb.register_forward_pre_hook(lambda _, args: passes.append(args[0].shape[-2] * args[0].shape[-1]))
    ds = datasets.Dataset.from_dict({"image": images})
    out = translate_dataset(tiny_rgb, ds, batch_size=8, tile_pixels=128 * 128)
    hook.remove()
    assert [image.size for image in out["translated"]] == sizes  # full resolution, every row
    assert batches == [40 * 30, 620 * 410, 50 * 60 + 2 * 300 * 300 + 64 * 48]  # the large one alone
    side = tiles.tile_size(128 * 128, tiny_rgb.size_multiple, tiles.DEFAULT_OVERLAP)
    assert max(passes) <= side * side < 300 * 300  # a tile's worth at most, never a large image whole
    assert np.abs(np.asarray(out["translated"][1], int) - np.asarray(whole, int)).mean() < 8  # tiles, one picture


def test_two_processes_write_what_one_writes(tmp_path):
    source = imagefolder(tmp_path / "in", count=14, bad=())
    spec = f'{{path="imagefolder", data_dir="{source}"}}'
    one = cli(
        "translate", "--model", str(MODEL), "--dataset", spec, "--output", str(tmp_path / "one"), "--shard-rows", "3"
    )
    assert one.returncode == 0, one.stderr
    # accelerate's launcher, two processes on the CPU (DDP over gloo), as a user starts them
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
    launcher = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_port()),
        "-m",
    ]
    two = subprocess.run(
        [
            *launcher,
            "cyclegan_hub.cli",
            "translate",
            "--model",
            str(MODEL),
            "--dataset",
            spec,
            "--output",
            str(tmp_path / "two"),
            "--shard-rows",
            "3",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert "process 1/2" in two.stdout and "process 2/2" in two.stdout
    shards = sorted(p.name for p in (tmp_path / "one" / "data").iterdir())
    assert shards == sorted(p.name for p in (tmp_path / "two" / "data").iterdir()) and len(shards) == 5
    assert rows(tmp_path / "one") == rows(tmp_path / "two")


def test_a_run_killed_mid_way_resumes_to_exactly_the_uninterrupted_rows(tmp_path):
    source = imagefolder(tmp_path / "in", count=40, bad=(7,))
    spec = f'{{path="imagefolder", data_dir="{source}"}}'
    args = ["translate", "--model", str(MODEL), "--dataset", spec, "--shard-rows", "2", "--workers", "1"]
    whole = cli(*args, "--output", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyclegan_hub.cli", *args, "--output", str(out), "--batch-size", "1"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_DATASETS_OFFLINE": "1"},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "data").glob("*.parquet"))) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = sorted(p.name for p in (out / "data").glob("*.parquet"))
    assert 3 <= len(written) < 20, written  # killed part way
    resumed = cli(*args, "--output", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(written)} kept from an earlier run" in resumed.stdout
    assert rows(out) == rows(tmp_path / "whole")
    assert not [p for p in (out / "data").iterdir() if not p.name.endswith(".parquet") and "tmp" not in p.name]
    assert (
        "| rows in | 40 |" in (out / "README.md").read_text()
        and "| rows skipped | 1 |" in (out / "README.md").read_text()
    )


def _port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_hub_parquet_dataset_is_translated_and_pushed_as_a_dataset_repo(hub, olah, tmp_path):
    """Read from the Hub (olah in front of the local Hub server), translated, pushed (the real huggingface_hub
    client to the local server), and read back by ``load_dataset`` from the Hub: the same rows in the same order."""
    from tests.conftest import hub_env
    from tests.support.hub_server import git

    hub.create_repo("dataset", "user/digits")
    repo = hub.repo_path("dataset", "user/digits")
    images = [Image.fromarray(np.random.default_rng(v).integers(0, 255, (14, 12), dtype=np.uint8)) for v in range(5)]
    ds = datasets.Dataset.from_dict({"image": images, "label": [6, 9, 6, 6, 9], "id": list("abcde")})
    (repo / "data").mkdir()
    ds.cast_column("image", datasets.Image()).to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
        "    path: data/*.parquet\n---\n# digits\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "digits")
    home = {"HF_HOME": str(tmp_path / "home")}
    out = tmp_path / "out"
    args = [
        "translate",
        "--model",
        str(MODEL),
        "--dataset",
        '{path="user/digits", filter="label == 6"}',
        "--output",
        str(out),
        "--shard-rows",
        "2",
    ]
    read = cli(*args, env=hub_env(olah, token=None) | home)
    assert read.returncode == 0, read.stderr[-2000:]
    assert "rows in 3, rows out 3, skipped 0" in read.stdout
    # the push: the rows are done (kept), the dataset comes from the cache, the repo goes to the local Hub server
    pushed = cli(
        *args, "--push-to-hub", "user/digits-translated", env=hub_env(hub.url) | home | {"HF_DATASETS_OFFLINE": "1"}
    )
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    assert "2 kept from an earlier run" in pushed.stdout and "pushed user/digits-translated" in pushed.stdout
    files = sorted(git(hub.repo_path("dataset", "user/digits-translated"), "ls-files").splitlines())
    assert files == [
        ".gitattributes",
        "README.md",
        "data/train-00000.parquet",
        "data/train-00001.parquet",
        "examples.png",
    ]
    back = subprocess.run(
        [
            sys.executable,
            "-c",
            "import datasets, json; d = datasets.load_dataset('user/digits-translated', "
            "split='train'); print(json.dumps({'id': list(d['id']), 'label': list(d['label']), "
            "'sizes': [im.size for im in d['translated']]}))",
        ],
        env=hub_env(olah, token=None) | {"HF_HOME": str(tmp_path / "home2")},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert back.returncode == 0, back.stderr[-2000:]
    import json

    assert json.loads(back.stdout.strip().splitlines()[-1]) == {
        "id": ["a", "c", "d"],
        "label": [6, 6, 6],
        "sizes": [[12, 14]] * 3,
    }
