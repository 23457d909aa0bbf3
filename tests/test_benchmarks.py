"""The prepared device check runs end to end on a CPU (small sizes) and writes its JSON and summary."""

import json
import os
import subprocess

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow


def test_gpu_check_script_runs_on_cpu(tmp_path):
    env = {**os.environ, "CPU_SIZE": "32", "CPU_MNIST_STEPS": "2", "PYTHON": str(ROOT / ".venv" / "bin" / "python")}
    if not (ROOT / ".venv" / "bin" / "python").exists():
        import sys

        env["PYTHON"] = sys.executable
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    train = json.loads((tmp_path / "train_b8.json").read_text())
    assert train["batch"] == 8 and train["flops_per_iter"] > 0 and train["baseline"]["images_per_s"] > 0
    assert train["fast"]["channels_last"] is True and train["speedup"] > 0
    inference = json.loads((tmp_path / "inference.json").read_text())
    assert {(r["size"], r["batch"]) for r in inference["rows"]} == {(28, 1), (28, 16), (64, 1), (64, 16)}
    mnist = json.loads((tmp_path / "mnist.json").read_text())
    assert mnist["step"] == 2 and mnist["wall_s"] > 0 and "translation_accuracy_a2b" in mnist
    summary = (tmp_path / "summary.md").read_text()
    assert "| train 32px batch 1" in summary and "MNIST 6<->9, 2 steps" in summary
