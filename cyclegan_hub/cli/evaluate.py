"""``cyclegan-hub eval``: translate held-out images and measure the result."""

from __future__ import annotations

import argparse

from .common import parse_domain


def add(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a generator (accuracy for digits, cycle error, FID, KID)",
        description="Translate held-out images of the source domain and measure the result. Domains are a dataset "
        'path / Hub id, or a TOML inline table such as \'{path="training/data/mnist-6-9", split="test", '
        'filter="label == 6"}\'. Metrics: accuracy (digit models: the shipped MNIST classifier), cycle (needs '
        "--reverse-model), fid and kid (need --target-data and the Inception-v3 weights).",
    )
    p.add_argument("--model", required=True, help="the generator: Hub repo id or folder")
    p.add_argument("--data", required=True, help="source-domain images")
    p.add_argument("--reverse-model", help="the reverse generator, for the cycle metrics")
    p.add_argument("--target-data", help="real target-domain images, for FID/KID")
    p.add_argument(
        "--target-column",
        help="paired data: the column of --data that holds each row's true output (PSNR, SSIM and L1 against it, "
        "beside the input itself)",
    )
    p.add_argument(
        "--aligned",
        choices=("AB", "BA"),
        help="paired data in one image column: the input on the left half and the true output on the right (AB)",
    )
    p.add_argument("--metrics", help="comma-separated: accuracy, cycle, fid, kid (default: all that apply)")
    p.add_argument("--max-images", type=int, default=1000, help="images per domain (default 1000)")
    p.add_argument("--inception-weights", help="local Inception-v3 weights for FID/KID")
    p.add_argument("--device", default="cpu")
    p.add_argument("--output", "-o", help="write the figures as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub.repos import load_generator
    from ..training.evaluate import check_metrics, evaluate_model

    wanted = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    check_metrics(wanted)
    g = load_generator(args.model, device=args.device)
    if args.target_column or args.aligned:
        from ..training.evaluate import evaluate_paired_model

        if args.target_column and args.aligned:
            raise ValueError("--target-column and --aligned are two layouts of paired data: give one")
        digits = bool(wanted) and "accuracy" in wanted
        if digits and g.config["in_channels"] != 1:
            raise ValueError("accuracy on pairs reads gray digits with the MNIST classifier: a 1-channel model only")
        paired = evaluate_paired_model(
            g, parse_domain(args.data), args.target_column, args.aligned or "", args.max_images, digits
        )
        return report({"model": args.model} | paired, args.output)
    f = load_generator(args.reverse_model, device=args.device) if args.reverse_model else None
    metrics = {"model": args.model} | evaluate_model(
        g,
        parse_domain(args.data),
        f=f,
        target_data=parse_domain(args.target_data) if args.target_data else None,
        metrics=wanted,
        max_images=args.max_images,
        inception_weights=args.inception_weights,
    )
    return report(metrics, args.output)


def report(metrics: dict, output: str | None) -> int:
    from ..io.files import atomic_write_json

    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if output:
        atomic_write_json(output, metrics)
        print(f"wrote {output}")
    return 0
