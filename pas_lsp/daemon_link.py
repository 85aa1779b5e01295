"""The server's link to pasd: one request connection, started on demand, and the event follower.

The follower is the server's one background task: it subscribes to the daemon's event stream,
hands every event to the server, and reconnects with backoff when the daemon goes away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from daemon import paths
from daemon import protocol as p
from daemon.client import EventStream, PasClient, ensure_daemon
from daemon.errors import DaemonUnavailable, PasError

log = logging.getLogger(__name__)

FIRST_RETRY_S = 0.2
MAX_RETRY_S = 5.0


class DaemonLink:
    """Connects to the daemon (starting it when none answers) and follows its events."""

    def __init__(self) -> None:
        self.socket: str | None = None  # None: the daemon's default
        self.up = False
        self._client: PasClient | None = None
        self._connect_lock = asyncio.Lock()

    def socket_path(self) -> Path:
        return Path(self.socket).expanduser() if self.socket else paths.socket_path()

    async def set_socket(self, socket: str | None) -> None:
        if socket != self.socket:
            self.socket = socket
            await self.close()

    async def client(self, start: bool = True) -> PasClient:
        """A connected client; starts the daemon if none answers (and `start`)."""
        async with self._connect_lock:
            if self._client is not None and self._client.connected:
                return self._client
            if self._client is not None:
                await self._client.close()
                self._client = None
            client = PasClient(self.socket_path(), name="pas-lsp")
            try:
                await client.connect()
            except DaemonUnavailable:
                if not start:
                    raise
                await self._start_daemon()
                await client.connect()
            self._client = client
            return client

    async def _start_daemon(self) -> None:
        try:
            await ensure_daemon(quiet=True, socket=str(self.socket_path()) if self.socket else None)
        except PasError as exc:
            raise DaemonUnavailable(f"pasd is not running and could not be started: {exc.message}") from exc
        except OSError as exc:
            raise DaemonUnavailable(f"pasd is not running and could not be started: {exc}") from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def follow(self, on_up: Callable[[p.PoolStatus], Awaitable[None]],
                     on_event: Callable[[p.EventEnvelope], Awaitable[None]],
                     on_down: Callable[[str], Awaitable[None]]) -> None:
        """Follow the event stream until cancelled; reconnect with backoff."""
        delay = FIRST_RETRY_S
        first = True
        while True:
            reason = "the daemon closed the event stream"
            try:
                if first:
                    first = False
                    await self.client(start=True)
                async with EventStream(self.socket_path(), kinds=["task", "progress", "programmer", "job"]) as events:
                    delay = FIRST_RETRY_S
                    self.up = True
                    assert events.status is not None
                    await on_up(events.status)
                    async for env in events:
                        try:
                            await on_event(env)
                        except PasError as exc:
                            log.warning("handling %s: %s", env.event.kind, exc.message)
            except asyncio.CancelledError:
                raise
            except PasError as exc:
                reason = exc.message
            except (OSError, ValueError) as exc:
                reason = str(exc)
            except Exception:  # the follower must outlive any surprise
                log.exception("event follower")
                reason = "internal error in the event follower"
            if self.up or delay == FIRST_RETRY_S:
                self.up = False
                await on_down(reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_S)
