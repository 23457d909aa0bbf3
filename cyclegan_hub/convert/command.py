"""``cyclegan-hub convert``: any generator checkpoint in circulation (a file, a folder holding one, a Hub repo, or a
zoo model by name) into a save_pretrained folder, or both directions of a task into a run folder that ``push`` sends
as twin repos. Each conversion measures itself against the original network (computed from the original tensors)
and writes the figure, the source and the SHA-256 into the card. Written atomically: an interrupted conversion leaves
no folder behind."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import families, translation
from . import zoo
from .checkpoints import (
    ConversionError,
    domains_from_name,
    load_tensors,
    locate,
    read_checkpoint,
    sha256,
    unwrap_state_dict,
)
from .layouts import SOURCES, Layout, convert_state, measure_equality

#: A conversion whose output differs from the original by more than this is refused.
TOLERANCE = 1e-4


@dataclass
class Checkpoint:
    """The tensors of one generator and what the card says of where they came from."""

    state: dict[str, torch.Tensor]
    name: str  # the model's name (horse2zebra)
    file: str  # the file name, for messages
    provenance: str  # "`horse2zebra.pth`, downloaded from http://..."
    digest: str
    zoo_model: zoo.ZooModel | None = None
    domains: tuple[str, str] | None = None

    @property
    def license(self) -> str:
        return self.zoo_model.license if self.zoo_model else "other"


def from_source(source: str, *, key: str | None = None, revision: str | None = None) -> Checkpoint:
    """A checkpoint from a file, a folder holding one, or a Hub repo id."""
    found = locate(source, revision)
    state = read_checkpoint(found.path, key)
    known = zoo.ZOO.get(found.name)  # an official zoo file converted from disk is still the authors' release
    return Checkpoint(state, found.name, found.path.name, found.provenance(), sha256(found.path), known)


def from_zoo(name: str, *, mirror: str | None = None, cache: str | None = None) -> Checkpoint:
    """A zoo model, downloaded (or found in the cache) and read: CUT's from its member of the tar, in memory."""
    model = zoo.get(name)
    path, url = zoo.fetch(model, mirror=mirror, folder=cache)
    digest = sha256(path)
    if model.member is None:
        state = read_checkpoint(path)
        provenance = f"`{path.name}`, downloaded from {url}"
    else:
        data = zoo.read_member(path, model.member)
        state = unwrap_state_dict(load_tensors(data, model.member), model.member)
        member_digest = hashlib.sha256(data).hexdigest()
        provenance = f"`{model.member}` (SHA-256 `{member_digest}`) of `{path.name}`, downloaded from {url}"
    return Checkpoint(
        state,
        name,
        Path(model.member or path.name).name,
        provenance,
        digest,
        model,
        (model.source_domain, model.target_domain),
    )


def origin_text(checkpoint: Checkpoint, layout: Layout, difference: float, shape: tuple) -> str:
    from .. import __version__

    released = checkpoint.zoo_model
    if released is not None and (released.method == "CycleGAN") == (layout.source == "official"):
        credit = released.credit()
    else:
        credit = f"A generator in the {SOURCES[layout.source]} layout"
    return (
        f"{credit}. Converted by cyclegan-hub {__version__} from {checkpoint.provenance} (SHA-256 "
        f"`{checkpoint.digest}`): {layout.describe()}, read off the tensors and renamed, nothing else changed.\n\n"
        f"Equality: on a random input of shape {list(shape)}, this model's output and the original network's "
        f"(computed from the original tensors with torch.nn.functional) differ by at most {difference:.1e} "
        f"(float32 noise)."
    )


def _convert_one(checkpoint: Checkpoint, domains: tuple[str, str], image_size: int):
    network, layout = convert_state(
        checkpoint.state,
        checkpoint.file,
        source_domain=domains[0],
        target_domain=domains[1],
        image_size=image_size,
    )
    if layout.kind != "generator":
        raise ConversionError(f"{checkpoint.file} is a PatchGAN discriminator, not a generator")
    difference, shape = measure_equality(network, checkpoint.state, layout)
    if difference > TOLERANCE:
        raise ConversionError(
            f"{checkpoint.file}: the converted network differs from the original by {difference:.1e}; refused"
        )
    line = f"{checkpoint.file}: {layout.describe()}, {domains[0]} -> {domains[1]}; max |converted - original| = "
    return network, origin_text(checkpoint, layout, difference, shape), line + f"{difference:.1e}"


def write_converted(
    checkpoints: list[Checkpoint],
    output: str | os.PathLike,
    *,
    source_domain: str | None = None,
    target_domain: str | None = None,
    image_size: int = 256,
    sample: str | None = None,
    name: str | None = None,
) -> list[str]:
    """One checkpoint as a save_pretrained folder at ``output``; two (forward, reverse) as a run folder. Returns
    the lines to print."""
    from ..hub.cards import CardInputs
    from ..io.imaging import open_image

    output = Path(output)
    first = checkpoints[0]
    name = name or first.name.replace("/", "-")
    guessed = first.domains or domains_from_name(first.name) or ("A", "B")
    domains = (source_domain or guessed[0], target_domain or guessed[1])
    converted, lines = [], []
    for checkpoint, (a, b) in zip(checkpoints, (domains, domains[::-1])):
        network, origin, line = _convert_one(checkpoint, (a, b), image_size)
        converted.append((network, CardInputs(origin=origin, license=checkpoint.license)))
        lines.append(line)
    picture = open_image(sample) if sample is not None else None
    if len(converted) == 1:
        _write_folder(output, converted[0], name, picture)
        lines.append(f"wrote {output} (config.json, model.safetensors, README.md)")
        return lines
    _write_run(output, converted, (name, checkpoints[1].name.replace("/", "-")), picture)
    lines.append(
        f"wrote {output} (generator_AtoB/, generator_BtoA/): push it with "
        f"`cyclegan-hub push {output} --repo-id user/{name}`"
    )
    return lines


