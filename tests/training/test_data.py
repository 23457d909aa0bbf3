"""Domains from every layout users bring, built as small local datasets in the test; unaligned sampling."""

import numpy as np
import pytest
import torch
from PIL import Image

datasets = pytest.importorskip("datasets")

from cyclegan_hub.training.data import (
    DomainSpec,
    UnpairedSampler,
    augment,
    decode_domain,
    load_domain,
    parse_filter,
    training_batch,
)
from tests.support.image_cases import truncated_png


def gray(value, size=(12, 10)):
    return Image.fromarray(np.full(size[::-1], value, dtype=np.uint8))


def save_parquet_dataset(root, splits: dict, features=None):
    (root / "data").mkdir(parents=True)
    for split, columns in splits.items():
        ds = datasets.Dataset.from_dict(columns, features=features)
        ds.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return str(root)


def values_of(ds, column="image"):
    images, _ = decode_domain(ds, column, 1, 4)
    return sorted(int(v) for v in images[:, 0, 0, 0])


def test_label_column_like_mnist(tmp_path):
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[str(i) for i in range(10)])}
    )
    path = save_parquet_dataset(
        tmp_path / "mnist",
        {"train": {"image": [gray(v) for v in (60, 61, 90, 91, 10)], "label": [6, 6, 9, 9, 1]}},
        features,
    )
    assert values_of(load_domain(DomainSpec(path=path, filter="label == 6"))) == [60, 61]
    assert values_of(load_domain(DomainSpec(path=path, filter="label == '9'"))) == [90, 91]  # by class name
    assert values_of(load_domain(DomainSpec(path=path, filter="label in [1, 9]"))) == [10, 90, 91]


def test_attribute_column_like_celeba(tmp_path):
    path = save_parquet_dataset(
        tmp_path / "celeba",
        {
            "train": {
                "image": [gray(v) for v in (1, 2, 3, 4)],
                "Male": [1, -1, 1, -1],
                "Smiling": [True, False, False, True],
            }
        },
    )
    assert values_of(load_domain(DomainSpec(path=path, filter="Male == 1"))) == [1, 3]
    assert values_of(load_domain(DomainSpec(path=path, filter="Male == -1"))) == [2, 4]
    assert values_of(load_domain(DomainSpec(path=path, filter="Smiling == True"))) == [1, 4]


def test_splits_trainA_trainB(tmp_path):
    path = save_parquet_dataset(
        tmp_path / "h2z", {"trainA": {"image": [gray(1), gray(2)]}, "trainB": {"image": [gray(7), gray(8), gray(9)]}}
    )
    assert values_of(load_domain(DomainSpec(path=path, split="trainA"))) == [1, 2]
    assert values_of(load_domain(DomainSpec(path=path, split="trainB"))) == [7, 8, 9]


def test_cyclegan_folders_through_imagefolder(tmp_path):
    for domain, values in (("trainA", (5, 6)), ("trainB", (200,))):
        (tmp_path / domain).mkdir()
        for v in values:
            gray(v).save(tmp_path / domain / f"{v}.png")
    a = load_domain(DomainSpec(path="imagefolder", data_dir=str(tmp_path / "trainA")))
    b = load_domain(DomainSpec(path="imagefolder", data_dir=str(tmp_path / "trainB")))
    assert values_of(a) == [5, 6] and values_of(b) == [200]


def test_two_different_datasets(tmp_path):
    horses = save_parquet_dataset(tmp_path / "horses", {"train": {"image": [gray(11)], "caption": ["a horse"]}})
    zebras = save_parquet_dataset(
        tmp_path / "zebras", {"train": {"img": [gray(22), gray(23)]}}, datasets.Features({"img": datasets.Image()})
    )
    assert values_of(load_domain(DomainSpec(path=horses))) == [11]
    assert values_of(load_domain(DomainSpec(path=zebras, image_column="img")), "img") == [22, 23]


