"""The ``cyclegan-hub`` command: translate images with a generator from the Hub or a folder.

User errors print one line, ``cyclegan-hub: error: ...``, and exit with status 1 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def _translate(args: argparse.Namespace) -> int:
    from .imaging import open_image

    source = Path(args.input)
    if not source.exists():
        raise UserError(f"{source}: no such file or folder")
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(f"{source} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        out_dir = Path(args.output)
        if out_dir.exists() and not out_dir.is_dir():
            raise UserError(f"{out_dir} is a file; the output of a folder must be a folder")
        targets = [out_dir / (p.stem + ".png") for p in files]
    else:
        files = [source]
        output = Path(args.output)
        targets = [output / (source.stem + ".png") if output.is_dir() else output]
        if not output.is_dir() and output.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"{output}: give an image file name (.png, .jpg, ...) or an existing folder")

    generator = load_model(args.model, args.revision, args.device)
    failed = 0
    for start in range(0, len(files), args.batch_size):
        chunk = files[start : start + args.batch_size]
        readable, chunk_targets = [], []
        for path, target in zip(chunk, targets[start : start + args.batch_size]):
            try:
                readable.append(open_image(path))
                chunk_targets.append(target)
            except ValueError as err:
                failed += 1
                print(f"cyclegan-hub: skipped {path}: {err}", file=sys.stderr)
        if not readable:
            continue
        images = generator.translate(
            readable, batch_size=args.batch_size, max_side=args.max_side, resize_to=args.resize_to
        )
        for image, target in zip(images, chunk_targets):
            _save_atomically(image, target)
            print(target)
    if failed:
        raise UserError(f"{failed} of {len(files)} file(s) could not be read")
    return 0


def load_model(model: str, revision: str | None = None, device: str = "cpu"):
    """A CycleGenerator by Hub id or folder, or an exported .onnx file run by onnxruntime."""
    if model.endswith(".onnx"):
        from .export import OnnxGenerator

        return OnnxGenerator(model)
    from .hub import load_generator

    return load_generator(model, revision=revision, device=device)


def _export(args: argparse.Namespace) -> int:
    from .export import OPSET, export_onnx
    from .hub import load_generator

    generator = load_generator(args.model, revision=args.revision)
    diffs = export_onnx(generator, args.onnx, opset=args.opset)
    print(f"wrote {args.onnx} (opset {args.opset or OPSET}; dynamic batch, height, width)")
    for shape, diff in diffs.items():
        print(f"  onnxruntime check {shape}: max |onnx - torch| = {diff:.2e}")
    return 0


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


def _eval(args: argparse.Namespace) -> int:
    import json

    from .evaluate import evaluate_model

    metrics = evaluate_model(
        args.model, parse_domain(args.data), reverse_model=args.reverse_model,
        target_data=parse_domain(args.target_data) if args.target_data else None,
        metrics=[m.strip() for m in args.metrics.split(",")] if args.metrics else None,
        max_images=args.max_images, inception_weights=args.inception_weights, device=args.device,
    )  # fmt: skip
    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if args.output:
        Path(args.output).write_text(json.dumps(metrics, indent=2))
        print(f"wrote {args.output}")
    return 0


def _save_atomically(image, target: Path) -> None:
    """Write to a temporary file beside the target, then rename: never a half-written image."""
    from PIL import Image

    Image.init()
    fmt = Image.EXTENSION.get(target.suffix.lower(), "PNG")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format=fmt)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _push(args: argparse.Namespace) -> int:
    from .hub import push_pair

    pushed = push_pair(
        args.run_dir, args.repo_id, reverse_repo_id=args.reverse_repo_id, private=args.private,
        revision=args.revision, commit_message=args.commit_message, include_training_state=args.include_training_state,
    )
    for repo, url in pushed.items():
        print(f"pushed {repo}: {url}")
    return 0


def _deploy_space(args: argparse.Namespace) -> int:
    from .deploy import deploy_space

    url = deploy_space(args.space_id, args.model, reverse_model=args.reverse_model, private=args.private,
                       hardware=args.hardware)
    print(f"deployed {args.space_id}: {url}")
    return 0


def space_app_path() -> Path:
    """The Space's app.py: packaged in the wheel, or in the source checkout beside the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "space_app.py", here.parent / "space" / "app.py"):
        if candidate.is_file():
            return candidate
    raise UserError("the Space app is not installed with this copy of cyclegan-hub")


