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
import os
from pathlib import Path
from typing import ClassVar

import safetensors.torch
import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
from torch import nn

from .. import families, translation
from ..io.files import read_json
from ..io.tensors import check_weights_header, non_finite, read_safetensors_header, save_tensors

# The options machinery lives in ``models.options`` and the safetensors helpers in ``io.tensors``; new code imports
# them from there. The option constructors (choice, integer, number, text, value_range) are also kept importable
# from here, for the modules that import them from here (``models.turbo``, with HubModule).
from .options import Option, Options, choice, integer, number, text, value_range  # noqa: F401

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
#: Files that are pickled checkpoints: never loaded here; ``cyclegan-hub convert`` reads them behind weights_only.
PICKLE_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt", ".pkl", ".pth.tar")


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


def read_checked_weights(
    weights_file: str | os.PathLike, expected: dict, model_id: str, *, strict: bool = True, device: str = "cpu"
) -> dict[str, torch.Tensor]:
    """The tensors of a model's safetensors file, once its header (read without loading a tensor) matches the
    ``expected`` state dict (names, shapes, float dtypes) and no value is NaN or infinite; ValueError otherwise."""
    problems = check_weights_header(expected, read_safetensors_header(weights_file))
    if problems and strict:
        raise ValueError(f"config.json of {model_id} does not match its {WEIGHTS_NAME}: " + "; ".join(problems))
    try:
        state = safetensors.torch.load_file(weights_file, device=device)
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"{WEIGHTS_NAME} of {model_id} is not a readable safetensors file: {err}") from None
    bad = non_finite(state)
    if bad is not None:
        raise ValueError(f"{WEIGHTS_NAME} of {model_id} holds NaN or infinite values (in {bad}); refused")
    return state


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
        try:
            with torch.device("meta"):  # shapes only: nothing is allocated before the weights are known to fit
                skeleton = cls(**model_kwargs, **runtime)
        except TypeError as err:  # a config key this version does not know
            raise ValueError(f"config.json of {model_id} does not describe a {cls.__name__}: {err}") from None
        expected = skeleton.state_dict()
        del skeleton
        state = read_checked_weights(weights_file, expected, model_id, strict=strict, device=str(map_location))
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
