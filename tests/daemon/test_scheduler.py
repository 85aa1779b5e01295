"""The pool and the scheduler: parallel work, round robin, BUSY/IDLE/FAILED, cancel, restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

from daemon import protocol as p
from daemon.client import EventStream, PasClient
from daemon.errors import InvalidState
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, until_state


def params(repo: Path, path: str = "app.py", **kw: object) -> p.SubmitParams:
    return p.SubmitParams.model_validate({"workspace": str(repo), "instruction": "note it", "files": [path], **kw})


async def wait_all(c: PasClient, ids: list[str]) -> list[p.TaskInfo]:
    return list(await asyncio.gather(*(c.wait(i) for i in ids)))


async def test_eight_tasks_on_four_programmers_run_in_parallel(make_daemon: DaemonFactory, offline: OfflineModel,
                                                              repo: Path) -> None:
    d = make_daemon(workers=4)
    offline.set_latency(0.5)
    for i in range(8):
        (repo / f"m{i}.py").write_text(f"X{i} = {i}\n")
    async with d.client() as c:
        ids = [(await c.submit(params(repo, f"m{i}.py"))).id for i in range(8)]
        tasks = await wait_all(c, ids)
    assert all(t.state is p.TaskState.REVIEW for t in tasks)
    # round robin: every programmer got work, and nobody more than its share
    by_prog: dict[str, int] = {}
    for t in tasks:
        assert t.programmer is not None
        by_prog[t.programmer] = by_prog.get(t.programmer, 0) + 1
    assert sorted(by_prog) == [f"Programmer-0{i}" for i in range(1, 5)]
    assert set(by_prog.values()) == {2}
    # overlap: at some instant four tasks were running at once
    spans = [(t.started_at, t.finished_at) for t in tasks]
    assert all(s is not None and e is not None for s, e in spans)
    max_overlap = max(sum(1 for s2, e2 in spans if s2 <= s < e2) for s, _ in spans)  # type: ignore[operator]
    assert max_overlap == 4


async def test_status_busy_during_task_then_idle(daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    offline.set_latency(0.8)
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["programmer"]) as events:
        assert {pr.state for pr in events.status.programmers} == {p.ProgrammerState.IDLE}  # type: ignore[union-attr]
        task = await c.submit(params(repo))
        async for env in events:
            ev = env.event
            assert isinstance(ev, p.ProgrammerEvent)
            if ev.programmer.state is p.ProgrammerState.BUSY:
                break
        st = await c.status()
        busy = [pr for pr in st.programmers if pr.state is p.ProgrammerState.BUSY]
        assert len(busy) == 1 and busy[0].task_id == task.id and busy[0].model == "openai/pasd-offline"
        assert st.running == 1
        await c.wait(task.id)
        st = await c.status()
        assert all(pr.state is p.ProgrammerState.IDLE for pr in st.programmers)
        assert sum(pr.tasks_done for pr in st.programmers) == 1


async def test_engine_failure_marks_programmer_failed_then_idle(daemon: DaemonProcess, offline: OfflineModel,
                                                                repo: Path) -> None:
    # a connection reset: the programmer goes FAILED, recovers after its health check, and the task
    # is retried on another programmer
    offline.script([{"fault": "reset"}])
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["programmer"]) as events:
        task = await c.submit(params(repo))
        states: list[tuple[str, p.ProgrammerState]] = []
        async for env in events:
            ev = env.event
            assert isinstance(ev, p.ProgrammerEvent)
            states.append((ev.programmer.id, ev.programmer.state))
            failed = [pid for pid, s in states if s is p.ProgrammerState.FAILED]
            if failed and (failed[0], p.ProgrammerState.IDLE) in states[states.index((failed[0],
                                                                                      p.ProgrammerState.FAILED)):]:
                break
        done = await c.wait(task.id)
        assert done.state is p.TaskState.REVIEW and done.attempts == 2
        assert done.programmer != failed[0]
        st = await c.status()
        prog = next(pr for pr in st.programmers if pr.id == failed[0])
        assert prog.failures == 1 and prog.last_error and "connect" in prog.last_error.lower()
        receipts = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert sorted(r.outcome for r in receipts) == ["failed: connection", "review"]


async def test_cancel_queued_and_running(make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(workers=1)
    offline.set_latency(30)
    async with d.client() as c, EventStream(d.socket, kinds=["task"]) as events:
        running = await c.submit(params(repo))
        queued = await c.submit(params(repo, "util.py"))
        await until_state(events, running.id, p.TaskState.RUNNING)
        assert (await c.cancel(queued.id)).state is p.TaskState.CANCELLED
        assert (await c.cancel(running.id)).state is p.TaskState.CANCELLED
        st = await c.status()
        assert st.programmers[0].state is p.ProgrammerState.IDLE
        try:
            await c.cancel(running.id)
        except InvalidState as exc:
            assert "CANCELLED" in exc.message
        else:
            raise AssertionError("cancelling a cancelled task must fail")


async def test_restart_keeps_tasks_diffs_and_receipts(daemon: DaemonProcess, repo: Path) -> None:
    async with daemon.client() as c:
        task = await c.wait((await c.submit(params(repo))).id)
        diff = (await c.diff(task.id)).diff
        receipts = await c.receipts()
    daemon.restart()
    async with daemon.client() as c:
        again = await c.get(task.id)
        assert again.state is p.TaskState.REVIEW
        assert (await c.diff(task.id)).diff == diff
        assert await c.receipts() == receipts
        res = await c.approve(p.ReviewParams(task_id=task.id))
        assert res.task.state is p.TaskState.APPLIED
    assert "# pas: note it" in (repo / "app.py").read_text()


async def test_a_task_without_a_check_writes_nothing_while_it_runs(daemon: DaemonProcess, offline: OfflineModel,
                                                                   repo: Path) -> None:
    """Nothing runs in the tree of a task without a check: its files are edited in memory, so no
    snapshot is written (and none is left behind by a kill)."""
    offline.set_latency(30)
    before = {p.name: p.read_text() for p in repo.iterdir() if p.is_file()}
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["progress"]) as events:
        task = await c.submit(params(repo))
        async for env in events:
            ev = env.event
            if isinstance(ev, p.ProgressEvent) and ev.task_id == task.id and ev.phase == "model":
                break
        worktrees = daemon.state_dir / "worktrees"
        assert not worktrees.exists() or not any(worktrees.iterdir())
        offline.set_latency(0)
        done = await c.wait(task.id)
    assert done.state is p.TaskState.REVIEW and done.lines_added > 0
    assert {p.name: p.read_text() for p in repo.iterdir() if p.is_file()} == before


async def test_sigkill_mid_task_requeues_and_completes(make_daemon: DaemonFactory, offline: OfflineModel,
                                                       repo: Path) -> None:
    daemon = make_daemon(pool={"snapshot": "worktree"})  # a tree on disk, for the kill to leave behind
    offline.set_latency(30)
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["progress"]) as events:
        task = await c.submit(params(repo))
        async for env in events:
            ev = env.event
            if isinstance(ev, p.ProgressEvent) and ev.phase == "model":
                break  # the snapshot exists and the model call is under way
    daemon.kill()
    worktrees = daemon.state_dir / "worktrees"
    assert any(worktrees.iterdir())  # the killed daemon left its snapshot behind
    offline.set_latency(0)
    daemon.start()
    async with daemon.client() as c:
        done = await c.wait(task.id)
        assert done.state is p.TaskState.REVIEW and done.attempts == 2
        receipts = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert [r.attempt for r in receipts] == [2]  # the killed attempt never finished: no receipt
    assert not any(worktrees.iterdir())
