import json
import math
import re

import pytest
import torch

from cyclegan_hub import CycleGenerator
from cyclegan_hub.cli import main
from cyclegan_hub.training.evaluate import (
    MIN_IMAGES_FID_KID,
    evaluate_model,
    fid_kid,
    frechet_distance,
    kernel_distance,
)

MNIST = "training/data/mnist-6-9"


def small_features():
    """A small random convolutional feature extractor standing in for Inception-v3."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, 2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten()
    )

    def features(images):
        with torch.no_grad():
            return net(images.repeat(1, 3 // images.shape[1], 1, 1)).double()

    return features


def test_frechet_distance_known_values():
    torch.manual_seed(0)
    a = torch.randn(4000, 3)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    # two Gaussians with identity covariance: FID = |mu_a - mu_b|^2
    assert frechet_distance(a, a + torch.tensor([2.0, 0, 0])) == pytest.approx(4.0, abs=1e-6)
    # N(0, I) vs N(0, 4I) in 3-d: Tr(I + 4I - 2 * 2I) = 3
    assert frechet_distance(torch.randn(20000, 3), 2 * torch.randn(20000, 3)) == pytest.approx(3.0, rel=0.05)


def test_kid_is_zero_for_identical_sets_and_grows_with_shift():
    torch.manual_seed(0)
    a = torch.randn(300, 16)
    same, _ = kernel_distance(a, a.clone(), subsets=10, subset_size=100)
    near, _ = kernel_distance(a, torch.randn(300, 16), subsets=10, subset_size=100)
    far, _ = kernel_distance(a, torch.randn(300, 16) + 1.5, subsets=10, subset_size=100)
    assert abs(near) < 0.05 < far and same <= near + 0.05


def test_fid_kid_on_images_with_a_small_extractor():
    torch.manual_seed(0)
    images = torch.rand(80, 1, 16, 16)
    identical = fid_kid(images, images.clone(), small_features())
    shifted = fid_kid(images, (images + 0.5).clamp(0, 1), small_features())
    assert identical["fid"] == pytest.approx(0, abs=1e-6)
    assert shifted["fid"] > 1e-3 and shifted["kid"] > identical["kid"]


def test_too_few_images_for_fid_kid():
    with pytest.raises(
        ValueError, match=f"at least {MIN_IMAGES_FID_KID} images in each set; got 10 translated and 80 real"
    ):
        fid_kid(torch.rand(10, 1, 8, 8), torch.rand(80, 1, 8, 8), small_features())


@pytest.fixture
def tiny_pair(tmp_path):
    torch.manual_seed(0)
    kw = dict(in_channels=1, out_channels=1, base_channels=4, n_blocks=1, image_size=28)
    CycleGenerator(source_domain="6", target_domain="9", **kw).save_pretrained(tmp_path / "g")
    CycleGenerator(source_domain="9", target_domain="6", **kw).save_pretrained(tmp_path / "f")
    return tmp_path / "g", tmp_path / "f"


def test_evaluate_model_schema(tiny_pair):
    g, f = (CycleGenerator.from_pretrained(p) for p in tiny_pair)
    six = {"path": MNIST, "split": "test", "filter": "label == 6"}
    nine = {"path": MNIST, "split": "test", "filter": "label == 9"}
    out = evaluate_model(g, six, f=f, target_data=nine, max_images=60, features=small_features())
    assert set(out) == {
        "n_images",
        "skipped",
        "translation_accuracy",
        "source_accuracy",
        "cycle_l1",
        "cycle_accuracy",
        "fid",
        "kid",
        "kid_std",
    }
    assert out["n_images"] == 60 and 0 <= out["translation_accuracy"] <= 1 and out["fid"] >= 0


def test_eval_cli_writes_json_and_says_what_is_missing(tiny_pair, tmp_path, capsys):
    g, f = map(str, tiny_pair)
    six = '{path="training/data/mnist-6-9", split="test", filter="label == 6"}'
    assert (
        main(
            [
                "eval",
                "--model",
                g,
                "--reverse-model",
                f,
                "--data",
                six,
                "--max-images",
                "20",
                "--output",
                str(tmp_path / "e.json"),
            ]
        )
        == 0
    )
    out = json.loads((tmp_path / "e.json").read_text())
    assert {"translation_accuracy", "cycle_accuracy", "cycle_l1"} <= set(out)
    capsys.readouterr()
    assert main(["eval", "--model", g, "--data", six, "--metrics", "sharpness"]) == 1
    assert "unknown metric(s) sharpness; valid: accuracy, cycle, fid, kid" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "--model",
                g,
                "--data",
                six,
                "--metrics",
                "fid",
                "--target-data",
                MNIST,
                "--inception-weights",
                str(tmp_path / "none.pth"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("cyclegan-hub: error: FID/KID need") and len(err.strip().splitlines()) == 1
    assert main(["eval", "--model", str(tmp_path), "--data", six]) == 1
    assert "has no config.json" in capsys.readouterr().err


def test_reversed_metrics_swap_the_directions():
    from cyclegan_hub.hub.cards import metrics_table, reversed_metrics

    metrics = {
        "translation_accuracy_AtoB": 0.97,
        "translation_accuracy_BtoA": 0.99,
        "cycle_l1_AtoB": 0.1,
        "cycle_l1_BtoA": 0.2,
        "step": 10,
    }
    back = reversed_metrics(metrics)
    assert back == {
        "translation_accuracy_BtoA": 0.97,
        "translation_accuracy_AtoB": 0.99,
        "cycle_l1_BtoA": 0.1,
        "cycle_l1_AtoB": 0.2,
        "step": 10,
    }
    assert reversed_metrics(back) == metrics
    assert "| translation accuracy (classifier reads the target digit) | 99.0% | 97.0% |" in metrics_table(
        back, "9", "6"
    )


def test_ssim_is_one_for_equal_images_and_falls_with_noise():
    from cyclegan_hub.training.evaluate import ssim

    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ssim(x, x), torch.ones(2, dtype=x.dtype))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    mild, strong = ((x + scale * noise).clamp(0, 1) for scale in (0.1, 0.3))
    # i.i.d. noise: SSIM is about 2 var(x) / (2 var(x) + var(noise)): 0.94 and 0.66 here
    assert (ssim(x, mild) > 0.9).all() and (ssim(x, strong) < 0.75).all() and (ssim(x, strong) > 0.55).all()


def test_eval_on_pairs_measures_against_the_true_output_and_names_the_rows_it_skips(tmp_path, capsys):
    import datasets

    from cyclegan_hub.cli import main
    from cyclegan_hub.models.pix2pix import Pix2PixGenerator
    from tests.training.test_data import gray, halves, save_parquet_dataset

    torch.manual_seed(0)
    model = Pix2PixGenerator(in_channels=1, out_channels=1, base_channels=4, n_downsampling=3, image_size=8)
    model.save_pretrained(tmp_path / "model")
    columns = {"imageA": [gray(10), gray(20), None], "imageB": [gray(30), gray(40, size=(6, 10)), gray(50)]}
    features = datasets.Features({"imageA": datasets.Image(), "imageB": datasets.Image()})
    path = save_parquet_dataset(tmp_path / "pairs", {"test": columns}, features)
    data = f'{{path="{path}", split="test", image_column="imageA"}}'
    args = ["eval", "--model", str(tmp_path / "model"), "--data", data, "--output", str(tmp_path / "m.json")]
    assert main([*args, "--target-column", "imageB"]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["skipped (two images of different sizes)"] == 1
    assert metrics["skipped (an unreadable or missing image)"] == 1
    assert metrics["n_pairs"] == 1 and metrics["psnr_identity"] == pytest.approx(10 * math.log10(255**2 / 20**2), 1e-3)
    assert {"psnr_AtoB", "ssim_AtoB", "l1_AtoB", "ssim_identity"} <= metrics.keys()

    aligned = save_parquet_dataset(
        tmp_path / "aligned", {"test": {"image": [halves(10, 200), halves(1, 2, size=(9, 4))]}}, features=None
    )
    assert (
        main(
            [
                "eval",
                "--model",
                str(tmp_path / "model"),
                "--data",
                f'{{path="{aligned}", split="test"}}',
                "--aligned",
                "AB",
            ]
        )
        == 0
    )
    assert re.search(r"skipped \(an odd width \(no two halves\)\) +1\n", capsys.readouterr().out)
    assert main([*args, "--target-column", "nope"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("no column 'nope' in " + f"{path} split=test")
