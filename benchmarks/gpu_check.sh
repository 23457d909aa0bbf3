#!/usr/bin/env bash
# Every speed measurement in one prepared run: training baseline vs fast path (batch 1 and 8), inference at two
# sizes, MNIST 6<->9 time to quality, and the one-step family (CycleGAN-Turbo at full SD-Turbo size, random weights:
# peak memory and step time at 256 and 512 in bf16 with gradient checkpointing off and on, translate latency). On a GPU it uses 256x256, bf16, channels_last and torch.compile and
# fits in about 8 minutes; on a CPU machine it runs the same checks at small sizes (so CI can test the script).
#   benchmarks/gpu_check.sh OUTDIR        -> OUTDIR/*.json and OUTDIR/summary.md
set -euo pipefail
OUT=${1:?usage: benchmarks/gpu_check.sh OUTDIR}
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
if $PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  DEV=cuda SIZE=256 STEPS=20 PREC=bf16 FAST="--channels-last --compile --fused-adam"
  ISIZES="256 1024" IBATCH="1 64" MNIST_STEPS=600
  MNIST_VARIANTS=(--variant "eager-fp32=" --variant "bf16-channels-last=--mixed-precision bf16 --set train.channels_last=true"
                  --variant "bf16-cudagraphs=--mixed-precision bf16 --set train.compile=reduce-overhead")
  TURBO="--sizes 256 512 --precision bf16 --steps 3 --translate-size 512 --repeats 5"
else
  DEV=cpu SIZE=${CPU_SIZE:-64} STEPS=2 PREC=fp32 FAST="--channels-last"
  ISIZES="28 64" IBATCH="1 16" MNIST_STEPS=${CPU_MNIST_STEPS:-10}
  MNIST_VARIANTS=(--variant "eager-fp32=")
  TURBO="--scale tiny --sizes 32 --translate-size 64 --rank 4 --steps 2 --repeats 1"
fi
echo "device $DEV: training ${SIZE}px, inference ${ISIZES}px, MNIST ${MNIST_STEPS} steps"
$PY benchmarks/train_throughput.py --device $DEV --size $SIZE --batch 1 --steps $STEPS --precision $PREC $FAST --output "$OUT/train_b1.json" | tail -1
$PY benchmarks/train_throughput.py --device $DEV --size $SIZE --batch 8 --steps $STEPS --precision $PREC $FAST --output "$OUT/train_b8.json" | tail -1
$PY benchmarks/inference_latency.py --device $DEV --sizes $ISIZES --batches $IBATCH --precision $PREC --channels-last --output "$OUT/inference.json" | tail -1
$PY benchmarks/mnist_time_to_quality.py --steps $MNIST_STEPS "${MNIST_VARIANTS[@]}" --timeout 150 --output "$OUT/mnist.json" | tail -1
$PY benchmarks/turbo_memory.py $TURBO --output "$OUT/turbo.json" | tail -1
$PY - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
mnist = json.loads((out / "mnist.json").read_text())
rows = ["| measurement | baseline | fast | ratio |", "|---|---|---|---|"]
for name in ("train_b1", "train_b8"):
    r = json.loads((out / f"{name}.json").read_text())
    rows.append(f"| train {r['size']}px batch {r['batch']} ({r['device']}, {r['fast']['precision']}) img/s | "
                f"{r['baseline']['images_per_s']} | {r['fast']['images_per_s']} ({r['fast']['achieved_tflops']} TFLOP/s) | {r['speedup']}x |")
inf = json.loads((out / "inference.json").read_text())
for row in inf["rows"]:
    rows.append(f"| inference {row['size']}px batch {row['batch']} img/s | {row['baseline']['images_per_s']} | "
                f"{row['fast']['images_per_s']} | {row['speedup']}x |")
for run in mnist["runs"]:
    if "error" in run:
        rows.append(f"| MNIST 6<->9 {run['name']} | | failed: {run['error']} | |")
        continue
    first = run["first_reached"]
    reached = f"95%/95% at {first['s']} s (step {first['step']})" if first else "95%/95% not reached"
    final = run["final"]
    rows.append(f"| MNIST 6<->9 {run['name']}, {final['step']} steps: time to quality, final accuracies | | {reached}; "
                + ", ".join(f"{k} {v:.1%}" for k, v in final.items() if "accuracy" in k) + f"; {run['wall_s']} s wall | "
                + (f"{run['speedup_to_quality']}x |" if "speedup_to_quality" in run else " |"))
turbo = json.loads((out / "turbo.json").read_text())
for row in turbo["rows"]:
    off, on = row["checkpointing_off"], row["checkpointing_on"]
    if "peak_gib" not in off or "peak_gib" not in on:
        rows.append(f"| one-step ({turbo['scale']}) training step {row['size']}px | | failed: {off.get('error') or on.get('error')} | |")
        continue
    rows.append(f"| one-step ({turbo['scale']}) training step {row['size']}px {turbo['precision']}: peak GiB, checkpointing off -> on | "
                f"{off['peak_gib']} | {on['peak_gib']} | {row['peak_ratio_on_off']}x |")
    rows.append(f"| one-step ({turbo['scale']}) training step {row['size']}px {turbo['precision']}: s/step, checkpointing off -> on | "
                f"{off['step_s']} | {on['step_s']} | {row['time_ratio_on_off']}x |")
t = turbo["translate"]
rows.append(f"| translate {t['size']}px, ResNet-9 CycleGAN -> one-step ({turbo['scale']}): s/image | "
            f"{t['seconds']['cyclegan-resnet9']} | {t['seconds']['one-step']} | {t['ratio']}x |")
machine = json.loads((out / "train_b1.json").read_text())["machine"]
text = f"machine: {machine}\n\n" + "\n".join(rows) + "\n"
(out / "summary.md").write_text(text)
print(text)
PYEOF
