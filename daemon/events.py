"""The event bus: state changes fanned out to subscribers (TUI, LSP, `pasd submit --wait`)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable

from daemon.protocol import Event, EventEnvelope, notification

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000  # events a subscriber may have waiting
MAX_QUEUED_BYTES = 8 * 1024 * 1024  # and their size on the wire, for a client's subscription


class Published:
    """One event as published: the envelope, and its wire line encoded once for every subscriber."""

    __slots__ = ("_line", "env")

    def __init__(self, env: EventEnvelope) -> None:
        self.env = env
        self._line: bytes | None = None

    @property
    def line(self) -> bytes:
        if self._line is None:
            self._line = (json.dumps(notification("event", self.env), separators=(",", ":")) + "\n").encode()
        return self._line


class Subscription:
    """One subscriber's filter and bounded queue. With `write_through`, an event goes straight to the
    subscriber's socket while nothing of its is queued and the socket takes it (the usual case);
    only a subscriber that lags gets a queue, drained by its own writer task."""

    def __init__(self, bus: EventBus, kinds: set[str] | None, maxsize: int, max_bytes: int | None,
                 on_drop: Callable[[], None] | None = None,
                 write_through: Callable[[bytes], bool] | None = None) -> None:
        self.bus = bus
        self.kinds = kinds
        self.queue: asyncio.Queue[Published | None] = asyncio.Queue(maxsize)
        self.max_bytes = max_bytes
        self.queued_bytes = 0
        self.overflowed = False
        self.on_drop = on_drop
        self.write_through = write_through

    def offer(self, pub: Published) -> None:
        if self.overflowed or (self.kinds is not None and pub.env.event.kind not in self.kinds):
            return
        if self.write_through is not None and self.queue.empty() and self.write_through(pub.line):
            return
        size = len(pub.line) if self.max_bytes is not None else 0
        if self.queue.full() or (self.max_bytes is not None and self.queued_bytes + size > self.max_bytes):
            # A subscriber that cannot keep up is dropped rather than slowing the daemon down
            # or holding its backlog in memory.
            self.overflowed = True
            self.bus.unsubscribe(self)
            return
        self.queued_bytes += size
        self.queue.put_nowait(pub)

    def _took(self, pub: Published | None) -> Published | None:
        if pub is not None and self.max_bytes is not None:
            self.queued_bytes -= len(pub.line)
        return pub

    async def next(self) -> Published | None:
        """Next event, or None once the subscription has ended."""
        if self.overflowed and self.queue.empty():
            return None
        return self._took(await self.queue.get())

    async def get(self) -> EventEnvelope | None:
        pub = await self.next()
        return None if pub is None else pub.env

    def ready(self) -> list[Published]:
        """Events already queued, without waiting (for batching writes)."""
        out = []
        while not self.queue.empty():
            pub = self.queue.get_nowait()
            if pub is None:
                self.queue.put_nowait(None)  # keep the end marker for the next wait
                break
            out.append(pub)
            self._took(pub)
        return out

    def _end(self) -> None:
        if self.overflowed:  # its backlog will never be sent: free it now
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queued_bytes = 0
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        if self.overflowed and self.on_drop is not None:
            self.on_drop()

    def close(self) -> None:
        self.bus.unsubscribe(self)


class EventBus:
    def __init__(self, maxsize: int = MAX_QUEUED) -> None:
        self._subs: set[Subscription] = set()
        self._seq = itertools.count(1)
        self._maxsize = maxsize

    def subscribe(self, kinds: list[str] | None = None, *, max_bytes: int | None = None,
                  on_drop: Callable[[], None] | None = None,
                  write_through: Callable[[bytes], bool] | None = None) -> Subscription:
        """A new subscriber, dropped past `maxsize` queued events or (if given) `max_bytes` of them on
        the wire (a client's connection: MAX_QUEUED_BYTES); `on_drop` is called when it is dropped.
        `write_through(line)` sends an event's line at once and says whether it did (see Subscription)."""
        sub = Subscription(self, set(kinds) if kinds else None, self._maxsize, max_bytes, on_drop, write_through)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.discard(sub)
            if sub.overflowed:
                log.warning("dropped a subscriber that fell behind (%d events, %d bytes unsent)",
                            sub.queue.qsize(), sub.queued_bytes)
            sub._end()

    def publish(self, event: Event) -> None:
        pub = Published(EventEnvelope(seq=next(self._seq), time=time.time(), event=event))
        for sub in list(self._subs):
            sub.offer(pub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)
