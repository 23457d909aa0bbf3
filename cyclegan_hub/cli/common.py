"""What several commands share: the one-line user errors, messages, image suffixes, loading a model, domains."""

from __future__ import annotations

import sys
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def say(message: str) -> None:
    print(f"cyclegan-hub: {message}", file=sys.stderr)


def skipped(path: Path, err: Exception) -> None:
    text = str(err)
    say(f"skipped {text}" if text.startswith(str(path)) else f"skipped {path}: {text}")


def load_model(model: str, revision: str | None = None, device: str = "cpu"):
    """A CycleGenerator by Hub id or folder, or an exported .onnx file run by onnxruntime."""
    if model.endswith(".onnx"):
        from ..models.onnx import OnnxGenerator

        return OnnxGenerator(model)
    from ..hub.repos import load_generator

    return load_generator(model, revision=revision, device=device)


def parse_domain(text: str) -> dict:
    """A domain on the command line: a dataset path or Hub id, or a TOML inline table of DomainSpec keys,
    e.g. '{path="training/data/mnist-6-9", split="test", filter="label == 6"}'."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    if text.strip().startswith("{"):
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError as err:
            raise UserError(f"cannot read the domain {text!r}: {err}") from None
    return {"path": text}
