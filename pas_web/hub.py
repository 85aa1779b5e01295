"""The dashboard's one link to the daemon: an event stream, a request client, a mirror of the pool,
tasks and jobs, and the browsers' event queues.

`Hub.run` follows the daemon forever: subscribe, then list (so no change falls between the snapshot
and the stream), fan every event out to the browsers, and on a lost daemon tell them, back off and
resynchronise once it answers again.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from typing import Any

from pydantic import BaseModel

from daemon import protocol as p
from daemon.client import EventStream, PasClient
from daemon.errors import PasError
from pas_web import charts

# The newest tasks held for the list, its filters and its pages; older ones stay in the store.
HISTORY = 10_000
FIRST = 500  # read first, so the page can be drawn before the rest of the history arrives
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

    def __init__(self, socket: str | os.PathLike[str] | None = None, *, history: int = HISTORY) -> None:
        self.client = PasClient(socket, name="pasd-web")
        self.socket = self.client.socket
        self.history = history
        self.connected = False
        self.reason = "connecting to the daemon"
        self.programmers: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.progress: dict[str, dict[str, Any]] = {}  # the last progress of each running task
        self.counts: Counter[str] = Counter()
        self._browsers: set[asyncio.Queue[str]] = set()
        self.synced = asyncio.Event()
        self.series: charts.Series | None = None  # the receipts charts' rows, read on the first look
        self._summary: p.ReceiptSummary | None = None
        self._early: list[p.Receipt] | None = None
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
        # Subscribe before listing, so no change falls between the snapshot and the stream. The newest
        # tasks come first, so the page can be drawn at once; the rest of the history follows.
        async with EventStream(self.socket) as stream:
            tasks = await self.client.list(p.TaskListParams(limit=min(FIRST, self.history)))
            jobs = await self.client.jobs(p.JobListParams(limit=100))
            status = await self.client.status()
            self.programmers = {pr.id: dump(pr) for pr in status.programmers}
            self.tasks = {t.id: dump(t) for t in reversed(tasks)}  # oldest first, as events add them
            self.jobs = {j.id: self._job(dump(j)) for j in reversed(jobs)}
            self.progress = {}
            self.counts = Counter(t["state"] for t in self.tasks.values())
            self.series, self._summary = None, None
            self.connected, self.reason = True, ""
            self.synced.set()
            self.broadcast({"type": "synced"})
            rest = asyncio.create_task(self._load_history(len(tasks)), name="pasd-web-history")
            try:
                async for env in stream:
                    self.apply(env)
            finally:
                rest.cancel()
                await asyncio.gather(rest, return_exceptions=True)

    async def _load_history(self, have: int) -> None:
        """The older tasks (up to `history`) behind the first page, merged under what events brought."""
        if have < FIRST or self.history <= FIRST:
            return
        older = await self.client.list(p.TaskListParams(limit=self.history))
        known = self.tasks
        merged = {t.id: dump(t) for t in reversed(older) if t.id not in known}
        merged.update(known)  # the newest, as events keep them, after the older ones
        while len(merged) > self.history:
            del merged[next(iter(merged))]
        self.tasks = merged
        self.counts = Counter(t["state"] for t in self.tasks.values())
        self.broadcast({"type": "synced"})

    async def charts(self) -> dict[str, Any]:
        """The receipts charts' data: the newest receipts, read once, then kept by events."""
        async with self._charts_lock:
            if self.series is None:
                self._early = []
                found = await self.client.receipts(p.ReceiptsParams(limit=charts.HELD))
                self.series = charts.Series(found)
                for r in self._early or []:
                    self.series.add(r)
                self._early = None
            if self._summary is None:
                self._summary = await self.client.receipts_summary(p.ReceiptsSummaryParams(by="model"))
            return self.series.data(self._summary)

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
            task = dump(ev.task)
            old = self.tasks.get(task["id"])
            self.tasks[task["id"]] = task  # an update keeps its place: the dict is in submission order
            if old is not None:
                self.counts[old["state"]] -= 1
            else:
                if len(self.tasks) > self.history:
                    oldest = next(iter(self.tasks))
                    self.counts[self.tasks.pop(oldest)["state"]] -= 1
            self.counts[task["state"]] += 1
            if not ev.task.state.active:
                self.progress.pop(task["id"], None)
            out["task"] = task
            out["counts"] = self.count_summary()
        elif isinstance(ev, p.ProgressEvent):
            self.progress[ev.task_id] = out["progress"] = dump(ev)
        elif isinstance(ev, p.ReceiptEvent):
            out["receipt"] = dump(ev.receipt)
            self._summary = None
            if self.series is not None:
                self.series.add(ev.receipt)
            elif self._early is not None:  # the receipts are being read: keep it for after
                self._early.append(ev.receipt)
        elif isinstance(ev, p.JobEvent):
            self.jobs[ev.job.id] = out["job"] = self._job(dump(ev.job))
        out["sent"] = time.time()  # with the daemon's `time`: where an event's delay goes (bench/web.py)
        self.broadcast(out)

    # ------------------------------------------------------------ views of the mirror

    def count_summary(self) -> dict[str, int]:
        return {s.value: self.counts.get(s.value, 0) for s in p.TaskState}

    def state(self) -> dict[str, Any]:
        return {"connected": self.connected, "reason": self.reason, "now": time.time(),
                "programmers": list(self.programmers.values()), "counts": self.count_summary(),
                "progress": self.progress, "jobs": sorted(self.jobs.values(), key=lambda j: -j["created_at"])[:100]}

    def page(self, *, states: set[str] | None = None, model: str | None = None, words: str = "",
             page: int = 0, per_page: int = 50) -> dict[str, Any]:
        """One page of the task list, newest first, filtered by state, model and words."""
        needles = [w.lower() for w in words.split() if w]

        def keep(t: dict[str, Any]) -> bool:
            if states and t["state"] not in states:
                return False
            if model and t["model"] != model:
                return False
            if needles:
                hay = " ".join((t["id"], t["instruction"], t.get("job_id") or "", " ".join(t["files"]))).lower()
                return all(n in hay for n in needles)
            return True

        found = [t for t in reversed(self.tasks.values()) if keep(t)]  # newest first
        pages = max(1, -(-len(found) // per_page))
        page = min(max(page, 0), pages - 1)
        return {"tasks": found[page * per_page:(page + 1) * per_page], "total": len(found), "page": page,
                "pages": pages, "per_page": per_page, "held": len(self.tasks), "history": self.history,
                "models": sorted({t["model"] for t in self.tasks.values()})}
