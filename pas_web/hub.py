"""The dashboard's one link to the daemon: an event stream, a request client, a mirror of the pool
and jobs, and the browsers' event queues.

`Hub.run` follows the daemon forever: subscribe, then read the pool (so no change falls between the
snapshot and the stream), fan every event out to the browsers, and on a lost daemon tell them, back
off and resynchronise once it answers again. The task list is not mirrored: each page, filtered or
not, is one `task.list` call (keyset paging in the daemon's store); new and changed tasks reach the
shown page by events.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from pydantic import BaseModel

from daemon import protocol as p
from daemon.client import EventStream, PasClient
from daemon.errors import PasError
from pas_web import charts

PER_PAGE = 50
COUNTS_EVERY_S = 0.2  # the header's counts are read again at most this often while tasks change
QUEUE_MAX = 1_000  # events a slow browser may fall behind before it is told to resynchronise

# Names that carry secrets wherever they appear in a serialised model: never sent to a browser.
SECRET_NAMES = frozenset({"keys", "api_key", "apikey", "secret", "password", "authorization", "access_token"})


def scrub(value: Any) -> Any:
    """`value` (JSON data) without any field named like a secret, at any depth."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if str(k).lower() not in SECRET_NAMES}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def dump(model: BaseModel) -> Any:
    """A protocol model as JSON data for the browser, secrets removed."""
    return scrub(model.model_dump(mode="json"))


