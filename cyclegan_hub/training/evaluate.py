"""Judging a trained pair: the figures training prints at the end and model cards carry.

For digit domains (MNIST 6 <-> 9) a shipped classifier reads the outputs:
- translation accuracy A->B: the share of G(a) read as the target digit,
- cycle accuracy A->B->A: the share of F(G(a)) still read as the source digit,
- cycle L1: mean |F(G(a)) - a| in the model's value range (0 = perfect reconstruction),
and the same for B->A. The rotation trick (a 6 turned by 180 degrees) is read as a 9 about 79% of the time:
a translation accuracy near that says the model learned little more than rotating.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .. import translation
from ..io.files import atomic_write_text
from ..io.imaging import to_network
from ..models.cyclegan import CycleGenerator


def is_digit_pair(generator: CycleGenerator) -> bool:
    config = generator.config
    return (
        config["in_channels"] == 1 and str(config["source_domain"]).isdigit() and str(config["target_domain"]).isdigit()
    )


@torch.inference_mode()
def translate_tensors(generator: CycleGenerator, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Run a generator over [N, C, H, W] images in its value range, in batches, through ``translation.run``
    (the pad -> run -> crop that ``translate`` uses); returns float32 on the CPU."""
    device = next(generator.parameters()).device
    outputs = [
        translation.run(generator, images[i : i + batch_size].to(device).float()).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(outputs) if outputs else images.new_empty(0)


@torch.inference_mode()
def direction_metrics(
    g: CycleGenerator, f: CycleGenerator | None, real: torch.Tensor, classifier=None, wanted=("accuracy", "cycle")
) -> tuple[dict[str, float], torch.Tensor]:
    """One direction: translate ``real`` (model value range) with ``g`` and measure; with the reverse ``f`` also the
    round trip. Digit models are read by ``classifier`` (default: the shipped MNIST classifier).

    Returns (metrics, translated images). Keys: ``translation_accuracy``, ``source_accuracy`` (digits),
    ``cycle_l1`` and, for digits, ``cycle_accuracy`` (with ``f``)."""
    fake = translate_tensors(g, real)
    digits = is_digit_pair(g) and (f is None or is_digit_pair(f))
    if digits:
        from ..models.mnist_classifier import classify_digits, load_mnist_classifier

        classifier = classifier or load_mnist_classifier()
        source, target = int(g.config["source_domain"]), int(g.config["target_domain"])
    metrics: dict[str, float] = {}
    if digits and "accuracy" in wanted:
        metrics["translation_accuracy"] = (classify_digits(fake, classifier) == target).float().mean().item()
        metrics["source_accuracy"] = (classify_digits(real.float(), classifier) == source).float().mean().item()
    if f is not None and "cycle" in wanted:
        rec = translate_tensors(f, fake)
        metrics["cycle_l1"] = (rec - real.float()).abs().mean().item()
        if digits:
            metrics["cycle_accuracy"] = (classify_digits(rec, classifier) == source).float().mean().item()
    return metrics, fake


def evaluate_pair(
    forward: CycleGenerator,
    reverse: CycleGenerator,
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    classifier=None,
) -> dict[str, float]:
    """Metrics of a pair on held-out images of both domains ([N, C, H, W], in the generators' value range): what
    training prints at its end and what the model cards carry. Keys: ``direction_metrics``'s, suffixed ``_AtoB``
    and ``_BtoA``."""
    metrics: dict[str, float] = {"n_images_a": len(images_a), "n_images_b": len(images_b)}
    for name, g, f, real in (("AtoB", forward, reverse, images_a), ("BtoA", reverse, forward, images_b)):
        values, _ = direction_metrics(g, f, real, classifier)
        metrics.update({f"{key}_{name}": value for key, value in values.items()})
    return metrics


class EvalLog:
    """``eval_log.jsonl`` of a run: held-out figures with the step and the seconds since launch (time to quality)."""

    def __init__(self, path: Path, launched: float):
        self.path, self.launched = Path(path), launched

    def append(self, step: int, metrics: dict) -> None:
        with open(self.path, "a") as log:
            log.write(json.dumps({"step": step, "elapsed_s": round(time.time() - self.launched, 2)} | metrics) + "\n")

    def trim(self, step: int) -> None:
        """On resume: evaluations logged after the checkpoint's step belong to the interrupted attempt."""
        if self.path.is_file():
            rows = [
                line for line in self.path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step
            ]
            atomic_write_text(self.path, "".join(row + "\n" for row in rows))


@torch.inference_mode()
def evaluate_pairs(generator, inputs: torch.Tensor, targets: torch.Tensor, digits: bool = False) -> dict[str, float]:
    """A paired translator on held-out pairs (row i of ``inputs`` and ``targets`` one pair, in its value range):
    ``psnr_AtoB`` (dB, the mean over images, on [0, 1]), ``ssim_AtoB``, ``l1_AtoB`` (in the value range) and, with
    ``digits``,
    ``digit_agreement_AtoB``: the share of outputs the shipped MNIST classifier reads as the digit it reads in the
    true output (``identity_*``: the same figures for the input itself, the baseline to beat)."""
    low, high = generator.config["value_range"]
    fake = translate_tensors(generator, inputs)
    metrics: dict[str, float] = {"n_pairs": len(inputs)}
    if digits:
        from ..models.mnist_classifier import classify_digits

        true_digits = classify_digits(targets.float())  # the shipped classifier, loaded once
    for name, images in (("AtoB", fake), ("identity", inputs.float())):
        unit = [((x - low) / (high - low)).clamp(0, 1) for x in (images, targets.float())]
        mse = (unit[0] - unit[1]).square().flatten(1).mean(1).clamp(min=1e-10)
        metrics[f"psnr_{name}"] = (10 * torch.log10(1 / mse)).mean().item()
        metrics[f"l1_{name}"] = (images - targets.float()).abs().mean().item()
        metrics[f"ssim_{name}"] = ssim(unit[0], unit[1]).mean().item()
        if digits:
            metrics[f"digit_agreement_{name}"] = (classify_digits(images) == true_digits).float().mean().item()
    return metrics


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) of [N, C, H, W] images in [0, 1]: an 11x11 Gaussian window (sigma 1.5;
    the side of a smaller image, made odd), C1 = 0.01^2, C2 = 0.03^2, over the valid region, averaged over
    channels and positions."""
    side = min(11, x.shape[-1], x.shape[-2])
    side -= 1 - side % 2
    taps = torch.exp(-((torch.arange(side, dtype=torch.float64) - side // 2) ** 2) / (2 * 1.5**2))
    window = (taps[:, None] * taps[None, :] / taps.sum() ** 2).to(x.dtype)
    channels = x.shape[1]
    kernel = window.expand(channels, 1, side, side)

    def blur(t):
        return torch.nn.functional.conv2d(t, kernel, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return value.flatten(1).mean(1)


def evaluate_paired_model(
    g, data: dict, target_column: str | None, aligned: str = "", max_images: int = 1000, digits: bool = False
) -> dict:
    """What ``cyclegan-hub eval --target-column`` / ``--aligned`` prints: ``evaluate_pairs`` of ``g`` on the pairs
    of ``data`` (a DomainSpec dict: its image column and ``target_column`` of each row, or the halves of its one
    image column), with ``skipped_*`` counts of the rows that are not pairs."""
    from .data import DomainSpec, decode_pairs, load_domain

    spec = DomainSpec.from_dict(data)
    source = load_domain(spec, "--data")
    columns = spec.image_column if aligned else (spec.image_column, target_column)
    if not aligned and target_column not in (source.features or {}):
        raise ValueError(f"--target-column: no column {target_column!r} in {spec.describe()}")
    if not aligned:
        import datasets

        source = source.cast_column(target_column, datasets.Image(decode=False))
    size, channels = g.config["image_size"], g.config["in_channels"]
    a, b, skipped = decode_pairs(source, columns, channels, size, max_images, swap=aligned == "BA")
    if len(a) == 0:
        raise ValueError(f"--data holds no readable pair ({'; '.join(skipped) or 'no rows'})")
    value_range = g.config["value_range"]
    metrics = evaluate_pairs(g, to_network(a, value_range), to_network(b, value_range), digits)
    metrics.update({f"skipped ({reason})": count for reason, count in skipped.items()})
    return metrics


def held_out_metrics(
    pair: dict, held_a: torch.Tensor | None, held_b: torch.Tensor | None, *, paired: bool = False, digits: bool = False
) -> dict[str, float]:
    """``evaluate_pair`` of {"G", "F"} on uint8 held-out images of both domains, ``evaluate_pairs`` of a one-way G
    on held-out pairs (``paired``), or a one-way G's ``direction_metrics`` on A; {} when a domain has none."""
    if held_a is None or held_b is None:
        return {}
    device, value_range = next(pair["G"].parameters()).device, pair["G"].config["value_range"]
    a, b = (to_network(x.to(device), value_range) for x in (held_a, held_b))
    if "F" not in pair and paired:
        return evaluate_pairs(pair["G"], a, b, digits)
    if "F" not in pair:  # one way, unpaired: what the translations of A are read as
        values, _ = direction_metrics(pair["G"], None, a)
        return {"n_images_a": len(a)} | {f"{k}_AtoB": v for k, v in values.items()} if values else {}
    return evaluate_pair(pair["G"], pair["F"], a, b)


