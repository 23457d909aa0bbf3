"""The attackers of a Space, as bounded loops on loopback, and the measure of a normal visitor under each: used by
tests/space/test_fairness.py (which asserts) and benchmarks/space_load.py --attacks (which prints the figures).

Every client speaks through a simulated proxy: ``address(who, spoof)`` is the X-Forwarded-For header a proxy
delivers when the client itself wrote ``spoof``. An attack is a function ``attack(stop, report) -> threads``; its
threads run until ``stop`` is set and count what happened in ``report`` (a dict). ``measure`` runs the attack in a
process of its own, as another machine would: its threads do not share the visitor's interpreter."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
from PIL import Image

from tests.space.raw import queue, rss_mb, upload, uploaded
from tests.support.hostile_images import huge_png

EXAMPLES = Path(__file__).resolve().parents[2] / "space" / "examples"


def address(who: str, spoof: str | None = None) -> dict:
    """Headers as the Space's proxy delivers them: whatever the client wrote, then the address the proxy saw."""
    return {"X-Forwarded-For": f"{spoof}, {who}" if spoof else who}


def rotating(i: int) -> str:
    return f"10.{i % 250}.{(i // 250) % 250}.1"


def digit(i: int) -> bytes:
    """The shipped 6 with a few pixels changed: every visit is a new upload, as a page's is."""
    pixels = np.asarray(Image.open(EXAMPLES / "6-test0.png").convert("L")).copy()
    pixels.flat[np.random.default_rng(i).integers(0, pixels.size, 3)] ^= 1
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def big_photo() -> bytes:
    """A PNG of 24 MP (the Space's limit) in 32 KB: cheap to send, the most a request may make the server decode."""
    return huge_png(4898)


def visit(url: str, fn: int, who: str, i: int = 0) -> tuple[float, dict]:
    """One visit: upload a digit, translate it; (seconds, the result)."""
    start = time.perf_counter()
    file = uploaded(url, f"six-{i}.png", digit(i), address(who))
    result = queue(url, fn, [file, "6 -> 9"], address(who))
    return time.perf_counter() - start, result


def folder_bytes(folder: Path) -> int:
    total = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def visits(url: str, fn: int, who: str, count: int, start: int = 0, pause: float = 0.5) -> list:
    """``count`` visits, ``pause`` seconds apart (a person's pace, inside the Space's event rate)."""
    done = []
    for i in range(count):
        done.append(visit(url, fn, who, start + i))
        time.sleep(pause)
    return done


def measure(proc, url: str, fn: int, temp: Path, attack, who: str, count: int = 10, pause: float = 0.5) -> dict:
    """The visitor ``who`` alone for ``count`` visits, then ``count`` visits while ``attack`` runs (in a forked
    process); the server's RSS and its temporary folder sampled every 0.2 s during the attack; the attack's
    report under "attack"."""
    import multiprocessing

    alone = visits(url, fn, who, count, pause=pause)
    context = multiprocessing.get_context("fork")
    stop, (receiver, sender) = context.Event(), context.Pipe(duplex=False)
    attacker = context.Process(target=_attack, args=(attack, stop, sender), daemon=True)
    attacker.start()
    time.sleep(1.5)  # the attack in full swing before the visitor comes
    idle_rss, samples, sampling = rss_mb(proc.pid), [], threading.Event()

    def sample():
        while not sampling.is_set():
            samples.append((rss_mb(proc.pid), folder_bytes(temp)))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        attacked = visits(url, fn, who, count, start=count, pause=pause)
    finally:
        stop.set()
        report = receiver.recv() if receiver.poll(120) else {"error": "the attack reported nothing"}
        sampling.set()
        sampler.join(10)
        attacker.join(10)
    return {
        "alone_s": [s for s, _ in alone],
        "attacked_s": [s for s, _ in attacked],
        "visitor_refused": [r for _, r in alone + attacked if not r["success"]],
        "rss_idle_mb": idle_rss,
        "rss_peak_mb": max(r for r, _ in samples),
        "temp_peak_bytes": max(t for _, t in samples),
        "attack": report,
    }


def _attack(attack, stop, sender) -> None:
    report: dict = {}
    threads = attack(stop, report)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    sender.send(report)


def p99(seconds: list[float]) -> float:
    return float(np.percentile(seconds, 99))


