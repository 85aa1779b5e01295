"""The link to the daemon: one event stream, one request client, reconnect with backoff.

`Link.run` is the body of the app's single event-stream worker. It never raises on a lost
daemon: it reports `Lost`, waits with exponential backoff and, once the daemon answers again,
resynchronises (`task.list`, `job.list` and `pool.status`) and reports `Synced`.

A resync asks for the newest page of tasks only (`PAGE`), and the newest few jobs plus any job
one of those tasks belongs to: however long the history, the first paint builds a page of rows.
The task list asks for older pages (of tasks, of jobs, of a filter's matches) as the user scrolls
down to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from textual.message import Message

from daemon import protocol as p
from daemon.client import EventStream, PasClient
from daemon.errors import DaemonUnavailable, NotFound, PasError
from pas_tui.query import Query

ClientFactory = Callable[[], PasClient]

PAGE = 100  # tasks per page: more than a tall terminal shows
JOB_PAGE = 20  # the newest jobs at a resync (a job of a listed task is asked for by its id)


@dataclass
class Synced(Message):
    """Connected (or reconnected): the full state to replace whatever was shown."""

    status: p.PoolStatus
    tasks: list[p.TaskInfo]
    jobs: list[p.JobInfo] = field(default_factory=list)
    next: str | None = None  # the cursor of the older tasks (None: `tasks` is all there is)
    jobs_next: str | None = None  # the cursor of the jobs older than the newest JOB_PAGE


@dataclass
class Lost(Message):
    """The daemon went away; the link retries after `retry_in` seconds."""

    reason: str
    retry_in: float


@dataclass
class DaemonEvent(Message):
    """One event from the daemon's stream."""

    envelope: p.EventEnvelope


@dataclass
class Backoff:
    """Exponential reconnect delays; reset once a connection succeeds."""

    initial: float = 0.2
    maximum: float = 5.0
    factor: float = 2.0


class Link:
    """Owns the request client; the app's event worker runs `run`."""

    def __init__(self, socket: str | os.PathLike[str] | None = None, *,
                 client_factory: ClientFactory | None = None, backoff: Backoff | None = None,
                 page: int = PAGE) -> None:
        self._factory = client_factory or (lambda: PasClient(socket, name="pas-tui"))
        self.backoff = backoff or Backoff()
        self.page = page
        self._client: PasClient | None = None
        self._synced = False
        self.socket: Path = self._factory().socket

    @property
    def client(self) -> PasClient:
        """The connected request client; DaemonUnavailable while disconnected."""
        if self._client is None or not self._client.connected:
            raise DaemonUnavailable("disconnected from pasd — retrying")
        return self._client

    async def run(self, post: Callable[[Message], object]) -> None:
        """Follow the daemon forever: stream events, and reconnect when it goes away."""
        delay = self.backoff.initial
        try:
            while True:
                try:
                    await self._session(post)
                    reason = "the daemon closed the connection"
                except PasError as exc:
                    reason = exc.message
                except (OSError, ValueError) as exc:  # socket errors, a torn JSON line
                    reason = str(exc) or type(exc).__name__
                await self._drop_client()
                if self._synced:  # it was up: retry soon, then back off again
                    delay, self._synced = self.backoff.initial, False
                post(Lost(reason, delay))
                await asyncio.sleep(delay)
                delay = min(delay * self.backoff.factor, self.backoff.maximum)
        finally:
            await self._drop_client()

    async def _session(self, post: Callable[[Message], object]) -> None:
        client = await self._factory().connect()
        self._client = client
        # Subscribe before listing, so no change falls between the snapshot and the stream.
        async with EventStream(client.socket) as stream:
            page = await client.task_page(p.TaskListParams(limit=self.page))
            job_page = await client.job_page(p.JobListParams(limit=JOB_PAGE))
            jobs = job_page.jobs + await self.jobs_of(page.tasks, {j.id for j in job_page.jobs})
            status = await client.status()
            post(Synced(status, page.tasks, jobs, page.next, job_page.next))
            self._synced = True
            async for envelope in stream:
                post(DaemonEvent(envelope))

    async def older(self, before: str) -> p.TaskList:
        """The page of tasks queued before the task `before`."""
        return await self.client.task_page(p.TaskListParams(limit=self.page, before=before))

    async def older_jobs(self, before: str) -> p.JobList:
        """The page of jobs made before the job `before`."""
        return await self.client.job_page(p.JobListParams(limit=JOB_PAGE, before=before))

    async def find(self, query: Query, before: str | None = None) -> p.TaskList:
        """A page of the tasks matching `query`, newest first (the first page also counts them)."""
        return await self.client.task_page(query.params(self.page, before))

    async def jobs_of(self, tasks: list[p.TaskInfo], known: set[str]) -> list[p.JobInfo]:
        """The jobs these tasks belong to that are not in `known` (one gone meanwhile is left out)."""
        jobs = []
        for job_id in dict.fromkeys(t.job_id for t in tasks if t.job_id and t.job_id not in known):
            with contextlib.suppress(NotFound):
                jobs.append(await self.client.job(job_id))
        return jobs

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
