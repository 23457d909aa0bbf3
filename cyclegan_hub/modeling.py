"""What every cyclegan-hub network shares: strict, safetensors-only loading through PyTorchModelHubMixin.

The mixin loads with ``strict=False`` by default and falls back to pickled ``pytorch_model.bin`` files. Both are
wrong for us: a config.json that does not describe the weights must fail loudly (the classic "error loading
state_dict" of CycleGAN ports), and nothing pickled is ever read from a download.
"""

from __future__ import annotations

import os
from pathlib import Path

import safetensors.torch
import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from torch import nn

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def compare_state_dicts(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> list[str]:
    """Differences between the model built from config.json and the weights file, as short phrases."""
    problems = []
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing:
        problems.append(f"{len(missing)} missing tensor(s) (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s) (e.g. {', '.join(unexpected[:3])})")
    for key in sorted(set(expected) & set(found)):
        if expected[key].shape != found[key].shape:
            problems.append(
                f"{key} has shape {tuple(found[key].shape)} in the weights but {tuple(expected[key].shape)} in the model"
            )
            break
    return problems


class HubModule(nn.Module, PyTorchModelHubMixin):
    """Base class: a torch module whose config is its constructor and whose weights are one safetensors file."""

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
            for name in (CONFIG_NAME, WEIGHTS_NAME):
                if not os.path.isfile(os.path.join(model_id, name)):
                    raise FileNotFoundError(f"{model_id} is not a {cls.__name__} folder: it has no {name}")
            weights_file = os.path.join(model_id, WEIGHTS_NAME)
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
            model = cls(**model_kwargs)
        except TypeError as err:  # a config key this version does not know
            raise ValueError(f"config.json of {model_id} does not describe a {cls.__name__}: {err}") from None
        try:
            state = safetensors.torch.load_file(weights_file, device=str(map_location))
        except Exception as err:  # safetensors raises its own error types for corrupt headers
            raise ValueError(f"{weights_file} is not a readable safetensors file: {err}") from None
        if strict:
            problems = compare_state_dicts(model.state_dict(), state)
            if problems:
                raise ValueError(
                    f"config.json of {model_id} does not match its {WEIGHTS_NAME}: " + "; ".join(problems)
                )
        model.load_state_dict(state, strict=strict)
        model.to(map_location)
        model.eval()
        return model

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
