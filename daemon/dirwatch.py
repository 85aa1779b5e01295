"""Watches on single directories (watchfiles' notifier), for the review watcher and the repo map.

Each directory is watched alone, never a whole tree: a workspace may hold hundreds of thousands of
directories (an ignored node_modules or build tree), inotify's watches are shared with the user's
editor, and watchfiles registers a recursive watch holding the GIL — about 15 µs a directory,
seconds for a big tree, during which the daemon's event loop stops even if it runs in a thread.

A `DirWatch` collects every change from the moment `start` returns, including those made before
its first read, so a caller that registers a new watch before retiring the old one loses nothing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Iterable

ADDED = 1  # watchfiles.Change values (watchfiles is imported only when a watch starts)
MODIFIED = 2
DELETED = 3


class DirWatch:
    """One registration of watches on some directories, each alone, read in a thread."""

    TIMEOUT_MS = 500  # a wait ends at least this often, so a retired watch ends soon after

    def __init__(self, dirs: Iterable[str]) -> None:
        from watchfiles._rust_notify import RustNotify

        self.dirs = frozenset(dirs)
        self._notify = RustNotify(sorted(self.dirs), False, False, 300, False, True)
        self.stop = threading.Event()  # end now, dropping what is collected
        self.retired = False  # end after the current wait, its changes handed over
        self.failed = False  # set by its reader when the watch raised

    @classmethod
    async def start(cls, dirs: Iterable[str]) -> DirWatch:
        """Register the watches; raises what watchfiles raises (an inotify limit)."""
        return await asyncio.to_thread(cls, list(dirs))

    def close(self) -> None:
        """Close a watch that is never read."""
        self._notify.close()

    async def changes(self, debounce_ms: int = 50, step_ms: int = 20,
                      quiet: bool = False) -> AsyncGenerator[set[tuple[int, str]], None]:
        """Batches of (change, absolute path) until stopped or retired (with `quiet`, an empty batch
        after each TIMEOUT_MS without changes); closes the watch when done."""
        try:
            while not self.retired and not self.stop.is_set():
                raw = await asyncio.to_thread(self._notify.watch, debounce_ms, step_ms, self.TIMEOUT_MS, self.stop)
                if raw == "stop":
                    return
                if isinstance(raw, set) and (raw or quiet):
                    yield raw
                elif quiet and raw == "timeout":
                    yield set()
        finally:
            self._notify.close()
