"""The Space's routes spoken as raw HTTP, as a page or an attacker speaks them (no client library in between):
bodies of any announced length, uploads, queued events, and the X-Forwarded-For header a proxy would add."""

from __future__ import annotations

import http.client
import json
import urllib.parse
import uuid


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def post(url: str, path: str, body: bytes = b"", headers: dict | None = None, length: int | None = None):
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.putrequest("POST", path)
    for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
        connection.putheader(key, value)
    connection.putheader("Content-Length", str(len(body) if length is None else length))
    connection.endheaders()
    try:
        connection.send(body)
    except OSError:  # the server answered and closed before the whole body went out
        pass
    response = connection.getresponse()
    return response.status, response.read().decode(errors="replace")


def upload(url: str, files: dict[str, bytes], headers: dict | None = None) -> tuple[int, str]:
    boundary = uuid.uuid4().hex
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
            for name, data in files.items()
        )
        + f"--{boundary}--\r\n".encode()
    )
    content_type = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return post(url, "/gradio_api/upload", body, {**content_type, **(headers or {})})


def uploaded(url: str, name: str, data: bytes, headers: dict | None = None) -> dict:
    """Upload one file; the payload that names it in an event."""
    status, text = upload(url, {name: data}, headers)
    assert status == 200, text
    return {"path": json.loads(text)[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def queue(url: str, fn_index: int, data: list, headers: dict | None = None, timeout: float = 120) -> dict:
    """One event through the queue, as the page sends it: join, then read the event stream to its end. A join
    refused by the server is returned as {"success": False, "status": ..., "output": {"error": text}}."""
    session = uuid.uuid4().hex
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None}
    status, text = post(url, "/gradio_api/queue/join", json.dumps(body).encode(), headers)
    if status != 200:
        return {"success": False, "status": status, "output": {"error": text}}
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    connection.request("GET", f"/gradio_api/queue/data?session_hash={session}", headers=headers or {})
    response = connection.getresponse()
    for raw in response:
        line = raw.decode().strip()
        if line.startswith("data:"):
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                return message
    raise AssertionError("the event stream ended without a result")


def config(url: str) -> dict:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("GET", "/config")
    return json.loads(connection.getresponse().read())


def event_index(url: str, api_name: str) -> int:
    """The fn_index of the event named ``api_name``."""
    for index, dependency in enumerate(config(url)["dependencies"]):
        if dependency.get("api_name") == api_name:
            return dependency.get("id", index)
    raise AssertionError(f"no event {api_name!r}")
