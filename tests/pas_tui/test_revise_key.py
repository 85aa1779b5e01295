"""`v` on a task in review: asks for a comment and sends the proposal back, about the chosen hunks."""

from __future__ import annotations

from pathlib import Path

from test_review_keys import SIZE, open_review
from tui_support import run_to_review, wait_until

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess
from pas_tui import PasApp
from pas_tui.widgets.review import ReviewPane
from pas_tui.widgets.review.pane import summary
from pas_tui.widgets.revise_form import ReviseForm
from pas_tui.widgets.task_list import TaskList


def keys(text: str) -> list[str]:
    return ["space" if ch == " " else ch for ch in text]


async def test_v_asks_for_a_comment_and_the_task_comes_back_revised(daemon: DaemonProcess, offline: OfflineModel,
                                                                     repo: Path) -> None:
    task = await run_to_review(daemon, repo, instruction="document add")
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        await open_review(pilot, app, task)
        await pilot.press("space", "v")  # hunk 1 chosen: the comment is about it
        await wait_until(pilot, lambda: isinstance(app.screen, ReviseForm), what="the revise form")
        assert isinstance(app.screen, ReviseForm) and app.screen.hunks == [1]
        await pilot.press("enter")  # an empty comment is not sent
        assert isinstance(app.screen, ReviseForm)
        await pilot.press(*keys("also handle None"), "enter")
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: tasks.tasks[task.id].revision == 1
                         and tasks.tasks[task.id].state is p.TaskState.REVIEW, what="revision 1 in review")
        pane = app.query_one(ReviewPane)
        await wait_until(pilot, lambda: pane.shown_task is not None and pane.shown_task.revision == 1,
                         what="the review pane on the revised proposal")
        assert "+2 -0  ·  revision 1" in summary(pane.shown_task).plain
    request = offline.requests[-1]["messages"][-1]["content"]
    assert "### INSTRUCTION\nalso handle None" in request and "+# pas: document add" in request  # hunk 1 quoted
    async with daemon.client() as c:
        diff = (await c.diff(task.id)).diff
    assert "+# pas: also handle None" in diff and "+# pas: document add" in diff


async def test_v_on_a_task_not_in_review_says_so(daemon: DaemonProcess, repo: Path) -> None:
    task = await run_to_review(daemon, repo)
    async with daemon.client() as c:
        await c.reject(p.ReviewParams(task_id=task.id))
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: tasks.selected is not None and tasks.selected.id == task.id
                         and tasks.selected.state is p.TaskState.REJECTED, what="the rejected task selected")
        await pilot.press("v")
        await wait_until(pilot, lambda: any("not awaiting review" in str(n.message) for n in app._notifications),
                         what="a notice that the task cannot be revised")
        assert not isinstance(app.screen, ReviseForm)
