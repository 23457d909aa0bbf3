"""Who a client is, and its fair share of the Space.

- **Identity**: a client is the address the Space's own proxy saw, never a header the client wrote. A proxy appends
  the address it received the connection from to X-Forwarded-For, so with ``hops`` trusted proxies in front of the
  app the client is the ``hops``-th entry from the right; anything to the left of it was written by the client and
  is ignored. With no trusted proxy (``hops = 0``, a server reached directly) the client is the socket's address.
  On Hugging Face Spaces one proxy stands in front of the app and the platform sets ``SPACE_ID``: one hop is
  trusted there and none elsewhere, unless ``CYCLEGAN_TRUSTED_HOPS`` says otherwise.
- **Fair share** (``FairShare``): each client may have ``max_jobs`` jobs waiting or running (more are refused at
  once, not queued, after ``refusal_delay``: a client looping on refusals waits instead of spinning); each job is
  charged what it will cost to decode and compute (seconds of CPU estimated from its
  pixels and the model), against a budget per window; and the running slots are handed out round-robin between
  clients (the one served longest ago first), so that one client with many jobs waits behind its own jobs, not a
  visitor's.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from dataclasses import dataclass

TRUSTED_HOPS_ENV = "CYCLEGAN_TRUSTED_HOPS"


def trusted_hops() -> int:
    """Proxies in front of the app that append to X-Forwarded-For: ``CYCLEGAN_TRUSTED_HOPS``, else 1 on a Hugging
    Face Space (``SPACE_ID`` set) and 0 elsewhere."""
    value = os.environ.get(TRUSTED_HOPS_ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) > 10:
            raise ValueError(f"{TRUSTED_HOPS_ENV} must be a whole number from 0 to 10, got {value!r}")
        return int(value)
    return 1 if os.environ.get("SPACE_ID") else 0


def client_identity(forwarded_for: str | None, peer: str | None, hops: int) -> str:
    """The client's address: the ``hops``-th X-Forwarded-For entry from the right (what the trusted proxies saw),
    or the socket's ``peer`` address with no trusted proxy. A header shorter than ``hops`` entries did not pass
    through every proxy: the leftmost entry it has is the best the proxies give."""
    if hops > 0 and forwarded_for:
        entries = [entry.strip() for entry in forwarded_for.split(",") if entry.strip()]
        if entries:
            return entries[-min(hops, len(entries))]
    return peer or "unknown"


def scope_identity(scope, hops: int) -> str:
    """``client_identity`` of an ASGI request scope."""
    forwarded = b", ".join(value for key, value in scope.get("headers") or [] if key == b"x-forwarded-for")
    peer = (scope.get("client") or (None,))[0]
    return client_identity(forwarded.decode("latin-1") or None, peer, hops)


#: Clients a per-client table remembers before it forgets the oldest half (the tables stay bounded, whatever the
#: number of addresses that reach the app).
MAX_CLIENTS = 10_000


def remember(table: dict, client: str, entry: tuple) -> None:
    """``table[client] = entry``, an entry whose first item is a time; past ``MAX_CLIENTS`` clients, the half with
    the oldest times is forgotten."""
    table[client] = entry
    if len(table) > MAX_CLIENTS:
        for key in sorted(table, key=lambda k: table[k][0])[: MAX_CLIENTS // 2]:
            del table[key]


class Refused(Exception):
    """A job refused at once: the message says why and what the client can do."""


@dataclass(frozen=True)
class ShareLimits:
    max_jobs: int = 3  # jobs one client may have waiting or running
    slots: int = 4  # jobs running at once, across clients
    running_per_client: int = 1  # jobs of one client running at once (the rest wait their turn)
    budget_seconds: float = 20.0  # estimated CPU seconds one client may spend per window (a third of a core)
    window: float = 60.0
    refusal_delay: float = 1.0  # a refusal is answered after this long: a loop of refused jobs costs no CPU


class FairShare:
    """Round-robin admission of jobs from many clients (asyncio: one event loop, no locks)."""

    def __init__(self, limits: ShareLimits = ShareLimits()):
        self.limits = limits
        self._jobs: dict[str, int] = {}  # client -> jobs waiting or running
        self._spent: dict[str, tuple[float, float]] = {}  # client -> (window start, seconds charged)
        self._waiting: dict[str, deque[asyncio.Future]] = {}  # client -> turns waiting, in order of arrival
        self._running: dict[str, int] = {}  # client -> jobs running
        self._last: dict[str, int] = {}  # client (with jobs) -> when it last got a slot
        self._tick = 0

    def charge(self, client: str, cost: float) -> None:
        """Add a job of ``cost`` estimated seconds to the client's window, or refuse it (``Refused``)."""
        now = time.monotonic()
        start, spent = self._spent.get(client, (now, 0.0))
        if now - start > self.limits.window:
            start, spent = now, 0.0
        if spent > 0 and spent + cost > self.limits.budget_seconds:
            wait = max(1, round(self.limits.window - (now - start)))
            raise Refused(f"this address has used its share of the Space for now: try again in {wait} s")
        remember(self._spent, client, (start, spent + cost))

    async def run(self, client: str, cost: float, job):
        """Run ``await job()`` in the client's turn. Refused at once when the client already has ``max_jobs``."""
        try:
            if self._jobs.get(client, 0) >= self.limits.max_jobs:
                raise Refused(
                    f"this address already has {self.limits.max_jobs} translations waiting or running: "
                    "wait for one to finish"
                )
            self.charge(client, cost)
        except Refused:
            await asyncio.sleep(self.limits.refusal_delay)
            raise
        self._jobs[client] = self._jobs.get(client, 0) + 1
        try:
            await self._turn(client)
            try:
                return await job()
            finally:
                self._release(client)
        finally:
            self._jobs[client] -= 1
            if not self._jobs[client]:
                del self._jobs[client]
                self._last.pop(client, None)

    def _may_run(self, client: str) -> bool:
        return (
            sum(self._running.values()) < self.limits.slots
            and self._running.get(client, 0) < self.limits.running_per_client
        )

    def _start(self, client: str) -> None:
        self._running[client] = self._running.get(client, 0) + 1
        self._tick += 1
        self._last[client] = self._tick

    def _release(self, client: str) -> None:
        self._running[client] -= 1
        if not self._running[client]:
            del self._running[client]
        self._hand_over()

    async def _turn(self, client: str) -> None:
        if client not in self._waiting and self._may_run(client):
            self._start(client)
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(client, deque()).append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # the slot was handed over just before: hand it on
                self._release(client)
            else:
                self._forget(client, turn)
            raise

    def _forget(self, client: str, turn: asyncio.Future) -> None:
        waiting = self._waiting.get(client)
        if waiting is not None and turn in waiting:
            waiting.remove(turn)
            if not waiting:
                del self._waiting[client]

    def _hand_over(self) -> None:
        """Free slots go to the waiting client that got one longest ago (a client new to the rotation first)."""
        while True:
            ready = [client for client in self._waiting if self._may_run(client)]
            if not ready:
                return
            client = min(ready, key=lambda c: self._last.get(c, 0))
            waiting = self._waiting[client]
            turn = waiting.popleft()
            if not waiting:
                del self._waiting[client]
            if not turn.done():
                self._start(client)
                turn.set_result(None)

    def waiting(self) -> dict[str, int]:
        """Jobs waiting per client (for tests and the load benchmark)."""
        return {client: len(turns) for client, turns in self._waiting.items()}
