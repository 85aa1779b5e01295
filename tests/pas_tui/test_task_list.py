"""The task list on its own: where a new task lands, and whether the user is told of it."""

from __future__ import annotations

from textual import on
from textual.app import App, ComposeResult
from textual.widgets.data_table import ColumnKey

from daemon import protocol as p
from pas_tui.widgets.task_list import TaskList

START = 1_780_000_000.0


def task(i: int) -> p.TaskInfo:
    return p.TaskInfo(id=f"t{i:04d}", state=p.TaskState.REVIEW, workspace="/w", instruction=f"task {i}",
                      files=["app.py"], model="openai/x", timeout_s=60, created_at=START + i)


class ListApp(App[None]):
    def compose(self) -> ComposeResult:
        yield TaskList(clock=lambda: START + 1000)


def shown(tasks: TaskList) -> range:
    """Indexes of the rows in view (one line each, below the header)."""
    table = tasks.table
    top = round(table.scroll_y)
    return range(top, top + table.scrollable_content_region.height - table.header_height)


async def test_at_the_top_a_new_task_shows_and_the_cursor_stays_on_the_users_task() -> None:
    app = ListApp()
    async with app.run_test(size=(100, 20)) as pilot:
        tasks = app.query_one(TaskList)
        tasks.replace_all([task(i) for i in range(40)])
        await pilot.pause()
        assert tasks.selected is not None and tasks.selected.id == "t0039"
        tasks.upsert(task(100))
        await pilot.pause()
        assert tasks.table.get_row_index("t0100") in shown(tasks)
        assert tasks.selected.id == "t0039" and tasks.table.cursor_row == 1  # what `a` approves did not change
        assert tasks.border_title == "Tasks"


async def test_scrolled_down_the_view_keeps_its_place_and_counts_what_arrived_above() -> None:
    app = ListApp()
    async with app.run_test(size=(100, 20)) as pilot:
        tasks = app.query_one(TaskList)
        tasks.replace_all([task(i) for i in range(40)])
        await pilot.pause()
        tasks.table.move_cursor(row=25)
        await pilot.pause()
        top_before = round(tasks.table.scroll_y)
        assert top_before > 0 and tasks.selected is not None
        mine, first_in_view = tasks.selected.id, str(tasks.table.coordinate_to_cell_key((top_before, 0)).row_key.value)
        for i in (100, 101):
            tasks.upsert(task(i))
            await pilot.pause()
        assert tasks.selected.id == mine
        top = round(tasks.table.scroll_y)
        assert top == top_before + 2  # the same rows are in view: nothing jumped under the user
        assert str(tasks.table.coordinate_to_cell_key((top, 0)).row_key.value) == first_in_view
        assert tasks.border_title == "Tasks · 2 new above ↑"
        tasks.table.scroll_to(y=1, animate=False, immediate=True)
        await pilot.pause()
        assert tasks.border_title == "Tasks · 1 new above ↑"  # row 0 is still above the view
        tasks.table.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        assert tasks.border_title == "Tasks"


async def test_a_state_change_is_not_an_arrival() -> None:
    app = ListApp()
    async with app.run_test(size=(100, 20)) as pilot:
        tasks = app.query_one(TaskList)
        tasks.replace_all([task(i) for i in range(40)])
        await pilot.pause()
        tasks.table.move_cursor(row=25)
        await pilot.pause()
        tasks.set_query("review")  # the filter on: a task leaving REVIEW drops out and the list is rebuilt
        tasks.upsert(task(3).model_copy(update={"state": p.TaskState.APPLIED}))
        await pilot.pause()
        assert tasks.border_title == "Tasks"


def job(job_id: str, at: float, tasks: list[p.TaskInfo]) -> p.JobInfo:
    return p.JobInfo(id=job_id, state=p.JobState.REVIEW, workspace="/w", instruction=f"job {job_id}",
                     split="per-file", model="openai/x", files=["app.py"], task_ids=[t.id for t in tasks],
                     tasks=tasks, created_at=at)


class PagedApp(ListApp):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    @on(TaskList.NeedOlder)
    def _older(self, msg: TaskList.NeedOlder) -> None:
        self.asked.append(msg.before)


