"""How a training config key is declared (``key``), and a config section made from a model's ``Options``.

The typed training config (``config.py``) and the model families (``families.py``) both declare sections with
these; the ``[model]`` section of a family is built from the options its networks declare (each ``Option`` with a
``train`` name), so that an option is written once, in the model, and the trainer takes it as a config key.
"""

from __future__ import annotations

from dataclasses import MISSING, field, make_dataclass

from ..models.options import Option


def key(default=MISSING, doc: str = "", *, low=None, high=None, choices=None, path: bool = False, high_open=False):
    """A config key: its default, what it means, and what values it takes."""
    meta = {"doc": doc, "low": low, "high": high, "choices": choices, "path": path, "high_open": high_open}
    return field(default=default, metadata=meta)


def option_key(option: Option):
    """The config key of a model option: same default, meaning and bounds."""
    choices = option.choices or None
    return key(
        option.default, option.doc, low=option.low, high=option.high, choices=choices, high_open=option.high_open
    )


def option_keys(options, defaults: dict | None = None) -> list[tuple]:
    """The config fields ``(name, type, key)`` of every option with a training name, each with the option's default
    or the family's own from ``defaults`` (by training name: pix2pix's critic defaults to batch norm)."""
    fields = []
    for o in options:
        if o.train:
            spec = option_key(o)
            spec.default = (defaults or {}).get(o.train, spec.default)
            fields.append((o.train, o.python_type, spec))
    return fields


def model_section(name: str, doc: str, family: str, *options: Option) -> type:
    """A ``[model]`` section class: ``family`` first, then every option that has a training name, in order."""
    fields = [("family", str, key(family, "model family (`cyclegan_hub.training.families`)"))]
    return make_dataclass(name, fields + option_keys(options), namespace={"__doc__": doc})
