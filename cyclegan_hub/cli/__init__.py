"""The ``cyclegan-hub`` command: translate, evaluate, export, convert, push, deploy and serve generators.

One module per command; each registers its subcommand (``add(subparsers)``) with its ``run(args)``. User errors
print one line, ``cyclegan-hub: error: ...``, and exit with status 1 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..io.errors import first_line
from . import convert, deploy, evaluate, export, push, serve, translate
from .common import UserError

#: The subcommands in the order ``--help`` lists them (convert registers ``convert`` and ``zoo``).
COMMANDS = (translate, evaluate, export, convert, push, deploy, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cyclegan-hub",
        description="Unpaired image-to-image translation (CycleGAN) with models from the Hugging Face Hub.",
    )
    parser.add_argument("--version", action="version", version=f"cyclegan-hub {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ValueError, FileNotFoundError, PermissionError) as err:
        message = first_line(err)
        print(f"cyclegan-hub: error: {message}", file=sys.stderr)
        return 1
    except OSError as err:  # a full disk, a read-only folder
        print(f"cyclegan-hub: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cyclegan-hub: interrupted", file=sys.stderr)
        return 130
