"""The task list: every task with state, instruction, model, files, cost and age; `/` filters.

It holds the newest page of tasks and of jobs and asks for the next older page (`NeedOlder`) when
the cursor or the view comes near its end, so a long history is read a page at a time and each page
only adds rows below. Tasks and jobs page apart: a row is shown once both are read down to its age.

The filter asks the daemon (`Search`): its matches over the whole history, newest first, paged the
same way, with their count; events keep them current. Esc goes back to the list as it was.

A job's tasks sit indented under a row for the job (its state, instruction, task count and
spend); tasks of no job, or of a job not heard of yet, stand alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input
from textual.widgets.data_table import ColumnKey

from daemon.protocol import JobInfo, TaskInfo
from daemon.protocol import TaskList as TaskPage
from pas_tui.format import cost, duration, short, state_text, task_state_text
from pas_tui.query import Found, Query

COLUMNS = (("id", "Id"), ("state", "State"), ("instruction", "Instruction"), ("model", "Model"),
           ("files", "Files"), ("cost", "Cost"), ("age", "Age"))
NO_QUERY = Query("")

Row = TaskInfo | JobInfo
NEAR_END = 10  # rows from the end of the list at which the next older page is asked for


class TaskList(Vertical):
    """Newest task first; posts `TaskList.Selected` when the highlighted task changes."""

    DEFAULT_CSS = """
    TaskList { height: 1fr; border: round $primary; }
    TaskList > Input { display: none; }
    TaskList.-filtering > Input { display: block; }
    TaskList > DataTable { height: 1fr; }
    """

    @dataclass
    class Selected(Message):
        """The highlighted row changed: a task id or a job id (None: the list is empty)."""

        task_id: str | None

    @dataclass
    class NeedOlder(Message):
        """The user came near the end of the list: the rows older than `before` are wanted — the tasks
        queued before it (`what` "tasks"), the jobs made before it ("jobs"), or the older matches of the
        filter's search `search` ("found")."""

        before: str
        what: str = "tasks"
        search: int = 0

    @dataclass
    class Search(Message):
        """The filter changed: ask the daemon for the first page of its matches (`at_once`: no typing to
        wait out)."""

        query: Query
        search: int  # the list's number for it, to hand back with the answer
        at_once: bool = False

    @dataclass
    class Recount(Message):
        """An event changed what the filter's count should be by an amount the list cannot tell."""

        query: Query
        search: int

    def __init__(self, *, clock: Callable[[], float] = time.time, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.clock = clock
        self.tasks: dict[str, TaskInfo] = {}
        self.jobs: dict[str, JobInfo] = {}
        self.border_title = "Tasks"
        self._selected: str | None = None
        self._unseen: set[str] = set()  # rows that arrived above the view and have not been scrolled to
        self._laying_out = False
        self.next_page: str | None = None  # the cursor of the older tasks not read yet (None: none)
        self.next_jobs: str | None = None  # the cursor of the older jobs not read yet
        self.found: Found | None = None  # the filter's matches (None: no filter)
        self._asked: tuple[str, str] | None = None  # the page asked for and not yet added: (what, before)
        self._searches = 0  # searches asked for so far

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: words, a state (review, running…), flagged, model:NAME; Esc clears",
                    id="task-filter")
        yield DataTable(id="tasks", cursor_type="row", zebra_stripes=True)

    @property
    def table(self) -> DataTable[str | Text]:
        return self.query_one("#tasks", DataTable)

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.table.add_column(label, key=key)
        self.set_interval(1.0, self.tick)
        self.watch(self.table, "scroll_y", self._seen, init=False)

    @property
    def selected_id(self) -> str | None:
        """The id of the highlighted task or job."""
        return self._selected

    @property
    def selected(self) -> TaskInfo | None:
        """The highlighted task (None on a job row)."""
        return self.tasks.get(self._selected) if self._selected else None

    @property
    def selected_job(self) -> JobInfo | None:
        """The highlighted job row."""
        return self.jobs.get(self._selected) if self._selected else None

    @property
    def filter_query(self) -> Query:
        return self.found.query if self.found else NO_QUERY

    # ------------------------------------------------------------ data

    def replace_all(self, tasks: list[TaskInfo], jobs: list[JobInfo] | None = None,
                    next_page: str | None = None, next_jobs: str | None = None) -> None:
        """The newest page of tasks and of jobs (and the jobs of those tasks); `next_page` and `next_jobs`
        are the older pages' cursors. A filter on is asked again."""
        self.tasks = {t.id: t for t in tasks}
        self.jobs = {j.id: j for j in jobs or []}
        self.next_page, self.next_jobs, self._asked = next_page, next_jobs, None
        if self.found is not None:
            self._search(self.found.query, at_once=True)
        self._rebuild()
        self._near_end()

    def add_older(self, before: str, tasks: list[TaskInfo], jobs: list[JobInfo], next_page: str | None) -> None:
        """The page asked for with `before`; what an event has already shown is newer and is kept."""
        if before != self.next_page:  # the list was replaced meanwhile
            return
        self.next_page = next_page
        self._add(("tasks", before), tasks, jobs)

    def add_older_jobs(self, before: str, jobs: list[JobInfo], next_jobs: str | None) -> None:
        """The page of jobs asked for with `before`."""
        if before != self.next_jobs:
            return
        self.next_jobs = next_jobs
        self._add(("jobs", before), [], jobs)

    def add_found(self, search: int, before: str | None, page: TaskPage, jobs: list[JobInfo]) -> None:
        """A page of the daemon's matches for search `search` (`before` None: the first); dropped if the
        filter was asked again or moved on meanwhile, so a late answer never overwrites a newer one."""
        found = self.found
        if found is None or found.search != search or (before is not None and before != found.next) \
                or (before is None and not found.searching):
            return
        if before is None:  # the daemon's answer replaces the guess among the tasks read, and the events
            # that came meanwhile (their tasks newer than the answer) stay in
            found.ids = {t.id for t in page.tasks} | {i for i in found.ids if i in self.tasks and
                                                       found.query.words_match(self.tasks[i])}
            # the daemon counts what it filters; `flagged` is sorted out here, a page at a time
            found.total = None if found.query.flagged else page.total
            found.exact, found.searching, found.error = page.total_exact, False, None
        else:
            found.ids |= {t.id for t in page.tasks}
        found.next = page.next
        self._add(("found", before or ""), page.tasks, jobs, rebuild=before is None)

    def set_total(self, search: int, events: int, total: int | None, exact: bool) -> None:
        """The daemon's count of the filter's matches, asked again after `events` task events: if more came
        since, it may not include them, and it is asked again."""
        found = self.found
        if found is None or found.search != search or found.searching:
            return
        if found.events != events:
            self.post_message(self.Recount(found.query, search))
            return
        found.total, found.exact = total, exact
        self._show_filter()

    def search_failed(self, search: int, message: str) -> None:
        """The daemon could not answer search `search`: say so, and keep the matches among the tasks read."""
        if self.found is not None and self.found.search == search and self.found.searching:
            self.found.searching, self.found.error = False, message
            self._show_filter()

    def _add(self, asked: tuple[str, str], tasks: list[TaskInfo], jobs: list[JobInfo], rebuild: bool = False) -> None:
        for t in tasks:
            self.tasks.setdefault(t.id, t)
        for j in jobs:
            self.jobs.setdefault(j.id, j)
        if self._asked == asked:
            self._asked = None
        visible = self._visible()
        shown = [str(key.value) for key in self.table.rows]
        if not rebuild and [r.id for r in visible[:len(shown)]] == shown:  # older rows only go below
            for row in visible[len(shown):]:
                self.table.add_row(*self._cells(row), key=row.id)
            self._show_filter()
        else:  # a row moved (a task joined the job it belongs to): lay the list out again
            self._rebuild()
        self._near_end()

    def older_failed(self, before: str, what: str = "tasks") -> None:
        """The page asked for with `before` did not come: ask again when the user next comes near the end."""
        if self._asked == (what, before):
            self._asked = None

    def upsert(self, task: TaskInfo) -> None:
        before = self.tasks.get(task.id)
        was = before is not None and self._shown(task.id)
        self.tasks[task.id] = task
        if self.found is not None and not self.found.moved(before, task):
            self.post_message(self.Recount(self.found.query, self.found.search))
        if was and before is not None and before.job_id == task.job_id and self._wanted(task):
            self._update_row(task)
            self._show_filter()
        else:
            self._rebuild(arrivals=True)

    def upsert_job(self, job: JobInfo) -> None:
        before = self.jobs.get(job.id)
        self.jobs[job.id] = job
        q = self.filter_query
        if before is not None and before.task_ids == job.task_ids and self._shown(job.id) \
                and q.job_matches(job) == q.job_matches(before):
            self._update_row(job)
        else:
            self._rebuild(arrivals=True)

    def tick(self) -> None:
        """Advance the age column (most ages read the same from one second to the next)."""
        for key in self.table.rows:
            row = self.tasks.get(str(key.value)) or self.jobs.get(str(key.value))
            if row is not None:
                self._set_cell(row.id, "age", self._age(row))

    # ------------------------------------------------------------ filter

    def open_filter(self) -> None:
        self.add_class("-filtering")
        self.query_one(Input).focus()

    @on(Input.Changed, "#task-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.set_query(event.value)

    def set_query(self, text: str) -> None:
        """Filter by `text` (the daemon is asked once typing pauses); an empty one shows the list again."""
        query = Query.parse(text)
        if self.found is not None and replace(query, text=self.found.query.text) == self.found.query:
            return  # the same search (only spaces changed)
        self._asked = None
        if not query.active:
            self.found = None
            self._rebuild()
            self.border_subtitle = f"filter: {query.note}" if query.note else ""
            self._near_end()
            return
        self._search(query)
        self._rebuild()

    def _search(self, query: Query, at_once: bool = False) -> None:
        """Until the daemon answers, the matches among the tasks read stand in for its answer."""
        self._searches += 1
        self.found = Found(query, self._searches, {t.id for t in self.tasks.values() if query.words_match(t)},
                           error=query.problem, searching=query.problem is None)
        if query.problem is None:
            self.post_message(self.Search(query, self._searches, at_once))

    @on(Input.Submitted, "#task-filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def key_escape(self) -> None:
        self.query_one(Input).value = ""
        self.remove_class("-filtering")
        self.table.focus()

    def _show_filter(self) -> None:
        if self.found is not None:
            self.border_subtitle = self.found.subtitle(self.table.row_count)

    # ------------------------------------------------------------ table

    @on(DataTable.RowHighlighted, "#tasks")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        # a rebuild queues highlights that are already stale (and an emptied table one of no row)
        if event.cursor_row == self.table.cursor_row and event.row_key is not None:
            self._select(event.row_key.value)
            self._near_end()

    def _near_end(self) -> None:
        """Ask for the next older page once the cursor or the bottom of the view is near the last row:
        of the filter's matches, or else of the tasks or the jobs, whichever is read less far back."""
        want = self._next_wanted()
        if want is None or self._asked == want:
            return
        table = self.table
        bottom = round(table.scroll_y) + table.scrollable_content_region.height
        if max(table.cursor_row, bottom) >= table.row_count - NEAR_END:
            self._asked = want
            self.post_message(self.NeedOlder(want[1], want[0], self.found.search if self.found else 0))

    def _next_wanted(self) -> tuple[str, str] | None:
        found = self.found
        if found is not None:
            return ("found", found.next) if found.next and not found.searching and not found.error else None
        floors = [(self._floor(cursor, rows), what, cursor) for what, cursor, rows in
                  (("tasks", self.next_page, self.tasks), ("jobs", self.next_jobs, self.jobs)) if cursor]
        if not floors:
            return None
        _, what, cursor = max(floors, key=lambda f: f[0])
        return what, cursor

    @staticmethod
    def _floor(cursor: str | None, rows: dict[str, TaskInfo] | dict[str, JobInfo]) -> float:
        """How far back a list is read: the age of its cursor's row (nothing older is known)."""
        if cursor is None:
            return float("-inf")
        row = rows.get(cursor)
        return row.created_at if row is not None else float("inf")

    def _horizon(self) -> float:
        """Rows older than this wait for their page: shown now, they would sit above rows not read yet."""
        found = self.found
        if found is not None and not found.searching and not found.error:
            return self._floor(found.next, self.tasks)
        return max(self._floor(self.next_page, self.tasks), self._floor(self.next_jobs, self.jobs))

    def _wanted(self, task: TaskInfo) -> bool:
        """Is the task one of the rows (age aside)?"""
        found = self.found
        return found is None or (task.id in found.ids and found.query.state_match(task))

    def _select(self, task_id: str | None) -> None:
        if task_id != self._selected:
            self._selected = task_id
            self.post_message(self.Selected(task_id))

    def _visible(self) -> list[Row]:
        """Rows in order: newest first, each job followed by its tasks in the order it queued them."""
        horizon = self._horizon()
        grouped: dict[str, list[TaskInfo]] = {}
        top: list[Row] = []
        for t in self.tasks.values():
            if t.created_at < horizon or not self._wanted(t):
                continue
            if t.job_id in self.jobs:
                grouped.setdefault(t.job_id, []).append(t)
            else:
                top.append(t)
        # a job row with none of its tasks shown: by itself, once the jobs are read down to its age
        jobs_read = max(horizon, self._floor(self.next_jobs, self.jobs))
        q = self.filter_query
        top += [j for j in self.jobs.values()
                if j.id in grouped or (j.created_at >= jobs_read and (self.found is None or q.job_matches(j)))]
        rows: list[Row] = []
        for row in sorted(top, key=lambda r: r.created_at, reverse=True):
            rows.append(row)
            if isinstance(row, JobInfo):
                order = {task_id: i for i, task_id in enumerate(row.task_ids)}
                rows += sorted(grouped.get(row.id, []), key=lambda t: (order.get(t.id, len(order)), t.created_at))
        return rows

    def _shown(self, key: str) -> bool:
        return self.table.is_valid_row_index(self._row_index(key))

    def _update_row(self, row: Row) -> None:
        for (key, _), value in zip(COLUMNS, self._cells(row), strict=True):
            self._set_cell(row.id, key, value)

    def _set_cell(self, row_id: str, key: str, value: str | Text) -> None:
        """Change a cell if its value changed, widening its column if it no longer fits. (The table's own
        `update_width` measures every cell of the column whenever the new value is not the widest: with
        thousands of rows read, every second.)"""
        table = self.table
        if table.get_cell(row_id, key) == value:
            return
        width = value.cell_len if isinstance(value, Text) else cell_len(value)
        column = table.columns.get(ColumnKey(key))
        table.update_cell(row_id, key, value, update_width=column is not None and width > column.content_width)

    def _row_index(self, task_id: str) -> int:
        try:
            return self.table.get_row_index(task_id)
        except Exception:  # RowDoesNotExist
            return -1

    def _rebuild(self, arrivals: bool = False) -> None:
        """Lay the rows out again, keeping the selected row where the user sees it.

        With `arrivals`, rows not shown before are new: at the top of the list they show at once;
        scrolled down, the view keeps its place and the title counts the new rows above it.
        """
        keep = self._selected
        table = self.table
        before = [str(key.value) for key in table.rows]
        old_index = before.index(keep) if keep in before else None
        old_scroll = round(table.scroll_y)
        self._laying_out = True  # the scroll moves while rows are re-added: that is not the user scrolling
        table.clear()
        visible = self._visible()
        for row in visible:
            table.add_row(*self._cells(row), key=row.id)
        ids = [r.id for r in visible]
        if arrivals:
            self._unseen |= set(ids) - set(before)
        self._unseen &= set(ids)
        if keep in ids:
            table.move_cursor(row=ids.index(keep), animate=False)
        self._select(keep if keep in ids else (ids[0] if ids else None))
        self._show_filter()
        if keep in ids and old_index is not None and old_scroll > 0:  # scrolled down: the same rows stay in view
            table.call_after_refresh(self._scroll_back, old_scroll + ids.index(keep) - old_index)
        else:
            self._laying_out = False
            self._show_unseen()

    def _scroll_back(self, y: int) -> None:
        """Scroll to `y`, as near as keeps the cursor's row in view."""
        table = self.table
        rows = max(1, table.scrollable_content_region.height - (table.header_height if table.show_header else 0))
        y = max(table.cursor_row - rows + 1, min(y, table.cursor_row))
        table.scroll_to(y=max(0, y), animate=False, immediate=True)
        self._laying_out = False
        self._show_unseen()

    def _seen(self) -> None:
        """New rows that scrolled into view are no longer new."""
        if self._unseen and not self._laying_out:
            self._show_unseen()
        if not self._laying_out:
            self._near_end()

    def _show_unseen(self) -> None:
        table = self.table
        top = round(table.scroll_y)
        self._unseen = {i for i in self._unseen if self._row_index(i) < top}
        n = len(self._unseen)
        self.border_title = f"Tasks · {n} new above ↑" if n else "Tasks"

    def _age(self, row: Row) -> str:
        return duration(self.clock() - row.created_at)

    def _cells(self, row: Row) -> tuple[str | Text, ...]:
        if isinstance(row, JobInfo):
            n = max(len(row.plan), len(row.task_ids))
            return (Text(row.id, style="bold"), state_text(row.state), Text(short(row.instruction, 48), style="bold"),
                    row.model.split("/")[-1], f"job: {n} task{'s' if n != 1 else ''}", cost(row.spent_usd),
                    self._age(row))
        grouped = row.job_id in self.jobs
        return ((f"└ {row.id}" if grouped else row.id), task_state_text(row),
                short(row.instruction, 46 if grouped else 48), row.model.split("/")[-1],
                short(", ".join(row.files), 24), cost(row.cost_usd), self._age(row))
