"""What every cyclegan-hub network shares: strict, checked, safetensors-only loading through PyTorchModelHubMixin.

A model from the Hub is a stranger's files, so loading checks before it allocates:

1. config.json is read as a small regular file holding a JSON object (not a link to a device, not a deep nest);
2. every field is type- and range-checked by the class (``check_config``), so a config cannot ask for a million
   residual blocks;
3. the network is built on the ``meta`` device (no memory) and compared with the safetensors *header* (names,
   shapes, dtypes: read without loading a tensor): missing, unexpected, mis-shaped or non-float tensors are named;
4. only then are the weights loaded, and NaN or infinite values refused.

The mixin would also load with ``strict=False`` and fall back to pickled ``pytorch_model.bin`` files; neither
happens here.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import safetensors.torch
import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
from torch import nn

from .. import families, translation
from ..io.files import give_default_mode, read_json

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
#: A safetensors header is JSON describing the tensors; ours are a few KB. Larger headers are refused unread.
#: Files that are pickled checkpoints: never loaded here; ``cyclegan-hub convert`` reads them behind weights_only.
PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt", ".pkl", ".pth.tar")

MAX_HEADER_BYTES = 16 * 2**20

_FLOAT_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
_INT_DTYPES = {"I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8}


def save_tensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """safetensors' ``save_file`` with ordinary file permissions (it creates files readable by their owner only)."""
    safetensors.torch.save_file(tensors, str(path))
    give_default_mode(path)


def read_safetensors_header(path: str | os.PathLike) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{tensor name: (dtype, shape)} from a safetensors file's header, without reading any tensor data.

    Raises ValueError naming the file for a header that is truncated, too large, not JSON, or inconsistent with
    the file's size."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        start = f.read(8)
        if len(start) < 8:
            raise ValueError(f"{path.name} is not a safetensors file (it is {size} bytes long)")
        (length,) = struct.unpack("<Q", start)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"{path.name} is not a readable safetensors file (its header claims {length} bytes)")
        raw = f.read(length)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ValueError(f"{path.name} is not a readable safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path.name} is not a readable safetensors file (its header is not an object)")
    tensors, end = {}, 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, stop) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"{path.name} is not a readable safetensors file (bad entry for {name!r})") from None
        numbers = (*shape, begin, stop)
        if (
            not isinstance(dtype, str)
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers)
            or any(d < 0 for d in shape)
            or not (0 <= begin <= stop)
        ):
            raise ValueError(f"{path.name} is not a readable safetensors file (bad entry for {name!r})")
        tensors[name] = (dtype, shape)
        end = max(end, stop)
    if 8 + length + end > size:
        raise ValueError(
            f"{path.name} is truncated: its header describes {end} bytes of tensors, the file holds {size - 8 - length}"
        )
    return tensors


def check_weights_header(
    expected: dict[str, torch.Tensor], header: dict[str, tuple[str, tuple[int, ...]]]
) -> list[str]:
    """Differences between the model built from config.json (``expected``, possibly on the meta device) and the
    tensors a weights file declares, as short phrases; empty when they match."""
    problems = []
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing:
        problems.append(f"{len(missing)} missing tensor(s) (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s) (e.g. {', '.join(unexpected[:3])})")
    for key in [k for k in expected if k in header]:
        dtype, shape = header[key]
        if tuple(expected[key].shape) != shape:
            problems.append(f"{key} has shape {shape} in the weights but {tuple(expected[key].shape)} in the model")
            break
        wants_float = expected[key].is_floating_point()
        if wants_float and dtype not in _FLOAT_DTYPES or not wants_float and dtype not in _INT_DTYPES:
            kind = "a float" if wants_float else "an integer"
            problems.append(f"{key} is stored as {dtype}; the model needs {kind} tensor")
            break
    return problems


def non_finite(state: dict[str, torch.Tensor]) -> str | None:
    """The name of the first float tensor holding NaN or infinity, else None."""
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return key
    return None


def check_int(config: dict, key: str, low: int, high: int) -> None:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{key} must be an integer from {low} to {high}, got {value!r}")


