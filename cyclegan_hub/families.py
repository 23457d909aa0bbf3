"""Model families as one record each: ``RECORDS`` maps a family's name to everything the package knows of it.

A family's name is its ``model_type`` in config.json and its ``[model] family`` in a training config. Its record
says where its parts are (as module paths, imported only when the family is used, so that a family's optional
dependencies load with it and never with CycleGAN): the module of its Hub model classes (with its card template),
the module that registers its trainer step, its converter of foreign checkpoints with the options ``convert``
takes for them and the zoo method it converts, and the pip extra its modules need (which ``deploy-space`` installs
on a Space). ``convert``, the CLI, ``deploy-space``, loading and training ask the record; none of them names a
family. Adding one is ``register(Record(...))`` beside its modules.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class CliOption:
    """One option a family adds to ``cyclegan-hub convert`` (``--flag VALUE``, a string)."""

    flag: str
    help: str
    choices: tuple[str, ...] | None = None
    #: needed to convert a checkpoint file of the family (a zoo entry knows its own values)
    required: bool = False

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


@dataclass(frozen=True)
class Record:
    """One model family.

    Attributes:
        name: its ``model_type`` (config.json) and ``[model] family`` (training config).
        title: its name in messages and help ("CycleGAN-Turbo").
        models: the module whose import defines its Hub model classes (``HubModule`` with ``model_type = name``).
        trainer: the module whose import registers its trainer step (``training.families.register``); None if
            the package does not train it.
        converter: ``"module:attribute"``, an object with ``checkpoint(found, output, *, reverse, settings,
            options)`` and ``zoo(model, output, *, with_reverse, mirror, cache, settings, options)`` (see
            ``convert.command``); None if ``convert`` reads its checkpoints as CycleGAN generators.
        zoo_method: the ``method`` of the zoo entries its converter takes (``convert --zoo NAME``).
        convert_options: what ``convert`` asks of a user converting one of its checkpoints.
        extra: the pip extra its modules need (``pip install 'cyclegan-hub[extra]'``), or None.
        official: ``"module:attribute"``, a function (networks, folder, epoch) that loads a training checkpoint of
            the authors' own code into a run's networks (``train.py --init-from-official``); None if there is none.
    """

    name: str
    title: str
    models: str
    trainer: str | None = None
    converter: str | None = None
    zoo_method: str | None = None
    convert_options: tuple[CliOption, ...] = ()
    extra: str | None = None
    official: str | None = None

    def load(self, part: str):
        """Import one of the record's parts (``models``, ``trainer``, ``converter`` or ``official``); ValueError naming the
        extra when its dependencies are not installed, or the part when the family has none."""
        where = getattr(self, part)
        if where is None:
            raise ValueError(f"the {self.title} family has no {part}")
        module, _, attribute = where.partition(":")
        try:
            loaded = importlib.import_module(module)
        except ImportError as err:
            if self.extra is None:
                raise
            what = f"the {self.title} family ({self.name!r})"
            install = f"pip install 'cyclegan-hub[{self.extra}]'"
            raise ValueError(f"{what} needs the {self.extra!r} extra: {install} ({err})") from None
        return getattr(loaded, attribute) if attribute else loaded


RECORDS: dict[str, Record] = {}


def register(record: Record) -> Record:
    """Make a family known to loading, training, conversion and deployment."""
    RECORDS[record.name] = record
    return record


def get(name: str) -> Record:
    """The family called ``name``; ValueError naming the known ones (and the nearest) otherwise."""
    if not isinstance(name, str) or name not in RECORDS:
        close = difflib.get_close_matches(name, list(RECORDS), n=1, cutoff=0.6) if isinstance(name, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown model family {name!r}{hint}; valid: {', '.join(map(repr, RECORDS))}")
    return RECORDS[name]


def with_zoo_method(method: str) -> Record | None:
    """The family whose converter takes the zoo entries of ``method``; None for CycleGAN generators."""
    return next((r for r in RECORDS.values() if r.converter and r.zoo_method == method), None)


CYCLEGAN = register(
    Record(
        name="cyclegan",
        title="CycleGAN",
        models="cyclegan_hub.models.cyclegan",
        trainer="cyclegan_hub.training.families",
        official="cyclegan_hub.convert.official:init_from_official",
    )
)

CYCLEGAN_TURBO = register(
    Record(
        name="cyclegan-turbo",
        title="CycleGAN-Turbo",
        models="cyclegan_hub.models.turbo",
        trainer="cyclegan_hub.training.turbo",
        converter="cyclegan_hub.convert.turbo:CONVERTER",
        zoo_method="CycleGAN-Turbo",
        convert_options=(
            CliOption(
                "--base-model",
                "the base: a Hub id (stabilityai/sd-turbo) or a folder in diffusers' layout "
                "(unet/, vae/, scheduler/, text_encoder/, tokenizer/)",
                required=True,
            ),
            CliOption("--base-revision", "the base repo's revision (default: main)"),
            CliOption("--caption", 'the direction\'s caption, e.g. "driving in the night"', required=True),
            CliOption("--direction", "which of the file's two VAEs (default: a2b)", choices=("a2b", "b2a")),
            CliOption(
                "--reverse-caption",
                "also convert the other direction (the file's other VAE, or --reverse FILE) with this caption, "
                "into a run folder that `push` sends as twin repos",
            ),
        ),
        extra="turbo",
    )
)

PIX2PIX = register(
    Record(
        name="pix2pix",
        title="pix2pix",
        models="cyclegan_hub.models.pix2pix",
        trainer="cyclegan_hub.training.pix2pix",
        converter="cyclegan_hub.convert.pix2pix:CONVERTER",
        zoo_method="pix2pix",
        convert_options=(
            CliOption(
                "--inference",
                "how the converted generator runs: batch norm on each image's own statistics as the authors' test "
                "script (image_statistics, the default), the same with dropout on (authors), or on the running "
                "statistics (running); given with a checkpoint file, it converts a pix2pix run's latest_net_G.pth",
                choices=("image_statistics", "authors", "running"),
            ),
        ),
    )
)

CUT = register(
    Record(
        name="cut",
        title="CUT",
        models="cyclegan_hub.models.cut",
        trainer="cyclegan_hub.training.cut",
    )
)
