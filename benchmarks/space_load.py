"""Load on the Space's API: p50/p95 latency and throughput with 1 and 16 concurrent gradio_client clients.

    python benchmarks/space_load.py --requests 64

Starts space/app.py on a free local port (the bundled MNIST pair), sends bounded requests, stops it.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from common import ROOT, emit, machine

sys.path.insert(0, str(ROOT))
from tests.space.conftest import start_app, stop_app  # noqa: E402


def run_clients(url: str, clients: int, requests: int, image: Path) -> dict:
    from gradio_client import Client, handle_file

    latencies: list[float] = []
    errors = []
    per_client = max(1, requests // clients)
    lock = threading.Lock()

    def worker():
        client = Client(url, verbose=False)
        for _ in range(per_client):
            start = time.perf_counter()
            try:
                client.predict(handle_file(image), "6 -> 9", api_name="/translate")
            except Exception as err:  # counted, never fatal to the benchmark
                errors.append(str(err))
                continue
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else None
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "p50_ms": pick(0.5),
            "p95_ms": pick(0.95), "requests_per_s": round(len(latencies) / wall, 2)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=64, help="requests per level of concurrency")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    p.add_argument("--output")
    args = p.parse_args()
    proc, url = start_app()
    try:
        image = ROOT / "space" / "examples" / "6-test0.png"
        run_clients(url, 1, 2, image)  # warm up
        rows = [run_clients(url, c, args.requests, image) for c in args.clients]
    finally:
        stop_app(proc)
    result = {"benchmark": "space_load", "rows": rows, "machine": machine()}
    emit(result, "; ".join(f"{r['clients']} client(s): p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, {r['requests_per_s']} req/s"
                           for r in rows), args.output)


if __name__ == "__main__":
    main()
