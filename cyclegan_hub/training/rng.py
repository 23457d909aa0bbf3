"""The random generators of one process (torch, CUDA, Python, NumPy) as tensors: what a checkpoint stores per
process so that a resumed run draws the numbers the uninterrupted one would have drawn."""

from __future__ import annotations

import random

import numpy as np
import torch


def rng_state() -> dict[str, torch.Tensor]:
    """Every random generator of this process (torch, CUDA, Python, NumPy), as tensors for safetensors."""
    _, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch_rng": torch.get_rng_state(),
        "python_rng": torch.tensor(internal, dtype=torch.int64),
        "python_rng_gauss": torch.tensor([gauss is not None, gauss or 0.0], dtype=torch.float64),  # (set?, value)
        "numpy_rng": torch.from_numpy(keys.astype(np.int64)),
        "numpy_rng_extra": torch.tensor([pos, has_gauss, cached], dtype=torch.float64),
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch_rng"])
    if torch.cuda.is_available() and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"])
    has_next, next_gauss = state["python_rng_gauss"].tolist()
    random.setstate((3, tuple(int(v) for v in state["python_rng"]), next_gauss if has_next else None))
    pos, has_gauss, cached = state["numpy_rng_extra"].tolist()
    np.random.set_state(("MT19937", state["numpy_rng"].numpy().astype(np.uint32), int(pos), int(has_gauss), cached))


def rng_header() -> dict[str, tuple[str, tuple[int, ...]]]:
    """What ``rng_state`` writes, as a safetensors header (the CUDA state is checked separately: optional)."""
    torch_rng = tuple(torch.get_rng_state().shape)
    return {
        "torch_rng": ("U8", torch_rng),
        "python_rng": ("I64", (625,)),
        "python_rng_gauss": ("F64", (2,)),
        "numpy_rng": ("I64", (624,)),
        "numpy_rng_extra": ("F64", (3,)),
    }