class Hub:
    """The mirror and the fan-out; one per `pasd web`."""

    def __init__(self, socket: str | os.PathLike[str] | None = None) -> None:
        self.client = PasClient(socket, name="pasd-web")
        self.socket = self.client.socket
        self.connected = False
        self.reason = "connecting to the daemon"
        self.programmers: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.progress: dict[str, dict[str, Any]] = {}  # the last progress of each running task
        self.counts: dict[str, int] = {}  # pool.status's global queued / running / review
        self.models: set[str] = set()  # for the model filter: configured, and seen on tasks
        self._browsers: set[asyncio.Queue[str]] = set()
        self.synced = asyncio.Event()
        self._recount = asyncio.Event()
        self._charts: dict[str, Any] | None = None  # the receipts charts' data, until a receipt arrives
        self._charts_lock = asyncio.Lock()

    # ------------------------------------------------------------ browsers

    def subscribe(self) -> asyncio.Queue[str]:
        q: asyncio.Queue[str] = asyncio.Queue(QUEUE_MAX)
        self._browsers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[str]) -> None:
        self._browsers.discard(q)

    def broadcast(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":"))
        for q in list(self._browsers):
            try:
                q.put_nowait(data)
            except asyncio.QueueFull:  # too far behind: drop its backlog, make it reload
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(json.dumps({"type": "synced"}))

    # ------------------------------------------------------------ the daemon

    async def run(self) -> None:
        """Follow the daemon until cancelled; never raises on a lost daemon."""
        delay = 0.2
        while True:
            try:
                await self._session()
                reason = "the daemon closed the connection"
            except PasError as exc:
                reason = exc.message
            except (OSError, ValueError) as exc:
                reason = str(exc) or type(exc).__name__
            was_up = self.connected
            self.connected, self.reason = False, reason
            self.synced.clear()
            await self.client.close()
            if was_up:
                delay = 0.2
            self.broadcast({"type": "lost", "reason": reason, "retry_in": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _session(self) -> None:
        # Subscribe before reading, so no change falls between the snapshot and the stream.
        async with EventStream(self.socket) as stream:
            jobs = await self.client.jobs(p.JobListParams(limit=100))
            status = await self.client.status()
            models = await self.client.models()
            self.programmers = {pr.id: dump(pr) for pr in status.programmers}
            self.jobs = {j.id: self._job(dump(j)) for j in reversed(jobs)}
            self.progress = {}
            self.counts = self._counts(status)
            self.models = {*models.choices, models.default}
            self._charts = None
            self.connected, self.reason = True, ""
            self.synced.set()
            self.broadcast({"type": "synced"})
            counter = asyncio.create_task(self._count(), name="pasd-web-counts")
            try:
                async for env in stream:
                    self.apply(env)
            finally:
                counter.cancel()
                await asyncio.gather(counter, return_exceptions=True)

    @staticmethod
    def _counts(status: p.PoolStatus) -> dict[str, int]:
        return {"QUEUED": status.queued, "RUNNING": status.running, "REVIEW": status.review}

    async def _count(self) -> None:
        """Read the daemon's counts again after tasks change (a burst of changes: once per COUNTS_EVERY_S)."""
        while True:
            await self._recount.wait()
            self._recount.clear()
            try:
                counts = self._counts(await self.client.status())
            except (PasError, OSError):  # the session notices a lost daemon and starts again
                await asyncio.sleep(COUNTS_EVERY_S)
                continue
            if counts != self.counts:
                self.counts = counts
                self.broadcast({"type": "counts", "counts": counts})
            await asyncio.sleep(COUNTS_EVERY_S)

    async def charts(self) -> dict[str, Any]:
        """The receipts charts' data over the whole history, summed by the daemon; read again only once a
        receipt has arrived since."""
        async with self._charts_lock:
            if self._charts is None:
                series = await self.client.receipt_series()
                summary = await self.client.receipts_summary(p.ReceiptsSummaryParams(by="model"))
                self._charts = charts.data(series, summary)
                self.models.update(m.model for m in series.models)
            return self._charts

    async def page(self, *, states: set[str] | None = None, model: str | None = None, words: str = "",
                   before: str | None = None, per_page: int = PER_PAGE) -> dict[str, Any]:
        """One page of the task list from the daemon, newest first, filtered by state, model and words;
        `before`: the `next` of the page before it. The total is counted on the first page only."""
        params = p.TaskListParams(states=[p.TaskState(s) for s in states] if states else None, model=model,
                                  text=words.strip() or None, before=before, limit=per_page, count=before is None)
        found = await self.client.task_page(params)
        self.models.update(t.model for t in found.tasks)
        return {"tasks": [dump(t) for t in found.tasks], "next": found.next, "total": found.total,
                "total_exact": found.total_exact,
                "per_page": per_page, "models": sorted(self.models)}

    @staticmethod
    def _job(job: dict[str, Any]) -> dict[str, Any]:
        job.pop("tasks", None)  # the tasks are in the task mirror; a job keeps their ids
        return job

    def apply(self, env: p.EventEnvelope) -> None:
        """Take one daemon event into the mirror and pass it on to the browsers."""
        ev = env.event
        out: dict[str, Any] = {"type": "event", "seq": env.seq, "time": env.time, "kind": ev.kind}
        if isinstance(ev, p.ProgrammerEvent):
            self.programmers[ev.programmer.id] = out["programmer"] = dump(ev.programmer)
        elif isinstance(ev, p.TaskEvent):
            out["task"] = dump(ev.task)
            self.models.add(ev.task.model)
            if not ev.task.state.active:
                self.progress.pop(ev.task.id, None)
            self._recount.set()
        elif isinstance(ev, p.ProgressEvent):
            self.progress[ev.task_id] = out["progress"] = dump(ev)
        elif isinstance(ev, p.ReceiptEvent):
            out["receipt"] = dump(ev.receipt)
            self._charts = None
        elif isinstance(ev, p.JobEvent):
            self.jobs[ev.job.id] = out["job"] = self._job(dump(ev.job))
        out["sent"] = time.time()  # with the daemon's `time`: where an event's delay goes (bench/web.py)
        self.broadcast(out)

    # ------------------------------------------------------------ views of the mirror

    def state(self) -> dict[str, Any]:
        return {"connected": self.connected, "reason": self.reason, "now": time.time(),
                "programmers": list(self.programmers.values()), "counts": self.counts,
                "progress": self.progress, "jobs": sorted(self.jobs.values(), key=lambda j: -j["created_at"])[:100]}
