"""Load on the Space's API: latency and throughput with 1 and 16 concurrent gradio_client clients, and normal
visitors served while hostile ones attack.

    python benchmarks/space_load.py --requests 64                  # the throughput table
    python benchmarks/space_load.py --hostile 60 --clients 4       # 4 visitors + 4 attackers for 60 s
    python benchmarks/space_load.py --attacks                      # one visitor under each attack on fairness

Starts space/app.py on a free local port (the bundled MNIST pair), sends bounded requests (each a slightly
different digit), stops it. ``--hostile``: the idle latency first (one visitor alone), then visitors and attackers
together for a fixed time; attackers cycle through the security probe's files (an .ico over a 13000x13000 PNG, a
JPEG of 3000 scans, a PNG of 100k chunks, a 169 MP PNG, the drawing pad sent that PNG, a 400 MB body announced).
Reports the visitors' completed requests, p50/p99 against idle, errors, the attackers' refusals and any 5xx, and
the server's RSS at start, peak and end (sampled every 50 ms). ``--attacks``: the app behind a simulated proxy (one
trusted X-Forwarded-For hop), a visitor alone and then under each attack of tests/space/attackers.py (uploads with
a rotating header, job floods re-using one upload of a digit and of a 24 MP PNG, 1000 slow connections, upload
floods), with the visitor's p99 against alone, its refusals, the server's RSS and temporary folder, and the
tracebacks in the log.
"""

from __future__ import annotations

