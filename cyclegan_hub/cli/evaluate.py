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
    p.add_argument("--metrics", help="comma-separated: accuracy, cycle, fid, kid (default: all that apply)")
    p.add_argument("--max-images", type=int, default=1000, help="images per domain (default 1000)")
    p.add_argument("--inception-weights", help="local Inception-v3 weights for FID/KID")
    p.add_argument("--device", default="cpu")
    p.add_argument("--output", "-o", help="write the figures as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub.repos import load_generator
    from ..io.files import atomic_write_json
    from ..training.evaluate import check_metrics, evaluate_model

    wanted = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    check_metrics(wanted)
    g = load_generator(args.model, device=args.device)
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
    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if args.output:
        atomic_write_json(args.output, metrics)
        print(f"wrote {args.output}")
    return 0
