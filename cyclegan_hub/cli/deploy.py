"""``cyclegan-hub deploy-space``: a Hugging Face Space serving pairs from the Hub, created or updated in one
commit."""

from __future__ import annotations

import argparse

from .common import UserError


def add(subparsers) -> None:
    p = subparsers.add_parser(
        "deploy-space",
        help="create or update a Hugging Face Space serving pairs from the Hub",
        description="Create or update a Gradio Space in one commit: the app, a README whose front matter is the "
        "Space config (models, pinned gradio), a requirements.txt, and this package as a wheel of exactly its own "
        "files. Every model is checked before anything is uploaded.",
    )
    p.add_argument("--space-id", required=True, help="e.g. user/cyclegan-demo")
    p.add_argument(
        "--model",
        required=True,
        action="append",
        metavar="FORWARD[,REVERSE]",
        help="a pair on the Hub (repeat for several); the reverse defaults to the twin name",
    )
    p.add_argument("--reverse-model", help="the reverse of a single --model (default: the twin name)")
    p.add_argument("--private", action="store_true")
    p.add_argument(
        "--hardware",
        default="cpu-basic",
        help="the Space's hardware, requested through the Hub and written "
        "as its suggested_hardware (default cpu-basic; a one-step pair wants a GPU: zero-a10g, t4-small, "
        "l4x1, ...)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..serving.deploy import deploy_space

    models = list(args.model)
    if args.reverse_model:
        if len(models) != 1:
            raise UserError(
                "--reverse-model names the reverse of a single --model; for several pairs write FORWARD,REVERSE"
            )
        models = [f"{models[0]},{args.reverse_model}"]
    url = deploy_space(args.space_id, models, private=args.private, hardware=args.hardware)
    print(f"deployed {args.space_id}: {url}")
    return 0
