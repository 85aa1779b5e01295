"""PasApp with the Pilot against the real daemon and the offline model."""

from __future__ import annotations

from pathlib import Path

from tui_support import wait_until

from daemon import protocol as p
from daemon.client import EventStream
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, block, occupy, until_state
from pas_tui import PasApp
from pas_tui.widgets.pool_panel import PoolPanel
from pas_tui.widgets.task_list import TaskList

SIZE = (120, 40)


async def test_pool_goes_busy_then_idle_as_a_task_runs(make_daemon, offline: OfflineModel, repo: Path) -> None:
    daemon: DaemonProcess = make_daemon(workers=2)
    offline.set_latency(1.0)
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        pool = app.query_one(PoolPanel)
        await wait_until(pilot, lambda: len(pool.programmers) == 2, what="the pool snapshot")
        assert all(i.state is p.ProgrammerState.IDLE for i in pool.programmers.values())
        async with daemon.client() as c:
            task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="explain", files=["app.py"]))
        await wait_until(pilot, lambda: any(i.state is p.ProgrammerState.BUSY and i.task_id == task.id
                                            for i in pool.programmers.values()), what="a BUSY programmer")
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: tasks.tasks[task.id].state is p.TaskState.RUNNING, what="RUNNING")
        await wait_until(pilot, lambda: all(i.state is p.ProgrammerState.IDLE for i in pool.programmers.values()),
                         what="every programmer IDLE again")
        await wait_until(pilot, lambda: tasks.tasks[task.id].state is p.TaskState.REVIEW, what="REVIEW")
        assert sum(i.tasks_done for i in pool.programmers.values()) == 1


async def test_queued_running_and_review_counts_follow_the_events(make_daemon, offline: OfflineModel,
                                                                   repo: Path) -> None:
    daemon: DaemonProcess = make_daemon(workers=1)
    # a rule, not a script entry: the blocker may be cancelled before its request reaches the model
    offline.set_rules([{"match": "hang", "fault": "hang", "latency": 120}])
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        pool = app.query_one(PoolPanel)
        await wait_until(pilot, lambda: app.synced, what="the first sync")
        assert pool.border_subtitle == "0 queued · 0 running · 0 in review"

        def counts(queued: int, running: int, review: int) -> bool:
            return pool.border_subtitle == f"{queued} queued · {running} running · {review} in review"

        async with daemon.client() as c, EventStream(daemon.socket, kinds=["task"]) as events:
            blocker = await occupy(c, events, repo)
            await wait_until(pilot, lambda: counts(0, 1, 0), what="one running")
            waiting = await c.submit(p.SubmitParams(workspace=str(repo), instruction="next", files=["util.py"]))
            await wait_until(pilot, lambda: counts(1, 1, 0), what="one queued behind it")
            await c.cancel(blocker)
            await until_state(events, waiting.id, p.TaskState.REVIEW)
            await wait_until(pilot, lambda: counts(0, 0, 1), what="one in review")
            await c.reject(p.ReviewParams(task_id=waiting.id))
            await wait_until(pilot, lambda: counts(0, 0, 0), what="none in review")
        # the live counts agree with the daemon's own
        async with daemon.client() as c:
            status = await c.status()
        assert (pool.queued, pool.running, pool.review) == (status.queued, status.running, status.review)


async def test_the_pool_panel_counts_a_streaming_reply_live(make_daemon, offline: OfflineModel, repo: Path) -> None:
    daemon: DaemonProcess = make_daemon(workers=1)
    edit = block("app.py", "def add(a, b):\n", "def add(a, b):  # +\n")
    answer = "".join(f"reasoning step {i}\n" for i in range(60)) + edit
    offline.script([{"content": answer, "completion_tokens": 222, "chunk_latency": 0.05}])
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        pool = app.query_one(PoolPanel)
        await wait_until(pilot, lambda: len(pool.programmers) == 1, what="the pool snapshot")
        async with daemon.client() as c:
            task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="explain", files=["app.py"]))
        shown: list[str] = []

        def cell() -> str:
            value = str(pool.get_cell("Programmer-01", "tokens"))
            if value and (not shown or shown[-1] != value):
                shown.append(value)
            return value

        def grown() -> bool:
            cell()
            live = [int(v[1:]) for v in shown if v.startswith("~")]
            return len(live) >= 2 and live[0] < live[-1]

        await wait_until(pilot, grown, what=f"a growing count (shown: {shown})")
        live = [int(v[1:]) for v in shown if v.startswith("~")]
        assert live == sorted(live) and len(live) == len(shown), shown  # estimated while the reply streams
        assert pool.programmers["Programmer-01"].task_id == task.id
        await wait_until(pilot, lambda: pool.programmers["Programmer-01"].state is p.ProgrammerState.IDLE,
                         what="IDLE again")
        assert str(pool.get_cell("Programmer-01", "tokens")) == ""  # the count went with the task
