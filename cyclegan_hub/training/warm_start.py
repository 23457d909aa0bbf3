"""Start a run from trained translators: ``train.py --init-from MODEL`` (and ``--init-from-reverse MODEL``).

MODEL is a folder or Hub repo that ``save_pretrained``, ``push`` or ``convert`` wrote: one translator (it starts G,
the A -> B direction; ``--init-from-reverse`` starts F), or a run folder (``generator_AtoB/`` and, for a family that
trains both directions, ``generator_BtoA/``) that starts both. Whatever family the run trains, the same checks
come first: the model's ``model_type`` is the run's family, every option that shapes or drives the network equals
the run's (the first that differs is named with its config key), and its safetensors header matches before a
tensor is read (``modeling.read_checked_weights``). The critics and anything else the files do not hold start as
the run's seed makes them; so do the optimizers.
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import hf_hub_download
from torch import nn

from ..io.files import read_json
from ..models.modeling import CONFIG_NAME, DEFAULT_MODEL_TYPE, WEIGHTS_NAME, model_class, read_checked_weights

#: What a run folder names each exported network.
FOLDERS = {"G": "generator_AtoB", "F": "generator_BtoA"}
#: Options that describe a translator's use rather than its network: they may differ from the run's.
DESCRIPTIVE = ("source_domain", "target_domain", "image_size")


def sources(model: str, reverse: str | None, exported: tuple[str, ...]) -> dict[str, str]:
    """{network: model} to start from: a run folder's generators, or ``model`` for G and ``reverse`` for F."""
    folder = Path(model)
    if folder.is_dir() and not (folder / CONFIG_NAME).exists():
        found = {name: str(folder / FOLDERS[name]) for name in exported if (folder / FOLDERS[name]).is_dir()}
        if "G" not in found:
            raise ValueError(f"{model} holds neither a translator (config.json) nor a run's {FOLDERS['G']}/")
        if reverse is not None:
            found["F"] = reverse
        return found
    found = {"G": model}
    if reverse is not None:
        if "F" not in exported:
            raise ValueError("--init-from-reverse: this family trains one direction only")
        found["F"] = reverse
    return found


def _files(model: str) -> tuple[dict, str]:
    """(config.json's object, the weights file) of a folder or a Hub repo (downloaded to the Hub cache)."""
    if os.path.isdir(model):
        config_file, weights = os.path.join(model, CONFIG_NAME), os.path.join(model, WEIGHTS_NAME)
        for path in (config_file, weights):
            if not os.path.isfile(path) or os.path.islink(path):
                raise ValueError(f"{model} is not a translator folder: {os.path.basename(path)} is not a regular file")
    else:
        config_file, weights = (hf_hub_download(model, name) for name in (CONFIG_NAME, WEIGHTS_NAME))
    config = read_json(config_file, what=f"config.json of {model}")
    if not isinstance(config, dict):
        raise ValueError(f"config.json of {model} is not a JSON object")
    return config, weights


def load_into(net: nn.Module, model: str, role: str) -> None:
    """Load ``model``'s weights into the run's network ``net`` (``role``: "G" or "F", for messages), after checking
    that it is the same network; ValueError naming the first difference."""
    config, weights = _files(model)
    family = type(net).model_type or DEFAULT_MODEL_TYPE
    theirs_type = config.get("model_type", DEFAULT_MODEL_TYPE)
    # the run's family, or one whose class the run's extends (a converted CUT model is a CycleGenerator with CUT's
    # network: it starts a CUT run when every option below agrees)
    if theirs_type != family and not issubclass(type(net), model_class(theirs_type)):
        raise ValueError(f"{model} is a {theirs_type!r} model; this run trains the {family!r} family")
    options = type(net).options
    for name, ours in net.config.items():
        if name in DESCRIPTIVE or name == "model_type":
            continue
        theirs = config.get(name, options[name].default if name in options.options else None)
        if _normal(theirs) != _normal(ours):
            where = getattr(options.options.get(name), "train", None)
            hint = f" (set model.{where} = {_normal(theirs)!r} to start from it)" if where else ""
            raise ValueError(f"{role} from {model}: its {name} is {theirs!r}, this run's {ours!r}{hint}")
    state = read_checked_weights(weights, net.state_dict(), model)
    net.load_state_dict(state)


def _normal(value):
    return list(value) if isinstance(value, tuple) else value


def init_from(nets: dict[str, nn.Module], found: dict[str, str]) -> list[str]:
    """Load every ``found`` model into its network; the lines that say what was loaded."""
    lines = []
    for role, model in found.items():
        load_into(nets[role], model, role)
        lines.append(f"initialised {role} from {model}")
    return lines
