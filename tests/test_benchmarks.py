"""The prepared device check runs end to end on a CPU (small sizes) and writes its JSON and summary; the
time-to-quality reading of an evaluation log."""

import json
import os
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_gpu_check_script_runs_on_cpu(tmp_path):
    env = {**os.environ, "CPU_SIZE": "32", "CPU_MNIST_STEPS": "2", "PYTHON": str(ROOT / ".venv" / "bin" / "python")}
    if not (ROOT / ".venv" / "bin" / "python").exists():
        import sys

        env["PYTHON"] = sys.executable
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    train = json.loads((tmp_path / "train_b8.json").read_text())
    assert train["batch"] == 8 and train["flops_per_iter"] > 0 and train["baseline"]["images_per_s"] > 0
    assert train["fast"]["channels_last"] is True and train["speedup"] > 0
    inference = json.loads((tmp_path / "inference.json").read_text())
    assert {(r["size"], r["batch"]) for r in inference["rows"]} == {(28, 1), (28, 16), (64, 1), (64, 16)}
    (run,) = json.loads((tmp_path / "mnist.json").read_text())["runs"]
    assert run["final"]["step"] == 2 and run["wall_s"] > 0 and "translation_accuracy_AtoB" in run["final"]
    assert [row["step"] for row in run["log"]] == [2] and run["log"][0]["elapsed_s"] > 0
    summary = (tmp_path / "summary.md").read_text()
    assert "| train 32px batch 1" in summary and "MNIST 6<->9 eager-fp32, 2 steps" in summary
    turbo = json.loads((tmp_path / "turbo.json").read_text())
    (row,) = turbo["rows"]
    assert row["checkpointing_on"]["peak_gib"] > 0 and row["checkpointing_off"]["step_s"] > 0
    assert turbo["translate"]["seconds"]["one-step"] > 0 and "one-step (tiny) training step 32px" in summary


def test_time_to_quality_reads_first_and_held_crossings():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from mnist_time_to_quality import reached

    def row(step, a, b):
        return {"step": step, "elapsed_s": step / 10, "translation_accuracy_AtoB": a, "translation_accuracy_BtoA": b}

    log = [row(50, 0.5, 0.9), row(100, 0.96, 0.95), row(150, 0.94, 1.0), row(200, 0.97, 0.99), row(250, 0.96, 0.98)]
    first, held = reached(log, 0.95)
    assert (first["step"], held["step"]) == (100, 200)
    assert reached(log[:3], 0.95)[1] is None  # the last evaluation is below the target: never held
    assert reached([row(50, 0.99, 0.5)], 0.95) == (None, None)
    assert reached([row(50, 0.949999988079071, 1.0)], 0.95)[0]["step"] == 50  # 95/100 as the trainer logs it (float32)
