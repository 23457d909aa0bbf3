"""safetensors files, read and written safely: the tensors a file declares are known from its header before any
tensor is read, and the files are written with the permissions a plain ``open()`` gives.

- ``read_safetensors_header`` reads a file's header only (names, dtypes, shapes), refusing one that is truncated,
  too large, not JSON, or inconsistent with the file's size.
- ``check_weights_header`` compares such a header with the tensors a model (built on the ``meta`` device) expects.
- ``non_finite`` names the first tensor holding NaN or infinity.
- ``save_tensors`` writes tensors as a safetensors file readable like any file the user writes.

The Hub models' strict loader, the training checkpoints and the conversion of foreign checkpoints all use these.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import safetensors.torch
import torch

from .files import give_default_mode

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
