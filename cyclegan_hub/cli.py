"""The ``cyclegan-hub`` command: translate, evaluate, export, convert, push, deploy and serve generators.

User errors print one line, ``cyclegan-hub: error: ...``, and exit with status 1 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__, families
from .io.errors import first_line

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def say(message: str) -> None:
    print(f"cyclegan-hub: {message}", file=sys.stderr)


def skipped(path: Path, err: Exception) -> None:
    text = str(err)
    say(f"skipped {text}" if text.startswith(str(path)) else f"skipped {path}: {text}")


# ---- translate ---------------------------------------------------------------------------------------------------


def output_names(files: list[Path], out_dir: Path) -> list[Path]:
    """``<stem>.png`` for each input; inputs that share a stem (x.png, x.jpg) keep their suffix in the name
    (x_png.png, x_jpg.png), so that no output overwrites another."""
    stems: dict[str, int] = {}
    for path in files:
        stems[path.stem] = stems.get(path.stem, 0) + 1
    return [out_dir / (f"{p.stem}_{p.suffix[1:].lower()}.png" if stems[p.stem] > 1 else f"{p.stem}.png") for p in files]


def _translate_dataset(args: argparse.Namespace) -> int:
    import shlex

    from .bulk import translate as bulk
    from .training.data import DomainSpec, load_domain

    if args.input is not None:
        raise UserError("give either an image file or folder, or --dataset, not both")
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise UserError(
            "translating a dataset needs the datasets package: pip install 'cyclegan-hub[training]'"
        ) from None
    if args.output is None and args.push_to_hub is None:
        raise UserError("--dataset needs --output DIR (the Parquet shards) and/or --push-to-hub user/name")
    try:
        spec = DomainSpec.from_dict(parse_domain(args.dataset))
        dataset = load_domain(spec, "the dataset")
    except ValueError as err:
        raise UserError(str(err)) from None
    output = Path(args.output) if args.output else Path(".cyclegan-hub-datasets") / args.push_to_hub.replace("/", "--")
    generator = load_model(args.model, args.revision, args.device)
    reverse = load_model(args.reverse_model, args.revision, args.device) if args.reverse_model else None
    report = bulk.translate_to_folder(
        generator,
        dataset,
        output,
        split=args.split_name,
        shard_rows=args.shard_rows,
        image_column=spec.image_column,
        output_column=args.output_column,
        keep_source=not args.drop_source,
        reverse=reverse,
        batch_size=args.batch_size,
        workers=args.workers,
        on_error=args.on_error,
    )
    rank, world = bulk.process_rank()
    print(
        f"process {rank + 1}/{world}: {report.summary()}; {report.shards_done} shard(s) written, "
        f"{report.shards_resumed} kept from an earlier run"
    )
    for index, why in report.skipped[:20]:
        print(f"  skipped row {index}: {why}")
    if world > 1:  # every process reaches here before the first writes the card and pushes
        from accelerate import PartialState

        PartialState().wait_for_everyone()
    if rank != 0:
        return 0
    total = bulk.totals(output)
    examples = bulk.examples(output, spec.image_column, args.output_column) if not args.drop_source else None

    # the card names local data and models by folder name, never by a path of this machine
    def public(name: str | None) -> str | None:
        return Path(name).name if name and Path(name).exists() else name

    shown = {
        k: public(v) if k in ("path", "data_dir") and isinstance(v, str) else v
        for k, v in parse_domain(args.dataset).items()
    }
    table = "{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in shown.items()) + "}"
    words = ["translate", "--model", public(args.model), "--dataset", table]
    words += ["--reverse-model", public(args.reverse_model)] if args.reverse_model else []
    words += ["--output-column", args.output_column] + (["--drop-source"] if args.drop_source else [])
    command = "cyclegan-hub " + " ".join(shlex.quote(w) for w in words)
    source = f"{public(spec.path)}" + (f" ({public(spec.data_dir)})" if spec.data_dir else "") + f", split {spec.split}"
    bulk.write_card(
        output,
        source=source + (f" where {spec.filter}" if spec.filter else ""),
        model=public(args.model),
        command=command,
        report=total,
        examples=examples,
    )
    print(f"wrote {output}: rows in {total.rows_in}, rows out {total.rows_out}, skipped {len(total.skipped)}")
    if args.push_to_hub:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(args.push_to_hub, repo_type="dataset", exist_ok=True, private=args.private)
        commit = api.upload_folder(
            repo_id=args.push_to_hub,
            repo_type="dataset",
            folder_path=str(output),
            allow_patterns=["README.md", "examples.png", "data/*.parquet"],
            commit_message=f"Translated with {args.model}",
        )
        print(f"pushed {args.push_to_hub}: {getattr(commit, 'commit_url', commit)}")
    return 0


def _translate(args: argparse.Namespace) -> int:
    from . import translation
    from .io.files import atomic_write
    from .io.imaging import open_image

    if args.dataset is not None:
        return _translate_dataset(args)
    if args.input is None or args.output is None:
        raise UserError("give an image file or folder and --output (or --dataset SPEC for a whole dataset)")
    source, output = Path(args.input), Path(args.output)
    if not source.exists():
        raise UserError(f"{source}: no such file or folder")
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(f"{source} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        if output.exists() and not output.is_dir():
            raise UserError(f"{output} is a file; the output of a folder must be a folder")
        if output.exists() and output.resolve() == source.resolve():
            raise UserError(
                f"{output} is the input folder: choose another output folder (inputs are never overwritten)"
            )
        targets = output_names(files, output)
    else:
        files = [source]
        targets = [output / (source.stem + ".png") if output.is_dir() else output]
        if not output.is_dir() and output.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"{output}: give an image file name (.png, .jpg, ...) or an existing folder")
        if targets[0].exists() and targets[0].resolve() == source.resolve():
            raise UserError(f"{targets[0]} is the input: choose another output (inputs are never overwritten)")

    generator = load_model(args.model, args.revision, args.device)
    options = dict(batch_size=args.batch_size, max_side=args.max_side, resize_to=args.resize_to)
    failed = 0
    for start in range(0, len(files), args.batch_size):
        chunk = list(zip(files[start : start + args.batch_size], targets[start : start + args.batch_size]))
        readable = []
        for path, target in chunk:
            try:
                readable.append((open_image(path), path, target))
            except (ValueError, OSError) as err:  # every bad image is named, and the others still go through
                failed += 1
                skipped(path, err)
        try:
            outputs = (
                translation.translate(generator, [image for image, _, _ in readable], **options) if readable else []
            )
        except ValueError:  # one image the network cannot take (e.g. a size): find it, keep the others
            outputs = []
            for image, path, _ in readable:
                try:
                    outputs.append(translation.translate(generator, image, **options))
                except ValueError as err:
                    failed += 1
                    skipped(path, err)
                    outputs.append(None)
        for out, (_, path, target) in zip(outputs, readable):
            if out is not None:
                atomic_write(target, lambda f, image=out, fmt=_format(target): image.save(f, format=fmt))
                print(target if len(files) == 1 or target.stem == path.stem else f"{path} -> {target}")
    if failed:
        raise UserError(f"{failed} of {len(files)} file(s) could not be translated")
    return 0


def _format(target: Path) -> str:
    from PIL import Image

    Image.init()
    return Image.EXTENSION.get(target.suffix.lower(), "PNG")


def load_model(model: str, revision: str | None = None, device: str = "cpu"):
    """A CycleGenerator by Hub id or folder, or an exported .onnx file run by onnxruntime."""
    if model.endswith(".onnx"):
        from .models.onnx import OnnxGenerator

        return OnnxGenerator(model)
    from .hub.repos import load_generator

    return load_generator(model, revision=revision, device=device)


# ---- eval, export ------------------------------------------------------------------------------------------------


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
    from .hub.repos import load_generator
    from .io.files import atomic_write_json
    from .training.evaluate import check_metrics, evaluate_model

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


def _export(args: argparse.Namespace) -> int:
    from .hub.repos import load_generator
    from .models.onnx import export_onnx

    generator = load_generator(args.model, revision=args.revision)
    diffs = export_onnx(generator, args.onnx, opset=args.opset)
    print(f"wrote {args.onnx} (opset {args.opset}; dynamic batch, height, width)")
    for shape, diff in diffs.items():
        print(f"  onnxruntime check {shape}: max |onnx - torch| = {diff:.2e}")
    return 0


# ---- convert -----------------------------------------------------------------------------------------------------


def _convert(args: argparse.Namespace) -> int:
    from .convert.command import convert_checkpoint, convert_zoo

    if (args.checkpoint is None) == (args.zoo is None):
        raise UserError("name one checkpoint (a file, a folder or a Hub repo id) or one --zoo model")
    if args.zoo is None and (args.with_reverse or args.zoo_mirror):
        raise UserError("--with-reverse and --zoo-mirror go with --zoo (a file's reverse is --reverse FILE)")
    output = Path(args.output)
    if (output.exists() or output.is_symlink()) and not args.overwrite:
        raise UserError(f"{output} exists: choose a new folder, or --overwrite to replace it")
    options = dict(
        source_domain=args.source_domain,
        target_domain=args.target_domain,
        sample=args.sample,
        name=args.name,
        **({"image_size": args.image_size} if args.image_size else {}),
    )
    family, settings = _family_settings(args)
    if args.zoo is not None:
        report = convert_zoo(
            args.zoo,
            output,
            with_reverse=args.with_reverse,
            mirror=args.zoo_mirror,
            cache=args.cache_dir,
            settings=settings,
            **options,
        )
    else:
        report = convert_checkpoint(
            args.checkpoint,
            output,
            reverse=args.reverse,
            key=args.key,
            revision=args.revision,
            family=family,
            settings=settings,
            **options,
        )
    for line in report:
        print(line)
    return 0


def _family_settings(args: argparse.Namespace) -> tuple[str | None, dict]:
    """The family whose ``convert`` options were given (its record in ``cyclegan_hub.families``) and their values;
    (None, {}) for a CycleGAN generator. A zoo entry's family is its method's."""
    from .convert import zoo

    given = {
        record.name: {
            o.dest: getattr(args, o.dest) for o in record.convert_options if getattr(args, o.dest) is not None
        }
        for record in families.RECORDS.values()
        if record.converter is not None
    }
    given = {name: values for name, values in given.items() if values}
    if len(given) > 1:
        raise UserError("options of more than one family were given: " + ", ".join(sorted(given)))
    name, settings = next(iter(given.items()), (None, {}))
    record = families.get(name) if name is not None else None
    if args.zoo is not None:
        owner = families.with_zoo_method(zoo.get(args.zoo).method)
        if record is not None and owner is not record:
            flags = ", ".join(o.flag for o in record.convert_options)
            raise UserError(f"{flags} go with a {record.title} checkpoint, and {args.zoo} is not one")
        return (owner.name if owner else None), settings
    missing = [o.flag for o in record.convert_options if o.required and o.dest not in settings] if record else []
    if missing:
        raise UserError(f"a {record.title} checkpoint needs " + " and ".join(missing))
    return name, settings


def _zoo(args: argparse.Namespace) -> int:
    from .convert import zoo

    for line in zoo.table():
        print(line)
    print("convert one: cyclegan-hub convert --zoo NAME --output converted/NAME [--with-reverse]")
    return 0


# ---- push, deploy, serve -----------------------------------------------------------------------------------------


def _push(args: argparse.Namespace) -> int:
    from .hub.repos import push_pair

    report = push_pair(
        args.run_dir,
        args.repo_id,
        reverse_repo_id=args.reverse_repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        include_training_state=args.include_training_state,
        base_model_id=args.base_model_id,
    )
    for reason in report.skipped:
        say(f"skipped {reason}")
    for repo, url in report.commits.items():
        print(f"pushed {repo}: {url}")
    return 0


def _deploy_space(args: argparse.Namespace) -> int:
    from .serving.deploy import deploy_space

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


def _serve(args: argparse.Namespace) -> int:
    import os

    try:
        from .serving.app import build_demo, launch, pair_specs
    except ImportError:
        raise UserError("serve needs gradio: pip install 'cyclegan-hub[space]'") from None
    specs = list(args.pair or [])
    if args.model:
        if len(args.model) != 2:
            raise UserError("give --model twice (the forward generator, then the reverse one), or use --pair")
        specs.insert(0, ",".join(args.model))
    space = Path(__file__).resolve().parents[1] / "space"
    if not specs:
        specs = pair_specs(space if (space / "models").is_dir() else None)
    if not specs:
        raise UserError("no pair to serve: --pair user/mnist-6to9 (a Hub repo id, a folder or a run folder)")
    if args.host:
        os.environ["GRADIO_SERVER_NAME"] = args.host
    if args.port:
        os.environ["GRADIO_SERVER_PORT"] = str(args.port)
    demo = build_demo(specs, examples=space / "examples" if (space / "examples").is_dir() else None)
    launch(demo)
    return 0


# ---- the parser --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cyclegan-hub",
        description="Unpaired image-to-image translation (CycleGAN) with models from the Hugging Face Hub.",
    )
    parser.add_argument("--version", action="version", version=f"cyclegan-hub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "translate",
        help="translate an image or a folder of images",
        description="Translate an image file, or every image in a folder, with a CycleGenerator. "
        "Outputs are PNG; inputs that share a name (x.png, x.jpg) become x_png.png, x_jpg.png.",
    )
    p.add_argument(
        "--model", required=True, help="Hub repo id (user/mnist-6to9), a save_pretrained folder, or a .onnx file"
    )
    p.add_argument("input", nargs="?", help="an image file or a folder of images")
    p.add_argument("--output", "-o", help="output image file, or folder (PNG; with --dataset: Parquet shards)")
    p.add_argument("--revision", default=None, help="Hub branch, tag or commit")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default: 16)")
    p.add_argument("--max-side", type=int, default=1024, help="larger images are resized down for the network")
    p.add_argument("--resize-to", type=int, default=None, help="run the network at this square size")
    d = p.add_argument_group("a whole dataset (a `datasets` split in, Parquet shards and a dataset repo out)")
    d.add_argument(
        "--dataset",
        metavar="SPEC",
        help="a Hub dataset id or local dataset, or a TOML table of "
        "{path, split, name, image_column, filter, streaming, data_dir}",
    )
    d.add_argument("--push-to-hub", metavar="USER/NAME", help="push the result as a dataset repo")
    d.add_argument("--private", action="store_true", help="create the dataset repo as private")
    d.add_argument("--output-column", default="translated", help="the new image column (default: translated)")
    d.add_argument("--drop-source", action="store_true", help="leave the source image column out")
    d.add_argument("--reverse-model", help="add the round trip through this model and its error")
    d.add_argument(
        "--on-error",
        choices=("skip", "stop"),
        default="skip",
        help="a bad row is skipped and named (default) or stops the run",
    )
    d.add_argument("--shard-rows", type=int, default=1000, help="input rows per Parquet shard (the resume unit)")
    d.add_argument("--workers", type=int, default=2, help="threads decoding images while the network runs")
    d.add_argument("--split-name", default="train", help="the split the output's shards are named for")
    p.set_defaults(func=_translate)

    p = sub.add_parser(
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
    p.set_defaults(func=_eval)

    p = sub.add_parser(
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
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "convert",
        help="convert a CycleGAN/CUT generator checkpoint (a file, a folder, a Hub repo, or a zoo model by name)",
        description="Convert a generator checkpoint into a save_pretrained folder. It reads the layouts in "
        "circulation: the official pytorch-CycleGAN-and-pix2pix (zoo files such as horse2zebra.pth, training "
        "checkpoints such as latest_net_G_A.pth) and aitorzip/PyTorch-CycleGAN, eriklindernoren/PyTorch-GAN and the "
        "HugGAN sprint's Hub repos (pytorch_model.bin), CUT/FastCUT (latest_net_G.pth), and ports with affine "
        "InstanceNorm. The architecture is read off the tensors; pickles are read with torch.load(weights_only=True): "
        "nothing in the file is run. --zoo NAME downloads a published model (`cyclegan-hub zoo` lists them). With "
        "--reverse FILE or --with-reverse, both directions go into a run folder (generator_AtoB/, generator_BtoA/) "
        "that `cyclegan-hub push` sends as twin repos. The card records the source, its SHA-256 and the measured "
        "difference from the original network. A CycleGAN-Turbo checkpoint (img2img-turbo's model_N.pkl) becomes one "
        "folder per direction holding only its adapters and caption embedding, with --base-model and --caption.",
    )
    p.add_argument("checkpoint", nargs="?", help="a checkpoint file, a folder holding one, or a Hub repo id")
    p.add_argument("--zoo", metavar="NAME", help="a published model by name (horse2zebra, cut/horse2zebra, ...)")
    p.add_argument("--with-reverse", action="store_true", help="with --zoo: also the other direction, as a pair")
    p.add_argument(
        "--zoo-mirror",
        metavar="URL",
        help="download the zoo from this scheme://host instead (or set CYCLEGAN_HUB_ZOO_MIRROR)",
    )
    p.add_argument("--cache-dir", help="where zoo downloads are kept (default ~/.cache/cyclegan-hub/zoo)")
    p.add_argument("--reverse", help="the checkpoint of the other direction (zebra2horse.pth, latest_net_G_B.pth)")
    p.add_argument("--key", help="the entry of a training checkpoint that holds several networks (e.g. G_AB)")
    p.add_argument("--revision", help="the revision of a Hub repo (default: main)")
    p.add_argument("--source-domain", help="name of the input domain (default: read off the name, e.g. horse)")
    p.add_argument("--target-domain", help="name of the output domain (default: read off the name, e.g. zebra)")
    p.add_argument(
        "--image-size", type=int, help="the training image size (default 256 as the zoos; CycleGAN-Turbo 512)"
    )
    p.add_argument("--name", help="the model's name in the card (default: the file, folder or zoo name)")
    p.add_argument("--sample", help="an image of the source domain: its translation goes into the card")
    p.add_argument("--output", "-o", required=True, help="the folder to write (must not exist)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    for record in families.RECORDS.values():
        if record.convert_options:
            group = p.add_argument_group(f"{record.title} checkpoints (zoo entries of method {record.zoo_method})")
            for o in record.convert_options:
                group.add_argument(o.flag, help=o.help, choices=o.choices)
    p.set_defaults(func=_convert)

    p = sub.add_parser(
        "zoo",
        help="list the published models `convert --zoo` downloads",
        description="Every published model `cyclegan-hub convert --zoo NAME` downloads and converts: "
        "name, method, direction, architecture, reverse, license, source URL.",
    )
    p.set_defaults(func=_zoo)

    p = sub.add_parser(
        "push",
        help="push a trained or converted pair to the Hub",
        description="Push both generators of a run folder to the Hub: the forward one to --repo-id, the reverse "
        "one to its twin (the name's AtoB part swapped: mnist-6to9 -> mnist-9to6, else <name>-reverse). "
        "Each repo gets model.safetensors, config.json, a model card and a sample image, in one commit. Only regular "
        "files inside the run folder are read (links are refused or skipped, and said). The token comes from "
        "HF_TOKEN or the stored login.",
    )
    p.add_argument("run_dir", help="a run folder (with generator_AtoB/ and generator_BtoA/)")
    p.add_argument("--repo-id", required=True, help="repo of the A -> B generator, e.g. user/mnist-6to9")
    p.add_argument("--reverse-repo-id", help="repo of the B -> A generator (default: the twin name)")
    p.add_argument("--private", action="store_true", help="create the repos as private")
    p.add_argument("--revision", help="branch to push to (created if missing; default main)")
    p.add_argument("--commit-message", help="commit message of both commits")
    p.add_argument(
        "--base-model-id",
        help="for one-step translators trained or converted on a local copy of their "
        "base: the Hub repo it is a copy of (e.g. stabilityai/sd-turbo), written into config.json",
    )
    p.add_argument(
        "--include-training-state",
        action="store_true",
        help="also push discriminators, optimizers and step (safetensors + JSON) to resume from the Hub",
    )
    p.set_defaults(func=_push)

    p = sub.add_parser(
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
    p.set_defaults(func=_deploy_space)

    p = sub.add_parser(
        "serve",
        help="run the Gradio app (the Space) locally",
        description="Run the Space's Gradio app: any number of pairs behind a picker (the first is the default), "
        "both directions, the round trip, an API at /translate.",
    )
    p.add_argument(
        "--pair",
        action="append",
        metavar="SPEC",
        help="a pair: a Hub repo id or folder of one direction (the reverse by its twin name), a run folder, "
        "or FORWARD,REVERSE; repeat for several (default: the bundled MNIST 6 <-> 9 pair)",
    )
    p.add_argument("--model", action="append", metavar="ID_OR_DIR", help="forward then reverse generator (twice)")
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
        message = first_line(err)
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
