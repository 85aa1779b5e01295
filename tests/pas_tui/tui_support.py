"""Helpers for driving PasApp with the Pilot against a real daemon (imported by the tests here)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.app import App
from textual.pilot import Pilot
from textual.worker import WorkerState

from daemon import protocol as p
from daemon.client import EventStream
from daemon.testing import DaemonProcess


async def wait_until(pilot: Pilot[object], cond: Callable[[], object], timeout: float = 120.0, what: str = "") -> None:
    """Let the app process messages until `cond()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}")
        await pilot.pause()


def review_settled(app: App[object]) -> bool:
    """No review load is pending or running (so what the pane shows is final)."""
    return not any(w.group == "review" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
                   for w in app.workers)


async def run_to_review(daemon: DaemonProcess, repo: Path, instruction: str = "document add",
                        files: list[str] | None = None) -> p.TaskInfo:
    """Submit a task through a plain client and wait on the event stream until it awaits review."""
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["task"]) as events:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction=instruction,
                                             files=files or ["app.py"],
                                             selection=p.Selection(path=(files or ["app.py"])[0], start_line=1,
                                                                   end_line=2)))
        async for env in events:
            ev = env.event
            if isinstance(ev, p.TaskEvent) and ev.task.id == task.id and not ev.task.state.active:
                assert ev.task.state is p.TaskState.REVIEW, ev.task
                return ev.task
    raise AssertionError("event stream closed")
