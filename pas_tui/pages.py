"""What the task list asks of the daemon: older pages of tasks and jobs, and the filter's matches.

Each request runs as a worker of the app, one at a time per kind (`GROUPS`); its answer goes back to
the list, which drops any answer to a page or search it has moved on from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from daemon.errors import PasError
from pas_tui.connection import Link
from pas_tui.query import Query
from pas_tui.widgets.task_list import TaskList

SEARCH_DELAY = 0.25  # seconds of no typing before the filter asks the daemon


class Pages:
    """The requests behind the task list's `NeedOlder`, `Search` and `Recount`."""

    def __init__(self, link: Link, tasks: TaskList) -> None:
        self.link = link
        self.tasks = tasks

    def for_message(self, msg: TaskList.NeedOlder | TaskList.Search | TaskList.Recount
                    ) -> tuple[str, Coroutine[Any, Any, None]]:
        """(worker group, request) for one of the list's messages."""
        if isinstance(msg, TaskList.Search):
            return "search", self.search(msg.query, msg.search, msg.at_once)
        if isinstance(msg, TaskList.Recount):
            return "found-count", self.count(msg.query, msg.search)
        if msg.what == "jobs":
            return "older-jobs", self.older_jobs(msg.before)
        if msg.what == "found":
            return "older-found", self.older_found(msg.search, msg.before)
        return "older", self.older(msg.before)

    async def older(self, before: str) -> None:
        """The next older page of tasks, and the jobs of its tasks that the list does not have."""
        try:
            page = await self.link.older(before)
            jobs = await self.link.jobs_of(page.tasks, set(self.tasks.jobs))
        except PasError:
            self.tasks.older_failed(before)  # disconnected: the resync starts from the newest page again
            return
        self.tasks.add_older(before, page.tasks, jobs, page.next)

    async def older_jobs(self, before: str) -> None:
        """The next older page of jobs."""
        try:
            page = await self.link.older_jobs(before)
        except PasError:
            self.tasks.older_failed(before, "jobs")
            return
        self.tasks.add_older_jobs(before, page.jobs, page.next)

    async def search(self, query: Query, search: int, at_once: bool = False) -> None:
        """The first page of the filter's matches, once typing pauses. A newer search cancels this one;
        an answer that still comes late is dropped by the list, which knows the search it asked for last."""
        if not at_once:
            await asyncio.sleep(SEARCH_DELAY)
        try:
            page = await self.link.find(query)
            jobs = await self.link.jobs_of(page.tasks, set(self.tasks.jobs))
        except PasError as exc:
            self.tasks.search_failed(search, exc.message)
            return
        except ValueError as exc:  # the request itself is refused before it is sent (pydantic)
            self.tasks.search_failed(search, str(exc).splitlines()[0])
            return
        self.tasks.add_found(search, None, page, jobs)

    async def count(self, query: Query, search: int) -> None:
        """Count the filter's matches again, once a burst of events is over."""
        await asyncio.sleep(SEARCH_DELAY)
        events = self.tasks.found.events if self.tasks.found else 0
        try:
            page = await self.link.client.task_page(query.params(1))
        except PasError:
            return  # the count shown stays; a resync asks again
        self.tasks.set_total(search, events, page.total, page.total_exact)

    async def older_found(self, search: int, before: str) -> None:
        """The next older page of the filter's matches."""
        try:
            page = await self.link.find(self.tasks.filter_query, before)
            jobs = await self.link.jobs_of(page.tasks, set(self.tasks.jobs))
        except PasError:
            self.tasks.older_failed(before, "found")
            return
        self.tasks.add_found(search, before, page, jobs)
