"""MNIST 6<->9 time to quality: seconds from launching the trainer until the held-out digits are judged right.

    python benchmarks/mnist_time_to_quality.py                       # the bundled config, as `make mnist` runs it
    python benchmarks/mnist_time_to_quality.py --variant eager= --variant bf16="--mixed-precision bf16"
    python benchmarks/mnist_time_to_quality.py --before /tmp/before --variant after=   # two checkouts, one run
    python benchmarks/mnist_time_to_quality.py --config training/configs/mnist-inpaint.toml --keys digit_agreement_AtoB

Each variant is one run of ``training/train.py --config training/configs/mnist-6to9.toml`` (plus the variant's
arguments) with ``train.eval_every``: the trainer appends the held-out translation accuracy of both directions, as
the shipped classifier judges it, to ``eval_log.jsonl`` with the seconds since launch (loading data and compiling
included); ``--config`` and ``--keys`` judge another task by its own figures (pix2pix's paired digits: the share of
outputs read as the true output's digit, beside the input itself). Reported per variant: when both directions first reach ``--target``, from when on they stay there, the
final figures and the wall time. The first variant is the baseline of the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, emit, machine

KEYS = ("translation_accuracy_AtoB", "translation_accuracy_BtoA")
#: The figures reported at the end: accuracies, and a paired task's PSNR and digit agreement (its own and the input's).
FIGURES = ("translation", "cycle", "source", "psnr", "digit")


def reached(log: list[dict], target: float, keys=KEYS) -> tuple[dict | None, dict | None]:
    """(the first evaluation where every figure of ``keys`` is at ``target`` or above, the first one after which
    every evaluation is); None where there is none."""
    good = [all(row.get(k, 0.0) >= target - 1e-6 for k in keys) for row in log]  # 95 of 100 is 0.9499999881 in float32
    first = next((row for row, ok in zip(log, good) if ok), None)
    held = None
    for index in range(len(log) - 1, -1, -1):
        if not good[index]:
            break
        held = log[index]
    return first, held


def run_variant(
    name: str,
    extra: list[str],
    steps: int | None,
    eval_every: int,
    workdir: Path,
    timeout: float | None,
    checkout: Path = ROOT,
    config: str = "training/configs/mnist-6to9.toml",
) -> dict:
    """One run of ``checkout``'s trainer (this repository, or another checkout of it: "before" in a comparison)."""
    out = workdir / name
    cmd = [
        sys.executable,
        str(checkout / "training" / "train.py"),
        "--config",
        str(checkout / config),
        "--output-dir",
        str(out),
        "--checkpoint-every",
        "100000",
        "--set",
        f"train.eval_every={eval_every}",
        *extra,
    ]
    if steps is not None:
        cmd += ["--max-steps", str(steps)]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    run = {"name": name, "args": extra}
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        proc = None
    run["wall_s"] = round(time.perf_counter() - start, 1)
    # A failed variant is recorded and the others still run: one prepared run must report everything.
    if proc is None:
        run["error"] = f"timed out after {timeout:.0f} s"
    elif proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        run["error"] = lines[-1] if lines else f"exit {proc.returncode}"
    else:
        rows = [json.loads(line) for line in (out / "eval_log.jsonl").read_text().splitlines()]
        # checkouts before the AtoB naming logged the directions as _a2b / _b2a
        run["log"] = [{k.replace("_a2b", "_AtoB").replace("_b2a", "_BtoA"): v for k, v in row.items()} for row in rows]
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--variant",
        action="append",
        metavar="NAME=ARGS",
        help="a run with these extra trainer arguments (repeatable; default: one run of the config as is)",
    )
    p.add_argument("--steps", type=int, help="stop after this many steps (default: the config's max_steps)")
    p.add_argument("--eval-every", type=int, default=50, help="steps between held-out evaluations (default 50)")
    p.add_argument("--target", type=float, default=0.95, help="what every figure of --keys must reach")
    p.add_argument("--config", default="training/configs/mnist-6to9.toml", help="the config, relative to a checkout")
    p.add_argument("--keys", default=",".join(KEYS), help="the held-out figures judged (comma-separated)")
    p.add_argument("--timeout", type=float, help="seconds a variant may run before it is recorded as timed out")
    p.add_argument(
        "--before",
        metavar="DIR",
        help="another checkout of this repository (e.g. `git worktree add "
        "/tmp/before <commit>`): its trainer runs first, as the baseline, with the same config and steps",
    )
    p.add_argument("--output")
    args = p.parse_args()
    variants = []
    for text in args.variant or ["default="]:
        name, sep, rest = text.partition("=")
        if not sep or not name:
            p.error(f"--variant takes NAME=ARGS, got {text!r}")
        variants.append((name, shlex.split(rest), ROOT))
    if args.before:
        variants.insert(0, ("before", [], Path(args.before).resolve()))

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra, checkout in variants:
            run = run_variant(name, extra, args.steps, args.eval_every, Path(tmp), args.timeout, checkout, args.config)
            runs.append(run)
            if "error" in run:
                continue
            first, held = reached(run["log"], args.target, args.keys.split(","))
            final = run["log"][-1]
            run.update(
                {
                    "first_reached": {"step": first["step"], "s": first["elapsed_s"]} if first else None,
                    "held_from": {"step": held["step"], "s": held["elapsed_s"]} if held else None,
                    "final": {"step": final["step"], **{k: final[k] for k in final if k.split("_")[0] in FIGURES}},
                }
            )
    base = runs[0]
    for run in runs[1:]:
        if "error" in run or "error" in base:
            continue
        if run["first_reached"] and base["first_reached"]:
            run["speedup_to_quality"] = round(base["first_reached"]["s"] / run["first_reached"]["s"], 3)
        run["speedup_wall"] = round(base["wall_s"] / run["wall_s"], 3)

    def line(run):
        if "error" in run:
            return f"{run['name']}: failed: {run['error']}"
        first, held, final = run["first_reached"], run["held_from"], run["final"]
        reach = f"reached at {first['s']:.0f} s (step {first['step']})" if first else "not reached"
        reach += f", held from {held['s']:.0f} s" if held else (", not held" if first else "")
        figures = ", ".join(f"{k} {v:.3f}" for k, v in final.items() if k != "step")
        return (
            f"{run['name']}: {args.keys} at {args.target:.0%} {reach}; final step {final['step']}: {figures}; "
            f"{run['wall_s']:.0f} s wall"
        )

    result = {
        "benchmark": "mnist_time_to_quality",
        "target": args.target,
        "eval_every": args.eval_every,
        "runs": runs,
        "machine": machine(),
    }
    emit(result, " | ".join(line(run) for run in runs), args.output)


if __name__ == "__main__":
    main()
