"""Model cards: what the trainer, ``push``, ``convert`` and ``eval`` say about a generator, written in one place.

A generator's card is its ``save_pretrained`` README (the template lives on ``CycleGenerator``) plus structured
metadata that the Hub reads: ``model-index`` with the evaluation the card's table shows, ``datasets`` where the
training data is a Hub dataset, and ``base_model`` where the weights started from a Hub model. ``CardInputs`` is
what a run folder remembers for its cards (``card.json``), so that ``push`` can write the same cards later.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..io.files import atomic_write_json, read_json
from ..models.cyclegan import CycleGenerator

#: The two directions of a pair, as metric suffixes and run-folder names use them.
DIRECTIONS = ("AtoB", "BtoA")
CARD_FILE = "card.json"

_METRICS = (
    ("translation_accuracy", "translation accuracy (classifier reads the target digit)", "translation accuracy"),
    ("cycle_accuracy", "cycle accuracy (round trip still reads as the source digit)", "cycle accuracy"),
    ("cycle_l1", "cycle L1 (mean absolute error, range [-1, 1])", "cycle L1"),
    ("psnr", "PSNR against the true outputs (dB)", "PSNR"),
    ("ssim", "SSIM against the true outputs", "SSIM"),
    ("l1", "L1 to the true outputs (mean absolute error, range [-1, 1])", "L1"),
    ("digit_agreement", "digit agreement (classifier reads the true output's digit)", "digit agreement"),
    ("fid", "FID against real target images (Inception-v3)", "FID"),
    ("kid", "KID against real target images (Inception-v3)", "KID"),
)


@dataclass
class CardInputs:
    """What the cards of a run say beyond the model itself: how it was made and on what."""

    training: str | None = None  # the recipe, as markdown bullet points
    origin: str | None = None  # where converted weights of the A -> B generator come from, as markdown
    reverse_origin: str | None = None  # the same for the B -> A generator
    license: str | None = None  # the weights' license where it is not this package's (converted: "bsd")
    datasets: list[str] = field(default_factory=list)  # Hub dataset ids
    data_name: str | None = None  # what the evaluation data is called when it is not a Hub dataset (a folder name)
    base_model: str | None = None  # the Hub model the weights started from
    metrics: dict = field(default_factory=dict)  # evaluate_pair's figures, keys suffixed _AtoB / _BtoA

    def save(self, run_dir: str | Path) -> None:
        atomic_write_json(Path(run_dir) / CARD_FILE, asdict(self))

    @classmethod
    def load(cls, run_dir: str | Path) -> CardInputs:
        """The card inputs of a run folder (a regular file inside it; none: empty inputs)."""
        path = Path(run_dir) / CARD_FILE
        if not path.exists() and not path.is_symlink():
            return cls()
        values = read_json(path, what=f"{path}", follow_links=False)
        known = {k: values[k] for k in asdict(cls()) if k in values}
        for key in ("training", "origin", "reverse_origin", "license", "base_model", "data_name"):
            if known.get(key) is not None and not isinstance(known[key], str):
                raise ValueError(f"{path}: {key} must be a text")
        if not isinstance(known.get("datasets", []), list) or not isinstance(known.get("metrics", {}), dict):
            raise ValueError(f"{path}: datasets must be a list and metrics an object")
        return cls(**known)


def reversed_metrics(metrics: dict) -> dict:
    """The same figures seen from the reverse generator: its own direction becomes ``_AtoB``."""
    swap = {"_AtoB": "_BtoA", "_BtoA": "_AtoB"}
    out = {}
    for key, value in metrics.items():
        suffix = key[-5:]
        out[key[:-5] + swap[suffix] if suffix in swap else key] = value
    return out


def metrics_table(metrics: dict[str, float], source: str, target: str) -> str | None:
    """A markdown table of ``evaluate_pair`` figures (keys suffixed _AtoB / _BtoA), or of ``evaluate_pairs``
    figures (one way, on held-out pairs: _AtoB beside the input itself, _identity); None without figures."""
    one_way = "n_pairs" in metrics
    other = ("identity", "the input itself (baseline)") if one_way else ("BtoA", f"{target} → {source}")
    rows = [f"| metric | {source} → {target} | {other[1]} |", "|---|---|---|"]
    for key, label, _ in _METRICS:
        if f"{key}_AtoB" in metrics:
            forward, second = metrics[f"{key}_AtoB"], metrics.get(f"{key}_{other[0]}")
            fmt = "{:.1%}" if "accuracy" in key or "agreement" in key else "{:.4f}"
            rows.append(f"| {label} | {fmt.format(forward)} | {fmt.format(second) if second is not None else '-'} |")
    return "\n".join(rows) if len(rows) > 2 else None


def eval_results(metrics: dict, source: str, target: str, dataset: str):
    """The figures of one direction (``_AtoB``) as huggingface_hub ``EvalResult`` entries (the card's model-index)."""
    from huggingface_hub import EvalResult

    return [
        EvalResult(
            task_type="image-to-image",
            task_name="paired image-to-image translation"
            if "n_pairs" in metrics
            else "unpaired image-to-image translation",
            dataset_type=dataset,
            dataset_name=f"{source} -> {target} held-out images",
            metric_type=key,
            metric_name=name,
            metric_value=round(float(metrics[f"{key}_AtoB"]), 4),
        )
        for key, _, name in _METRICS
        if f"{key}_AtoB" in metrics
    ]


def write_run(run_dir: str | Path, pair: dict, inputs: CardInputs, step: int) -> None:
    """A run's result: card.json, metrics.json and both generator folders, each written whole (never half)."""
    from ..io.files import replace_folder

    run_dir = Path(run_dir)
    inputs.save(run_dir)
    atomic_write_json(run_dir / "metrics.json", {"step": step} | inputs.metrics)
    for name, direction in (("G", "AtoB"), ("F", "BtoA")):
        if name not in pair:  # a one-way family exports G alone
            continue
        replace_folder(
            run_dir / f"generator_{direction}",
            lambda tmp, g=pair[name], d=direction: write_generator(g, tmp, inputs, d),
        )


def write_generator(
    generator: CycleGenerator,
    folder: str | Path,
    inputs: CardInputs,
    direction: str = "AtoB",
    *,
    repo_id: str | None = None,
    twin_repo_id: str | None = None,
    sample: Path | None = None,
    name: str | None = None,
) -> None:
    """Write a complete generator folder: model.safetensors, config.json and the card (metadata included), and
    ``sample.png`` when a sample image is given. ``direction`` says which of the pair's metrics are its own."""
    from huggingface_hub import ModelCard

    folder = Path(folder)
    own = inputs.metrics if direction == "AtoB" else reversed_metrics(inputs.metrics)
    source, target = generator.config["source_domain"], generator.config["target_domain"]
    sample_name = None
    if sample is not None:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample, folder / "sample.png")
        sample_name = "sample.png"
    generator.save_pretrained(
        folder,
        model_card_kwargs={
            "repo_id": repo_id,
            "twin_repo_id": twin_repo_id,
            "sample_image": sample_name,
            "training": inputs.training,
            "origin": inputs.origin if direction == "AtoB" else inputs.reverse_origin or inputs.origin,
            "metrics_table": metrics_table(own, source, target),
        },
    )
    card = ModelCard.load(folder / "README.md")
    card.data.datasets = inputs.datasets or None
    card.data.base_model = inputs.base_model or card.data.base_model  # a one-step translator names its base
    if inputs.license:
        card.data.license = inputs.license
    dataset = (inputs.datasets or [inputs.data_name or name or f"{source}-{target}"])[0]
    results = eval_results(own, source, target, dataset)
    if results:
        card.data.model_name = name or (repo_id.split("/")[-1] if repo_id else f"cyclegan-{source}-to-{target}")
        card.data.eval_results = results
    card.save(folder / "README.md")
