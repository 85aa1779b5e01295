"""`job.list` pages newest first with a keyset cursor, as `task.list` does: a real daemon."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.client import PasClient
from daemon.errors import GuardrailRefused, InvalidParams, NotFound
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess

# a plan naming a file outside the job's files: the job fails before it queues any task
REFUSED_PLAN = "```json\n" + json.dumps({"tasks": [{"instruction": "escape", "files": ["../outside.py"]}]}) + "\n```"


async def refused_jobs(c: PasClient, repo: Path, numbers: Iterable[int]) -> None:
    """Jobs "plan N" whose plan is refused: each is stored, task-less, at once."""
    for i in numbers:
        with pytest.raises(GuardrailRefused):
            await c.submit_job(p.JobSubmitParams(workspace=str(repo), instruction=f"plan {i}", files=["app.py"],
                                                 split="plan"))


async def test_job_pages_follow_the_cursor_to_the_oldest_job(daemon: DaemonProcess, offline: OfflineModel,
                                                             repo: Path) -> None:
    offline.set_rules([{"match": "### JOB PLAN", "content": REFUSED_PLAN}])
    async with daemon.client() as c:
        await refused_jobs(c, repo, range(5))
        every = await c.job_page(p.JobListParams())
        assert [j.instruction for j in every.jobs] == [f"plan {i}" for i in range(4, -1, -1)]
        assert every.next is None and all(j.tasks == [] for j in every.jobs)  # task-less jobs are listed too
        pages, before = [], None
        while True:
            page = await c.job_page(p.JobListParams(limit=2, before=before))
            pages.append([j.id for j in page.jobs])
            if page.next is None:
                break
            assert page.next == page.jobs[-1].id
            before = page.next
        assert pages == [[j.id for j in every.jobs[i:i + 2]] for i in (0, 2, 4)]
        # a job queued meanwhile goes on the first page and does not shift the pages after it
        await refused_jobs(c, repo, [5])
        later = await c.job_page(p.JobListParams(limit=2, before=pages[0][-1]))
        assert [j.id for j in later.jobs] == pages[1]
        with pytest.raises(InvalidParams, match="no job 'jnothing' to page from"):
            await c.job_page(p.JobListParams(before="jnothing"))


async def test_a_job_whose_stored_record_is_unreadable_is_left_out_and_the_daemon_goes_on(
        daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    async with daemon.client() as c:
        broken = await c.wait_job((await c.submit_job(p.JobSubmitParams(
            workspace=str(repo), instruction="note it", files=["app.py", "util.py"]))).id)
        kept = await c.wait_job((await c.submit_job(p.JobSubmitParams(
            workspace=str(repo), instruction="note again", files=["app.py"]))).id)
    daemon.stop()
    db = sqlite3.connect(daemon.state_dir / "jobs.db")
    with db:  # a damaged record, of a job the daemon would adopt at its start (still open)
        db.execute("UPDATE jobs SET record = ?, open = 1 WHERE id = ?", (f'{{"id": "{broken.id}", "work', broken.id))
    db.close()
    daemon.start()
    async with daemon.client() as c:
        assert [j.id for j in await c.jobs()] == [kept.id]
        with pytest.raises(NotFound, match=rf"job {broken.id}'s stored record cannot be read"):
            await c.job(broken.id)
        with pytest.raises(NotFound, match=rf"job {broken.id}'s stored record cannot be read"):
            await c.job(broken.id[:4])
        listed = {t.id for t in await c.list()}
        assert {t.id for t in broken.tasks} <= listed  # its tasks are still the user's to review
        assert (await c.status()).programmers
    db = sqlite3.connect(daemon.state_dir / "jobs.db")
    assert db.execute("SELECT open FROM jobs WHERE id = ?", (broken.id,)).fetchone() == (0,)  # never adopted again
    db.close()


async def test_an_unreadable_job_does_not_end_the_pages(daemon: DaemonProcess, offline: OfflineModel,
                                                       repo: Path) -> None:
    offline.set_rules([{"match": "### JOB PLAN", "content": REFUSED_PLAN}])
    async with daemon.client() as c:
        await refused_jobs(c, repo, range(4))
        ids = [j.id for j in await c.jobs()]  # newest first
    daemon.stop()
    db = sqlite3.connect(daemon.state_dir / "jobs.db")
    with db:
        db.execute("UPDATE jobs SET record = 'not json' WHERE id = ?", (ids[1],))
    db.close()
    daemon.start()
    async with daemon.client() as c:
        seen, before = [], None
        while True:
            page = await c.job_page(p.JobListParams(limit=2, before=before))
            seen += [j.id for j in page.jobs]
            if page.next is None:
                break
            before = page.next  # the unreadable job's id is a place to page on from, too
        assert seen == [ids[0], ids[2], ids[3]]
