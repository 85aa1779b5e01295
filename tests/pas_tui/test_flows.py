"""Submit form, filter, cancel, disconnect/reconnect, and the import boundary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Input, Select
from tui_support import run_to_review, wait_until

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess
from pas_tui import PasApp
from pas_tui.connection import Backoff
from pas_tui.widgets.banner import ConnectionBanner
from pas_tui.widgets.pool_panel import PoolPanel
from pas_tui.widgets.submit_form import SubmitForm
from pas_tui.widgets.task_list import TaskList

SIZE = (120, 40)
ROOT = Path(__file__).resolve().parents[2]


async def test_submit_form_creates_a_task(daemon: DaemonProcess, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASD_CONFIG", str(daemon.config_file))  # the TUI reads the same config as the daemon
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.synced, what="the first sync")
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SubmitForm), what="the submit form")
        form = app.screen
        assert isinstance(form, SubmitForm)
        assert form.choices == ["openai/pasd-offline", "openai/pasd-offline-b"]
        form.query_one("#model", Select).value = "openai/pasd-offline-b"
        await pilot.click("#files")
        await pilot.press(*"util.py")
        await pilot.click("#instruction")
        await pilot.press(*"document mul", "enter")
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: any(t.instruction == "document mul" for t in tasks.tasks.values()),
                         what="the new task in the list")
    async with daemon.client() as c:
        [task] = [t for t in await c.list() if t.instruction == "document mul"]
    assert task.files == ["util.py"] and task.model == "openai/pasd-offline-b"
    assert task.workspace == str(repo.resolve())


async def test_filter_by_state_and_text(daemon: DaemonProcess, repo: Path) -> None:
    done = await run_to_review(daemon, repo, instruction="document add")
    async with daemon.client() as c:
        await c.reject(p.ReviewParams(task_id=done.id))
    other = await run_to_review(daemon, repo, instruction="document sub")
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: tasks.table.row_count == 2, what="two rows")
        await pilot.press("slash", *"review")
        assert app.focused is tasks.query_one(Input)
        await wait_until(pilot, lambda: tasks.table.row_count == 1)
        assert tasks.selected is not None and tasks.selected.id == other.id
        await pilot.press("escape")
        await wait_until(pilot, lambda: tasks.table.row_count == 2)
        await pilot.press("slash", *"document add", "enter")
        await wait_until(pilot, lambda: tasks.table.row_count == 1)
        assert tasks.selected is not None and tasks.selected.id == done.id


async def test_the_review_filter_shows_a_conflict_too(daemon: DaemonProcess, repo: Path) -> None:
    clash = await run_to_review(daemon, repo, instruction="document add")
    (repo / "app.py").write_text("def add(a, b):  # my own edit\n    return b + a\n")
    async with daemon.client() as c:
        assert (await c.approve(p.ReviewParams(task_id=clash.id))).task.state is p.TaskState.CONFLICT
    waiting = await run_to_review(daemon, repo, instruction="document util", files=["util.py"])
    async with daemon.client() as c:
        applied = await c.approve(p.ReviewParams(task_id=waiting.id))
    assert applied.task.state is p.TaskState.APPLIED
    fresh = await run_to_review(daemon, repo, instruction="document sub", files=["util.py"])
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: tasks.table.row_count == 3, what="three rows")
        await pilot.press("slash", *"review")
        await wait_until(pilot, lambda: tasks.table.row_count == 2, what="the two tasks that need the user")
        assert {str(k.value) for k in tasks.table.rows} == {clash.id, fresh.id}


async def test_c_cancels_a_running_task(daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    offline.set_latency(30)
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.synced, what="the first sync")
        async with daemon.client() as c:
            task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="slow", files=["app.py"]))
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: task.id in tasks.tasks and tasks.selected is not None, what="the task")
        await pilot.press("c")
        await wait_until(pilot, lambda: tasks.tasks[task.id].state is p.TaskState.CANCELLED, what="CANCELLED")


async def test_daemon_restart_is_survived(daemon: DaemonProcess, repo: Path) -> None:
    app = PasApp(daemon.socket, workspace=repo, backoff=Backoff(initial=0.05, maximum=0.5))
    async with app.run_test(size=SIZE) as pilot:
        banner = app.query_one(ConnectionBanner)
        pool = app.query_one(PoolPanel)
        await wait_until(pilot, lambda: app.synced == 1, what="the first sync")
        assert not banner.is_down

        daemon.kill()  # a crash, not a polite shutdown
        await wait_until(pilot, lambda: banner.is_down, what="the disconnected banner")
        assert "disconnected — retrying" in str(banner.render())
        await pilot.press("a", "r", "c", "R")  # keys while down explain, never crash
        await wait_until(pilot, lambda: any("disconnected" in str(n.message) for n in app._notifications),
                         what="R explaining that the daemon is away")

        daemon.start()
        await wait_until(pilot, lambda: app.synced == 2 and not banner.is_down, what="resync after restart")
        assert len(pool.programmers) == daemon.workers
        # live again: a task submitted after the restart shows up from events
        task = await run_to_review(daemon, repo)
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: task.id in tasks.tasks and tasks.tasks[task.id].state is p.TaskState.REVIEW,
                         what="the new task, live")
        assert app.return_code is None and app.is_running


def test_never_imports_litellm_or_pygls() -> None:
    code = ("import sys, pas_tui, pas_tui.__main__, pas_tui.app\n"
            "from pas_tui.widgets import submit_form, receipts_screen, help_screen\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('litellm', 'pygls', 'lsprotocol'))\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


FIRST_SCREEN = """
import asyncio, sys, time
from pas_tui.app import PasApp

LATER = ("plotext", "textual_plotext", "pas_tui.widgets.help_screen", "pas_tui.widgets.submit_form")

async def main():
    app = PasApp(sys.argv[1])
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 60
        while app.synced < 1 and time.monotonic() < deadline:
            await pilot.pause(0.01)
        print("synced", app.synced)
        print("before", *[m for m in LATER if m in sys.modules])
        await pilot.press("R")
        while len(app.screen_stack) < 2 and time.monotonic() < deadline:
            await pilot.pause(0.01)
        print("after", type(app.screen).__name__, *[m for m in LATER if m in sys.modules])

asyncio.run(main())
"""


def test_the_main_screen_paints_without_the_chart_help_or_forms(daemon: DaemonProcess) -> None:
    """plotext, the help screen and the forms load when they first open, not before the first paint."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", FIRST_SCREEN, str(daemon.socket)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in out.stdout.splitlines())
    assert lines["synced"] == "1"
    assert lines["before"] == ""
    assert lines["after"] == "ReceiptsScreen plotext textual_plotext"
