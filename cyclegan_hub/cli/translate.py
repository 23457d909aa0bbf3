"""``cyclegan-hub translate``: an image, a folder of images, a video, or (``--dataset``) a whole dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io.video import VIDEO_SUFFIXES
from .common import IMAGE_SUFFIXES, UserError, load_model, parse_domain, skipped


def add(subparsers) -> None:
    p = subparsers.add_parser(
        "translate",
        help="translate an image, a folder of images or a video",
        description="Translate an image file, every image in a folder, or every frame of a video, with a "
        "CycleGenerator. Outputs are PNG; inputs that share a name (x.png, x.jpg) become x_png.png, x_jpg.png. "
        "A video (.mp4, .m4v, .mov, .mkv, .webm, .avi) becomes a video (--output clip.mp4) with the same frame "
        "rate, timestamps, rotation and audio (copied untouched).",
    )
    p.add_argument(
        "--model", required=True, help="Hub repo id (user/mnist-6to9), a save_pretrained folder, or a .onnx file"
    )
    p.add_argument("input", nargs="?", help="an image file, a folder of images, or a video file")
    p.add_argument(
        "--output",
        "-o",
        help="output image file, or folder (PNG; with --dataset: Parquet shards); for a video, a video file",
    )
    p.add_argument("--revision", default=None, help="Hub branch, tag or commit")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default: 16)")
    p.add_argument(
        "--max-side",
        type=int,
        help="resize larger images down for the network (default: full resolution, in tiles that share the whole "
        "image's norm statistics where an image is larger than one pass takes)",
    )
    p.add_argument("--resize-to", type=int, default=None, help="run the network at this square size")
    p.add_argument(
        "--tile-statistics",
        choices=("auto", "tiles", "thumbnail"),
        default="auto",
        help="where tiles of a large image take the whole image's norm statistics from: a copy shrunk to one tile "
        "(one pass more of a tile's size), a first pass over its tiles (twice the time, at full resolution), or auto "
        "(default: the copy up to 4 tiles' pixels, the tiles above)",
    )
    v = p.add_argument_group("a video (needs PyAV: pip install 'cyclegan-hub[video]')")
    v.add_argument("--max-frames", type=int, default=None, help="refuse longer videos (default: 100000 frames)")
    v.add_argument("--max-seconds", type=float, default=None, help="refuse longer videos (default: 4 hours)")
    v.add_argument(
        "--max-frame-side", type=int, default=None, help="refuse videos with larger frames (default: 8192 px)"
    )
    v.add_argument(
        "--smooth-statistics",
        type=float,
        default=0.0,
        metavar="MOMENTUM",
        help="carry the norm statistics from frame to frame (0.9: a still scene stops shimmering; default 0: each "
        "frame its own)",
    )
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.dataset is not None:
        return run_dataset(args)
    if args.input is not None and Path(args.input).suffix.lower() in VIDEO_SUFFIXES:
        return run_video(args)
    return run_images(args)


# ---- a video -----------------------------------------------------------------------------------------------------


def run_video(args: argparse.Namespace) -> int:
    from ..bulk.video import translate_video
    from ..io import video

    source = Path(args.input)
    if args.output is None:
        raise UserError(f"give --output, a video file name ({', '.join(VIDEO_SUFFIXES)}), for the video {source}")
    output = Path(args.output)
    if output.is_dir() or output.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"{output}: the output of a video is a video file ({', '.join(VIDEO_SUFFIXES)})")
    if output.exists() and source.exists() and output.resolve() == source.resolve():
        raise UserError(f"{output} is the input: choose another output (inputs are never overwritten)")
    bounds = video.limits(args.max_frame_side, args.max_frames, args.max_seconds)
    video.check_video(source, bounds)  # refused before the model is loaded
    generator = load_model(args.model, args.revision, args.device)
    report = translate_video(
        generator,
        source,
        output,
        batch_size=args.batch_size,
        max_side=args.max_side,
        resize_to=args.resize_to,
        max_frame_side=bounds.max_frame_side,
        max_frames=bounds.max_frames,
        smooth=args.smooth_statistics,
        max_seconds=bounds.max_seconds,
    )
    print(f"{output}: {report.summary()}")
    return 0


# ---- images ------------------------------------------------------------------------------------------------------


def output_names(files: list[Path], out_dir: Path) -> list[Path]:
    """``<stem>.png`` for each input; inputs that share a stem (x.png, x.jpg) keep their suffix in the name
    (x_png.png, x_jpg.png), so that no output overwrites another."""
    stems: dict[str, int] = {}
    for path in files:
        stems[path.stem] = stems.get(path.stem, 0) + 1
    return [out_dir / (f"{p.stem}_{p.suffix[1:].lower()}.png" if stems[p.stem] > 1 else f"{p.stem}.png") for p in files]


def _inputs_and_targets(source: Path, output: Path) -> tuple[list[Path], list[Path]]:
    """The image files to read and the file each one's translation goes to; refuses to overwrite an input."""
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
        return files, output_names(files, output)
    files = [source]
    targets = [output / (source.stem + ".png") if output.is_dir() else output]
    if not output.is_dir() and output.suffix.lower() not in IMAGE_SUFFIXES:
        raise UserError(f"{output}: give an image file name (.png, .jpg, ...) or an existing folder")
    if targets[0].exists() and targets[0].resolve() == source.resolve():
        raise UserError(f"{targets[0]} is the input: choose another output (inputs are never overwritten)")
    return files, targets


def run_images(args: argparse.Namespace) -> int:
    from .. import translation
    from ..io.files import atomic_write
    from ..io.imaging import open_image

    if args.input is None or args.output is None:
        raise UserError("give an image file or folder and --output (or --dataset SPEC for a whole dataset)")
    files, targets = _inputs_and_targets(Path(args.input), Path(args.output))

    generator = load_model(args.model, args.revision, args.device)
    options = dict(
        batch_size=args.batch_size,
        max_side=args.max_side,
        resize_to=args.resize_to,
        tile_statistics=args.tile_statistics,
    )
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


# ---- a whole dataset ---------------------------------------------------------------------------------------------


def run_dataset(args: argparse.Namespace) -> int:
    from ..bulk import publish
    from ..bulk import translate as bulk
    from ..training.data import DomainSpec, load_domain

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
        domain = parse_domain(args.dataset)
        spec = DomainSpec.from_dict(domain)
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
        tile_statistics=args.tile_statistics,
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
    command = publish.card_command(
        args.model,
        domain,
        reverse_model=args.reverse_model,
        output_column=args.output_column,
        drop_source=args.drop_source,
    )
    total = publish.write_dataset_card(
        output, spec, model=args.model, command=command, output_column=args.output_column, drop_source=args.drop_source
    )
    print(f"wrote {output}: rows in {total.rows_in}, rows out {total.rows_out}, skipped {len(total.skipped)}")
    if args.push_to_hub:
        url = publish.publish(output, args.push_to_hub, args.private, args.model)
        print(f"pushed {args.push_to_hub}: {url}")
    return 0
