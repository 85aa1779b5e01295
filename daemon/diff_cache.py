"""The diffs of tasks' stored changes, computed once and kept in a bounded LRU.

A task's stored changes (base and proposed text of each file) do not change once stored, so
its hunks need computing only once; review state (applied, rejected, stale) is laid over copies
of them on every read. Each entry carries a fingerprint of the changes, so a task stored again
(a new attempt) is diffed again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from daemon.programmer.diffs import file_diff
from daemon.protocol import FileDiff
from daemon.store import Change

FileDiffs = list[tuple[FileDiff, str]]
Fingerprint = tuple[tuple[str, bool, int, int, int, int], ...]


def diff_changes(changes: list[Change]) -> FileDiffs:
    """Each file's FileDiff (hunk ids numbered across the task, from 1) and unified text."""
    out: FileDiffs = []
    next_id = 1
    for ch in changes:
        fd, text = file_diff(ch.path, ch.base, ch.proposed, next_id, created=ch.created)
        next_id += len(fd.hunks)
        out.append((fd, text))
    return out


class DiffCache:
    """Per task, its FileDiffs; least recently used tasks go first past `max_bytes` or `max_tasks`."""

    def __init__(self, max_bytes: int = 64 << 20, max_tasks: int = 512) -> None:
        self.max_bytes = max_bytes
        self.max_tasks = max_tasks
        self._entries: OrderedDict[str, tuple[Fingerprint, FileDiffs, int]] = OrderedDict()
        self._bytes = 0
        self._pending: dict[tuple[str, Fingerprint], asyncio.Future[FileDiffs]] = {}
        self.hits = self.misses = 0

    @staticmethod
    def fingerprint(changes: list[Change]) -> Fingerprint:
        return tuple((c.path, c.created, len(c.base), len(c.proposed), hash(c.base), hash(c.proposed))
                     for c in changes)

    def get(self, task_id: str, changes: list[Change]) -> FileDiffs | None:
        entry = self._entries.get(task_id)
        if entry is None or entry[0] != self.fingerprint(changes):
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(task_id)
        return entry[1]

    async def load(self, task_id: str, changes: list[Change]) -> FileDiffs:
        """The task's diffs, from the cache or computed in a worker thread (off the event loop).

        Callers asking for the same task meanwhile share one computation; it is cached when it
        ends, even if every caller has gone.
        """
        cached = self.get(task_id, changes)
        if cached is not None:
            return cached
        key = (task_id, self.fingerprint(changes))
        fut = self._pending.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().run_in_executor(None, diff_changes, changes)
            self._pending[key] = fut
            fut.add_done_callback(lambda f: self._settle(key, changes, f))
        return await asyncio.shield(fut)

    def _settle(self, key: tuple[str, Fingerprint], changes: list[Change], fut: asyncio.Future[FileDiffs]) -> None:
        self._pending.pop(key, None)
        if not fut.cancelled() and fut.exception() is None:
            self.put(key[0], changes, fut.result())

    def put(self, task_id: str, changes: list[Change], diffs: FileDiffs) -> FileDiffs:
        old = self._entries.pop(task_id, None)
        if old is not None:
            self._bytes -= old[2]
        # the unified text, each hunk's text and its old/new lines: about three times the text
        size = 3 * sum(len(text) for _, text in diffs) + 512
        if size > self.max_bytes:
            return diffs  # larger than the whole cache: serve it, keep nothing
        self._entries[task_id] = (self.fingerprint(changes), diffs, size)
        self._bytes += size
        while self._bytes > self.max_bytes or len(self._entries) > self.max_tasks:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped
        return diffs
