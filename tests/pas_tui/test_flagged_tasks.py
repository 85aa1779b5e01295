"""Flagged results in pas-tui: a task in review whose check fails wears a red badge in its row and says
why beside its diff; the receipts screen rates each model's approved hunks after a review by hunk."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from textual.widgets import DataTable
from tui_support import review_settled, wait_until

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.testing import BIG, TWO_HUNKS, DaemonFactory, block, write_files
from pas_tui import PasApp
from pas_tui.widgets.receipts_screen import ReceiptsScreen
from pas_tui.widgets.review import ReviewPane
from pas_tui.widgets.review.receipt import receipt_table
from pas_tui.widgets.task_list import TaskList

SIZE = (140, 44)
EDIT = block("app.py", "def add(a, b):\n", "def add(a: int, b: int) -> int:\n")


async def test_a_task_whose_check_fails_is_badged_red_and_filtered_as_flagged(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(guardrails={"allow_commands": ["sh -c *"], "max_rounds": 0})
    offline.script([{"content": EDIT}, {"content": EDIT}])
    async with d.client() as c:
        bad = await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction="type add",
                                                          files=["app.py"], check="sh -c 'exit 3'"))).id)
        good = await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction="type add too",
                                                           files=["app.py"], check="sh -c 'exit 0'"))).id)
    assert bad.warnings == [p.CHECK_FAILED] and good.warnings == []
    app = PasApp(d.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: {bad.id, good.id} <= set(tasks.tasks), what="both tasks listed")
        bad_cell = tasks.table.get_cell(bad.id, "state")
        good_cell = tasks.table.get_cell(good.id, "state")
        assert (bad_cell.plain, str(bad_cell.style)) == ("REVIEW ⚠", "bold red")
        assert (good_cell.plain, str(good_cell.style)) == ("REVIEW", "bold magenta")

        await pilot.press("slash", *"flagged", "enter")
        await wait_until(pilot, lambda: tasks.table.row_count == 1, what="only the flagged task")
        assert tasks.table.get_row_at(0)[0] == bad.id
        pane = app.query_one(ReviewPane)
        await wait_until(pilot, lambda: review_settled(app) and pane.receipt.receipt is not None
                         and pane.receipt.receipt.task_id == bad.id, what="the flagged task's receipt")
        console = Console(file=io.StringIO(), width=60)
        console.print(receipt_table(pane.receipt.receipt))
        assert "flagged    check failed" in console.file.getvalue()  # type: ignore[attr-defined]


async def test_receipts_screen_rates_approved_hunks_per_model(make_daemon: DaemonFactory, offline: OfflineModel,
                                                              repo: Path) -> None:
    d = make_daemon()
    write_files(repo, {"big.py": BIG})
    offline.script([{"content": TWO_HUNKS}])
    async with d.client() as c:
        task = await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction="two changes",
                                                           files=["big.py"]))).id)
        await c.approve(p.ReviewParams(task_id=task.id, hunks=[1]))
    app = PasApp(d.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: task.id in app.query_one(TaskList).tasks, what="the task listed")
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, ReceiptsScreen), what="the receipts screen")
        table = app.screen.query_one("#quality", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, what="one model's quality")
        row = table.get_row_at(0)
        assert row[:5] == ["openai/pasd-offline", "1", "50% (1/2)", "-", "0"]
        assert row[5].startswith("$")  # one hunk still pending, one approved: the task counts as approved
