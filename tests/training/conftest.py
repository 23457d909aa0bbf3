import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "training" / "train.py"
MNIST_CONFIG = ROOT / "training" / "configs" / "mnist-6to9.toml"

#: A tiny version of the MNIST config: the real data, 4-channel networks, small batches.
TINY = [
    "--config",
    str(MNIST_CONFIG),
    *"--set model.base_channels=4 --set model.n_blocks=1 --set model.d_base_channels=4".split(),
    *"--set train.batch_size=4 --set train.log_every=1 --set data.eval_images=16".split(),
]


def run_train(*args, processes: int = 1, timeout: int = 300, check: bool = True) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    if processes == 1:
        cmd = [sys.executable, str(TRAIN), *args]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(processes),
            "--master_port",
            str(_free_port()),
            str(TRAIN),
            *args,
        ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    if check and result.returncode != 0:
        raise AssertionError(f"train.py failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
