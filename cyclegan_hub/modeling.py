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

import json
import math
import os
import struct
from pathlib import Path

import safetensors.torch
import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from torch import nn

from .files import give_default_mode, read_json

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
#: A safetensors header is JSON describing the tensors; ours are a few KB. Larger headers are refused unread.
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
            dtype, shape, (begin, stop) = entry["dtype"], tuple(int(d) for d in entry["shape"]), entry["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"{path.name} is not a readable safetensors file (bad entry for {name!r})") from None
        if any(d < 0 for d in shape) or not (0 <= begin <= stop):
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
    value = config.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        raise ValueError(f"{key} must be a text of 1 to {max_length} characters, got {value!r}")


class HubModule(nn.Module, PyTorchModelHubMixin):
    """Base class: a torch module whose config is its constructor and whose weights are one safetensors file.

    Subclasses implement ``check_config(config)``, raising ValueError for a field out of its range."""

    @classmethod
    def check_config(cls, config: dict) -> None:
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """The mixin's ``from_pretrained``, after config.json has been read safely: the mixin itself would
        ``json.load`` whatever the path holds (a link to /dev/zero is read until memory runs out)."""
        model_id = str(pretrained_model_name_or_path)
        if os.path.isdir(model_id):
            for name in (CONFIG_NAME, WEIGHTS_NAME):
                if not os.path.lexists(os.path.join(model_id, name)):
                    raise FileNotFoundError(f"{model_id} is not a {cls.__name__} folder: it has no {name}")
            read_json(os.path.join(model_id, CONFIG_NAME), what=f"config.json of {model_id}")
        else:
            config_file = hf_hub_download(
                model_id,
                CONFIG_NAME,
                revision=kwargs.get("revision"),
                cache_dir=kwargs.get("cache_dir"),
                force_download=kwargs.get("force_download", False),
                token=kwargs.get("token"),
                local_files_only=kwargs.get("local_files_only", False),
            )
            read_json(config_file, what=f"config.json of {model_id}")
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
        try:
            cls.check_config(model_kwargs)
        except ValueError as err:
            raise ValueError(f"config.json of {model_id}: {err}") from None
        header = read_safetensors_header(weights_file)
        try:
            with torch.device("meta"):  # shapes only: nothing is allocated before the weights are known to fit
                skeleton = cls(**model_kwargs)
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
        model = cls(**model_kwargs)
        model.load_state_dict(state, strict=strict)
        model.to(map_location)
        model.eval()
        return model

    def _save_pretrained(self, save_directory: Path) -> None:
        """The weights as one safetensors file, readable like any file the user writes."""
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_tensors(state, Path(save_directory) / WEIGHTS_NAME)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