# ---- the attacks ---------------------------------------------------------------------------------------------


def job_flood(url: str, fn: int, data: bytes, who: str, loops: int, name: str = "flood"):
    """``loops`` loops re-using one upload of ``data`` for every job, each job with a new first X-Forwarded-For
    hop; counts ``{name}_refused`` and ``{name}_served``, and the refusals' messages."""

    def attack(stop, report):
        payload = uploaded(url, "flood.png", data, address(who))
        report.update({f"{name}_refused": 0, f"{name}_served": 0, f"{name}_messages": []})
        lock = threading.Lock()

        def loop(k):
            j = 0
            while not stop.is_set():
                result = queue(url, fn, [payload, "6 -> 9"], address(who, rotating(k * 1000 + j)))
                j += 1
                with lock:
                    report[f"{name}_served" if result["success"] else f"{name}_refused"] += 1
                    if not result["success"] and len(report[f"{name}_messages"]) < 5:
                        report[f"{name}_messages"].append(str(result.get("output"))[:300])

        return [threading.Thread(target=loop, args=(k,)) for k in range(loops)]

    return attack


def rotating_uploads(url: str, who: str, size: int = 10 * 2**20):
    """Uploads of ``size`` random bytes, a new first hop each time (the quota dodge the first-hop key allowed);
    ``statuses``: the answers in order."""

    def attack(stop, report):
        report["statuses"] = []

        def loop():
            j = 0
            while not stop.is_set():
                status, _ = upload(url, {f"r{j}.png": os.urandom(size)}, address(who, rotating(j)))
                j += 1
                report["statuses"].append(status)

        return [threading.Thread(target=loop)]

    return attack


def upload_flood(url: str, who: str, images: bool, limit: int = 40):
    """Up to ``limit`` distinct 1 MB uploads: random bytes named .png, or valid PNGs of noise."""

    def attack(stop, report):
        def loop():
            rng = np.random.default_rng(1)
            for j in range(limit):
                if stop.is_set():
                    return
                if images:
                    buffer = io.BytesIO()
                    Image.fromarray(rng.integers(0, 255, (600, 600, 3), dtype=np.uint8)).save(buffer, "PNG")
                    data = buffer.getvalue()
                else:
                    data = os.urandom(2**20)
                upload(url, {f"u{j}.png": data}, address(who))

        return [threading.Thread(target=loop)]

    return attack


def slow_connections(url: str, count: int, settle: float = 0):
    """``count`` connections that send a request head one byte a second; ``settle`` seconds after the attack
    stops, ``still_open`` counts those the server has not closed."""
    parts = urllib.parse.urlsplit(url)

    def attack(stop, report):
        def loop():
            sockets = []
            for _ in range(count):
                if stop.is_set():
                    break
                try:
                    s = socket.create_connection((parts.hostname, parts.port), timeout=5)
                    s.sendall(b"POST /gradio_api/queue/join HTTP/1.1\r\n")
                    sockets.append(s)
                except OSError:
                    pass
            while not stop.is_set():
                for s in sockets:
                    try:
                        s.sendall(b"X")
                    except OSError:
                        pass
                stop.wait(1)
            time.sleep(settle)
            report["opened"], report["still_open"] = len(sockets), sum(_is_open(s) for s in sockets)
            for s in sockets:
                s.close()

        return [threading.Thread(target=loop)]

    return attack


def _is_open(s: socket.socket) -> bool:
    s.settimeout(0.01)
    try:
        return s.recv(1) != b""
    except TimeoutError:
        return True
    except OSError:
        return False


def departing_uploads(url: str, who: str):
    """Uploads cut off mid-body by a client that leaves."""
    parts = urllib.parse.urlsplit(url)
    head = (
        "POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {who}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n"
        '--b\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n'
    )

    def attack(stop, report):
        def loop():
            while not stop.is_set():
                try:
                    with socket.create_connection((parts.hostname, parts.port), timeout=5) as s:
                        s.sendall(head.format(who=who).encode() + b"x" * 50_000)
                        time.sleep(0.1)
                except OSError:
                    pass

        return [threading.Thread(target=loop)]

    return attack


def together(*attacks):
    def attack(stop, report):
        return [thread for one in attacks for thread in one(stop, report)]

    return attack
