"""The request guard as an ASGI middleware, driven with ASGI messages: the per-client quota, a streamed body over
its cap, the files of a streamed upload counted across chunk borders, and the closed routes."""

import asyncio
import json

from cyclegan_hub.serving.guard import RequestGuard, RequestLimits


async def _echo(scope, receive, send):
    """An app that reads its whole body and answers 200 with its length."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def call(guard, path="/gradio_api/queue/join", chunks=(b"{}",), headers=(), client="1.2.3.4"):
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "headers": list(headers), "client": (client, 1)}
    asyncio.run(guard(scope, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, (json.loads(body)["detail"] if status != 200 else body.decode())


def test_quota_cap_files_and_closed_routes():
    guard = RequestGuard(_echo, RequestLimits(max_body=100, max_upload=1000, max_files=2, quota_bytes=250))
    assert call(guard, chunks=(b"x" * 60, b"x" * 30)) == (200, "90")
    assert call(guard, chunks=(b"x" * 60, b"x" * 60)) == (413, "the request body is larger than 0 MB")
    # 90 + 120 sent so far from 1.2.3.4; the next 60 bytes pass its quota of 250
    assert call(guard, chunks=(b"x" * 60,))[0] == 429
    assert call(guard, chunks=(b"x" * 60,), client="5.6.7.8") == (200, "60")  # another client has its own
    # a declared length is charged to the quota up front
    length = [(b"content-length", b"99")]
    assert call(guard, chunks=(b"x" * 99,), headers=length, client="9.9.9.9") == (200, "99")
    # files counted as they stream, a marker split across two chunks included
    multipart = [(b"content-type", b"multipart/form-data; boundary=b")]
    part = b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\nxx\r\n'
    assert call(guard, chunks=(part, part), headers=multipart, client="7.7.7.7")[0] == 200
    split = part * 2 + part[:50]
    status, detail = call(guard, chunks=(split, part[50:]), headers=multipart, client="8.8.8.8")
    assert (status, detail) == (413, "more than 2 files in one upload")
    assert call(guard, path="/gradio_api/run/translate")[0] == 404
