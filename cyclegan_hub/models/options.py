"""A model's config declared once, and the one check of a value against its bounds.

- ``Option`` is one keyword of a Hub model's constructor (its default, meaning, bounds, and where else it shows);
  ``integer``, ``number``, ``choice``, ``text`` and ``value_range`` make one, and ``Options`` holds a family's.
- ``check_value`` (and ``problem`` / ``fits`` below it) is the one place a value is checked against a kind and
  its bounds: the models' options, the training config's keys and the numbers of a checkpoint from elsewhere all
  go through it, each saying what is wrong in its own words.
"""

from __future__ import annotations

import inspect
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

#: Unicode categories a label may not hold: control and format characters (ANSI escapes, bidi overrides,
#: zero-width marks), surrogates, private use, and line or paragraph separators.
_NOT_PLAIN_TEXT = ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")


# ---------------------------------------------------------------------------------------------------------------
# one value against its bounds
# ---------------------------------------------------------------------------------------------------------------


def problem(value, kind: str, low=None, high=None, *, high_open: bool = False, choices=()) -> str | None:
    """Why ``value`` is not a value of ``kind`` within the bounds, or None when it is one.

    ``kind`` is "int" (a whole number, never a bool), "float" (a number, never a bool) or "choice" (one of
    ``choices``; a bool matches only a bool, so ``true`` is not the choice ``1``). The answer is "type", "finite"
    (a NaN or infinite float), "range" (outside ``low`` to ``high``, ``high`` excluded when ``high_open``; a bound
    that is None does not bound) or "choice"."""
    if kind == "choice":
        as_bool = any(isinstance(c, bool) and c == value for c in choices)
        return None if value in choices and isinstance(value, bool) == as_bool else "choice"
    if kind not in ("int", "float"):
        raise TypeError(f"no bounds check for values of kind {kind!r}")
    whole = isinstance(value, int) and not isinstance(value, bool)
    if not whole and (kind == "int" or not isinstance(value, float)):
        return "type"
    if isinstance(value, float) and not math.isfinite(value):
        return "finite"
    if (low is not None and value < low) or (high is not None and (value >= high if high_open else value > high)):
        return "range"
    return None


def fits(value, kind: str, low=None, high=None, *, high_open: bool = False, choices=()) -> bool:
    """Whether ``value`` is a value of ``kind`` within the bounds (``problem`` finds nothing)."""
    return problem(value, kind, low, high, high_open=high_open, choices=choices) is None


def check_value(name: str, value, kind: str, low=None, high=None, *, high_open: bool = False, choices=()) -> None:
    """Raise ValueError naming ``name`` when ``value`` is not a value of ``kind`` within its bounds.

    ``kind`` is one of ``problem``'s, "text" (a label of 1 to ``high`` characters: ``check_text``) or "range" (a
    [low, high] pair of finite numbers, low < high)."""
    if kind == "text":
        check_text(name, value, int(high or 100))
    elif kind == "range":
        if (
            not isinstance(value, (list, tuple))
            or len(value) != 2
            or not all(fits(v, "float") and abs(v) < 1e6 for v in value)
            or not value[0] < value[1]
        ):
            raise ValueError(f"{name} must be [low, high], two finite numbers with low < high, got {value!r}")
    elif problem(value, kind, low, high, high_open=high_open, choices=choices) is not None:
        if kind == "choice":
            raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(repr, choices))}")
        if kind == "int":
            raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
        bound = f"below {high}" if high_open else f"at most {high}"
        raise ValueError(f"{name} must be a number from {low}, {bound}, got {value!r}")


def check_text(name: str, value, max_length: int = 100) -> None:
    """A label shown to people (a domain's name): 1 to ``max_length`` characters of plain text. Control and format
    characters (ANSI escapes, bidi overrides, zero-width marks) are refused where the config is read, so no
    terminal or page ever receives them; markup characters are data, escaped where a page shows them."""
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        shown = value if not isinstance(value, str) else f"{len(value)} characters"
        raise ValueError(f"{name} must be a text of 1 to {max_length} characters, got {shown!r}")
    bad = next((c for c in value if unicodedata.category(c) in _NOT_PLAIN_TEXT), None)
    if bad is not None:
        raise ValueError(f"{name} holds the control character U+{ord(bad):04X}; labels are plain text")


# ---------------------------------------------------------------------------------------------------------------
# options: a model's config declared once
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One keyword of a Hub model's constructor: its default, its meaning, the values it takes, and where else it
    shows (a row of the model card's table; a key of the training config's ``[model]`` section).

    ``kind`` is "int", "float", "choice", "text", "range" (a [low, high] pair of finite numbers) or "const" (only
    its default: a Hub model's ``model_type``)."""

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
        if self.kind == "const":
            if value != self.default:
                raise ValueError(f"{self.name} must be {self.default!r}, got {value!r}")
            return
        low, high = self.bounds(config) if self.bounds and config is not None else (self.low, self.high)
        check_value(self.name, value, self.kind, low, high, high_open=self.high_open, choices=self.choices)

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

    def with_defaults(self, defaults: dict, **extra: Option) -> Options:
        """These options with other defaults (a family that builds the same network with its authors' settings), and
        ``extra`` ones after them."""
        changed = {
            name: replace(o, default=defaults[name]) if name in defaults else o for name, o in self.options.items()
        }
        return Options(**changed, **extra)

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
