"""What a request may send, decided before Gradio reads it: an ASGI middleware in front of the app.

- **Body size**: a body over its route's cap is refused with 413, from its Content-Length before a byte is read, or
  as soon as a streamed body passes the cap (the app is told the client left; nothing it half-read is kept).
- **Files per upload**: a multipart upload of more than ``max_files`` files is refused with 413 while it streams.
- **Per-client quota**: a client (its address, or the first X-Forwarded-For hop that the Space's proxy sets) may
  send ``quota_bytes`` per ``quota_window`` seconds; past that, 429 until the window ends.
- **Routes that bypass the queue** (``/gradio_api/run/*``, ``/gradio_api/api/*``) are closed (404): every request
  runs through the bounded queue, as the page and gradio_client send them.
- **File errors say nothing of the server**: a refused ``/file=`` path answers "file not found", not a path of the
  server's working directory.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestLimits:
    max_body: int = 28 * 2**20  # a JSON request (an image inlined as a data: URL of up to 20 MB is ~27 MB)
    max_upload: int = 64 * 2**20  # one multipart upload (the page sends an image, or a drawing's few layers)
    max_files: int = 8  # files in one upload
    quota_bytes: int = 256 * 2**20  # what one client may send per window
    quota_window: float = 60.0


CLOSED_PREFIXES = ("/gradio_api/run/", "/gradio_api/api/")
FILE_PREFIXES = ("/gradio_api/file=", "/file=", "/gradio_api/file/")


class RequestGuard:
    """The ASGI middleware (Starlette's ``Middleware(RequestGuard, limits=...)``)."""

    def __init__(self, app, limits: RequestLimits = RequestLimits()):
        self.app, self.limits = app, limits
        self._spent: dict[str, tuple[float, int]] = {}  # client -> (window start, bytes)
        self._lock = threading.Lock()

    def _client(self, scope) -> str:
        headers = dict(scope.get("headers") or [])
        forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1").split(",")[0].strip()
        return forwarded or (scope.get("client") or ("?",))[0]

    def _charge(self, client: str, amount: int) -> bool:
        """Add ``amount`` bytes to the client's window; False once it is over its quota."""
        now = time.monotonic()
        with self._lock:
            start, spent = self._spent.get(client, (now, 0))
            if now - start > self.limits.quota_window:
                start, spent = now, 0
            spent += amount
            self._spent[client] = (start, spent)
            if len(self._spent) > 10_000:  # forget the oldest windows: the table itself stays bounded
                for key in sorted(self._spent, key=lambda k: self._spent[k][0])[:5_000]:
                    del self._spent[key]
            return spent <= self.limits.quota_bytes

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
        client = self._client(scope)
        if length.isdigit() and int(length) > cap:
            return await _answer(send, 413, f"the request body is larger than {cap // 2**20} MB")
        if length.isdigit() and not self._charge(client, int(length)):
            return await _answer(send, 429, "too much uploaded from this address in the last minute: wait a little")
        marker = b"filename=" if multipart else None  # once per file part
        state = {"bytes": 0, "files": 0, "tail": b"", "refused": None, "started": False}

        async def guarded_receive():
            message = await receive()
            if message["type"] != "http.request" or state["refused"]:
                return {"type": "http.disconnect"} if state["refused"] else message
            body = message.get("body", b"")
            state["bytes"] += len(body)
            if not length.isdigit() and not self._charge(client, len(body)):
                state["refused"] = (429, "too much uploaded from this address in the last minute: wait a little")
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

        async def guarded_send(message):
            if state["refused"]:  # whatever the app answers to a body it was cut off from, the answer is ours
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await _answer(send, *state["refused"])
                return
            if message["type"] == "http.response.start":
                state["started"] = True
                if file_route and message["status"] >= 400:
                    state["hide"] = True
                    body = json.dumps({"detail": "file not found"}).encode()
                    return await send({"type": "http.response.start", "status": 404,
                                       "headers": [(b"content-type", b"application/json"),
                                                   (b"content-length", str(len(body)).encode())]})  # fmt: skip
            elif message["type"] == "http.response.body" and state.get("hide"):
                if not message.get("more_body"):
                    await send(
                        {"type": "http.response.body", "body": json.dumps({"detail": "file not found"}).encode()}
                    )
                return
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if not state["refused"]:
                raise
        if state["refused"] and not state["started"]:
            await _answer(send, *state["refused"])


async def _answer(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