async def test_the_older_page_is_asked_for_once_near_the_end_and_goes_below() -> None:
    app = PagedApp()
    async with app.run_test(size=(100, 20)) as pilot:
        tasks = app.query_one(TaskList)
        old_job = job("j-old", START + 10, [])  # older than every task of the first page
        tasks.replace_all([task(i) for i in range(60, 100)], [old_job], next_page="t0060")
        await pilot.pause()
        assert app.asked == []
        assert "j-old" not in [str(k.value) for k in tasks.table.rows]  # it waits for its page
        tasks.table.move_cursor(row=20)
        await pilot.pause()
        assert app.asked == []
        tasks.set_query("task")  # a filter is on: its matches come from the daemon, not the list's pages
        tasks.table.move_cursor(row=39)
        await pilot.pause()
        assert app.asked == []
        tasks.set_query("")
        tasks.table.move_cursor(row=35)
        await pilot.pause()
        tasks.table.move_cursor(row=39)
        await pilot.pause()
        assert app.asked == ["t0060"]  # once, however the cursor moves while it comes
        tasks.upsert(task(99).model_copy(update={"state": p.TaskState.APPLIED}))  # an event: newer than a page
        tasks.add_older("t0060", [task(99), *(task(i) for i in range(59, 19, -1))], [], None)
        await pilot.pause()
        rows = [str(k.value) for k in tasks.table.rows]
        assert rows[:80] == [f"t{i:04d}" for i in range(99, 19, -1)] and rows[80:] == ["j-old"]
        assert tasks.tasks["t0099"].state is p.TaskState.APPLIED
        assert tasks.selected is not None and tasks.selected.id == "t0060" and tasks.table.cursor_row == 39
        tasks.table.move_cursor(row=80)
        await pilot.pause()
        assert app.asked == ["t0060"]  # no page is left to ask for
        tasks.add_older("t0060", [task(1)], [], None)  # a page that comes after the list moved on is dropped
        assert "t0001" not in tasks.tasks


async def test_ages_advance_each_second_and_their_column_widens_when_an_age_needs_it() -> None:
    now = [START + 5.0]

    class ClockApp(App[None]):
        def compose(self) -> ComposeResult:
            yield TaskList(clock=lambda: now[0])

    app = ClockApp()
    async with app.run_test(size=(100, 20)) as pilot:
        tasks = app.query_one(TaskList)
        tasks.replace_all([task(i) for i in range(3)])
        await pilot.pause()
        table = tasks.table
        assert [table.get_cell(f"t{i:04d}", "age") for i in range(3)] == ["5s", "4s", "3s"]
        narrow = table.columns[ColumnKey("age")].content_width
        now[0] = START + 7200.0
        tasks.tick()
        await pilot.pause()
        assert [table.get_cell(f"t{i:04d}", "age") for i in range(3)] == ["2h00m", "1h59m", "1h59m"]
        assert table.columns[ColumnKey("age")].content_width == len("2h00m") > narrow


class SearchApp(ListApp):
    def __init__(self) -> None:
        super().__init__()
        self.searches: list[tuple[int, str]] = []

    @on(TaskList.Search)
    def _search(self, msg: TaskList.Search) -> None:
        self.searches.append((msg.search, msg.query.text))


async def test_an_answer_to_an_older_filter_never_replaces_the_newer_ones() -> None:
    app = SearchApp()
    async with app.run_test(size=(100, 20)) as pilot:
        tasks = app.query_one(TaskList)
        tasks.replace_all([task(i) for i in range(10)])
        tasks.set_query("task 1")
        tasks.set_query("task 2")
        await pilot.pause()
        assert app.searches == [(1, "task 1"), (2, "task 2")]
        assert [str(k.value) for k in tasks.table.rows] == ["t0002"]  # the tasks read stand in meanwhile
        old = [task(10), task(1)]
        tasks.add_found(2, None, p.TaskList(tasks=[task(20), task(2)], total=2), [])
        tasks.add_found(1, None, p.TaskList(tasks=old, total=2), [])  # late: dropped
        assert [str(k.value) for k in tasks.table.rows] == ["t0020", "t0002"]
        assert tasks.border_subtitle == "filter: task 2 · 2 matches"
        # a second answer to the same search is late too
        tasks.add_found(2, None, p.TaskList(tasks=[task(2)], total=1), [])
        assert [str(k.value) for k in tasks.table.rows] == ["t0020", "t0002"]
        tasks.add_found(2, "t0002", p.TaskList(tasks=[task(0)]), [])  # a page nobody asked for
        assert "t0000" not in [str(k.value) for k in tasks.table.rows]
        # a resync asks the same filter again: the answer to the search before it is dropped, same words or not
        tasks.replace_all([task(i) for i in range(10)])
        await pilot.pause()
        assert app.searches[-1] == (3, "task 2")
        tasks.add_found(2, None, p.TaskList(tasks=[task(20), task(2)], total=2), [])
        assert tasks.found is not None and tasks.found.searching
        tasks.add_found(3, None, p.TaskList(tasks=[task(2)], total=1), [])
        assert [str(k.value) for k in tasks.table.rows] == ["t0002"]
        assert tasks.border_subtitle == "filter: task 2 · 1 match"
