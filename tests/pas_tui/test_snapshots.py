"""Snapshots of the main screen and the receipts screen, fed by a real daemon.

The data comes from real tasks; only what changes from run to run is pinned: the random
task id, the clock the ages are measured against, and the timings in the receipts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input
from tui_support import review_settled, run_to_review, wait_until

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess
from pas_tui import PasApp
from pas_tui.widgets.receipts_screen import ReceiptsScreen
from pas_tui.widgets.review import ReviewPane
from pas_tui.widgets.task_list import TaskList

SIZE = (120, 40)
NOON = 1_779_969_600.0  # 2026-05-28 12:00 UTC: the same calendar day in every time zone from UTC-11 to UTC+11

EDIT = """Type hints.

app.py
```python
<<<<<<< SEARCH
def sub(a, b):
    return a - b
=======
def sub(a: int, b: int) -> int:
    return a - b
>>>>>>> REPLACE
```
"""


def pinned(r: p.Receipt, created_at: float) -> p.Receipt:
    return r.model_copy(update={"created_at": created_at, "wall_s": 1.25, "llm_s": 0.5, "task_id": "0a1b2c"})


def no_blink(pilot: Pilot[object]) -> None:
    for widget in pilot.app.query(Input):
        widget.cursor_blink = False


def test_main_screen(snap_compare, make_daemon, offline: OfflineModel, repo: Path) -> None:
    daemon: DaemonProcess = make_daemon(workers=2)
    offline.script([{"content": EDIT, "prompt_tokens": 321, "completion_tokens": 45}])
    task = asyncio.run(run_to_review(daemon, repo, instruction="add type hints to sub"))
    app = PasApp(daemon.socket, workspace=repo, clock=lambda: task.created_at + 95)

    async def settle(pilot: Pilot[object]) -> None:
        pane = app.query_one(ReviewPane)
        await wait_until(pilot, lambda: review_settled(app) and pane.receipt.receipt is not None
                         and len(pane.hunks.views) == 1, what="the review pane with its receipt")
        assert pane.receipt.receipt is not None
        pane.receipt.show(pinned(pane.receipt.receipt, NOON))
        app.query_one(TaskList).table.update_cell(task.id, "id", "0a1b2c")
        no_blink(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_receipts_screen(snap_compare, daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    # both replies' usage fixed: a default one follows the prompt's length, which the prompt's layout changes
    offline.script([{"content": EDIT, "prompt_tokens": 1200, "completion_tokens": 300},
                    {"prompt_tokens": 800, "completion_tokens": 200}])

    async def two_tasks() -> list[p.Receipt]:
        await run_to_review(daemon, repo, instruction="one")
        async with daemon.client() as c:
            t = await c.submit(p.SubmitParams(workspace=str(repo), instruction="two", files=["util.py"],
                                              model="openai/pasd-offline-b"))
            await c.wait(t.id)
            return sorted(await c.receipts(), key=lambda r: r.created_at)

    receipts = asyncio.run(two_tasks())
    assert len(receipts) == 2
    fixed = [pinned(r, NOON - 86_400 * (len(receipts) - i)) for i, r in enumerate(receipts)]
    app = PasApp(daemon.socket, workspace=repo)

    async def open_screen(pilot: Pilot[object]) -> None:
        await wait_until(pilot, lambda: app.synced, what="the first sync")
        await app.push_screen(ReceiptsScreen(fixed))

    assert snap_compare(app, terminal_size=SIZE, run_before=open_screen)


def test_help_screen(snap_compare, daemon: DaemonProcess, repo: Path) -> None:
    app = PasApp(daemon.socket, workspace=repo)

    async def synced(pilot: Pilot[object]) -> None:
        await wait_until(pilot, lambda: app.synced, what="the first sync")

    assert snap_compare(app, press=["question_mark"], terminal_size=SIZE, run_before=synced)
