"""What a request may send, decided before Gradio reads it: an ASGI middleware in front of the app.

- **Body size**: a body over its route's cap is refused with 413, from its Content-Length before a byte is read, or
  as soon as a streamed body passes the cap (the app is told the client left; nothing it half-read is kept).
- **Files per upload**: a multipart upload of more than ``max_files`` files is refused with 413 while it streams.
- **Per-client quota**: a client (its address as the Space's proxy gives it, ``clients.client_identity``: no header
  the client writes changes who it is) may send ``quota_bytes`` and ``quota_requests`` per ``quota_window`` seconds
  and hold ``max_open`` requests at once; past that, 429. Events (queue joins, the costliest requests) start at
  ``job_rate`` a second per client: one over the rate waits for its turn (without a thread), or past ``job_wait``
  is refused. Every 429 is answered after ``refusal_delay``: a client looping on refusals waits, not spins.
- **Uploads that are not images** of a format the app reads are deleted as soon as they are written
  (``uploads.check_uploaded``): the job that names one later says why.
- **Routes that bypass the queue** (``/gradio_api/run/*``, ``/gradio_api/api/*``) are closed (404): every request
  runs through the bounded queue, as the page and gradio_client send them.
- **File errors say nothing of the server**: a refused ``/file=`` path answers "file not found", not a path of the
  server's working directory; a malformed request answers one line, never the validation library's text.
- **A client that leaves** mid-request is logged as one line, not a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass

from .clients import remember, scope_identity, trusted_hops
from .uploads import check_uploaded, note_written

LOG = logging.getLogger("cyclegan_hub.serving")


@dataclass(frozen=True)
class RequestLimits:
    max_body: int = 28 * 2**20  # a JSON request (an image inlined as a data: URL of up to 20 MB is ~27 MB)
    max_upload: int = 64 * 2**20  # one multipart upload (the page sends an image, or a drawing's few layers)
    max_files: int = 8  # files in one upload
    quota_bytes: int = 256 * 2**20  # what one client may send per window
    quota_requests: int = 1200  # requests one client may make per window (a page load makes ~60)
    quota_window: float = 60.0
    max_open: int = 32  # requests one client may have open at once (an event stream counts while it lasts)
    refusal_delay: float = 1.0  # seconds before a 429 is answered
    job_rate: float = 2.0  # events one client may start per second, on average (each costs the server ~35 ms)
    job_burst: int = 8  # ... and at once
    job_wait: float = 4.0  # an event over the rate waits up to this long for its turn, then 429


CLOSED_PREFIXES = ("/gradio_api/run/", "/gradio_api/api/")
FILE_PREFIXES = ("/gradio_api/file=", "/file=", "/gradio_api/file/")
UPLOAD_ROUTES = ("/gradio_api/upload", "/upload")
JOIN_ROUTES = ("/gradio_api/queue/join", "/queue/join")
TOO_MUCH = "too much sent from this address in the last minute: wait a little"
TOO_MANY_EVENTS = "too many translations asked from this address at once: wait a few seconds"
MALFORMED = "the request is not one this app understands (send images through the page or gradio_client)"


class RequestGuard:
    """The ASGI middleware (Starlette's ``Middleware(RequestGuard, limits=...)``)."""

    def __init__(self, app, limits: RequestLimits = RequestLimits()):
        self.app, self.limits = app, limits
        self.hops = trusted_hops()
        self._spent: dict[str, tuple[float, int, int]] = {}  # client -> (window start, bytes, requests)
        self._open: dict[str, int] = {}  # client -> requests open now
        self._events: dict[str, tuple[float, float]] = {}  # client -> (time, event tokens then)
        self._lock = threading.Lock()

    def _charge(self, client: str, amount: int, requests: int = 0) -> bool:
        """Add ``amount`` bytes and ``requests`` requests to the client's window; False once it is over either."""
        now = time.monotonic()
        with self._lock:
            start, spent, made = self._spent.get(client, (now, 0, 0))
            if now - start > self.limits.quota_window:
                start, spent, made = now, 0, 0
            spent, made = spent + amount, made + requests
            remember(self._spent, client, (start, spent, made))
            return spent <= self.limits.quota_bytes and made <= self.limits.quota_requests

    def _event_wait(self, client: str) -> float | None:
        """Seconds this client's next event must wait for its turn (a token bucket of ``job_rate`` a second, up to
        ``job_burst``), the turn taken; None (nothing taken) when that is more than ``job_wait``."""
        rate, burst = self.limits.job_rate, self.limits.job_burst
        now = time.monotonic()
        with self._lock:
            then, tokens = self._events.get(client, (now, float(burst)))
            tokens = min(float(burst), tokens + (now - then) * rate) - 1
            wait = max(0.0, -tokens / rate)
            if wait > self.limits.job_wait:
                return None
            remember(self._events, client, (now, tokens))
            return wait

    def _enter(self, client: str) -> bool:
        with self._lock:
            if self._open.get(client, 0) >= self.limits.max_open:
                return False
            self._open[client] = self._open.get(client, 0) + 1
            return True

    def _leave(self, client: str) -> None:
        with self._lock:
            self._open[client] -= 1
            if not self._open[client]:
                del self._open[client]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path.startswith(CLOSED_PREFIXES):
            return await _answer(send, 404, "this route is closed: requests run through the queue (gradio_client)")
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        multipart = content_type.startswith("multipart/form-data")
        cap = self.limits.max_upload if multipart else self.limits.max_body
        length = headers.get(b"content-length", b"")
        client = scope_identity(scope, self.hops)
        if length.isdigit() and int(length) > cap:
            return await _answer(send, 413, f"the request body is larger than {cap // 2**20} MB")
        if not self._charge(client, int(length) if length.isdigit() else 0, requests=1):
            await asyncio.sleep(self.limits.refusal_delay)  # a client looping on 429s waits instead of spinning
            return await _answer(send, 429, TOO_MUCH)
        if not self._enter(client):
            await asyncio.sleep(self.limits.refusal_delay)
            return await _answer(send, 429, f"more than {self.limits.max_open} requests open from this address")
        try:
            if path in JOIN_ROUTES:  # an event: the server's costliest request, started at a bounded rate
                wait = self._event_wait(client)
                if wait is None:
                    await asyncio.sleep(self.limits.refusal_delay)
                    return await _answer(send, 429, TOO_MANY_EVENTS)
                await asyncio.sleep(wait)
            limits = {"cap": cap, "multipart": multipart, "counted": length.isdigit()}
            await self._guarded(scope, receive, send, client, path, **limits)
        finally:
            self._leave(client)

    async def _guarded(self, scope, receive, send, client, path, *, cap, multipart, counted):
        marker = b"filename=" if multipart else None  # once per file part
        state = {"bytes": 0, "files": 0, "tail": b"", "refused": None, "started": False}

        async def guarded_receive():
            message = await receive()
            if message["type"] != "http.request" or state["refused"]:
                return {"type": "http.disconnect"} if state["refused"] else message
            body = message.get("body", b"")
            state["bytes"] += len(body)
            if not counted and not self._charge(client, len(body)):
                state["refused"] = (429, TOO_MUCH)
            elif state["bytes"] > cap:
                state["refused"] = (413, f"the request body is larger than {cap // 2**20} MB")
            elif marker is not None:
                window = state["tail"] + body
                state["files"] += window.count(marker) - state["tail"].count(marker)
                state["tail"] = window[-len(marker) :]
                if state["files"] > self.limits.max_files:
                    state["refused"] = (413, f"more than {self.limits.max_files} files in one upload")
            return {"type": "http.disconnect"} if state["refused"] else message

        file_route = path.startswith(FILE_PREFIXES)
        upload_route = path in UPLOAD_ROUTES
        replaced = {}  # a response whose body is ours: its status and text

        async def guarded_send(message):
            if state["refused"]:  # whatever the app answers to a body it was cut off from, the answer is ours
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await _answer(send, *state["refused"])
                return
            if message["type"] == "http.response.start":
                state["started"] = True
                status = message["status"]
                if file_route and status >= 400:
                    replaced.update(status=404, detail="file not found")
                elif status == 422:
                    replaced.update(status=422, detail=MALFORMED)
                elif upload_route and status == 200:
                    replaced.update(status=200, upload=[], start=message)
                if replaced and "upload" not in replaced:
                    return await send(_start(replaced["status"], _detail(replaced["detail"])))
                if replaced:
                    return None
            elif message["type"] == "http.response.body" and replaced:
                if "upload" in replaced:  # held until complete: the files it names are checked first
                    replaced["upload"].append(message.get("body", b""))
                    if not message.get("more_body"):
                        body = b"".join(replaced["upload"])
                        _check_upload_answer(body)
                        note_written(state["bytes"])
                        await send(replaced["start"])
                        await send({"type": "http.response.body", "body": body})
                elif not message.get("more_body"):
                    await send({"type": "http.response.body", "body": _detail(replaced["detail"])})
                return None
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception as err:
            if not state["refused"] and _client_left(err):
                LOG.warning("a client left before its request was read: %s %s", scope.get("method"), path)
                return
            if not state["refused"]:
                raise
        if state["refused"] and not state["started"]:
            await _answer(send, *state["refused"])


def _client_left(err: BaseException) -> bool:
    """Whether ``err`` is a client that went away mid-request (Starlette's ClientDisconnect, a reset socket)."""
    return type(err).__name__ == "ClientDisconnect" or isinstance(err, (ConnectionError, EOFError))


def _check_upload_answer(body: bytes) -> None:
    """The upload route answers the list of paths it wrote: each that is not an image the app reads is deleted."""
    try:
        paths = json.loads(body)
    except ValueError:
        return
    for item in paths if isinstance(paths, list) else []:
        if isinstance(item, str):
            check_uploaded(item)


def _detail(text: str) -> bytes:
    return json.dumps({"detail": text}).encode()


def _start(status: int, body: bytes) -> dict:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _answer(send, status: int, detail: str) -> None:
    body = _detail(detail)
    await send(_start(status, body))
    await send({"type": "http.response.body", "body": body})