def test_imageA_imageB_columns_are_two_sources(tmp_path):
    path = save_parquet_dataset(
        tmp_path / "ab",
        {"train": {"imageA": [gray(1), gray(2)], "imageB": [gray(30), gray(40)]}},
        datasets.Features({"imageA": datasets.Image(), "imageB": datasets.Image()}),
    )
    assert values_of(load_domain(DomainSpec(path=path, image_column="imageA")), "imageA") == [1, 2]
    assert values_of(load_domain(DomainSpec(path=path, image_column="imageB")), "imageB") == [30, 40]


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    for i, data in enumerate([truncated_png(), b"not an image"]):
        (tmp_path / f"bad{i}.png").write_bytes(data)
    gray(9).save(tmp_path / "good.png")
    images, skipped = decode_domain(load_domain(DomainSpec(path="imagefolder", data_dir=str(tmp_path))), "image", 3, 8)
    assert images.shape == (1, 3, 8, 8) and skipped == 2


def test_bad_specs_name_the_problem(tmp_path):
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["6", "9"])})
    path = save_parquet_dataset(tmp_path / "d", {"train": {"image": [gray(1)], "label": [0]}}, features)
    with pytest.raises(ValueError, match="dataset '.*missing' not found"):
        load_domain(DomainSpec(path=str(tmp_path / "missing")))
    with pytest.raises(ValueError, match=r"no column 'picture' .* \(columns: image, label\)"):
        load_domain(DomainSpec(path=path, image_column="picture"))
    with pytest.raises(ValueError, match=r"unknown value '7'; valid: 6, 9"):
        load_domain(DomainSpec(path=path, filter="label == '7'"))
    with pytest.raises(ValueError, match=r"leaves .* empty \(label values present: 0\)"):
        load_domain(DomainSpec(path=path, filter="label == 1"))
    with pytest.raises(ValueError, match="names no column"):
        load_domain(DomainSpec(path=path, filter="colour == 1"))
    with pytest.raises(ValueError, match="has no split 'trainA'"):
        load_domain(DomainSpec(path=path, split="trainA"))
    with pytest.raises(ValueError, match="cannot read filter"):
        parse_filter("label is six")
    with pytest.raises(ValueError, match="unknown data key"):
        DomainSpec.from_dict({"path": "x", "colum": "image"})


def test_parse_filter():
    assert parse_filter("label == 6") == ("label", "==", 6)
    assert parse_filter(" Male != -1 ") == ("Male", "!=", -1)
    assert parse_filter("label in [6, 9]") == ("label", "in", [6, 9])
    assert parse_filter("label not in [1]") == ("label", "not in", [1])
    assert parse_filter("species == zebra") == ("species", "==", "zebra")


def test_sampler_is_unaligned_reproducible_and_covers_the_larger_domain():
    s = UnpairedSampler(len_a=10, len_b=4, batch_size=5, seed=3)
    epoch_a = torch.cat([s.indices(k)[0] for k in range(2)])
    assert sorted(epoch_a.tolist()) == list(range(10))  # each A image once per epoch
    b = torch.cat([s.indices(k)[1] for k in range(40)])
    assert set(b.tolist()) == {0, 1, 2, 3}
    # B is drawn independently of A: the pairs are not a fixed alignment
    pairs = {(int(x), int(y)) for k in range(40) for x, y in zip(*s.indices(k))}
    assert len(pairs) > 20
    again = UnpairedSampler(len_a=10, len_b=4, batch_size=5, seed=3)
    assert all(torch.equal(a, c) for a, c in zip(s.indices(17), again.indices(17)))
    assert not torch.equal(UnpairedSampler(10, 4, 5, seed=4).indices(0)[0], s.indices(0)[0])


def test_sampler_ranks_split_the_global_batch():
    whole = UnpairedSampler(len_a=8, len_b=8, batch_size=4, seed=0)
    r0 = UnpairedSampler(len_a=8, len_b=8, batch_size=2, seed=0, world_size=2, rank=0)
    r1 = UnpairedSampler(len_a=8, len_b=8, batch_size=2, seed=0, world_size=2, rank=1)
    for step in range(3):
        a, b = whole.indices(step)
        assert torch.equal(torch.cat([r0.indices(step)[0], r1.indices(step)[0]]), a)
        assert torch.equal(torch.cat([r0.indices(step)[1], r1.indices(step)[1]]), b)


