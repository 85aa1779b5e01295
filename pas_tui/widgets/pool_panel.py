"""The pool panel: every Programmer, its state, task, model, elapsed time, its reply's tokens
as they stream, and counters."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.widgets import DataTable

from daemon.protocol import PoolStatus, ProgrammerInfo, ProgrammerState, ProgressEvent, TaskState
from pas_tui.format import duration, state_text, tokens

COLUMNS = (("programmer", "Programmer"), ("state", "State"), ("task", "Task"), ("model", "Model"),
           ("elapsed", "Elapsed"), ("tokens", "Tokens"), ("done", "Done"), ("failures", "Failures"))


class PoolPanel(DataTable[str | Text]):
    """A row per Programmer, kept current from programmer events (and progress events, for the
    token count of a reply while it streams)."""

    DEFAULT_CSS = """
    PoolPanel { height: auto; max-height: 12; border: round $primary; }
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, **kw: object) -> None:
        super().__init__(cursor_type="none", zebra_stripes=True, **kw)  # type: ignore[arg-type]
        self.clock = clock
        self.programmers: dict[str, ProgrammerInfo] = {}
        self.queued = 0
        self.review = 0  # REVIEW and CONFLICT: both wait for the user, as the daemon counts them
        self.replies: dict[str, str] = {}  # Programmer -> its current reply's token count, as shown
        self.border_title = "Pool"

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)
        self.set_interval(1.0, self.tick)

    def show_status(self, status: PoolStatus) -> None:
        """Replace every row with the daemon's snapshot."""
        self.clear()
        self.programmers = {}
        self.replies = {}
        for info in status.programmers:
            self.update_programmer(info)
        self.show_counts(status)

    def show_counts(self, status: PoolStatus) -> None:
        """Take the daemon's counts as they are now (task events move them from there)."""
        self.queued, self.review = status.queued, status.review
        self._show_counts()

    @property
    def running(self) -> int:
        """Tasks on a Programmer now (the daemon's own definition of running)."""
        return sum(1 for info in self.programmers.values() if info.task_id)

    def task_moved(self, before: TaskState | None, after: TaskState) -> None:
        """Keep the queued and in-review counts live from a task event (`before`: None for a new task)."""
        if before == after:
            return
        for state, step in ((before, -1), (after, 1)):
            if state is TaskState.QUEUED:
                self.queued = max(0, self.queued + step)
            elif state is not None and state.reviewable:
                self.review = max(0, self.review + step)
        self._show_counts()

    def _show_counts(self) -> None:
        self.border_subtitle = f"{self.queued} queued · {self.running} running · {self.review} in review"

    def update_programmer(self, info: ProgrammerInfo) -> None:
        before = self.programmers.get(info.id)
        if info.state is not ProgrammerState.BUSY or (before is not None and before.task_id != info.task_id):
            self.replies.pop(info.id, None)  # the count belongs to the task it was running
        cells = self._cells(info)
        if info.id in self.programmers:
            for (key, _), value in zip(COLUMNS, cells, strict=True):
                self.update_cell(info.id, key, value, update_width=True)
        else:
            self.add_row(*cells, key=info.id)
        self.programmers[info.id] = info
        self._show_counts()

    def show_progress(self, ev: ProgressEvent) -> None:
        """A reply's token count (estimated, `~`, while it streams) in its Programmer's row."""
        info = self.programmers.get(ev.programmer or "")
        if ev.tokens is None or info is None or info.task_id != ev.task_id:
            return
        self.replies[info.id] = ("~" if ev.streaming else "") + tokens(ev.tokens)
        self.update_cell(info.id, "tokens", self.replies[info.id], update_width=True)

    def tick(self) -> None:
        """Advance the elapsed column of busy Programmers (a clock, not a poll of the daemon)."""
        for info in self.programmers.values():
            if info.state is ProgrammerState.BUSY:
                self.update_cell(info.id, "elapsed", self._elapsed(info), update_width=True)

    def _elapsed(self, info: ProgrammerInfo) -> str:
        if info.state is not ProgrammerState.BUSY or info.busy_since is None:
            return ""
        return duration(self.clock() - info.busy_since)

    def _cells(self, info: ProgrammerInfo) -> tuple[str | Text, ...]:
        failures = Text(str(info.failures), style="red" if info.failures else "")
        return (info.id, state_text(info.state), info.task_id or "", info.model or "", self._elapsed(info),
                self.replies.get(info.id, ""), str(info.tasks_done), failures)
