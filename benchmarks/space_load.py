"""Load on the Space's API: p50/p95 latency and throughput with 1 and 16 concurrent gradio_client clients.

    python benchmarks/space_load.py --requests 64

Starts space/app.py on a free local port (the bundled MNIST pair), sends bounded requests (each a slightly
different digit), stops it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, emit, machine

sys.path.insert(0, str(ROOT))
from tests.space.conftest import start_app, stop_app  # noqa: E402


def distinct_images(image: Path, count: int, folder: Path) -> list[Path]:
    """Variants of one digit with a few pixels changed: every request differs, as different users' uploads do.
    (Identical concurrent requests make Gradio write the same content-hashed output file while it is being
    served, a race in Gradio's file cache, not in the app: a few downloads then come back truncated.)"""
    import numpy as np
    from PIL import Image

    base = np.asarray(Image.open(image).convert("L"))
    paths = []
    for i in range(count):
        pixels = base.copy()
        pixels.flat[np.random.default_rng(i).integers(0, pixels.size, 3)] ^= 1
        paths.append(folder / f"digit-{i}.png")
        Image.fromarray(pixels).save(paths[-1])
    return paths


def run_clients(url: str, clients: int, requests: int, images: list[Path]) -> dict:
    from gradio_client import Client, handle_file

    latencies: list[float] = []
    errors = []
    per_client = max(1, requests // clients)
    lock = threading.Lock()

    def worker(k: int):
        client = Client(url, verbose=False)
        for j in range(per_client):
            start = time.perf_counter()
            try:
                client.predict(handle_file(images[(k * per_client + j) % len(images)]), "6 -> 9", api_name="/translate")
            except Exception as err:  # counted, never fatal to the benchmark
                errors.append(str(err))
                continue
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    wall = time.perf_counter() - start
    ordered = sorted(latencies)

    def pick(q):
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else None

    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0][:300] if errors else None,
        "p50_ms": pick(0.5),
        "p95_ms": pick(0.95),
        "requests_per_s": round(len(latencies) / wall, 2),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=64, help="requests per level of concurrency")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    p.add_argument("--output")
    args = p.parse_args()
    proc, url = start_app()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            images = distinct_images(ROOT / "space" / "examples" / "6-test0.png", args.requests, Path(tmp))
            run_clients(url, 1, 2, images)  # warm up
            rows = [run_clients(url, c, args.requests, images) for c in args.clients]
        finally:
            stop_app(proc)
    result = {"benchmark": "space_load", "rows": rows, "machine": machine()}
    emit(
        result,
        "; ".join(
            f"{r['clients']} client(s): p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, {r['requests_per_s']} req/s"
            for r in rows
        ),
        args.output,
    )


if __name__ == "__main__":
    main()
