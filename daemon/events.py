"""The event bus: state changes fanned out to subscribers (TUI, LSP, `pasd submit --wait`)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time

from daemon.protocol import Event, EventEnvelope, notification

log = logging.getLogger(__name__)


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
    def __init__(self, bus: EventBus, kinds: set[str] | None, maxsize: int) -> None:
        self.bus = bus
        self.kinds = kinds
        self.queue: asyncio.Queue[Published | None] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, pub: Published) -> None:
        if self.kinds is not None and pub.env.event.kind not in self.kinds:
            return
        try:
            self.queue.put_nowait(pub)
        except asyncio.QueueFull:
            # A subscriber that cannot keep up is dropped rather than slowing the daemon down.
            self.overflowed = True
            self.bus.unsubscribe(self)

    async def next(self) -> Published | None:
        """Next event, or None once the subscription has ended."""
        if self.overflowed and self.queue.empty():
            return None
        return await self.queue.get()

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
        return out

    def close(self) -> None:
        self.bus.unsubscribe(self)


class EventBus:
    def __init__(self, maxsize: int = 10_000) -> None:
        self._subs: set[Subscription] = set()
        self._seq = itertools.count(1)
        self._maxsize = maxsize

    def subscribe(self, kinds: list[str] | None = None) -> Subscription:
        sub = Subscription(self, set(kinds) if kinds else None, self._maxsize)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.discard(sub)
            try:
                sub.queue.put_nowait(None)
            except asyncio.QueueFull:
                pass
            if sub.overflowed:
                log.warning("dropped a subscriber that fell %d events behind", self._maxsize)

    def publish(self, event: Event) -> None:
        pub = Published(EventEnvelope(seq=next(self._seq), time=time.time(), event=event))
        for sub in list(self._subs):
            sub.offer(pub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)
