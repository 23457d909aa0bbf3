"""``cyclegan-hub export``: a generator as one ONNX file, checked against PyTorch with onnxruntime."""

from __future__ import annotations

import argparse


def add(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a generator to ONNX (checked with onnxruntime)",
        description="Export a generator to one ONNX file with dynamic batch, height and width (opset 18), then check "
        "it against PyTorch with onnxruntime on random inputs of two sizes (max abs difference <= 1e-4). "
        "`cyclegan-hub translate --model out.onnx` runs the file.",
    )
    p.add_argument("--model", required=True, help="Hub repo id or folder")
    p.add_argument("--onnx", required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--revision", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub.repos import load_generator
    from ..models.onnx import export_onnx

    generator = load_generator(args.model, revision=args.revision)
    diffs = export_onnx(generator, args.onnx, opset=args.opset)
    print(f"wrote {args.onnx} (opset {args.opset}; dynamic batch, height, width)")
    for shape, diff in diffs.items():
        print(f"  onnxruntime check {shape}: max |onnx - torch| = {diff:.2e}")
    return 0
