"""The `/` filter searches the whole history through the daemon, against the real daemon."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input
from tui_support import wait_until

from daemon import protocol as p
from daemon.client import EventStream, PasClient
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, occupy, until_state
from pas_tui import PasApp
from pas_tui.connection import Backoff
from pas_tui.widgets.banner import ConnectionBanner
from pas_tui.widgets.task_list import TaskList

SIZE = (120, 40)
HANG = [{"match": "hang", "fault": "hang", "latency": 120}]


def rows(tasks: TaskList) -> list[str]:
    return [str(k.value) for k in tasks.table.rows]


def idle(app: PasApp) -> bool:
    """No page or search is asked for and unanswered."""
    return not any(w.group in ("older", "older-jobs", "search", "older-found") and not w.is_finished
                   for w in app.workers)


async def queue(c: PasClient, repo: Path, instruction: str) -> p.TaskInfo:
    return await c.submit(p.SubmitParams(workspace=str(repo), instruction=instruction, files=["app.py"]))


async def typed(pilot: Pilot[object], app: PasApp, text: str) -> TaskList:
    """Open the filter, type `text` and wait for the daemon's answer."""
    tasks = app.query_one(TaskList)
    await pilot.press("slash", *text)
    await wait_until(pilot, lambda: tasks.found is not None and not tasks.found.searching and idle(app),
                     what=f"the matches of {text!r}")
    return tasks


async def test_the_filter_finds_a_task_older_than_the_pages_read_and_esc_brings_the_list_back(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    daemon: DaemonProcess = make_daemon(workers=1)
    offline.set_rules(HANG)
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["task"]) as events:
        await occupy(c, events, repo)  # the one programmer is busy: what follows stays queued
        zebra = await queue(c, repo, "rename the zebra helper")  # the oldest but one
        for i in range(110):
            await queue(c, repo, f"step {i}")
        newest = [t.id for t in await c.list(p.TaskListParams(limit=100))]
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: app.synced and idle(app), what="the first pages")
        live = rows(tasks)
        assert zebra.id not in tasks.tasks and live == newest[:len(live)]  # not read: the list stops short of it

        await typed(pilot, app, "zeb")  # the beginning of a word is enough
        assert rows(tasks) == [zebra.id]
        assert tasks.selected is not None and tasks.selected.id == zebra.id
        assert tasks.border_subtitle == "filter: zeb · 1 match"

        await pilot.press("backspace", "backspace", "backspace", *"giraffe")
        await wait_until(pilot, lambda: tasks.found is not None and tasks.found.query.text == "giraffe"
                         and not tasks.found.searching, what="the answer for giraffe")
        assert rows(tasks) == [] and tasks.border_subtitle == "no task matches “giraffe” · Esc clears"

        await pilot.press("escape")
        await wait_until(pilot, lambda: tasks.found is None, what="the filter cleared")
        assert rows(tasks)[:len(live)] == live and zebra.id not in rows(tasks)
        assert tasks.border_subtitle == "" and app.focused is tasks.table


async def test_the_filters_matches_page_as_the_cursor_nears_their_end(make_daemon: DaemonFactory,
                                                                     offline: OfflineModel, repo: Path) -> None:
    daemon: DaemonProcess = make_daemon(workers=1)
    offline.set_rules(HANG)
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["task"]) as events:
        await occupy(c, events, repo)
        for i in range(45):
            await queue(c, repo, f"{'split' if i % 3 == 0 else 'merge'} module {i}")
        merges = [t.id for t in await c.list(p.TaskListParams(text="merge", limit=100))]
    assert len(merges) == 30
    app = PasApp(daemon.socket, workspace=repo, page=3)
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_until(pilot, lambda: app.synced and idle(app), what="the first pages")
        tasks = await typed(pilot, app, "merge")
        assert tasks.border_subtitle == "filter: merge · 30 matches"  # counted by the daemon, not by pages
        # enough pages to fill the view and a margin below it, not every match
        assert tasks.found is not None and tasks.found.next is not None and 3 <= len(rows(tasks)) < 30
        assert rows(tasks) == merges[:len(rows(tasks))]
        while tasks.found.next is not None:
            tasks.table.move_cursor(row=tasks.table.row_count - 1)
            await pilot.pause()
            await wait_until(pilot, lambda: idle(app), what="the next page of matches")
        assert rows(tasks) == merges  # every match once, newest first, as the daemon lists them
        assert all(tasks.tasks[i].instruction.startswith("merge") for i in rows(tasks))