def test_training_batch_is_the_augmented_selection_in_model_range():
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    batch = training_batch(x, [4, 0, 4], 6, True, torch.Generator().manual_seed(1), torch.device("cpu"))
    expected = augment(x[[4, 0, 4]], 6, True, torch.Generator().manual_seed(1)).float() / 255 * 2 - 1
    assert batch.dtype == torch.float32 and batch.shape == (3, 1, 6, 6) and torch.equal(batch, expected)
    assert batch.min() >= -1 and batch.max() <= 1


def test_augment_crops_and_flips_deterministically():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).reshape(2, 1, 6, 6)
    a = augment(x, 4, True, torch.Generator().manual_seed(0))
    b = augment(x, 4, True, torch.Generator().manual_seed(0))
    assert a.shape == (2, 1, 4, 4) and torch.equal(a, b)


def test_stroke_augment_varies_width_and_pose_reproducibly():
    from cyclegan_hub.training.data import stroke_augment

    digits = torch.zeros(64, 1, 28, 28, dtype=torch.uint8)
    digits[:, :, 6:22, 12:15] = 255  # a vertical stroke, 3 pixels wide
    first = stroke_augment(digits, torch.Generator().manual_seed(5))
    again = stroke_augment(digits, torch.Generator().manual_seed(5))
    assert torch.equal(first, again) and first.dtype == torch.uint8 and first.shape == digits.shape
    ink = first.float().sum((1, 2, 3)) / digits[0].float().sum()
    assert ink.max() > 1.3 and ink.min() < 0.95  # some strokes thicker, some thinner
    assert not torch.equal(first, stroke_augment(digits, torch.Generator().manual_seed(6)))
    # a stroke on the left stays on the left: small jitter, no mirroring
    left = torch.zeros(16, 1, 28, 28, dtype=torch.uint8)
    left[:, :, 6:22, 3:6] = 255
    columns = stroke_augment(left, torch.Generator().manual_seed(0)).float().sum((0, 1, 2))
    assert columns[:10].sum() > 0.95 * columns.sum()


def test_the_memory_of_decoded_images_is_checked_before_decoding(tmp_path, monkeypatch):
    """load_size = 8192 passed validation and ran out of memory while decoding (201 MB an RGB image): the total is
    now checked from the number of rows before the first image is decoded (and as a stream arrives)."""
    import cyclegan_hub.training.data as data

    for i in range(3):
        gray(9).save(tmp_path / f"{i}.png")
    ds = load_domain(DomainSpec(path="imagefolder", data_dir=str(tmp_path)))
    monkeypatch.setattr(data, "MAX_DECODED_BYTES", 2**30)
    with pytest.raises(ValueError) as info:
        decode_domain(ds, "image", 3, 8192)
    assert str(info.value) == (
        "3 images of 8192x8192 would take 1.1 GB once decoded, above the limit of 1 GB: lower data.load_size or use "
        "fewer images"
    )
    monkeypatch.setattr(data, "MAX_DECODED_BYTES", 2 * 3 * 64 * 64 * 2)  # room for two 64x64 RGB images
    stream = load_domain(DomainSpec(path="imagefolder", data_dir=str(tmp_path), streaming=True))
    with pytest.raises(ValueError, match="3 images of 64x64 would take 0.0 GB once decoded, above the limit"):
        decode_domain(stream, "image", 3, 64)
    assert decode_domain(stream, "image", 3, 64, max_images=2)[0].shape == (2, 3, 64, 64)


# ---- paired sources (pix2pix): two columns of one row, or the two halves of one image -----------------------------


