"""Connections the server holds, bounded where it accepts them: the HTTP protocol of the app's server (uvicorn's
own, with three limits added), installed by ``serving.app.launch``.

- a request head (the request line and headers) must arrive within ``header_timeout`` seconds of the connection or
  of the previous response: a client sending a byte a second is closed, not held;
- a request body must keep up ``min_body_rate`` bytes a second once ``header_timeout`` has passed;
- one address may hold ``per_address`` connections (only where no proxy stands in front: behind one, every
  connection comes from the proxy's address and ``RequestGuard`` counts requests per client instead), and the
  server ``total`` connections.

A closed connection is logged as one line (at most a few a second), never a traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

from uvicorn.protocols.http.auto import AutoHTTPProtocol

LOG = logging.getLogger("cyclegan_hub.serving")


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    min_body_rate: int = 4096  # bytes per second
    per_address: int | None = 64  # None: no cap per address (behind a proxy)
    total: int = 4000  # and at most the process's descriptor limit less 200 (``install`` raises it where it may)


LIMITS = ConnectionLimits()
_OPEN: dict[str, int] = {}
_LOGGED = {"second": 0, "count": 0}


def configure(limits: ConnectionLimits) -> None:
    """The limits every connection accepted from now on gets."""
    global LIMITS
    LIMITS = limits


def _log(message: str, *args) -> None:
    second = int(time.monotonic())
    if _LOGGED["second"] != second:
        _LOGGED["second"], _LOGGED["count"] = second, 0
    _LOGGED["count"] += 1
    if _LOGGED["count"] <= 5:
        LOG.warning(message, *args)


class BoundedHTTPProtocol(AutoHTTPProtocol):
    """uvicorn's HTTP protocol with the limits above."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._address = peer[0] if isinstance(peer, tuple) and peer else "unknown"
        self._counted = True
        _OPEN[self._address] = _OPEN.get(self._address, 0) + 1
        self._received, self._waiting_since, self._body = 0, time.monotonic(), None
        per_address = LIMITS.per_address
        if sum(_OPEN.values()) > LIMITS.total or (per_address is not None and _OPEN[self._address] > per_address):
            _log("closed a connection from %s: too many open connections", self._address)
            transport.close()
            return
        self._watch = self.loop.call_later(1.0, self._check)

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        super().data_received(data)

    def connection_lost(self, exc) -> None:
        if getattr(self, "_counted", False):
            self._counted = False
            _OPEN[self._address] -= 1
            if not _OPEN[self._address]:
                del _OPEN[self._address]
        watch = getattr(self, "_watch", None)
        if watch is not None:
            watch.cancel()
        super().connection_lost(exc)

    def _check(self) -> None:
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        now, cycle = time.monotonic(), self.cycle
        if cycle is None or cycle.response_complete:  # waiting for the next request head
            self._body = None
            if self._waiting_since is None:
                self._waiting_since = now
            if now - self._waiting_since > LIMITS.header_timeout:
                if self._received or cycle is None:
                    _log("closed a connection from %s: no request within %.0f s", self._address, LIMITS.header_timeout)
                self.transport.close()
                return
        else:
            self._waiting_since = None
            if cycle.more_body:
                if self._body is None:
                    self._body = (now, self._received)
                started, received = self._body
                late = now - started - LIMITS.header_timeout
                if late > 0 and self._received - received < LIMITS.min_body_rate * late:
                    rate = LIMITS.min_body_rate
                    _log("closed a connection from %s: its body came slower than %d B/s", self._address, rate)
                    self.transport.close()
                    return
            else:
                self._body = None
        self._watch = self.loop.call_later(1.0, self._check)


def install(limits: ConnectionLimits) -> None:
    """Make ``BoundedHTTPProtocol`` the protocol of every uvicorn server this process starts ("auto"), with
    ``limits``: the app's server (Gradio's) is built without a way to pass a protocol."""
    import resource

    import uvicorn.config

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = limits.total + 200 if hard == resource.RLIM_INFINITY else min(hard, limits.total + 200)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and limits.total > soft - 200:
        limits = dataclasses.replace(limits, total=max(1, soft - 200))
    configure(limits)
    uvicorn.config.HTTP_PROTOCOLS["auto"] = f"{__name__}:BoundedHTTPProtocol"
