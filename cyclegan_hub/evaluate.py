"""Judging a trained pair: the figures training prints at the end and model cards carry.

For digit domains (MNIST 6 <-> 9) a shipped classifier reads the outputs:
- translation accuracy A->B: the share of G(a) read as the target digit,
- cycle accuracy A->B->A: the share of F(G(a)) still read as the source digit,
- cycle L1: mean |F(G(a)) - a| in the model's value range (0 = perfect reconstruction),
and the same for B->A. The rotation trick (a 6 turned by 180 degrees) is read as a 9 about 79% of the time:
a translation accuracy near that says the model learned little more than rotating.
"""

from __future__ import annotations

import torch

from .generator import CycleGenerator


def is_digit_pair(generator: CycleGenerator) -> bool:
    config = generator.config
    return (
        config["in_channels"] == 1
        and str(config["source_domain"]).isdigit()
        and str(config["target_domain"]).isdigit()
    )


@torch.inference_mode()
def translate_tensors(generator: CycleGenerator, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Run a generator over [N, C, H, W] images in its value range (H, W already a valid size)."""
    device = next(generator.parameters()).device
    outputs = [generator(images[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(outputs) if outputs else images.new_empty(0)


@torch.inference_mode()
def evaluate_pair(
    forward: CycleGenerator,
    reverse: CycleGenerator,
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    classifier=None,
) -> dict[str, float]:
    """Metrics of a pair on held-out images of both domains ([N, C, H, W], in the generators' value range).

    Keys: ``cycle_l1_a2b``, ``cycle_l1_b2a`` always; ``translation_accuracy_*``, ``cycle_accuracy_*`` for digit
    domains (using ``classifier`` or the shipped MNIST classifier)."""
    metrics: dict[str, float] = {"n_images_a": len(images_a), "n_images_b": len(images_b)}
    use_digits = is_digit_pair(forward) and is_digit_pair(reverse)
    if use_digits and classifier is None:
        from .mnist_classifier import load_mnist_classifier

        classifier = load_mnist_classifier()
    for name, g, f, real in (("a2b", forward, reverse, images_a), ("b2a", reverse, forward, images_b)):
        fake = translate_tensors(g, real)
        rec = translate_tensors(f, fake)
        metrics[f"cycle_l1_{name}"] = (rec - real.float()).abs().mean().item()
        if use_digits:
            from .mnist_classifier import classify_digits

            source, target = int(g.config["source_domain"]), int(g.config["target_domain"])
            metrics[f"translation_accuracy_{name}"] = (classify_digits(fake, classifier) == target).float().mean().item()
            metrics[f"cycle_accuracy_{name}"] = (classify_digits(rec, classifier) == source).float().mean().item()
            metrics[f"source_accuracy_{name}"] = (classify_digits(real.float(), classifier) == source).float().mean().item()
    return metrics


def metrics_table(metrics: dict[str, float], source: str, target: str) -> str:
    """A markdown table of ``evaluate_pair`` figures for a model card."""
    rows = ["| metric | " + f"{source} → {target} | {target} → {source} |", "|---|---|---|"]
    for key, label in (
        ("translation_accuracy", "translation accuracy (classifier reads the target digit)"),
        ("cycle_accuracy", "cycle accuracy (round trip still reads as the source digit)"),
        ("cycle_l1", "cycle L1 (mean absolute error, range [-1, 1])"),
    ):
        if f"{key}_a2b" in metrics:
            a2b, b2a = metrics[f"{key}_a2b"], metrics[f"{key}_b2a"]
            fmt = "{:.1%}" if "accuracy" in key else "{:.4f}"
            rows.append(f"| {label} | {fmt.format(a2b)} | {fmt.format(b2a)} |")
    return "\n".join(rows)
