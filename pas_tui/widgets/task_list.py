"""The task list: every task with state, instruction, model, files, cost and age; `/` filters."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input

from daemon.protocol import TaskInfo, TaskState
from pas_tui.format import cost, duration, short, state_text

COLUMNS = (("id", "Id"), ("state", "State"), ("instruction", "Instruction"), ("model", "Model"),
           ("files", "Files"), ("cost", "Cost"), ("age", "Age"))
STATES = {s.value.lower(): s for s in TaskState}


def matches(task: TaskInfo, query: str) -> bool:
    """Every word must match: a state name matches the state, anything else is a substring."""
    for word in query.lower().split():
        if word in STATES:
            if task.state is not STATES[word]:
                return False
        elif not any(word in field.lower() for field in (task.id, task.instruction, task.model, *task.files)):
            return False
    return True


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
        """The highlighted task changed (None: the list is empty)."""

        task_id: str | None

    def __init__(self, *, clock: Callable[[], float] = time.time, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.clock = clock
        self.tasks: dict[str, TaskInfo] = {}
        self.query_text = ""
        self.border_title = "Tasks"
        self._selected: str | None = None

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

    @property
    def selected(self) -> TaskInfo | None:
        return self.tasks.get(self._selected) if self._selected else None

    # ------------------------------------------------------------ data

    def replace_all(self, tasks: list[TaskInfo]) -> None:
        self.tasks = {t.id: t for t in tasks}
        self._rebuild()

    def upsert(self, task: TaskInfo) -> None:
        known = task.id in self.tasks
        self.tasks[task.id] = task
        shown = self.table.is_valid_row_index(self._row_index(task.id))
        if known and shown and matches(task, self.query_text):
            for (key, _), value in zip(COLUMNS, self._cells(task), strict=True):
                self.table.update_cell(task.id, key, value, update_width=True)
        else:
            self._rebuild()

    def tick(self) -> None:
        """Advance the age column."""
        for task in self._visible():
            self.table.update_cell(task.id, "age", self._age(task), update_width=True)

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

    def _select(self, task_id: str | None) -> None:
        if task_id != self._selected:
            self._selected = task_id
            self.post_message(self.Selected(task_id))

    def _visible(self) -> list[TaskInfo]:
        tasks = [t for t in self.tasks.values() if matches(t, self.query_text)]
        return sorted(tasks, key=lambda t: t.created_at, reverse=True)

    def _row_index(self, task_id: str) -> int:
        try:
            return self.table.get_row_index(task_id)
        except Exception:  # RowDoesNotExist
            return -1

    def _rebuild(self) -> None:
        keep = self._selected
        table = self.table
        table.clear()
        visible = self._visible()
        for task in visible:
            table.add_row(*self._cells(task), key=task.id)
        ids = [t.id for t in visible]
        if keep in ids:
            table.move_cursor(row=ids.index(keep), animate=False)
        self._select(keep if keep in ids else (ids[0] if ids else None))

    def _age(self, task: TaskInfo) -> str:
        return duration(self.clock() - task.created_at)

    def _cells(self, task: TaskInfo) -> tuple[str | Text, ...]:
        return (task.id, state_text(task.state), short(task.instruction, 48), task.model.split("/")[-1],
                short(", ".join(task.files), 24), cost(task.cost_usd), self._age(task))
