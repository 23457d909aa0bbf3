"""Shared by the benchmark scripts: timing, device, precision and the paper-spec models."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def dtype_of(precision: str):
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class Runner:
    """The autocast that cyclegan_step takes (accelerate's in the trainer), without accelerate's global state, so
    that the baseline and the fast path can run in one process."""

    def __init__(self, device: torch.device, precision: str):
        self.device, self.dtype = device, dtype_of(precision)

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def plain_convolutions(module: torch.nn.Module) -> torch.nn.Module:
    """The baseline's convolutions: every OutputConv2d becomes the nn.Conv2d it extends (same weights), in place."""
    from cyclegan_hub.models.layers import OutputConv2d

    for m in module.modules():
        if isinstance(m, OutputConv2d):
            m.__class__ = torch.nn.Conv2d
    return module


def cpu_model() -> tuple[str, str]:
    """(CPU model, the widest ISA that matters here) from /proc/cpuinfo: AMX, AVX512-BF16, AVX-512 or AVX2. Figures
    on CPUs differ by machine kind (bf16 is native only with AVX512-BF16 or AMX), so every result names it."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), "unknown"
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    isa = next(
        (
            name
            for flag, name in (
                ("amx_bf16", "AMX"),
                ("avx512_bf16", "AVX512-BF16"),
                ("avx512f", "AVX-512"),
                ("avx2", "AVX2"),
            )
            if flag in flags
        ),
        "no AVX2",
    )
    return model or platform.machine(), isa


def machine() -> dict:
    model, isa = cpu_model()
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": model,
        "isa": isa,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    try:
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError:
        pass
    return info


def timed(fn, steps: int, warmup: int, device: torch.device) -> list[float]:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def emit(result: dict, summary: str, output: str | None) -> None:
    print(json.dumps(result, indent=2))
    print(summary)
    if output:
        Path(output).write_text(json.dumps(result, indent=2))
