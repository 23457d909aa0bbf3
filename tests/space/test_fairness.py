"""A Space no client can starve: the real app (a subprocess behind a simulated proxy: one trusted X-Forwarded-For
hop), attacked as the security probe attacked it, with bounded loops on loopback, while a normal visitor translates
a digit. Each attacker is one client however it rotates its own header; the visitor is served within 3x of its time
alone and refused nothing; the server's memory and temporary folder stay within their caps; the log holds no
traceback."""

import os
import threading
import time

import pytest

pytest.importorskip("gradio_client")

from tests.space.attackers import (
    address,
    big_photo,
    departing_uploads,
    digit,
    folder_bytes,
    job_flood,
    measure,
    p99,
    rotating,
    slow_connections,
    together,
    upload_flood,
    visit,
)
from tests.space.conftest import ROOT, start_app, stop_app
from tests.space.raw import event_index, post, queue, upload, uploaded

TEMP_CAP = 24 * 2**20
HEAD_TIMEOUT = 3

APP = f"""
from pathlib import Path

from cyclegan_hub.serving.app import build_demo, launch, pair_specs
from cyclegan_hub.serving.connections import ConnectionLimits
from cyclegan_hub.serving.guard import RequestLimits
from cyclegan_hub.serving.pairs import ServingLimits

SPACE = Path({str(ROOT / "space")!r})
demo = build_demo(pair_specs(SPACE), examples=SPACE / "examples", limits=ServingLimits(temp_bytes={TEMP_CAP}))
launch(
    demo,
    requests=RequestLimits(quota_bytes=64 * 2**20),
    connection_limits=ConnectionLimits(header_timeout={HEAD_TIMEOUT}, per_address=None),
)
"""


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fair")
    script = folder / "app.py"
    script.write_text(APP)
    temp = folder / "gradio"
    proc, url = start_app({"CYCLEGAN_TRUSTED_HOPS": "1", "GRADIO_TEMP_DIR": str(temp)}, app=script)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    fn = event_index(url, "translate")
    visit(url, fn, "192.0.2.1")  # the first request's lazy allocations are not growth
    yield {"proc": proc, "url": url, "fn": fn, "temp": temp, "log": log}
    stop_app(proc)
    reader.join(10)
    assert not [line for line in log if "Traceback" in line], "".join(log[-80:])


def served_within_caps(space, attack, who: str) -> dict:
    figures = measure(space["proc"], space["url"], space["fn"], space["temp"], attack, who, count=8, pause=0.3)
    assert not figures["visitor_refused"], figures["visitor_refused"]
    assert p99(figures["attacked_s"]) <= 3 * p99(figures["alone_s"]), figures
    assert figures["rss_peak_mb"] - figures["rss_idle_mb"] < 500, figures
    assert figures["temp_peak_bytes"] <= TEMP_CAP + 8 * 2**20, figures  # the cap, and what one trim pass lets in
    return figures


def test_a_client_that_rotates_its_header_is_one_client_for_the_queue_and_the_quota(space):
    url, fn = space["url"], space["fn"]
    big = uploaded(url, "big.png", big_photo(), address("198.51.100.66"))
    results: list[dict] = []

    def job(i):
        results.append(queue(url, fn, [big, "6 -> 9"], address("198.51.100.66", spoof=rotating(i))))

    threads = [threading.Thread(target=job, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    refused = [r for r in results if not r["success"]]
    assert len(results) == 6 and len(refused) == 3, results
    assert all("this address already has 3 translations waiting or running" in str(r["output"]) for r in refused)
    # the byte quota (64 MB a minute in this app) counts the same client whatever the first hop says
    statuses = [
        upload(url, {f"n{i}.png": os.urandom(10 * 2**20)}, address("198.51.100.67", spoof=rotating(i)))[0]
        for i in range(8)
    ]
    assert statuses[:6] == [200] * 6 and statuses[-1] == 429, statuses


def test_job_floods_reusing_one_upload_leave_a_visitor_served(space):
    url, fn = space["url"], space["fn"]
    attack = together(
        job_flood(url, fn, big_photo(), "198.51.100.70", loops=5, name="photos"),
        job_flood(url, fn, digit(99), "198.51.100.71", loops=20, name="digits"),
    )
    report = served_within_caps(space, attack, "192.0.2.10")["attack"]
    assert report["photos_refused"] and report["digits_refused"], report  # the floods were refused, not queued
    assert any("translations waiting or running" in m for m in report["photos_messages"] + report["digits_messages"])


def test_slow_connections_are_closed_and_a_client_that_leaves_is_one_line(space):
    attack = together(
        slow_connections(space["url"], 200, settle=HEAD_TIMEOUT + 2),
        departing_uploads(space["url"], "198.51.100.80"),
    )
    report = served_within_caps(space, attack, "192.0.2.20")["attack"]
    assert report["opened"] == 200 and report["still_open"] == 0, report
    log = "".join(space["log"])
    assert "no request within 3 s" in log and "a client left before its request was read" in log


def test_upload_floods_keep_the_temporary_folder_under_its_cap(space):
    url, fn = space["url"], space["fn"]
    attack = together(upload_flood(url, "198.51.100.90", images=False), upload_flood(url, "198.51.100.91", images=True))
    served_within_caps(space, attack, "192.0.2.30")
    time.sleep(1.5)  # one pass of the cap after the last upload
    assert folder_bytes(space["temp"]) <= TEMP_CAP
    # an upload that was not an image was deleted on arrival; a job naming it is told why
    status, text = upload(url, {"noise.png": os.urandom(1000)}, address("192.0.2.31"))
    path = text.strip().strip("[]").strip('"')
    assert status == 200 and not os.path.exists(path)
    file = {"path": path, "orig_name": "noise.png", "meta": {"_type": "gradio.FileData"}}
    result = queue(url, fn, [file, "6 -> 9"], address("192.0.2.31"))
    assert not result["success"] and "noise.png is not an image in a format read here" in str(result["output"])


def test_errors_name_what_a_user_can_act_on_never_library_internals(space):
    url, fn = space["url"], space["fn"]
    status, text = post(url, "/gradio_api/queue/join", b'{"data": 5, "fn_index": "x"}', address("192.0.2.40"))
    assert status == 422 and "the request is not one this app understands" in text
    assert "pydantic" not in text and "validation" not in text.lower()
    result = queue(url, fn, [{"path": 5, "meta": {"_type": "gradio.FileData"}}, "6 -> 9"], address("192.0.2.40"))
    assert not result["success"]
    assert "pydantic" not in str(result).lower() and "errors.pydantic.dev" not in str(result)
