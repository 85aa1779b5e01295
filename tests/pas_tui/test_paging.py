"""The task list reads a long history a page at a time, against the real daemon."""

from __future__ import annotations

from pathlib import Path

from tui_support import wait_until

from daemon import protocol as p
from daemon.client import EventStream
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, occupy
from pas_tui import PasApp
from pas_tui.widgets.task_list import TaskList

SIZE = (120, 40)


async def test_older_pages_are_read_as_the_cursor_nears_the_end(make_daemon, offline: OfflineModel,
                                                                repo: Path) -> None:
    daemon: DaemonProcess = make_daemon(workers=1)
    offline.set_rules([{"match": "hang", "fault": "hang", "latency": 120}])
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["task"]) as events:
        await occupy(c, events, repo)  # the one programmer is busy: what follows stays queued
        for i in range(39):
            await c.submit(p.SubmitParams(workspace=str(repo), instruction=f"step {i}", files=["app.py"]))
        every = [t.id for t in await c.list(p.TaskListParams(limit=100))]
    assert len(every) == 40
    app = PasApp(daemon.socket, workspace=repo, page=5)
    async with app.run_test(size=SIZE) as pilot:
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: app.synced, what="the first sync")
        await wait_until(pilot, lambda: not any(w.group == "older" and not w.is_finished for w in app.workers),
                         what="the pages that fill the view")
        read = len(tasks.tasks)
        # enough pages to fill the view and a margin below it, not the whole history
        assert tasks.next_page is not None and 5 <= read < 40 and read % 5 == 0
        assert [str(k.value) for k in tasks.table.rows] == every[:read]
        while tasks.next_page is not None:
            tasks.table.move_cursor(row=tasks.table.row_count - 1)
            await pilot.pause()
            await wait_until(pilot, lambda: not any(w.group == "older" and not w.is_finished for w in app.workers),
                             what="the next page")
        # every task once, newest first, as the daemon lists them; the user's row kept its place
        assert [str(k.value) for k in tasks.table.rows] == every
        assert tasks.selected is not None and tasks.selected.id == every[tasks.table.cursor_row]
