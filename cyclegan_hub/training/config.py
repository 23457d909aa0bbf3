"""The training config: one typed schema, checked when it is loaded, before any data is read or model built.

A config is a TOML file with the sections below; ``--set section.key=value`` and the trainer's flags override it.
Every key is declared once here with its type, range and meaning: a misspelt key is refused with the nearest
valid name, a value of the wrong type or out of range with the valid ones, and settings that cannot work together
(``push_to_hub`` without a repo id, a crop larger than the loaded image) before training starts.
``reference()`` renders the schema as the README's config reference.
"""

from __future__ import annotations

import difflib
import os
import sys
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import torch

from ..models.options import check_text, problem
from . import families
from .data import DomainSpec
from .losses import GAN_MODES
from .schema import key


class ConfigError(ValueError):
    """A config mistake, in one line that names the key and the fix."""


@dataclass
class DomainConfig:
    """``[domain_a]`` / ``[domain_b]``: where one domain's images come from (the layouts: `data.DomainSpec`)."""

    path: str | None = key(
        None,
        "Hub dataset id, local dataset folder (relative to the config file) or a builder such as `imagefolder`",
        path=True,
    )
    label: str = key("A", "the domain's name, used for the models' `source_domain` / `target_domain` and cards")
    name: str | None = key(None, "dataset config name, if the dataset has several")
    split: str = key("train", "split to train on (`train`, `trainA`, ...)")
    image_column: str = key("image", "column holding the images")
    filter: str | None = key(
        None, "keep rows where `column OP value`, e.g. `label == 6`, `Male == 1`, `label in [6, 9]`"
    )
    streaming: bool = key(False, "read the split as a stream (decoded into memory once)")
    data_dir: str | None = key(
        None, "folder given to the builder (`imagefolder`), relative to the config file", path=True
    )
    data_files: str | list[str] | None = key(None, "files given to the builder")
    eval_split: str | None = key(None, "held-out split for samples and the evaluation (none: no held-out figures)")

    def spec(self, split: str | None = None) -> DomainSpec:
        spec = DomainSpec(**{f.name: getattr(self, f.name) for f in fields(DomainSpec)})
        return spec.for_split(split) if split is not None else spec


@dataclass
class DataConfig:
    """``[data]``: how images are prepared."""

    image_size: int = key(256, "side of the square training crops (and the models' `image_size`)", low=4, high=4096)
    load_size: int = key(
        286, "images are resized to this square side, then randomly cropped to `image_size`", low=4, high=8192
    )
    channels: int = key(3, "1 (gray) or 3 (RGB)", choices=(1, 3))
    flip: bool = key(True, "random horizontal flips (off for digits: a mirrored 6 is not a 6)")
    eval_images: int = key(500, "held-out images per domain for the evaluation", low=1, high=100_000)
    stroke_augment: bool = key(
        False,
        "vary stroke width (dilation / erosion) and add small affine jitter, each domain "
        "independently (for drawn digits)",
    )
    judge: str = key(
        "",
        'read the held-out outputs of a paired run with the shipped MNIST digit classifier ("digits": gray '
        "handwritten digits); unpaired digit pairs (labels such as 6 and 9) are read without it",
        choices=("", "digits"),
    )
    paired: bool = key(
        False,
        "domains A and B are the two images of each row of one source (`[domain_a]`'s path, split and filter; "
        "`image_column`s `imageA` / `imageB` unless named), each pair cropped and flipped alike",
    )
    aligned: str = key(
        "",
        'each row holds one image, A on its left half and B on its right ("AB"; "BA": the other way round), the '
        "official pix2pix folders' layout; implies `paired`",
        choices=("", "AB", "BA"),
    )


