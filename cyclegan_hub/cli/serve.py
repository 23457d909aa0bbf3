"""``cyclegan-hub serve``: the Space's Gradio app, run locally."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import UserError

#: The repository's Space folder (its bundled pair and examples), when the package runs from a checkout.
SPACE = Path(__file__).resolve().parents[2] / "space"


def add(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the Gradio app (the Space) locally",
        description="Run the Space's Gradio app: any number of pairs behind a picker (the first is the default), "
        "both directions, the round trip, an API at /translate. A one-way model (pix2pix, CUT, or one whose reverse "
        "is not found) is served one way: input -> output, no round trip.",
    )
    p.add_argument(
        "--pair",
        action="append",
        metavar="SPEC",
        help="a pair: a Hub repo id or folder of one direction (the reverse by its twin name; none found: served one "
        "way), a run folder (generator_AtoB/ alone: one way), or FORWARD,REVERSE; repeat for several (default: the "
        "bundled MNIST 6 <-> 9 pair)",
    )
    p.add_argument(
        "--model",
        action="append",
        metavar="ID_OR_DIR",
        help="forward then reverse generator (twice); once: that model, as --pair would take it",
    )
    p.add_argument("--host", help="address to listen on (GRADIO_SERVER_NAME; default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (GRADIO_SERVER_PORT; default 7860)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    try:
        from ..serving.app import build_demo, launch, pair_specs
    except ImportError:
        raise UserError("serve needs gradio: pip install 'cyclegan-hub[space]'") from None
    specs = list(args.pair or [])
    if args.model:
        if len(args.model) > 2:
            raise UserError("give --model twice (the forward generator, then the reverse one), once, or use --pair")
        specs.insert(0, ",".join(args.model))
    if not specs:
        specs = pair_specs(SPACE if (SPACE / "models").is_dir() else None)
    if not specs:
        raise UserError("no pair to serve: --pair user/mnist-6to9 (a Hub repo id, a folder or a run folder)")
    if args.host:
        os.environ["GRADIO_SERVER_NAME"] = args.host
    if args.port:
        os.environ["GRADIO_SERVER_PORT"] = str(args.port)
    demo = build_demo(specs, examples=SPACE / "examples" if (SPACE / "examples").is_dir() else None)
    launch(demo)
    return 0