def _serve(args: argparse.Namespace) -> int:
    import runpy

    if args.model and len(args.model) != 2:
        raise UserError("give --model twice: the forward generator, then the reverse one")
    if args.model:
        os.environ["CYCLEGAN_MODELS"] = ",".join(args.model)
    if args.host:
        os.environ["GRADIO_SERVER_NAME"] = args.host
    if args.port:
        os.environ["GRADIO_SERVER_PORT"] = str(args.port)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    runpy.run_path(str(space_app_path()), run_name="__main__")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cyclegan-hub",
        description="Unpaired image-to-image translation (CycleGAN) with models from the Hugging Face Hub.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "translate",
        help="translate an image or a folder of images",
        description="Translate an image file, or every image in a folder, with a CycleGenerator.",
    )
    p.add_argument("--model", required=True, help="Hub repo id (user/mnist-6to9) or a save_pretrained folder")
    p.add_argument("input", help="an image file or a folder of images")
    p.add_argument("--output", "-o", required=True, help="output image file, or folder (written as PNG)")
    p.add_argument("--revision", default=None, help="Hub branch, tag or commit")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default: 16)")
    p.add_argument("--max-side", type=int, default=1024, help="larger images are resized down for the network")
    p.add_argument("--resize-to", type=int, default=None, help="run the network at this square size")
    p.set_defaults(func=_translate)

    p = sub.add_parser(
        "eval",
        help="evaluate a generator (accuracy for digits, cycle error, FID, KID)",
        description="Translate held-out images of the source domain and measure the result. Domains are a dataset "
        "path / Hub id, or a TOML inline table such as '{path=\"training/data/mnist-6-9\", split=\"test\", "
        "filter=\"label == 6\"}'. Metrics: accuracy (digit models: the shipped MNIST classifier), cycle (needs "
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
    p.set_defaults(func=_eval)

    p = sub.add_parser(
        "export",
        help="export a generator to ONNX (checked with onnxruntime)",
        description="Export a generator to ONNX with dynamic batch, height and width (opset 18), then check it "
        "against PyTorch with onnxruntime on random inputs of two sizes (max abs difference <= 1e-4). "
        "`cyclegan-hub translate --model out.onnx` runs the file.",
    )
    p.add_argument("--model", required=True, help="Hub repo id or folder")
    p.add_argument("--onnx", required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--revision", default=None)
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "push",
        help="push a trained pair to the Hub",
        description="Push both generators of a training run to the Hub: the forward one to --repo-id, the reverse "
        "one to its twin (the name's AtoB part swapped: mnist-6to9 -> mnist-9to6, else <name>-reverse). "
        "Each repo gets model.safetensors, config.json, a model card and a sample image, in one commit. "
        "The token comes from HF_TOKEN or the stored login.",
    )
    p.add_argument("run_dir", help="a training run folder (with generator_AtoB/ and generator_BtoA/)")
    p.add_argument("--repo-id", required=True, help="repo of the A -> B generator, e.g. user/mnist-6to9")
    p.add_argument("--reverse-repo-id", help="repo of the B -> A generator (default: the twin name)")
    p.add_argument("--private", action="store_true", help="create the repos as private")
    p.add_argument("--revision", help="branch to push to (created if missing; default main)")
    p.add_argument("--commit-message", help="commit message of both commits")
    p.add_argument("--include-training-state", action="store_true",
                   help="also push discriminators, optimizers and step (safetensors + JSON) to resume from the Hub")
    p.set_defaults(func=_push)

    p = sub.add_parser(
        "deploy-space",
        help="create or update a Hugging Face Space serving a pair from the Hub",
        description="Create or update a Gradio Space in one commit: the app, a README whose front matter is the "
        "Space config (models, pinned gradio), and a requirements.txt that installs this package (a wheel built "
        "from this checkout and uploaded with the app, or the pinned release when installed from an index). "
        "Both models are checked before anything is uploaded.",
    )
    p.add_argument("--space-id", required=True, help="e.g. user/mnist-6to9-demo")
    p.add_argument("--model", required=True, help="Hub repo of the forward generator")
    p.add_argument("--reverse-model", help="Hub repo of the reverse generator (default: the twin name)")
    p.add_argument("--private", action="store_true")
    p.add_argument("--hardware", default="cpu-basic", help="suggested_hardware of the Space (default cpu-basic)")
    p.set_defaults(func=_deploy_space)

    p = sub.add_parser(
        "serve",
        help="run the Gradio app (the Space) locally",
        description="Run the Space's Gradio app: both directions of a pair, the round trip, an API at /translate.",
    )
    p.add_argument("--model", action="append", metavar="ID_OR_DIR",
                   help="forward then reverse generator (give it twice); default: the bundled MNIST 6 <-> 9 pair")
    p.add_argument("--host", help="address to listen on (GRADIO_SERVER_NAME; default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (GRADIO_SERVER_PORT; default 7860)")
    p.set_defaults(func=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ValueError, FileNotFoundError, PermissionError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"cyclegan-hub: error: {message}", file=sys.stderr)
        return 1
    except OSError as err:  # a full disk, a read-only folder
        print(f"cyclegan-hub: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cyclegan-hub: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
