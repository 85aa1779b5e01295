"""Reviewing from the keyboard: `a`, `space` + `a`, `r`, and a CONFLICT that explains itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tui_support import run_to_review, wait_until

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.testing import BIG, TWO_HUNKS, DaemonProcess
from pas_tui import PasApp
from pas_tui.widgets.review import ReviewPane
from pas_tui.widgets.task_list import TaskList

SIZE = (120, 40)


async def open_review(pilot, app: PasApp, task: p.TaskInfo, hunks: int = 1) -> ReviewPane:
    pane = app.query_one(ReviewPane)
    await wait_until(pilot, lambda: app.query_one(TaskList).selected is not None
                     and app.query_one(TaskList).selected.id == task.id, what="the task selected")
    await wait_until(pilot, lambda: pane.shown_task is not None and pane.shown_task.id == task.id
                     and len(pane.hunks.views) == hunks, what=f"{hunks} hunk(s) in the review pane")
    return pane


def said(app: PasApp, text: str) -> bool:
    """Some toast so far reads `text`."""
    return any(text in str(n.message) for n in app._notifications)


async def test_a_on_a_review_task_changes_the_file(daemon: DaemonProcess, repo: Path) -> None:
    task = await run_to_review(daemon, repo, instruction="document add")
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        await open_review(pilot, app, task)
        await pilot.press("a")
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: tasks.tasks[task.id].state is p.TaskState.APPLIED, what="APPLIED")
        await wait_until(pilot, lambda: said(app, "approved hunk 1"), what="the toast")
    assert "# pas: document add" in (repo / "app.py").read_text()


async def test_space_then_a_applies_only_the_chosen_hunk(daemon: DaemonProcess, offline: OfflineModel,
                                                         repo: Path) -> None:
    (repo / "big.py").write_text(BIG)
    subprocess.run(["git", "add", "big.py"], cwd=repo, check=True)
    offline.script([{"content": TWO_HUNKS}])
    task = await run_to_review(daemon, repo, instruction="change first and last", files=["big.py"])
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_review(pilot, app, task, hunks=2)
        await pilot.press("n")  # to hunk 2 and back: the keys move the current hunk
        assert pane.hunks.current == 1
        await pilot.press("p", "space")
        assert pane.hunks.chosen == [1]
        await pilot.press("a")
        await wait_until(pilot, lambda: "return 100" in (repo / "big.py").read_text(), what="hunk 1 on disk")
        await wait_until(pilot, lambda: pane.hunks.views and pane.hunks.views[0].hunk.state is p.HunkState.APPLIED,
                         what="hunk 1 shown as applied")
    text = (repo / "big.py").read_text()
    assert "return 100" in text and "return 200" not in text and "return 2\n" in text
    async with daemon.client() as c:
        assert (await c.get(task.id)).state is p.TaskState.REVIEW  # hunk 2 still pending


async def test_r_rejects_and_leaves_the_file_untouched(daemon: DaemonProcess, repo: Path) -> None:
    before = (repo / "app.py").read_bytes()
    task = await run_to_review(daemon, repo)
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        await open_review(pilot, app, task)
        await pilot.press("r")
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: tasks.tasks[task.id].state is p.TaskState.REJECTED, what="REJECTED")
        await wait_until(pilot, lambda: said(app, "rejected hunk 1"), what="the toast")
        assert not said(app, "rejectd")
    assert (repo / "app.py").read_bytes() == before


async def test_approving_a_conflict_explains_why_it_cannot_apply(daemon: DaemonProcess, repo: Path) -> None:
    task = await run_to_review(daemon, repo, instruction="document add")
    mine = "def add(a, b):  # my own edit\n    return b + a\n\n\ndef sub(a, b):\n    return a - b\n"
    (repo / "app.py").write_text(mine)
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        pane = await open_review(pilot, app, task)
        await pilot.press("a")
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: tasks.tasks[task.id].state is p.TaskState.CONFLICT, what="CONFLICT")
        await wait_until(pilot, lambda: any("cannot apply" in str(n.message) for n in app._notifications),
                         what="a notification explaining the conflict")
        note = next(str(n.message) for n in app._notifications if "cannot apply" in str(n.message))
        assert "hunk 1 in app.py" in note
        await wait_until(pilot, lambda: pane.shown_task is not None and pane.shown_task.state is p.TaskState.CONFLICT,
                         what="the pane showing the conflict")
        # a second approve says why before retrying, and the user's file is never touched
        await pilot.press("a")
        await wait_until(pilot, lambda: any("retrying the merge" in str(n.message) for n in app._notifications))
    assert (repo / "app.py").read_text() == mine
