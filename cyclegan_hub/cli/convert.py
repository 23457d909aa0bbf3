"""``cyclegan-hub convert``: a foreign generator checkpoint into a save_pretrained folder; ``cyclegan-hub zoo``: the
published models ``convert --zoo`` downloads."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import families
from .common import UserError


def add(subparsers) -> None:
    p = subparsers.add_parser(
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
    p.set_defaults(func=run)

    p = subparsers.add_parser(
        "zoo",
        help="list the published models `convert --zoo` downloads",
        description="Every published model `cyclegan-hub convert --zoo NAME` downloads and converts: "
        "name, method, direction, architecture, reverse, license, source URL.",
    )
    p.set_defaults(func=run_zoo)


def run(args: argparse.Namespace) -> int:
    from ..convert.command import convert_checkpoint, convert_zoo

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
    family, settings = family_settings(args)
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


def family_settings(args: argparse.Namespace) -> tuple[str | None, dict]:
    """The family whose ``convert`` options were given (its record in ``cyclegan_hub.families``) and their values;
    (None, {}) for a CycleGAN generator. A zoo entry's family is its method's."""
    from ..convert import zoo

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


def run_zoo(args: argparse.Namespace) -> int:
    from ..convert import zoo

    for line in zoo.table():
        print(line)
    print("convert one: cyclegan-hub convert --zoo NAME --output converted/NAME [--with-reverse]")
    return 0