def halves(left, right, size=(8, 4)):
    """An aligned image of the official pix2pix folders: A on the left half, B on the right."""
    array = np.zeros(size[::-1], dtype=np.uint8)
    array[:, : size[0] // 2], array[:, size[0] // 2 :] = left, right
    return Image.fromarray(array)


def test_aligned_halves_are_pairs_and_rows_without_two_halves_are_skipped(tmp_path):
    from cyclegan_hub.training.data import load_paired_domains

    rows = [halves(10, 200), halves(20, 210), halves(30, 220, size=(9, 4)), halves(40, 230)]
    path = save_parquet_dataset(
        tmp_path / "facades",
        {"train": {"image": rows}, "test": {"image": [halves(50, 240)]}},
        datasets.Features({"image": datasets.Image()}),
    )
    a, b, skipped = load_paired_domains(DomainSpec(path=path), None, ("label", "photo"), "AB", "test", 1, 4, 4, 10)
    assert a.images[:, 0, 0, 0].tolist() == [10, 20, 40] and b.images[:, 0, 0, 0].tolist() == [200, 210, 230]
    assert skipped == {"an odd width (no two halves)": 1} and a.skipped == 1
    assert (a.held[0, 0, 0, 0], b.held[0, 0, 0, 0]) == (50, 240)
    a, b, _ = load_paired_domains(DomainSpec(path=path), None, ("photo", "label"), "BA", None, 1, 4, 4, 10)
    assert a.images[:, 0, 0, 0].tolist() == [200, 210, 230] and a.held is None  # their --direction BtoA


def test_two_columns_are_pairs_and_mismatched_or_missing_rows_are_skipped(tmp_path):
    from cyclegan_hub.training.data import load_paired_domains

    columns = {
        "imageA": [gray(1), gray(2), gray(3), None],
        "imageB": [gray(30), gray(40, size=(6, 10)), gray(50), gray(60)],
    }
    path = save_parquet_dataset(
        tmp_path / "pairs",
        {"train": columns},
        datasets.Features({"imageA": datasets.Image(), "imageB": datasets.Image()}),
    )
    spec = DomainSpec(path=path, image_column="imageA")
    a, b, skipped = load_paired_domains(spec, "imageB", ("x", "y"), "", None, 1, 4, 4, 10)
    assert a.images[:, 0, 0, 0].tolist() == [1, 3] and b.images[:, 0, 0, 0].tolist() == [30, 50]
    assert skipped == {"two images of different sizes": 1, "an unreadable or missing image": 1}
    with pytest.raises(ValueError, match="no column 'imageC'"):
        load_paired_domains(spec, "imageC", ("x", "y"), "", None, 1, 4, 4, 10)


def test_paired_batches_crop_and_flip_each_pair_alike_and_the_sampler_keeps_rows_together():
    from cyclegan_hub.training.data import PairedSampler, paired_batch

    images = torch.randint(0, 255, (6, 1, 12, 12), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(0)
    a, b = paired_batch(
        images,
        images.clone(),
        torch.tensor([0, 3, 5]),
        size=8,
        flip=True,
        generator=generator,
        device=torch.device("cpu"),
    )
    assert a.shape == (3, 1, 8, 8) and torch.equal(a, b)
    sampler = PairedSampler(6, batch_size=2, seed=1)
    epoch = [sampler.indices(step) for step in range(3)]
    assert all(torch.equal(x, y) for x, y in epoch)
    assert sorted(torch.cat([x for x, _ in epoch]).tolist()) == list(range(6))  # every pair once an epoch


def test_a_paired_config_reads_domain_b_from_domain_a_rows(tmp_path):
    from cyclegan_hub.training import config as configs

    path = tmp_path / "p.toml"
    path.write_text(
        '[domain_a]\npath = "somewhere"\nlabel = "edges"\n[domain_b]\nlabel = "shoe"\n[data]\npaired = true\n'
    )
    config = configs.load(path)
    assert (config.domain_b.path, config.domain_a.image_column, config.domain_b.image_column) == (
        "somewhere",
        "imageA",
        "imageB",
    )
    with pytest.raises(configs.ConfigError, match='domain_b.path = "elsewhere" cannot differ from domain_a.path'):
        configs.load(path, ['domain_b.path="elsewhere"'])
    assert configs.load(path, ['data.aligned="BA"']).data.paired is True
    with pytest.raises(configs.ConfigError, match="the pix2pix family trains on pairs: set data.paired = true"):
        configs.load(path, ["data.paired=false", 'domain_b.path="somewhere"', 'model.family="pix2pix"'])
