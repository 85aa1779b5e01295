"""Retention: the stored diffs of long-reviewed tasks are removed; receipts and task summaries stay.

A task reviewed or ended (APPLIED, REJECTED, CANCELLED, FAILED) whose last change is older than the
cutoff loses its stored files (each one's base and proposed text: most of a store's size) and its
hunk states. Its task row stays, marked `pruned_at`, with its summary (files, lines, cost), and so do
its receipts, in the table and in the JSONL files. Tasks queued, running, in review or in conflict
are never touched, whatever their age.

The work runs in a thread on a connection of its own, in short transactions that check each task's
state again, so the daemon keeps serving and a task cannot change state under it. Freed pages go back
to the file system: by one VACUUM when a gc frees over a fifth of the file and nothing is queued
or running (which also turns on incremental vacuum in an older store), else in short incremental
steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from daemon import protocol as p
from daemon.store import Store

log = logging.getLogger(__name__)

DAY_S = 86400.0
REVIEWED = ("APPLIED", "REJECTED", "CANCELLED", "FAILED")
BATCH = 200  # tasks per transaction: a few ms of the write lock each
VACUUM_FRACTION = 0.2  # of the file's pages free before a full VACUUM
VACUUM_STEP = 256  # pages per incremental vacuum step: a short hold of the write lock
FIRST_RUN_S = 120.0  # the daily run starts this long after the daemon, not during its start
FIRST_RUN_ENV = "PASD_GC_FIRST_S"  # another delay (the tests use 0)


def first_delay() -> float:
    """FIRST_RUN_S, or the delay PASD_GC_FIRST_S names (a bad value is ignored)."""
    try:
        value = float(os.environ.get(FIRST_RUN_ENV, FIRST_RUN_S))
    except ValueError:
        return FIRST_RUN_S
    return value if 0 <= value <= DAY_S else FIRST_RUN_S
_IN = ",".join("?" * len(REVIEWED))


def _db_bytes(path: Path) -> int:
    total = 0
    for name in (path.name, path.name + "-wal"):
        with contextlib.suppress(OSError):
            total += (path.parent / name).stat().st_size
    return total


def _candidates(db: sqlite3.Connection, cutoff: float) -> list[str]:
    """Reviewed tasks older than the cutoff that still have stored changes or hunk states (read from the
    small keys of those tables: after the first gc they hold only the recent tasks)."""
    rows = db.execute(
        "SELECT t.id FROM (SELECT task_id FROM changes UNION SELECT task_id FROM hunk_states) AS k "
        f"JOIN tasks AS t ON t.id = k.task_id WHERE t.state IN ({_IN}) AND t.updated_at < ? ORDER BY t.seq",
        (*REVIEWED, cutoff))
    return [r[0] for r in rows]


@contextlib.contextmanager
def _write(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _measure(db: sqlite3.Connection, chunk: list[str], cutoff: float) -> tuple[list[str], int, int, int]:
    """Of these tasks, those still reviewed and older than the cutoff, with their files, hunk states and text size."""
    marks = ",".join("?" * len(chunk))
    # `+state`: look the ids up by key; the state index would scan every task in those states per batch
    still = [r[0] for r in db.execute(f"SELECT id FROM tasks WHERE id IN ({marks}) AND +state IN ({_IN}) "
                                      "AND updated_at < ?", (*chunk, *REVIEWED, cutoff))]
    if not still:
        return [], 0, 0, 0
    marks = ",".join("?" * len(still))
    n, size = db.execute(f"SELECT COUNT(*), COALESCE(SUM(length(base) + length(proposed)), 0) FROM changes "
                         f"WHERE task_id IN ({marks})", still).fetchone()
    h = db.execute(f"SELECT COUNT(*) FROM hunk_states WHERE task_id IN ({marks})", still).fetchone()[0]
    return still, int(n), int(h), int(size)


def collect(db_path: Path, keep_days: float, *, dry_run: bool = False, vacuum: bool = True,
            now: float | None = None, stop: threading.Event | None = None) -> p.GcResult:
    """Remove (or, dry, count) the stored diffs of reviewed tasks older than keep_days. Blocking."""
    cutoff = (time.time() if now is None else now) - keep_days * DAY_S
    before = _db_bytes(db_path)
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        ids = _candidates(db, cutoff)
        tasks = files = hunks = text = 0
        vacuumed = False
        stamp = time.time()
        for lo in range(0, len(ids), BATCH):
            if stop is not None and stop.is_set():
                break  # the daemon is stopping: what is done is committed, the rest waits for the next run
            with contextlib.nullcontext() if dry_run else _write(db):
                # inside the transaction: only tasks still reviewed and still old
                still, n, h, size = _measure(db, ids[lo:lo + BATCH], cutoff)
                tasks, files, hunks, text = tasks + len(still), files + n, hunks + h, text + size
                if dry_run or not still:
                    continue
                marks = ",".join("?" * len(still))
                db.execute(f"DELETE FROM changes WHERE task_id IN ({marks})", still)
                db.execute(f"DELETE FROM hunk_states WHERE task_id IN ({marks})", still)
                # the summary stays; updated_at too (it is the task's age, not the gc's)
                db.execute(f"UPDATE tasks SET info = json_set(info, '$.pruned_at', ?) "
                           f"WHERE id IN ({marks}) AND json_valid(info)", (stamp, *still))
        if not dry_run and tasks:
            vacuumed = _give_back(db, vacuum, stop)
    finally:
        db.close()
    after = _db_bytes(db_path)
    return p.GcResult(keep_days=keep_days, cutoff=cutoff, dry_run=dry_run, tasks=tasks, files=files,
                      hunk_states=hunks, text_bytes=text, db_bytes_before=before, db_bytes_after=after,
                      freed_bytes=max(0, before - after), vacuumed=vacuumed)


def _give_back(db: sqlite3.Connection, vacuum: bool, stop: threading.Event | None = None) -> bool:
    """Return free pages to the file system; True if that took a full VACUUM.

    A gc that frees a large part of the file (the first one on a long history) VACUUMs when nothing is
    queued or running: rewriting what is left is far quicker than moving it page by page, and it turns
    on incremental vacuum in a store made without it. Smaller runs (a day's worth) free their pages in
    short incremental steps, each its own transaction, and an older store keeps them for reuse."""
    free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    vacuumed = False
    if vacuum and pages and free / pages > VACUUM_FRACTION:
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect with this VACUUM
        db.execute("VACUUM")
        vacuumed = True
    elif int(db.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2:
        while int(db.execute("PRAGMA freelist_count").fetchone()[0]) > 0 and not (stop and stop.is_set()):
            db.execute(f"PRAGMA incremental_vacuum({VACUUM_STEP})").fetchall()
    with contextlib.suppress(sqlite3.OperationalError):  # a reader may hold the log; the next checkpoint trims it
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return vacuumed


class Retention:
    """Runs gc on request (`store.gc`) and, when `[store] keep_days` is set, once a day."""

    def __init__(self, store: Store, keep_days: Callable[[], float | None], idle: Callable[[], bool]) -> None:
        self.store = store
        self.keep_days = keep_days  # from the user's config only, re-read at each daily run
        self.idle = idle  # nothing queued or running: a full VACUUM may hold the write lock
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stop = threading.Event()

    async def run(self, keep_days: float, *, dry_run: bool = False) -> p.GcResult:
        async with self._lock:
            result = await asyncio.to_thread(collect, self.store.state_dir / "pasd.db", keep_days,
                                             dry_run=dry_run, vacuum=self.idle(), stop=self._stop)
        if result.tasks and not dry_run:
            log.info("gc: removed the stored diffs of %d tasks reviewed over %g days ago (%d files, %d bytes of "
                     "text); %d bytes freed%s", result.tasks, keep_days, result.files, result.text_bytes,
                     result.freed_bytes, " with a VACUUM" if result.vacuumed else "")
        return result

    def start(self) -> None:
        self._task = asyncio.create_task(self._daily(first_delay()), name="retention")

    async def _daily(self, delay: float) -> None:
        while True:
            await asyncio.sleep(delay)
            delay = DAY_S
            try:
                keep = self.keep_days()
                if keep is not None:
                    await self.run(keep)
            except Exception:  # the next day tries again; the daemon serves on
                log.exception("gc: the daily run failed")

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