async def test_events_keep_the_filters_rows_current(make_daemon: DaemonFactory, offline: OfflineModel,
                                                     repo: Path) -> None:
    daemon: DaemonProcess = make_daemon(workers=1)
    offline.set_rules(HANG)
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["task"]) as events:
        await occupy(c, events, repo)
        first = await queue(c, repo, "tidy the parser")
        await queue(c, repo, "tidy nothing else")
        await queue(c, repo, "unrelated")
        app = PasApp(daemon.socket, workspace=repo)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.synced and idle(app), what="the first sync")
            tasks = await typed(pilot, app, "queued tidy pars")
            assert rows(tasks) == [first.id] and tasks.border_subtitle == "filter: queued tidy pars · 1 match"

            second = await queue(c, repo, "tidy the parser tests")  # a new task that matches appears
            await queue(c, repo, "tidy the lexer")  # one that does not, does not
            await wait_until(pilot, lambda: rows(tasks) == [second.id, first.id], what="the new match on top")
            assert tasks.border_subtitle == "filter: queued tidy pars · 2 matches"

            await c.cancel(first.id)  # it leaves the state asked for: out of the rows and the count
            await wait_until(pilot, lambda: rows(tasks) == [second.id], what="the cancelled task gone")
            assert tasks.border_subtitle == "filter: queued tidy pars · 1 match"

            await pilot.press(*["backspace"] * len("queued tidy pars"), *"tidy pars")
            await wait_until(pilot, lambda: tasks.found is not None and tasks.found.query.text == "tidy pars"
                             and not tasks.found.searching and rows(tasks) == [second.id, first.id],
                             what="both matches, whatever their state")
            await c.cancel(second.id)  # a match that changes state is updated where it is
            await wait_until(pilot, lambda: tasks.table.get_cell(second.id, "state").plain == "CANCELLED",
                             what="the row updated")
            assert rows(tasks) == [second.id, first.id] and tasks.border_subtitle == "filter: tidy pars · 2 matches"
            # the daemon agrees with the count kept by the events
            assert (await c.task_page(p.TaskListParams(text="tidy pars", count=True))).total == 2


async def test_words_without_letters_a_query_too_long_and_an_absent_daemon_are_said_plainly(
        daemon: DaemonProcess, repo: Path) -> None:
    async with daemon.client() as c:
        for word in ("alpha", "beta"):
            await c.submit(p.SubmitParams(workspace=str(repo), instruction=f"note {word}", files=["app.py"]))
    app = PasApp(daemon.socket, workspace=repo, backoff=Backoff(initial=0.05, maximum=0.5))
    async with app.run_test(size=SIZE) as pilot:
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: app.synced and len(rows(tasks)) == 2, what="two rows")

        await pilot.press("slash", *"*** -")  # nothing the daemon could search for: the list stays whole
        await wait_until(pilot, lambda: "ignored" in str(tasks.border_subtitle), what="the note")
        assert tasks.found is None and len(rows(tasks)) == 2
        assert tasks.border_subtitle == "filter: ignored *** - (no letter or digit to search for)"

        await pilot.press(*" NEAR( AND")  # FTS5's operators are words like any other: no match, no error
        await wait_until(pilot, lambda: tasks.found is not None and not tasks.found.searching and idle(app),
                         what="the answer")
        assert rows(tasks) == [] and tasks.border_subtitle.startswith("no task matches")

        tasks.query_one(Input).value = "alpha " * 100  # 600 characters
        await wait_until(pilot, lambda: "too long" in str(tasks.border_subtitle), what="too long")
        assert tasks.border_subtitle.startswith("filter: alpha alpha")
        assert "too long to search: at most 500 characters of words" in str(tasks.border_subtitle)
        assert [tasks.tasks[i].instruction for i in rows(tasks)] == ["note alpha"]  # among the tasks read

        daemon.kill()
        banner = app.query_one(ConnectionBanner)
        await wait_until(pilot, lambda: banner.is_down, what="the disconnected banner")
        tasks.query_one(Input).value = "beta"
        await wait_until(pilot, lambda: tasks.found is not None and tasks.found.query.text == "beta"
                         and tasks.found.error is not None, what="the search failing")
        assert "disconnected from pasd" in str(tasks.border_subtitle)
        assert "matching the tasks read so far" in str(tasks.border_subtitle)
        assert [tasks.tasks[i].instruction for i in rows(tasks)] == ["note beta"]

        daemon.start()  # the resync asks again
        await wait_until(pilot, lambda: app.synced == 2 and tasks.found is not None and not tasks.found.searching
                         and tasks.found.error is None, what="the search asked again")
        assert tasks.border_subtitle == "filter: beta · 1 match"
        assert app.return_code is None and app.is_running


async def test_a_task_never_read_that_comes_into_a_state_filter_is_shown_and_counted(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    daemon: DaemonProcess = make_daemon(workers=1)
    offline.set_rules(HANG)
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["task"]) as events:
        blocker = await occupy(c, events, repo)
        old = await queue(c, repo, "document the yak shaver")  # first in the queue, last in the list
        for i in range(40):
            await queue(c, repo, f"step {i}")
        app = PasApp(daemon.socket, workspace=repo, page=3)
        async with app.run_test(size=(120, 24)) as pilot:
            await wait_until(pilot, lambda: app.synced and idle(app), what="the first pages")
            tasks = await typed(pilot, app, "review yak")
            assert old.id not in tasks.tasks and rows(tasks) == []
            await c.cancel(blocker)  # the old task runs next, to REVIEW: events of a task the list never read
            await until_state(events, old.id, p.TaskState.REVIEW)
            await wait_until(pilot, lambda: rows(tasks) == [old.id] and tasks.found is not None
                             and tasks.found.total == 1, what="the task in review, counted by the daemon")
            assert tasks.border_subtitle == "filter: review yak · 1 match"
