"""Exponential moving averages of a network's weights, with a warm-up (what ``export_ema`` publishes)."""

from __future__ import annotations

import torch
from torch import nn


def ema_update(decay: float):
    """``AveragedModel``'s averaging function for an exponential moving average with a warm-up: the decay starts
    small and grows as (1 + n) / (10 + n) up to ``decay``, so early averages follow the weights closely (as
    diffusers' EMAModel does) instead of dragging the random initialisation along."""

    def average(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        rate = torch.clamp((1 + num_averaged) / (10 + num_averaged), max=decay).to(averaged.dtype)
        return averaged + (1 - rate) * (current - averaged)

    return average


def make_ema(net: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An EMA copy of ``net`` (torch's own averaging: a plain module, so its state is a safetensors-ready dict)."""
    return torch.optim.swa_utils.AveragedModel(net, avg_fn=ema_update(decay))