COMPILE_MODES = (False, True, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainConfig:
    """``[train]``: the optimisation. The learning rate is constant for `lr_constant_steps`, then decays linearly to
    0 over `lr_decay_steps` (the paper: 100 + 100 epochs); `max_steps` is where this run stops, so a run can be
    stopped early and resumed on the same schedule. Usually `max_steps = lr_constant_steps + lr_decay_steps`."""

    output_dir: str = key("runs/cyclegan", "the run folder (relative to the working directory)")
    seed: int = key(0, "seed of the models, the data order, the augmentation and the pools", low=0, high=2**31 - 1)
    batch_size: int = key(1, "images per domain per process and step", low=1, high=4096)
    max_steps: int = key(1000, "optimisation steps of the run", low=1, high=10**9)
    lr_constant_steps: int = key(500, "steps at the initial learning rate", low=0, high=10**9)
    lr_decay_steps: int = key(500, "steps of linear decay to 0 after those", low=0, high=10**9)
    lr: float = key(2e-4, "Adam learning rate", low=0.0, high=1.0)
    beta1: float = key(0.5, "Adam beta1", low=0.0, high=0.999999)
    beta2: float = key(0.999, "Adam beta2", low=0.0, high=0.999999)
    lambda_cycle: float = key(10.0, "weight of the cycle-consistency loss (Eq. 3)", low=0.0, high=1000.0)
    lambda_identity: float = key(0.5, "weight of the identity loss, times `lambda_cycle` (0: off)", low=0.0, high=100.0)
    gan_mode: str = key("lsgan", "adversarial loss", choices=GAN_MODES)
    pool_size: int = key(50, "past fakes kept for the discriminators (0: none)", low=0, high=10_000)
    ema: bool = key(False, "keep an exponential moving average of the generators and export it")
    ema_decay: float = key(0.999, "EMA decay (warmed up from 0.1)", low=0.0, high=0.999999)
    mixed_precision: str = key("no", "autocast precision", choices=("no", "fp16", "bf16"))
    channels_last: bool = key(False, "NHWC memory format (faster on tensor cores; slower on this project's CPUs)")
    compile: bool | str = key(
        False, "torch.compile: false, true or a mode (`reduce-overhead` captures CUDA graphs)", choices=COMPILE_MODES
    )
    log_every: int = key(25, "steps between logged losses", low=1, high=10**9)
    sample_every: int = key(500, "steps between sample grids in `samples/`", low=1, high=10**9)
    eval_every: int = key(
        0, "steps between held-out evaluations in `eval_log.jsonl` (0: only at the end)", low=0, high=10**9
    )
    checkpoint_every: int = key(500, "steps between checkpoints", low=1, high=10**9)
    checkpoints_total_limit: int = key(3, "checkpoints kept (0: all)", low=0, high=10**6)


@dataclass
class HubConfig:
    """``[hub]``: push the pair when training ends (token from HF_TOKEN or `hf auth login`, checked at start)."""

    push_to_hub: bool = key(False, "push both generators at the end")
    repo_id: str | None = key(None, "repo of the A -> B generator, e.g. `user/mnist-6to9`")
    reverse_repo_id: str | None = key(None, "repo of the B -> A generator (default: the twin name, `user/mnist-9to6`)")
    private: bool = key(False, "create the repos as private")


SECTIONS: dict[str, type] = {
    "domain_a": DomainConfig,
    "domain_b": DomainConfig,
    "data": DataConfig,
    "model": families.CYCLEGAN.model_section,  # the default family's; ``load`` takes the chosen family's
    "train": TrainConfig,
    "hub": HubConfig,
}


@dataclass
class TrainingConfig:
    """A whole run's config: one typed object per section."""

    domain_a: DomainConfig = field(default_factory=lambda: DomainConfig(label="A"))
    domain_b: DomainConfig = field(default_factory=lambda: DomainConfig(label="B"))
    data: DataConfig = field(default_factory=DataConfig)
    model: object = field(default_factory=families.CYCLEGAN.model_section)
    train: TrainConfig = field(default_factory=TrainConfig)
    hub: HubConfig = field(default_factory=HubConfig)

    def to_dict(self) -> dict:
        return {
            name: {f.name: getattr(getattr(self, name), f.name) for f in fields(getattr(self, name))}
            for name in SECTIONS
        }

    @property
    def family(self) -> families.Family:
        """The model family of ``[model] family``: its networks, optimizers and step."""
        return families.get(self.model.family)

    @property
    def output_dir(self) -> Path:
        return Path(self.train.output_dir)

    def build_networks(self) -> dict[str, torch.nn.Module]:
        """The family's networks: for CycleGAN G (A -> B), F (B -> A), D_A (judges domain A: F's outputs) and D_B
        (judges domain B: G's outputs)."""
        return self.family.build(self)

    def lr_factor(self, step: int) -> float:
        """1 for ``lr_constant_steps``, then linearly down to 0 over ``lr_decay_steps`` (the paper: n_epochs +
        n_epochs_decay). Fixed by the config, not by where a run stops: stopped at 3 and resumed to 6 is 6 straight."""
        constant, decay = self.train.lr_constant_steps, self.train.lr_decay_steps
        return 1.0 if step < constant else max(0.0, 1.0 - (step - constant) / max(1, decay))

    def hub_datasets(self) -> list[str]:
        """The domains' Hub dataset ids (local folders are not Hub datasets)."""
        return sorted({d.path for d in (self.domain_a, self.domain_b) if "/" in d.path and not Path(d.path).exists()})

    def data_name(self) -> str:
        """Domain A's data by name: a Hub id, or a local folder's name (never a path of this machine)."""
        path = Path(self.domain_a.data_dir or self.domain_a.path)
        return path.name if path.exists() else str(self.domain_a.path)

    def describe(self, step: int, processes: int) -> str:
        """The recipe as markdown bullet points, for the cards: local data by folder name, never by a path."""
        t, d = self.train, self.data

        def source(section: DomainConfig) -> str:
            spec = section.spec()
            name = Path(spec.path).name if Path(spec.path).exists() else spec.path
            name += f" ({Path(spec.data_dir).name})" if spec.data_dir else ""
            return f"{name} split={spec.split}" + (f" where {spec.filter}" if spec.filter else "")

        ema = f"on ({t.ema_decay})" if t.ema else "off"
        if d.aligned:
            data = f"- data: pairs of {source(self.domain_a)}, each image's halves ({d.aligned[0]} left, {d.aligned[1]} right)"
        elif d.paired:
            data = f"- data: pairs of {source(self.domain_a)}: A = column {self.domain_a.image_column}, B = column {self.domain_b.image_column}"
        else:
            data = f"- data: A = {source(self.domain_a)}; B = {source(self.domain_b)}; unpaired, sampled independently"
        return "\n".join(
            [
                data,
                f"- images: {d.channels} channel(s), resized to {d.load_size}, random crop {d.image_size}, flip {d.flip}"
                + (", stroke width and affine jitter" if d.stroke_augment else ""),
                *self.family.describe(self),
                f"- {step} steps of batch {t.batch_size} x {processes} process(es); Adam lr {t.lr}, betas ({t.beta1}, "
                f"{t.beta2}), constant for {t.lr_constant_steps} steps, then linear decay to 0 over {t.lr_decay_steps}",
                f"- EMA {ema}; mixed precision {t.mixed_precision}",
            ]
        )

    def flat(self) -> dict:
        """section.key -> value, for TensorBoard's hyper-parameters."""
        return {
            f"{s}.{k}": v
            for s, entries in self.to_dict().items()
            for k, v in entries.items()
            if isinstance(v, (int, float, str, bool))
        }


def load(path: str | os.PathLike | None = None, overrides: list[str] = (), flags: dict | None = None) -> TrainingConfig:
    """The config of ``path`` (TOML), with ``--set SECTION.KEY=VALUE`` ``overrides`` and the trainer's ``flags``
    ({"train.max_steps": 3, ...}; None values are ignored) applied, checked as a whole. Raises ConfigError."""
    toml: list[tuple[str, str, object, str]] = []  # (section, key, value, where), in the order they are set
    later: list[tuple[str, str, object, str]] = []
    if path is not None:
        try:
            with open(path, "rb") as f:
                user = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found") from None
        except IsADirectoryError:
            raise ConfigError(f"config file {path} is a folder") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
        for section, entries in user.items():
            if section not in SECTIONS or not isinstance(entries, dict):
                raise ConfigError(
                    f"unknown config section [{section}]{_suggest(section, SECTIONS)}; valid: {', '.join(SECTIONS)}"
                )
            toml += [(section, name, value, f"{path}: {section}.{name}") for name, value in entries.items()]
    for item in overrides:
        dotted, sep, raw = item.partition("=")
        section, _, name = dotted.strip().partition(".")
        if not sep or not name:
            raise ConfigError(f"--set {item!r}: write SECTION.KEY=VALUE, SECTION one of {', '.join(SECTIONS)}")
        if section not in SECTIONS:
            raise ConfigError(f"--set {item!r}: unknown section [{section}]{_suggest(section, SECTIONS)}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()  # a bare word is a string (then type-checked like any value)
        later.append((section, name, value, f"--set {section}.{name}"))
    for dotted, value in (flags or {}).items():
        if value is not None:
            section, name = dotted.split(".")
            later.append((section, name, value, f"{section}.{name}"))

    # The [model] keys are the chosen family's: read `family` first (the last one set wins), then check every key.
    family = families.CYCLEGAN
    for section, name, value, where in toml + later:
        if (section, name) == ("model", "family"):
            try:
                family = families.get(value if isinstance(value, str) else repr(value))
            except ValueError as err:
                raise ConfigError(f"{where}: {err}") from None
    schemas = {**SECTIONS, "model": family.model_section}
    values: dict[str, dict] = {name: {} for name in SECTIONS}
    for entry in toml:
        _set(values, schemas, *entry)
    if path is not None:
        base = Path(path).parent
        for section in ("domain_a", "domain_b"):
            for name in ("path", "data_dir"):  # local dataset paths are relative to the config file
                value = values[section].get(name)
                if isinstance(value, str) and not Path(value).is_absolute() and (base / value).exists():
                    values[section][name] = os.path.normpath(base / value)
    for entry in later:
        _set(values, schemas, *entry)
    _pair_sources(values)
    sections = {name: schemas[name](**entries) for name, entries in values.items()}
    for name in ("domain_a", "domain_b"):
        if "label" not in values[name]:
            sections[name].label = "A" if name == "domain_a" else "B"
    config = TrainingConfig(**sections)
    check(config)
    return config


#: What a paired domain B reads from domain A's section: the same rows of the same source.
PAIRED_SOURCE = ("path", "name", "split", "filter", "streaming", "data_dir", "data_files", "eval_split")


def _pair_sources(values: dict) -> None:
    """With ``data.paired`` (or ``data.aligned``), domain B reads domain A's rows: its source keys are A's (given
    for B, they must be A's), and the image columns default to ``imageA`` / ``imageB`` (aligned: one ``image``)."""
    data, a, b = values["data"], values["domain_a"], values["domain_b"]
    if data.get("aligned"):
        data["paired"] = True
    if not data.get("paired"):
        return
    for name in PAIRED_SOURCE:
        if name in b and b[name] != a.get(name):
            raise ConfigError(
                f"data.paired: domain B reads the rows of domain A, so domain_b.{name} = {_toml(b[name])} cannot "
                f"differ from domain_a.{name}; name only domain B's label and image_column"
            )
        if name in a:
            b[name] = a[name]
    if not data.get("aligned"):
        a.setdefault("image_column", "imageA")
        b.setdefault("image_column", "imageB")
    elif b.get("image_column", a.get("image_column", "image")) != a.get("image_column", "image"):
        raise ConfigError("data.aligned: A and B are the halves of one image column: set domain_a.image_column only")


def _set(values: dict, schemas: dict, section: str, name: str, value, where: str) -> None:
    schema = {f.name: f for f in fields(schemas[section])}
    if name not in schema:
        raise ConfigError(f"{where}: unknown key{_suggest(name, schema)}; valid: {', '.join(schema)}")
    values[section][name] = _check_value(schemas[section], schema[name], value, f"{section}.{name}")


def _suggest(name: str, valid) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_value(owner: type, spec, value, name: str):
    meta = spec.metadata
    hint = typing.get_type_hints(owner)[spec.name]
    allowed = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None))
        else (hint,)
    )
    if value is None and type(None) in allowed:
        return None
    if meta.get("choices") is not None:
        if problem(value, "choice", choices=meta["choices"]):
            shown = ", ".join(_toml(c) for c in meta["choices"])
            raise ConfigError(f"{name} = {_toml(value)}: use one of {shown}")
        return value
    if bool in allowed and isinstance(value, bool):
        return value
    for kind, python in (("int", int), ("float", float)):  # a whole number is checked as one first
        if python in allowed:
            low, high, high_open = meta.get("low"), meta.get("high"), bool(meta.get("high_open"))
            why = problem(value, kind, low, high, high_open=high_open)
            if why == "finite":
                raise ConfigError(f"{name} = {value}: use a finite number")
            if why == "range":
                bound = f"below {high}" if high_open else f"to {high}"
                raise ConfigError(f"{name} = {python(value)}: use a value from {low} {bound}")
            if why is None:
                return python(value)
    if str in allowed and isinstance(value, str):
        return value
    if list[str] in allowed and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    wanted = {bool: "true or false", int: "a whole number", float: "a number", str: "a text in quotes"}
    kinds = " or ".join(wanted[t] for t in allowed if t in wanted)
    raise ConfigError(f"{name} = {_toml(value)}: expected {kinds}")


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def check(config: TrainingConfig) -> None:
    """What single keys cannot say: settings that must agree with each other."""
    for name in ("domain_a", "domain_b"):
        if not getattr(config, name).path:
            raise ConfigError(
                f"{name}.path is not set: give --config (e.g. training/configs/mnist-6to9.toml) or "
                f"--set {name}.path=..."
            )
    for name in ("domain_a", "domain_b"):
        try:
            check_text(f"{name}.label", getattr(config, name).label)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    if config.domain_a.label == config.domain_b.label:
        raise ConfigError(f"domain_a.label and domain_b.label are both {config.domain_a.label!r}: name the two domains")
    if config.data.load_size < config.data.image_size:
        raise ConfigError(
            f"data.load_size ({config.data.load_size}) must be at least data.image_size ({config.data.image_size})"
        )
    if config.data.stroke_augment and config.data.channels != 1:
        raise ConfigError("data.stroke_augment is for drawn strokes on gray images: it needs data.channels = 1")
    if config.hub.push_to_hub and not config.hub.repo_id:
        raise ConfigError("--push-to-hub needs --hub-repo-id (hub.repo_id)")
    try:
        config.family.check(config)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def reference() -> str:
    """The config reference (markdown), generated from the schema: what the README shows."""
    lines = []
    for section, cls in SECTIONS.items():
        if section == "domain_b":
            continue
        title = "[domain_a] and [domain_b]" if section == "domain_a" else f"[{section}]"
        doc = " ".join((cls.__doc__ or "").split()).split(": ", 1)[-1]
        lines += [f"**{title}**: {doc}", "", "| key | default | values | meaning |", "|---|---|---|---|"]
        for f in fields(cls):
            meta = f.metadata
            default = "(required)" if f.name == "path" else _toml(f.default) if f.default is not None else ""
            if meta.get("choices") is not None:
                values = ", ".join(_toml(c) for c in meta["choices"])
            elif meta.get("low") is not None:
                values = (
                    f"{meta['low']} to {meta['high']:,}"
                    if isinstance(meta["high"], int)
                    else f"{meta['low']} to {meta['high']}" + (" (exclusive)" if meta.get("high_open") else "")
                )
            else:
                values = ""
            lines.append(f"| `{f.name}` | {f'`{default}`' if default else ''} | {values} | {meta.get('doc', '')} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
