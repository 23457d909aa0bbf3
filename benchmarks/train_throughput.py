"""Training throughput of the trainer's step (``cyclegan_hub.training.objective.cyclegan_step``) against a paper-spec eager fp32 baseline, in one process.

    python benchmarks/train_throughput.py --size 256 --batch 1 --steps 5 --device cpu
    python benchmarks/train_throughput.py --size 256 --batch 8 --steps 30 --device cuda --precision bf16 --channels-last --compile

Both runs use the paper's networks (ResNet-9 generators, 70x70 PatchGAN discriminators, instance norm), LSGAN,
a pool of 50, Adam, RGB, the batch given. Prints JSON (images/s, ms per iteration, peak memory, FLOPs per
iteration from torch.utils.flop_counter, achieved FLOP/s) and a one-line summary with the fast/baseline ratio.
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from cyclegan_hub import CycleGenerator, ImagePool, PatchDiscriminator
from cyclegan_hub.training.objective import Networks, Weights, cyclegan_step

from common import Runner, emit, machine, median, timed


def build(device, channels_last: bool, compile_: bool, fused: bool):
    torch.manual_seed(0)
    plain = {"G": CycleGenerator(), "F": CycleGenerator(), "D_A": PatchDiscriminator(), "D_B": PatchDiscriminator()}
    for net in plain.values():
        net.to(device).train()
        if channels_last:
            net.to(memory_format=torch.channels_last)
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    if fused:
        adam["fused"] = True
    opt_g = torch.optim.Adam([p for n in ("G", "F") for p in plain[n].parameters()], **adam)
    opt_d = torch.optim.Adam([p for n in ("D_A", "D_B") for p in plain[n].parameters()], **adam)
    nets = {k: torch.compile(v) for k, v in plain.items()} if compile_ else dict(plain)
    pools = {"A": ImagePool(50), "B": ImagePool(50)}
    return Networks(nets["G"], nets["F"], nets["D_A"], nets["D_B"], plain["D_A"], plain["D_B"]), opt_g, opt_d, pools


PAPER = Weights("lsgan", 10.0, 0.5)


def measure(args, device, precision, channels_last, compile_, fused) -> dict:
    nets, opt_g, opt_d, pools = build(device, channels_last, compile_, fused)
    runner = Runner(device, precision)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    a = (torch.rand(args.batch, 3, args.size, args.size, device=device) * 2 - 1).contiguous(memory_format=fmt)
    b = (torch.rand(args.batch, 3, args.size, args.size, device=device) * 2 - 1).contiguous(memory_format=fmt)

    def one():
        cyclegan_step(nets, opt_g, opt_d, pools, a, b, PAPER, autocast=runner.autocast)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = timed(one, args.steps, args.warmup, device)
    ms = median(times) * 1000
    result = {
        "precision": precision,
        "channels_last": channels_last,
        "compile": compile_,
        "fused_adam": fused,
        "ms_per_iter": round(ms, 2),
        "images_per_s": round(args.batch / (ms / 1000), 2),
    }
    if device.type == "cuda":
        result["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 3)
    return result


def flops_per_iter(args, device) -> float:
    nets, opt_g, opt_d, pools = build(device, False, False, False)
    a = torch.rand(args.batch, 3, args.size, args.size, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        cyclegan_step(nets, opt_g, opt_d, pools, a, a.clone(), PAPER)
    return float(counter.get_total_flops())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--fused-adam", action="store_true", help="fused Adam (CUDA)")
    p.add_argument("--output", help="also write the JSON here")
    args = p.parse_args()
    device = torch.device(args.device)
    flops = flops_per_iter(args, device)
    baseline = measure(args, device, "fp32", False, False, False)
    fast = measure(args, device, args.precision, args.channels_last, args.compile, args.fused_adam)
    for r in (baseline, fast):
        r["achieved_tflops"] = round(flops / (r["ms_per_iter"] / 1000) / 1e12, 3)
    result = {
        "benchmark": "train_throughput",
        "size": args.size,
        "batch": args.batch,
        "steps": args.steps,
        "device": args.device,
        "flops_per_iter": flops,
        "tflop_per_image": round(flops / args.batch / 1e12, 3),
        "baseline": baseline,
        "fast": fast,
        "speedup": round(baseline["ms_per_iter"] / fast["ms_per_iter"], 3),
        "machine": machine(),
    }
    emit(
        result,
        f"train {args.size}px batch {args.batch} on {args.device}: fast {fast['images_per_s']} img/s vs "
        f"baseline {baseline['images_per_s']} img/s = {result['speedup']}x; "
        f"{result['tflop_per_image']} TFLOP/image, fast {fast['achieved_tflops']} TFLOP/s",
        args.output,
    )


if __name__ == "__main__":
    main()
