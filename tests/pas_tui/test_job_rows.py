"""Jobs in the task list: a job's tasks grouped under its row, live; `a`/`r` on the job row review the whole job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.pilot import Pilot
from tui_support import review_settled, wait_until

from daemon import protocol as p
from daemon.errors import GuardrailRefused
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, add_modules
from pas_tui import PasApp
from pas_tui.connection import JOB_PAGE
from pas_tui.widgets.review import ReviewPane
from pas_tui.widgets.task_list import TaskList

SIZE = (120, 40)


def row_keys(tasks: TaskList) -> list[str]:
    return [str(row.key.value) for row in tasks.table.ordered_rows]


async def submit_job(daemon: DaemonProcess, repo: Path, instruction: str = "add a note") -> p.JobInfo:
    async with daemon.client() as c:
        return await c.submit_job(p.JobSubmitParams(workspace=str(repo), instruction=instruction, files=["src"]))


async def grouped_in_review(pilot: Pilot[object], app: PasApp, job_id: str) -> TaskList:
    tasks = app.query_one(TaskList)
    await wait_until(pilot, lambda: job_id in tasks.jobs and tasks.jobs[job_id].state is p.JobState.REVIEW
                     and len(tasks.jobs[job_id].task_ids) == 3, what="the job in REVIEW")
    job = tasks.jobs[job_id]
    await wait_until(pilot, lambda: row_keys(tasks)[:4] == [job_id, *job.task_ids], what="the job's rows")
    return tasks


async def test_a_per_file_jobs_tasks_appear_under_the_job_and_a_applies_them_all(
        daemon: DaemonProcess, repo: Path) -> None:
    files = add_modules(repo, 3)
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.synced, what="the first sync")
        job = await submit_job(daemon, repo)  # while the app watches: grouping comes from the live events
        tasks = await grouped_in_review(pilot, app, job.id)
        assert all(tasks.tasks[t].job_id == job.id for t in tasks.jobs[job.id].task_ids)
        assert str(tasks.table.get_cell(job.id, "files")) == "job: 3 tasks"
        first = tasks.jobs[job.id].task_ids[0]
        assert str(tasks.table.get_cell(first, "id")) == f"└ {first}"

        tasks.table.move_cursor(row=0, animate=False)
        pane = app.query_one(ReviewPane)
        await wait_until(pilot, lambda: tasks.selected_job is not None and pane.shown_job is not None
                         and pane.shown_job.id == job.id and review_settled(app) and len(pane.hunks.views) == 3,
                         what="the job's combined diff in the review pane")
        assert pane.receipt.totals is not None and pane.receipt.totals.receipts == 3
        assert {v.hunk.path for v in pane.hunks.views} == set(files)

        await pilot.press("a")
        await wait_until(pilot, lambda: tasks.jobs[job.id].state is p.JobState.APPLIED, what="the job APPLIED")
        await wait_until(pilot, lambda: all(tasks.tasks[t].state is p.TaskState.APPLIED
                                            for t in tasks.jobs[job.id].task_ids), what="every task APPLIED")
    for f in files:
        assert (repo / f).read_text().startswith("# pas: add a note\n")


async def test_r_on_the_job_row_rejects_every_task(daemon: DaemonProcess, repo: Path) -> None:
    files = add_modules(repo, 3)
    before = {f: (repo / f).read_text() for f in files}
    async with daemon.client() as c:
        job = await c.wait_job((await submit_job(daemon, repo)).id)
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:  # grouping from the resync (task.list + job.list)
        tasks = await grouped_in_review(pilot, app, job.id)
        tasks.table.move_cursor(row=0, animate=False)
        await wait_until(pilot, lambda: tasks.selected_job is not None, what="the job row selected")
        await pilot.press("r")
        await wait_until(pilot, lambda: tasks.jobs[job.id].state is p.JobState.REJECTED, what="the job REJECTED")
    assert {f: (repo / f).read_text() for f in files} == before


def paging(app: PasApp) -> bool:
    return any(w.group in ("older", "older-jobs") and not w.is_finished for w in app.workers)


REFUSED_PLAN = "```json\n" + json.dumps({"tasks": [{"instruction": "escape", "files": ["../outside.py"]}]}) + "\n```"


async def test_jobs_older_than_the_first_page_of_jobs_are_read_in_their_place(
        daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    offline.set_rules([{"match": "### JOB PLAN", "content": REFUSED_PLAN}])

    async def taskless_job(instruction: str) -> p.JobInfo:  # its plan is refused: a job without tasks
        with pytest.raises(GuardrailRefused):
            await c.submit_job(p.JobSubmitParams(workspace=str(repo), instruction=instruction, files=["app.py"],
                                                 split="plan"))
        return (await c.jobs(p.JobListParams(limit=1)))[0]

    async with daemon.client() as c:
        ancient = await taskless_job("the oldest plan")
        old = await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction="an old task",
                                                          files=["app.py"]))).id)
        for i in range(JOB_PAGE + 2):
            await taskless_job(f"plan {i}")
        for i in range(3):
            await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction=f"task {i}",
                                                        files=["app.py"]))).id)
        every: list[p.TaskInfo | p.JobInfo] = [*await c.list(), *await c.jobs(p.JobListParams(limit=1000))]
    expected = [r.id for r in sorted(every, key=lambda r: r.created_at, reverse=True)]
    assert len(expected) == 4 + JOB_PAGE + 3 and expected[-2:] == [old.id, ancient.id]
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: app.synced and not paging(app), what="the first sync")
        assert tasks.next_jobs is not None and ancient.id not in tasks.jobs  # not read yet
        assert old.id in tasks.tasks and old.id not in row_keys(tasks)  # read, and waiting for the jobs of its age
        while tasks.next_jobs is not None:
            tasks.table.move_cursor(row=tasks.table.row_count - 1)
            await pilot.pause()
            await wait_until(pilot, lambda: not paging(app), what="the next page of jobs")
        assert row_keys(tasks) == expected  # every job once, in its place among the tasks by age