@torch.inference_mode()
def sample_rows(pair: dict, previews: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
    """Rows A, G(A), F(G(A)), B, F(B), G(F(B)) of uint8 preview images, in the network's range (``preview_grid``);
    for a one-way G: A, G(A), B."""
    if "F" not in pair:
        g = pair["G"]
        real_a, real_b = (to_network(x.to(next(g.parameters()).device), g.config["value_range"]) for x in previews)
        return [real_a, translation.run(g, real_a), real_b]
    rows = []
    for images, g, f in ((previews[0], pair["G"], pair["F"]), (previews[1], pair["F"], pair["G"])):
        real = to_network(images.to(next(g.parameters()).device), g.config["value_range"])
        fake = translation.run(g, real)
        rows += [real, fake, translation.run(f, fake)]
    return rows


# ---------------------------------------------------------------------------------------------------------------
# FID and KID (Heusel et al. 2017; Binkowski et al. 2018) on any feature extractor
# ---------------------------------------------------------------------------------------------------------------

#: Fewer images than this per set give FID/KID estimates dominated by noise; we refuse them.
MIN_IMAGES_FID_KID = 50
INCEPTION_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), in float64."""
    a, b = features_a.double(), features_b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    # Tr((S_a S_b)^(1/2)) = sum of sqrt of the eigenvalues of S_a^(1/2) S_b S_a^(1/2) (symmetric, PSD)
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T
    middle = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * middle)


def kernel_distance(
    features_a: torch.Tensor, features_b: torch.Tensor, subsets: int = 100, subset_size: int = 100, seed: int = 0
) -> tuple[float, float]:
    """KID: the unbiased MMD^2 with the cubic polynomial kernel (x.y / d + 1)^3, averaged over random subsets.
    Returns (mean, std)."""
    a, b = features_a.double(), features_b.double()
    n = min(subset_size, len(a), len(b))
    d = a.shape[1]
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = a[torch.randperm(len(a), generator=g)[:n]]
        y = b[torch.randperm(len(b), generator=g)[:n]]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        mmd = (kxx.sum() - kxx.trace() + kyy.sum() - kyy.trace()) / (n * (n - 1)) - 2 * kxy.mean()
        values.append(float(mmd))
    values_t = torch.tensor(values)
    return float(values_t.mean()), float(values_t.std()) if len(values) > 1 else 0.0


def check_enough_images(n_fake: int, n_real: int) -> None:
    if min(n_fake, n_real) < MIN_IMAGES_FID_KID:
        raise ValueError(
            f"FID/KID need at least {MIN_IMAGES_FID_KID} images in each set; got {n_fake} translated and {n_real} real"
        )


def load_inception(weights: str | None = None):
    """torch-fidelity's Inception-v3 (the FID network), 2048-d pool features, from a local weights file or an
    already populated torch hub cache: nothing is downloaded. Returns a function images[0,1] -> features."""
    import os
    from pathlib import Path

    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise ValueError("FID/KID need torch-fidelity's Inception-v3: pip install torch-fidelity") from None
    if weights is None:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS
        weights = str(cached) if cached.is_file() else None
    if weights is None or not os.path.isfile(weights):
        raise ValueError(
            f"FID/KID need the Inception-v3 weights ({INCEPTION_WEIGHTS}): pass --inception-weights PATH or place the "
            f"file in {Path(torch.hub.get_dir()) / 'checkpoints'}; they cannot be downloaded from here"
        )
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=weights).eval()

    @torch.inference_mode()
    def features(images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        return net((images.clamp(0, 1) * 255).round().to(torch.uint8))[0].double()

    return features


def fid_kid(fake: torch.Tensor, real: torch.Tensor, features, batch_size: int = 64) -> dict[str, float]:
    """FID and KID between two image sets in [0, 1], [N, C, H, W], with ``features`` images -> [N, D]."""
    check_enough_images(len(fake), len(real))

    def embed(images):
        return torch.cat([features(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])

    f, r = embed(fake), embed(real)
    kid, kid_std = kernel_distance(f, r)
    return {"fid": frechet_distance(f, r), "kid": kid, "kid_std": kid_std}


METRICS = ("accuracy", "cycle", "fid", "kid")


def check_metrics(metrics) -> list[str]:
    """The metric names asked for (None: all), each one known."""
    wanted = list(metrics) if metrics is not None else list(METRICS)
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; valid: {', '.join(METRICS)}")
    return wanted


def evaluate_model(
    g: CycleGenerator,
    data: dict,
    *,
    f: CycleGenerator | None = None,
    target_data: dict | None = None,
    metrics=None,
    max_images: int = 1000,
    inception_weights: str | None = None,
    features=None,
) -> dict:
    """What ``cyclegan-hub eval`` prints: translate ``data`` (a DomainSpec dict) with ``g`` and measure.

    ``metrics`` None means every metric that applies: accuracy for digit models, cycle with the reverse model ``f``,
    FID/KID with ``target_data`` (skipped with a note when the Inception weights are missing; an explicit request
    fails)."""
    from ..io.imaging import to_network, to_unit
    from .data import DomainSpec, decode_domain, load_domain

    explicit = metrics is not None
    wanted = check_metrics(metrics)
    if explicit and "cycle" in wanted and f is None:
        raise ValueError("the cycle metrics need the reverse generator: --reverse-model")
    if explicit and "accuracy" in wanted and not is_digit_pair(g):
        raise ValueError("accuracy is measured for digit models (1 channel, domains named by digits) only")
    if explicit and {"fid", "kid"} & set(wanted) and target_data is None:
        raise ValueError("FID/KID compare with real target-domain images: --target-data")

    size, channels = g.config["image_size"], g.config["in_channels"]
    source = load_domain(DomainSpec.from_dict(data), "--data")
    real, skipped = decode_domain(source, data.get("image_column", "image"), channels, size, max_images)
    if len(real) == 0:
        raise ValueError("--data holds no readable image")
    x = to_network(real, g.config["value_range"])
    values, fake = direction_metrics(g, f, x, wanted=wanted)
    out: dict = {"n_images": len(real), "skipped": skipped}
    out.update(values)
    if target_data is not None and {"fid", "kid"} & set(wanted):
        target = load_domain(DomainSpec.from_dict(target_data), "--target-data")
        real_b, _ = decode_domain(
            target, target_data.get("image_column", "image"), g.config["out_channels"], size, max_images
        )
        check_enough_images(len(fake), len(real_b))
        try:
            features = features or load_inception(inception_weights)
        except ValueError as err:
            if explicit:
                raise
            out["fid_kid"] = f"skipped: {err}"
        else:
            scores = fid_kid(to_unit(fake, g.config["value_range"]), real_b.float() / 255, features)
            out.update({k: v for k, v in scores.items() if k.split("_")[0] in wanted})
    return out