def _write_folder(output: Path, converted: tuple, name: str, picture) -> None:
    """One converted generator (network, card inputs) as a save_pretrained folder, its card showing ``picture``
    translated when there is one."""
    from ..hub.cards import write_generator
    from ..io.files import replace_folder

    network, inputs = converted

    def fill(tmp: Path) -> None:
        grid = _sample_grid(picture, tmp, network, None)
        write_generator(network, tmp, inputs, name=name, sample=grid)
        if grid is not None:
            grid.unlink()

    replace_folder(output, fill)


def _write_run(output: Path, converted: list, names: tuple[str, str], picture) -> None:
    """Two converted generators (forward, reverse) as a run folder: both generators, the run's card inputs, and
    ``picture``'s round trip as the step-0 sample when there is one."""
    from ..hub.cards import CardInputs, write_generator
    from ..io.files import replace_folder

    def fill_run(tmp: Path) -> None:
        (forward, forward_inputs), (backward, backward_inputs) = converted
        license = forward_inputs.license if forward_inputs.license == backward_inputs.license else "other"
        inputs = CardInputs(origin=forward_inputs.origin, reverse_origin=backward_inputs.origin, license=license)
        write_generator(forward, tmp / "generator_AtoB", inputs, "AtoB", name=names[0])
        write_generator(backward, tmp / "generator_BtoA", inputs, "BtoA", name=names[1])
        inputs.save(tmp)  # the run's card inputs: push writes both cards from them
        (tmp / "samples").mkdir()
        grid = _sample_grid(picture, tmp / "samples", forward, backward)
        if grid is not None:
            grid.rename(tmp / "samples" / "step-000000.png")

    replace_folder(output, fill_run)


def _sample_grid(picture, folder: Path, forward, backward) -> Path | None:
    """``picture``, its translation by ``forward`` (and the round trip through ``backward``) side by side, saved
    as ``folder/sample-grid.png``; None without a picture."""
    if picture is None:
        return None
    from PIL import Image

    images = (
        translation.translate(forward, picture, return_reconstruction_with=backward)
        if backward
        else (translation.translate(forward, picture),)
    )
    tiles = [picture.convert("RGB"), *(image.convert("RGB") for image in images)]
    grid = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), max(t.height for t in tiles)), "white")
    left = 0
    for tile in tiles:
        grid.paste(tile, (left, 0))
        left += tile.width + 4
    target = folder / "sample-grid.png"
    grid.save(target)
    return target


def convert_checkpoint(
    checkpoint: str,
    output: str | os.PathLike,
    *,
    reverse: str | None = None,
    key: str | None = None,
    revision: str | None = None,
    family: str | None = None,
    settings: dict | None = None,
    **options,
) -> list[str]:
    """``cyclegan-hub convert SOURCE``: a file, a folder holding one checkpoint, or a Hub repo id (``revision``);
    ``key`` picks one network of a training checkpoint that holds several. ``family``: a family whose record names
    a converter (``cyclegan_hub.families``), which takes the checkpoint with its ``settings`` (its ``convert``
    options); CycleGAN generators otherwise. ``options``: see ``write_converted``."""
    if family is not None:
        converter = families.get(family).load("converter")
        return converter.checkpoint(
            checkpoint, output, reverse=reverse, revision=revision, settings=settings or {}, options=options
        )
    checkpoints = [from_source(checkpoint, key=key, revision=revision)]
    if reverse is not None:
        checkpoints.append(from_source(reverse, key=key, revision=revision))
    return write_converted(checkpoints, output, **options)


def convert_zoo(
    zoo_name: str,
    output: str | os.PathLike,
    *,
    with_reverse: bool = False,
    mirror: str | None = None,
    cache: str | None = None,
    settings: dict | None = None,
    **options,
) -> list[str]:
    """``cyclegan-hub convert --zoo NAME``: download a published model (and its reverse) and convert it; the family
    whose record claims the entry's method converts it, with ``settings`` (its ``convert`` options)."""
    model = zoo.get(zoo_name)
    if with_reverse and model.reverse is None:
        why = model.one_way or "`cyclegan-hub zoo` lists the pairs"
        raise ConversionError(f"{zoo_name} has no released reverse direction ({why})")
    record = families.with_zoo_method(model.method)
    if record is not None:
        converter = record.load("converter")
        return converter.zoo(
            model,
            output,
            with_reverse=with_reverse,
            mirror=mirror,
            cache=cache,
            settings=settings or {},
            options=options,
        )
    checkpoints = [from_zoo(zoo_name, mirror=mirror, cache=cache)]
    if with_reverse:
        checkpoints.append(from_zoo(model.reverse, mirror=mirror, cache=cache))
    return write_converted(checkpoints, output, **options)
