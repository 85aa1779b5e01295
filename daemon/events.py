"""The event bus: state changes fanned out to subscribers (TUI, LSP, `pasd submit --wait`)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

from daemon.protocol import Event, EventEnvelope

log = logging.getLogger(__name__)


class Subscription:
    def __init__(self, bus: EventBus, kinds: set[str] | None, maxsize: int) -> None:
        self.bus = bus
        self.kinds = kinds
        self.queue: asyncio.Queue[EventEnvelope | None] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, env: EventEnvelope) -> None:
        if self.kinds is not None and env.event.kind not in self.kinds:
            return
        try:
            self.queue.put_nowait(env)
        except asyncio.QueueFull:
            # A subscriber that cannot keep up is dropped rather than slowing the daemon down.
            self.overflowed = True
            self.bus.unsubscribe(self)

    async def get(self) -> EventEnvelope | None:
        """Next event, or None once the subscription has ended."""
        if self.overflowed and self.queue.empty():
            return None
        return await self.queue.get()

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
        env = EventEnvelope(seq=next(self._seq), time=time.time(), event=event)
        for sub in list(self._subs):
            sub.offer(env)

    @property
    def subscribers(self) -> int:
        return len(self._subs)
