"""The server's connections are bounded where it accepts them: a request head must arrive in time, a body must keep
a minimum rate, an address holds a bounded number of connections, and a closed connection is one log line."""

import logging
import socket
import threading
import time

import pytest

uvicorn = pytest.importorskip("uvicorn")

from cyclegan_hub.serving import connections
from tests.conftest import free_port


async def echo(scope, receive, send):
    assert scope["type"] == "http"
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def server(caplog):
    connections.configure(connections.ConnectionLimits(header_timeout=2, min_body_rate=1000, per_address=5))
    port = free_port()
    config = uvicorn.Config(echo, host="127.0.0.1", port=port, http=connections.BoundedHTTPProtocol, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    caplog.set_level(logging.WARNING, "cyclegan_hub.serving")
    yield port
    server.should_exit = True
    thread.join(10)
    connections.configure(connections.ConnectionLimits())


def request_ok(port) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(100).startswith(b"HTTP/1.1 200")


def closed(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def trickle(s: socket.socket, chunks: list[bytes], deadline: float = float("inf")) -> bool:
    """Send ``chunks`` about a second apart; whether the server closed the connection before they were all sent
    and before ``deadline`` (a monotonic time)."""
    for chunk in chunks:
        try:
            s.sendall(chunk)
        except OSError:
            return time.monotonic() < deadline
        if closed(s, 1.0):
            return time.monotonic() < deadline
        if time.monotonic() > deadline:
            return False
    return False


def test_a_head_sent_a_byte_a_second_is_closed_and_logged_in_one_line(server, caplog):
    slow = socket.create_connection(("127.0.0.1", server))
    deadline = time.monotonic() + 6
    assert trickle(slow, [bytes([byte]) for byte in b"GET / HTTP/1.1\r\nHost: x\r\n"], deadline)
    assert request_ok(server)  # others are served meanwhile and after
    lines = [r.getMessage() for r in caplog.records]
    assert any("no request within 2 s" in line for line in lines) and not any("Traceback" in line for line in lines)


def test_a_body_slower_than_the_minimum_rate_is_closed(server):
    slow = socket.create_connection(("127.0.0.1", server))
    slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    assert trickle(slow, [b"x" * 10] * 8)
    fast = socket.create_connection(("127.0.0.1", server), timeout=5)
    fast.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n")
    for _ in range(3):  # 1000 B/s exactly, within the grace period
        fast.sendall(b"x" * 1000)
        time.sleep(0.5)
    assert fast.recv(100).startswith(b"HTTP/1.1 200")


def test_one_address_holds_a_bounded_number_of_connections(server):
    held = [socket.create_connection(("127.0.0.1", server)) for _ in range(5)]
    extra = socket.create_connection(("127.0.0.1", server))
    assert closed(extra, 0.5)  # the sixth is closed at once (the head timeout is 2 s)
    for s in held:
        s.close()
    time.sleep(0.2)
    assert request_ok(server)  # once they are gone, the address is served again