def check_float(config: dict, key: str, low: float, high: float, *, high_open: bool = False) -> None:
    value = config.get(key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high or high_open and value == high:
        bound = f"below {high}" if high_open else f"at most {high}"
        raise ValueError(f"{key} must be a number from {low}, {bound}, got {value!r}")


def check_text(config: dict, key: str, max_length: int = 100) -> None:
    """A label shown to people (a domain's name): 1 to ``max_length`` characters of plain text. Control and format
    characters (ANSI escapes, bidi overrides, zero-width marks) are refused where the config is read, so no
    terminal or page ever receives them; markup characters are data, escaped where a page shows them."""
    value = config.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        shown = value if not isinstance(value, str) else f"{len(value)} characters"
        raise ValueError(f"{key} must be a text of 1 to {max_length} characters, got {shown!r}")
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")), None)
    if bad is not None:
        raise ValueError(f"{key} holds the control character U+{ord(bad):04X}; labels are plain text")


# ---------------------------------------------------------------------------------------------------------------
# options: a model's config declared once
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One keyword of a Hub model's constructor: its default, its meaning, the values it takes, and where else it
    shows (a row of the model card's table; a key of the training config's ``[model]`` section).

    ``kind`` is "int", "float", "choice", "text" or "range" (a [low, high] pair of finite numbers)."""

    kind: str
    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    choices: tuple = ()
    card: str | None = None
    train: str | None = None
    bounds: Callable[[dict], tuple] | None = None
    name: str = ""

    def check(self, value, config: dict | None = None) -> None:
        """Raise ValueError naming this option when ``value`` is not one it takes (in ``config``, when its
        ``bounds`` depend on the other options, e.g. a U-Net's levels on the architecture)."""
        low, high = self.bounds(config) if self.bounds and config is not None else (self.low, self.high)
        config = {self.name: value}
        if self.kind == "int":
            check_int(config, self.name, low, high)
        elif self.kind == "float":
            check_float(config, self.name, low, high, high_open=self.high_open)
        elif self.kind == "text":
            check_text(config, self.name, int(self.high or 100))
        elif self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise ValueError(f"unknown {self.name} {value!r}; valid: {', '.join(map(repr, self.choices))}")
        elif self.kind == "const":
            if value != self.default:
                raise ValueError(f"{self.name} must be {self.default!r}, got {value!r}")
        elif self.kind == "range":
            if (
                not isinstance(value, (list, tuple))
                or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                or not all(abs(float(v)) < 1e6 for v in value)
                or not value[0] < value[1]
            ):
                raise ValueError(f"{self.name} must be [low, high], two finite numbers with low < high, got {value!r}")

    @property
    def python_type(self) -> type:
        return {"int": int, "float": float, "text": str, "choice": str, "range": list, "const": str}[self.kind]

    def values(self) -> str:
        """The values it takes, as the docs show them."""
        if self.kind == "choice":
            return ", ".join(f'"{c}"' for c in self.choices)
        if self.kind in ("int", "float"):
            high = f"{self.high:,}" if self.kind == "int" else self.high
            return f"{self.low} to {high}" + (" (exclusive)" if self.high_open else "")
        return ""


def integer(default: int, doc: str, low: int, high: int, **where) -> Option:
    return Option("int", default, doc, low, high, **where)


def number(default: float, doc: str, low: float, high: float, *, high_open: bool = False, **where) -> Option:
    return Option("float", default, doc, low, high, high_open=high_open, **where)


def choice(default: str, doc: str, choices, **where) -> Option:
    return Option("choice", default, doc, choices=tuple(choices), **where)


def text(default: str, doc: str, max_length: int = 100, **where) -> Option:
    return Option("text", default, doc, high=max_length, **where)


def value_range(default: tuple[float, float], doc: str, **where) -> Option:
    return Option("range", default, doc, **where)


class Options:
    """A model family's config, declared once: the constructor's keywords (its signature), the saved config.json
    (the mixin writes the keywords), the bounds checked before anything is built, the rows of the model card's
    table, the ``Args`` of the class docstring and the training config's ``[model]`` keys all come from here.
    Adding an option is one line here plus its use in the network."""

    def __init__(self, **options: Option):
        self.options = {name: replace(option, name=name) for name, option in options.items()}

    def __iter__(self):
        return iter(self.options.values())

    def __getitem__(self, name: str) -> Option:
        return self.options[name]

    def defaults(self) -> dict:
        return {name: option.default for name, option in self.options.items()}

    def signature(self) -> inspect.Signature:
        """``(self, *, name=default, ...)``, typed: what the mixin reads to write config.json."""
        params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        params += [
            inspect.Parameter(
                o.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=o.default, annotation=o.python_type
            )
            for o in self
        ]
        return inspect.Signature(params)

    def bind(self, owner: str, args: tuple, kwargs: dict) -> dict:
        """The complete config of a constructor call (positional arguments in declaration order, as a plain
        signature would take them); an unknown keyword is a TypeError, as Python's own."""
        names = list(self.options)
        if len(args) > len(names):
            raise TypeError(f"{owner}() takes at most {len(names)} positional arguments ({len(args)} given)")
        given = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in self.options:
                raise TypeError(f"{owner}() got an unexpected keyword argument {key!r}")
            if key in given:
                raise TypeError(f"{owner}() got multiple values for argument {key!r}")
            given[key] = value
        return {**self.defaults(), **given}

    def check(self, config: dict) -> None:
        """Every option of ``config`` (defaults filled in) in its range; ValueError naming the first that is not."""
        for name, option in self.options.items():
            option.check(config.get(name, option.default), config)

    def normalize(self, config: dict) -> dict:
        """A checked config as the network keeps it: ranges as lists of floats (as config.json holds them)."""
        ranges = {o.name for o in self if o.kind == "range"}
        return {k: [float(v) for v in value] if k in ranges else value for k, value in config.items()}

    def card_rows(self, config: dict) -> list[tuple[str, Any]]:
        """(label, value) rows of the model card's table."""
        return [(o.card, config.get(o.name, o.default)) for o in self if o.card]

    def docstring(self) -> str:
        """The ``Args:`` section of the class docstring."""
        lines = ["Args:"]
        for o in self:
            extra = f" ({o.values()})" if o.values() else ""
            lines.append(f"    {o.name}: {o.doc}{extra}; default {o.default!r}.")
        return "\n".join(lines)


def _refuse_pickles(model_id: str, files, missing: str = CONFIG_NAME) -> None:
    """A folder or repo that holds a pickled checkpoint and no config.json (the HugGAN sprint's repos, an official
    training run): one line naming the command that converts it; pickles are never loaded here."""
    pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
    if pickles:
        name = model_id.rstrip("/").split("/")[-1]
        raise ValueError(
            f"{model_id} holds a pickled checkpoint ({pickles[0]}) and no {missing}; from_pretrained reads only "
            f"safetensors: convert it once with `cyclegan-hub convert {model_id} --output converted/{name}`"
        )


#: Hub model classes by the ``model_type`` their config.json names. A config.json without one (every CycleGAN
#: generator, including those written before there were other families) is the default type's.
MODEL_TYPES: dict[str, type] = {}
DEFAULT_MODEL_TYPE = "cyclegan"


def model_class(named) -> type:
    """The Hub model class of a config.json's ``model_type`` (its family's models, imported on first use);
    ValueError naming the known ones otherwise."""
    if isinstance(named, str) and named not in MODEL_TYPES and named in families.RECORDS:
        families.get(named).load("models")
    if not isinstance(named, str) or named not in MODEL_TYPES:
        known = ", ".join(map(repr, sorted({*MODEL_TYPES, *families.RECORDS})))
        raise ValueError(f"model_type {named!r} is not one of {known}")
    return MODEL_TYPES[named]


class HubModule(nn.Module, PyTorchModelHubMixin):
    """Base class: a torch module whose config is its constructor and whose weights are one safetensors file.

    A subclass declares its config once, as ``options = Options(...)``: its ``__init__(self, **config)`` receives
    the complete, checked config (``self.config``) and its signature, docstring ``Args`` and config.json come from
    the declaration. ``check_consistency(config)`` adds the checks that involve more than one option."""

    options: ClassVar[Options] = Options()
    #: The name of a family of translators (``model_type`` in config.json; None for other networks). A family
    #: other than the default writes it into config.json, and ``HubModule.from_pretrained`` loads by it.
    model_type: ClassVar[str | None] = None
    #: Keyword arguments of ``__init__`` that are not config (diffusers' ``ignore_for_config``): objects a caller
    #: hands over at build time, such as a network shared by two models or the precision to read a base in. They
    #: reach the declared ``__init__`` as keywords when given, are never written to config.json, and
    #: ``from_pretrained`` passes them on.
    runtime: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        if cls.__dict__.get("model_type"):
            MODEL_TYPES[cls.model_type] = cls
            if cls.model_type != DEFAULT_MODEL_TYPE and "options" in cls.__dict__:
                what = "the model family, which loads it (`HubModule.from_pretrained`)"
                cls.options = Options(model_type=Option("const", cls.model_type, what), **cls.options.options)
        if "options" in cls.__dict__:
            declared = cls.__init__

            def __init__(self, *args, **kwargs):
                runtime = {name: kwargs.pop(name) for name in cls.runtime if name in kwargs}
                config = cls.options.bind(cls.__name__, args, kwargs)
                cls.check_config(config)
                if isinstance(self._hub_mixin_config, dict):  # the mixin keeps what was passed, for config.json
                    self._hub_mixin_config = {k: v for k, v in self._hub_mixin_config.items() if k not in runtime}
                declared(self, **cls.options.normalize(config), **runtime)

            __init__.__signature__ = cls.options.signature()
            __init__.__doc__ = declared.__doc__
            __init__.__qualname__ = f"{cls.__qualname__}.__init__"
            cls.__init__ = __init__
            cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n\n" + cls.options.docstring().replace("\n", "\n    ")
        super().__init_subclass__(**kwargs)

    @classmethod
    def check_config(cls, config: dict) -> None:
        """Refuse (ValueError naming the field) a config no real network of this class has: every option is
        bounded before anything is built, so that a config.json cannot ask for a network that exhausts memory."""
        config = {**cls.options.defaults(), **config}
        cls.options.check(config)
        cls.check_consistency(config)

    @classmethod
    def check_consistency(cls, config: dict) -> None:
        """Checks across options (a complete config whose options are each in range); none by default."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """The mixin's ``from_pretrained``, after config.json has been read safely: the mixin itself would
        ``json.load`` whatever the path holds (a link to /dev/zero is read until memory runs out)."""
        model_id = str(pretrained_model_name_or_path)
        if os.path.isdir(model_id):
            for name in (CONFIG_NAME, WEIGHTS_NAME):
                if not os.path.lexists(os.path.join(model_id, name)):
                    _refuse_pickles(model_id, os.listdir(model_id), name)
                    raise FileNotFoundError(f"{model_id} is not a {cls.__name__} folder: it has no {name}")
            config = read_json(os.path.join(model_id, CONFIG_NAME), what=f"config.json of {model_id}")
        else:
            try:
                config_file = hf_hub_download(
                    model_id,
                    CONFIG_NAME,
                    revision=kwargs.get("revision"),
                    cache_dir=kwargs.get("cache_dir"),
                    force_download=kwargs.get("force_download", False),
                    token=kwargs.get("token"),
                    local_files_only=kwargs.get("local_files_only", False),
                )
            except EntryNotFoundError as err:
                if isinstance(err, LocalEntryNotFoundError):  # offline and not cached: the caller says so
                    raise
                from huggingface_hub import HfApi

                try:
                    files = HfApi().list_repo_files(
                        model_id, revision=kwargs.get("revision"), token=kwargs.get("token")
                    )
                except Exception:  # the listing only improves the message; the missing config.json is the error
                    files = []
                _refuse_pickles(model_id, files)
                raise ValueError(f"the Hub repo {model_id} has no config.json: not a cyclegan-hub model") from None
            config = read_json(config_file, what=f"config.json of {model_id}")
        named = config.get("model_type", DEFAULT_MODEL_TYPE) if isinstance(config, dict) else DEFAULT_MODEL_TYPE
        if cls is HubModule:  # any family: the class config.json names
            try:
                cls = model_class(named)
            except ValueError as err:
                raise ValueError(f"config.json of {model_id}: {err}") from None
        elif cls.model_type is not None and named != cls.model_type:
            raise ValueError(
                f"{model_id} is a {named!r} model, not a {cls.__name__}; load it with HubModule.from_pretrained"
            )
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str | torch.device = "cpu",
        strict: bool = True,
        **model_kwargs,
    ):
        if os.path.isdir(model_id):
            weights_file = os.path.join(model_id, WEIGHTS_NAME)
            if not os.path.isfile(weights_file) or os.path.islink(weights_file):
                raise ValueError(f"{weights_file} is not a regular file")
        else:
            weights_file = hf_hub_download(
                repo_id=model_id,
                filename=WEIGHTS_NAME,
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                token=token,
                local_files_only=local_files_only,
            )
        runtime = {name: model_kwargs.pop(name) for name in cls.runtime if name in model_kwargs}
        try:
            cls.check_config(model_kwargs)
        except ValueError as err:
            raise ValueError(f"config.json of {model_id}: {err}") from None
        header = read_safetensors_header(weights_file)
        try:
            with torch.device("meta"):  # shapes only: nothing is allocated before the weights are known to fit
                skeleton = cls(**model_kwargs, **runtime)
        except TypeError as err:  # a config key this version does not know
            raise ValueError(f"config.json of {model_id} does not describe a {cls.__name__}: {err}") from None
        problems = check_weights_header(skeleton.state_dict(), header)
        if problems and strict:
            raise ValueError(f"config.json of {model_id} does not match its {WEIGHTS_NAME}: " + "; ".join(problems))
        del skeleton
        try:
            state = safetensors.torch.load_file(weights_file, device=str(map_location))
        except Exception as err:  # safetensors raises its own error types for corrupt files
            raise ValueError(f"{WEIGHTS_NAME} of {model_id} is not a readable safetensors file: {err}") from None
        bad = non_finite(state)
        if bad is not None:
            raise ValueError(f"{WEIGHTS_NAME} of {model_id} holds NaN or infinite values (in {bad}); refused")
        model = cls(**model_kwargs, **runtime)
        model.load_state_dict(state, strict=strict)
        model.to(map_location)
        model.eval()
        return model

    def _save_pretrained(self, save_directory: Path) -> None:
        """The weights as one safetensors file, readable like any file the user writes."""
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_tensors(state, Path(save_directory) / WEIGHTS_NAME)

    @functools.wraps(translation.translate, assigned=("__doc__",))
    def translate(self, images, **options):
        # Any network that declares a ``translation_spec`` translates images through the one path.
        return translation.translate(self, images, **options)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
