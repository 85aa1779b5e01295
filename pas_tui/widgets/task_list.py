"""The task list: every task with state, instruction, model, files, cost and age; `/` filters.

It holds the newest page of tasks and asks for the next older page (`NeedOlder`) when the cursor
or the view comes near its end, so a long history is read a page at a time and each page only adds
rows below; the filter applies to the tasks read so far.

A job's tasks sit indented under a row for the job (its state, instruction, task count and
spend); tasks of no job, or of a job not heard of yet, stand alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input
from textual.widgets.data_table import ColumnKey

from daemon.protocol import JobInfo, TaskInfo, TaskState
from pas_tui.format import cost, duration, short, state_text, task_state_text

COLUMNS = (("id", "Id"), ("state", "State"), ("instruction", "Instruction"), ("model", "Model"),
           ("files", "Files"), ("cost", "Cost"), ("age", "Age"))
# A state word and the states it shows; `review` is everything waiting for the user, CONFLICT included.
STATES: dict[str, frozenset[str]] = {s.value.lower(): frozenset({s.value}) for s in TaskState}
STATES["review"] = frozenset({TaskState.REVIEW.value, TaskState.CONFLICT.value})


def matches(task: TaskInfo, query: str) -> bool:
    """Every word must match: a state name matches the state, `flagged` a task with warnings, anything
    else is a substring."""
    for word in query.lower().split():
        if word in STATES:
            if task.state.value not in STATES[word]:
                return False
        elif word == "flagged":
            if not task.warnings:
                return False
        elif not any(word in field.lower() for field in (task.id, task.instruction, task.model, *task.files)):
            return False
    return True


def job_matches(job: JobInfo, query: str) -> bool:
    """A job matches on its state, id, instruction or model (its tasks are matched on their own)."""
    for word in query.lower().split():
        if word in STATES:
            if job.state.value not in STATES[word]:
                return False
        elif not any(word in field.lower() for field in (job.id, job.instruction, job.model)):
            return False
    return True


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
        """The user came near the end of the list: the tasks queued before `before` are wanted."""

        before: str

    def __init__(self, *, clock: Callable[[], float] = time.time, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.clock = clock
        self.tasks: dict[str, TaskInfo] = {}
        self.jobs: dict[str, JobInfo] = {}
        self.query_text = ""
        self.border_title = "Tasks"
        self._selected: str | None = None
        self._unseen: set[str] = set()  # rows that arrived above the view and have not been scrolled to
        self._laying_out = False
        self.next_page: str | None = None  # the cursor of the older tasks not read yet (None: none)
        self._asked: str | None = None  # the page asked for and not yet added

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: a state (review, running…) and/or words; Esc clears", id="task-filter")
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

    # ------------------------------------------------------------ data

    def replace_all(self, tasks: list[TaskInfo], jobs: list[JobInfo] | None = None,
                    next_page: str | None = None) -> None:
        """The newest page of tasks (and the jobs to show with them); `next_page` is the older page's cursor."""
        self.tasks = {t.id: t for t in tasks}
        self.jobs = {j.id: j for j in jobs or []}
        self.next_page, self._asked = next_page, None
        self._rebuild()
        self._near_end()

    def add_older(self, before: str, tasks: list[TaskInfo], jobs: list[JobInfo], next_page: str | None) -> None:
        """The page asked for with `before`; what an event has already shown is newer and is kept."""
        if before != self.next_page:  # the list was replaced meanwhile
            return
        for t in tasks:
            self.tasks.setdefault(t.id, t)
        for j in jobs:
            self.jobs.setdefault(j.id, j)
        self.next_page, self._asked = next_page, None
        visible = self._visible()
        shown = [str(key.value) for key in self.table.rows]
        if [r.id for r in visible[:len(shown)]] == shown:  # older rows only go below: add them, keep the rest
            for row in visible[len(shown):]:
                self.table.add_row(*self._cells(row), key=row.id)
        else:  # a row moved (a task joined the job it belongs to): lay the list out again
            self._rebuild()
        self._near_end()

    def older_failed(self, before: str) -> None:
        """The page asked for with `before` did not come: ask again when the user next comes near the end."""
        if self._asked == before:
            self._asked = None

    def upsert(self, task: TaskInfo) -> None:
        known = task.id in self.tasks
        before = self.tasks.get(task.id)
        self.tasks[task.id] = task
        if known and before is not None and before.job_id == task.job_id and self._shown(task.id) \
                and matches(task, self.query_text):
            self._update_row(task)
        else:
            self._rebuild(arrivals=True)

    def upsert_job(self, job: JobInfo) -> None:
        before = self.jobs.get(job.id)
        self.jobs[job.id] = job
        if before is not None and before.task_ids == job.task_ids and self._shown(job.id) \
                and job_matches(job, self.query_text) == job_matches(before, self.query_text):
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
        self.query_text = event.value
        self._rebuild()
        self.border_subtitle = f"filter: {event.value}" if event.value else ""

    @on(Input.Submitted, "#task-filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def key_escape(self) -> None:
        self.query_one(Input).value = ""
        self.remove_class("-filtering")
        self.table.focus()

    # ------------------------------------------------------------ table

    @on(DataTable.RowHighlighted, "#tasks")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row == self.table.cursor_row:  # a rebuild queues highlights that are already stale
            self._select(event.row_key.value)
            self._near_end()

    def _near_end(self) -> None:
        """Ask for the next older page once the cursor or the bottom of the view is near the last row.

        Not while a filter is on: it applies to the tasks read so far, and a filter that matches few
        of them would otherwise read the whole history, page after page.
        """
        if self.next_page is None or self._asked == self.next_page or self.query_text:
            return
        table = self.table
        bottom = round(table.scroll_y) + table.scrollable_content_region.height
        if max(table.cursor_row, bottom) >= table.row_count - NEAR_END:
            self._asked = self.next_page
            self.post_message(self.NeedOlder(self.next_page))

    def _select(self, task_id: str | None) -> None:
        if task_id != self._selected:
            self._selected = task_id
            self.post_message(self.Selected(task_id))

    def _visible(self) -> list[Row]:
        """Rows in order: newest first, each job followed by its tasks in the order it queued them."""
        grouped: dict[str, list[TaskInfo]] = {}
        top: list[Row] = []
        for t in self.tasks.values():
            if t.job_id in self.jobs:
                if matches(t, self.query_text):
                    grouped.setdefault(t.job_id, []).append(t)
            elif matches(t, self.query_text):
                top.append(t)
        # While older pages are unread, a job older than every task read waits for its page: it would
        # otherwise sit at the end, under tasks not read yet.
        horizon = min((t.created_at for t in self.tasks.values()), default=0.0) if self.next_page else 0.0
        top += [j for j in self.jobs.values()
                if j.id in grouped or (j.created_at >= horizon and job_matches(j, self.query_text))]
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