import argparse
import os
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
        "p99_ms": pick(0.99),
        "requests_per_s": round(len(latencies) / wall, 2),
    }


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def hostile_run(proc, url: str, seconds: float, clients: int, images: list[Path], folder: Path) -> dict:
    """Visitors and attackers together for ``seconds``; latency of the visitors against one visitor alone."""
    import json as json_module

    from gradio_client import Client, handle_file

    from tests.space.raw import post as _post
    from tests.space.raw import queue as _queue
    from tests.space.raw import upload as _upload
    from tests.space.test_limits import _sketch_event
    from tests.support.hostile_images import huge_png, ico_over_png, many_chunk_png, many_scan_jpeg

    files = {
        "ico.ico": ico_over_png(huge_png(13000)),
        "scans.jpg": many_scan_jpeg(3000),
        "chunks.png": many_chunk_png(100_000),
        "huge.png": huge_png(13000),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    idle = run_clients(url, 1, 24, images)
    calm = run_clients(url, clients, 16 * clients, images)  # the same visitors, no attackers
    start_rss = rss_mb(proc.pid)
    stop = time.perf_counter() + seconds
    latencies, errors, refused, server_errors = [], [], [], []
    peak = [start_rss]
    lock = threading.Lock()

    def sample():
        while time.perf_counter() < stop + 2:
            peak.append(rss_mb(proc.pid))
            time.sleep(0.05)

    def visitor(k: int):
        client, j = Client(url, verbose=False), 0
        while time.perf_counter() < stop:
            begin = time.perf_counter()
            try:
                client.predict(handle_file(images[(k * 97 + j) % len(images)]), "6 -> 9", api_name="/translate")
                with lock:
                    latencies.append(time.perf_counter() - begin)
            except Exception as err:  # counted, never fatal to the benchmark
                errors.append(str(err)[:200])
            j += 1

    def attacker(k: int):
        client, j = Client(url, verbose=False), 0
        fn = _sketch_event(url)
        kinds = [*files, "drawing", "body"]
        while time.perf_counter() < stop:
            kind = kinds[(k + j) % len(kinds)]
            j += 1
            try:
                if kind == "body":
                    status, _ = _post(url, "/gradio_api/queue/join", b"{}", length=400 * 2**20)
                elif kind == "drawing":
                    status, text = _upload(url, {"huge.png": files["huge.png"]})
                    path = json_module.loads(text)[0] if status == 200 else None
                    if path:
                        item = {"path": path, "meta": {"_type": "gradio.FileData"}}
                        result = _queue(url, fn, [{"background": None, "layers": [item], "composite": item}])
                        status = 422 if not result["success"] else 200
                else:
                    client.predict(handle_file(folder / kind), "6 -> 9", api_name="/translate")
                    status = 200
            except Exception:  # the refusal, as gradio_client raises it
                status = 422
            with lock:
                (server_errors if status >= 500 else refused).append(kind if status >= 400 else f"{kind}: accepted")

    threads = [threading.Thread(target=sample)]
    threads += [threading.Thread(target=visitor, args=(k,)) for k in range(clients)]
    threads += [threading.Thread(target=attacker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 600)
    time.sleep(2)
    end_rss = rss_mb(proc.pid)
    ordered = sorted(latencies)

    def pick(q):
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else None

    return {
        "seconds": seconds,
        "visitors": clients,
        "attackers": clients,
        "idle_p50_ms": idle["p50_ms"],
        "idle_p99_ms": idle["p99_ms"],
        "calm_p99_ms": calm["p99_ms"],
        "completed": len(latencies),
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "p99_over_idle": round(pick(0.99) / idle["p99_ms"], 2) if ordered and idle["p99_ms"] else None,
        "p99_over_calm": round(pick(0.99) / calm["p99_ms"], 2) if ordered and calm["p99_ms"] else None,
        "visitor_errors": len(errors),
        "first_error": errors[0] if errors else None,
        "hostile_refused": sum(1 for r in refused if "accepted" not in r),
        "hostile_accepted": [r for r in refused if "accepted" in r][:5],
        "server_5xx": len(server_errors),
        "rss_start_mb": round(start_rss),
        "rss_peak_mb": round(max(peak)),
        "rss_end_mb": round(end_rss),
    }


def attacks_run() -> list[dict]:
    """A visitor alone and under each fairness attack (the app as tests/space/test_fairness.py starts it, with the
    default limits)."""
    from tests.space import attackers as a
    from tests.space.raw import event_index

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        temp = Path(tmp) / "gradio"
        proc, url = start_app({"CYCLEGAN_TRUSTED_HOPS": "1", "GRADIO_TEMP_DIR": str(temp)})
        log: list[str] = []
        reader = threading.Thread(target=lambda: log.extend(iter(proc.stdout.readline, "")), daemon=True)
        reader.start()
        try:
            fn = event_index(url, "translate")
            a.visit(url, fn, "192.0.2.1")
            attacks = {
                "rotating-header uploads (10 MB each)": a.rotating_uploads(url, "198.51.100.1"),
                "20 loops re-using one digit upload": a.job_flood(url, fn, a.digit(99), "198.51.100.2", loops=20),
                "5 loops re-using one 24 MP PNG": a.job_flood(url, fn, a.big_photo(), "198.51.100.3", loops=5),
                "1000 slow connections": a.slow_connections(url, 1000, settle=12),
                "upload floods (1 MB noise and PNGs)": a.together(
                    a.upload_flood(url, "198.51.100.4", images=False, limit=200),
                    a.upload_flood(url, "198.51.100.5", images=True, limit=200),
                ),
            }
            for k, (name, attack) in enumerate(attacks.items()):
                figures = a.measure(proc, url, fn, temp, attack, f"192.0.2.{10 + k}", count=20)
                alone, attacked = a.p99(figures["alone_s"]), a.p99(figures["attacked_s"])
                report = figures["attack"]
                statuses = report.get("statuses", [])
                rows.append(
                    {
                        "attack": name,
                        "alone_p99_ms": round(alone * 1000, 1),
                        "attacked_p99_ms": round(attacked * 1000, 1),
                        "p99_over_alone": round(attacked / alone, 2),
                        "visitor_refused": len(figures["visitor_refused"]),
                        "rss_idle_mb": round(figures["rss_idle_mb"]),
                        "rss_peak_mb": round(figures["rss_peak_mb"]),
                        "temp_peak_mb": round(figures["temp_peak_bytes"] / 2**20, 1),
                        "attacker": {
                            key: value
                            for key, value in report.items()
                            if key.endswith(("_refused", "_served", "opened", "still_open"))
                        }
                        | (
                            {"uploads_before_429": statuses.index(429) if 429 in statuses else None} if statuses else {}
                        ),
                    }
                )
        finally:
            stop_app(proc)
            reader.join(10)
        for row in rows:
            row["tracebacks_in_log"] = sum("Traceback" in line for line in log)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=64, help="requests per level of concurrency")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    p.add_argument("--hostile", type=float, metavar="SECONDS", help="visitors and attackers together this long")
    p.add_argument("--attacks", action="store_true", help="one visitor alone, then under each attack on fairness")
    p.add_argument("--output")
    p.add_argument("--no-pin", action="store_true", help="do not give the server and the clients a core each")
    args = p.parse_args()
    if args.attacks:
        rows = attacks_run()
        summary = "; ".join(
            f"{r['attack']}: p99 {r['attacked_p99_ms']} ms = {r['p99_over_alone']}x alone, "
            f"{r['visitor_refused']} refused, RSS peak {r['rss_peak_mb']} MB, temp {r['temp_peak_mb']} MB"
            for r in rows
        )
        emit({"benchmark": "space_attacks", "rows": rows, "machine": machine()}, summary, args.output)
        return
    pinned = not args.no_pin and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2
    if pinned:  # the server on one core, the clients (this process) on the others: their CPU is not the server's
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[0]})
    proc, url = start_app()
    if pinned:
        os.sched_setaffinity(0, set(cores[1:]))
    if args.hostile:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                images = distinct_images(ROOT / "space" / "examples" / "6-test0.png", 64, Path(tmp))
                run_clients(url, 1, 2, images)  # warm up
                row = hostile_run(proc, url, args.hostile, args.clients[0], images, Path(tmp))
            finally:
                stop_app(proc)
        result = {
            "benchmark": "space_load_hostile",
            "row": row,
            "server_pinned_to_one_core": pinned,
            "machine": machine(),
        }
        emit(
            result,
            (
                f"{row['completed']} visitor requests in {row['seconds']:.0f} s under attack: p99 "
                f"{row['p99_ms']} ms = {row['p99_over_idle']}x idle, {row['p99_over_calm']}x the same visitors without "
                f"attackers; {row['hostile_refused']} hostile refused, "
                f"{row['server_5xx']} 5xx; RSS {row['rss_start_mb']} -> peak {row['rss_peak_mb']} -> "
                f"{row['rss_end_mb']} MB"
            ),
            args.output,
        )
        return
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
