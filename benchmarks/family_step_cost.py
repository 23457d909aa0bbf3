"""What one training step of each family costs, at the paper's network sizes: time and peak memory, against CycleGAN
in the same run.

    python benchmarks/family_step_cost.py --size 256 --steps 3                       # CPU: cyclegan, cut, fastcut
    python benchmarks/family_step_cost.py --size 256 --steps 20 --device cuda --family cyclegan --family pix2pix

Each family runs in its own process (so that one's peak memory is not another's): its networks are built by the
trainer's family from a config with the recipe's defaults (CycleGAN: two ResNet-9 generators and two 70x70
PatchGANs; CUT and FastCUT: one anti-aliased ResNet-9, its anti-aliased PatchGAN and the projection head; pix2pix: a
U-Net-256 and its conditional PatchGAN), batch 1 of random RGB images, the family's own step with its optimizers.
Reported: the median seconds of a step after ``--warmup`` steps, and the peak memory above what the process held
once the networks were built (CPU: peak resident memory; CUDA: peak allocated). The first family is the baseline of
the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from common import emit, machine

#: family name -> the config overrides of its recipe (the trainer's defaults otherwise)
RECIPES = {
    "cyclegan": [],
    "cut": ['model.family="cut"', 'model.mode="cut"'],
    "fastcut": ['model.family="cut"', 'model.mode="fastcut"'],
    "pix2pix": ['model.family="pix2pix"', "data.paired=true"],
}


def measure(family: str, size: int, steps: int, warmup: int, device_name: str) -> dict:
    """In this process: build the family's networks, run its step, time it and take its peak memory."""
    import torch

    from cyclegan_hub.training import config as configs
    from cyclegan_hub.training.families import StepParts

    from common import median, timed

    device = torch.device(device_name)
    with tempfile.TemporaryDirectory() as tmp:  # the paths are never read: no data is loaded
        overrides = [f'domain_a.path="{tmp}"', f'domain_b.path="{tmp}"', f"data.image_size={size}"]
        config = configs.load(None, [*overrides, f"data.load_size={size}", *RECIPES[family]])
    torch.manual_seed(0)
    nets = {name: net.to(device).train() for name, net in config.family.build(config).items()}
    optimizers = config.family.optimizers(nets, config, device)
    parts = StepParts(
        nets, nets, optimizers, config.family.pools(config), config, contextlib.nullcontext, torch.Tensor.backward
    )
    step = config.family.make_step(parts)
    a, b = (torch.rand(1, 3, size, size, device=device) * 2 - 1 for _ in range(2))
    built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        built = torch.cuda.memory_allocated()
    times = timed(lambda: step(a, b), steps, warmup, device)
    peak = (
        torch.cuda.max_memory_allocated()
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    trained = sum(p.numel() for net in nets.values() for p in net.parameters())
    return {
        "family": family,
        "s_per_step": round(median(times), 3),
        "peak_above_built_gb": round((peak - built) / 2**30, 3),
        "trained_parameters": trained,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--family", action="append", choices=list(RECIPES), help="repeatable (default: cyclegan, cut, fastcut)"
    )
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--output")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure this family in this process
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.size, args.steps, args.warmup, args.device)))
        return
    runs = []
    for family in args.family or ["cyclegan", "cut", "fastcut"]:
        cmd = [sys.executable, str(Path(__file__)), "--one", family, "--size", str(args.size)]
        cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--device", args.device]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines()
            runs.append({"family": family, "error": lines[-1] if lines else f"exit {proc.returncode}"})
            continue
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    base = runs[0]
    for run in runs:
        if "error" not in run and "error" not in base:
            run["time_ratio"] = round(run["s_per_step"] / base["s_per_step"], 3)
            run["memory_ratio"] = round(run["peak_above_built_gb"] / max(base["peak_above_built_gb"], 1e-9), 3)
    summary = " | ".join(
        f"{r['family']}: failed: {r['error']}"
        if "error" in r
        else f"{r['family']}: {r['s_per_step']:.2f} s/step ({r.get('time_ratio', 1):.2f}x), "
        f"{r['peak_above_built_gb']:.2f} GB peak ({r.get('memory_ratio', 1):.2f}x)"
        for r in runs
    )
    result = {"benchmark": "family_step_cost", "size": args.size, "device": args.device, "runs": runs}
    emit(result | {"machine": machine()}, summary, args.output)


if __name__ == "__main__":
    main()
