"""Small, pure formatting helpers shared by the widgets."""

from __future__ import annotations

from rich.text import Text

from daemon.protocol import CHECK_FAILED, ProgrammerState, TaskInfo, TaskState, warning_text

STATE_STYLE: dict[str, str] = {
    ProgrammerState.IDLE: "green",
    ProgrammerState.BUSY: "bold yellow",
    ProgrammerState.FAILED: "bold red",
    TaskState.QUEUED: "cyan",
    TaskState.RUNNING: "bold yellow",
    TaskState.REVIEW: "bold magenta",
    TaskState.APPLIED: "green",
    TaskState.REJECTED: "dim",
    TaskState.CONFLICT: "bold red",
    TaskState.FAILED: "red",
    TaskState.CANCELLED: "dim",
}


def state_text(state: str) -> Text:
    """A state name in its colour (the same colour everywhere in the TUI)."""
    return Text(str(state), style=STATE_STYLE.get(state, ""))


def task_state_text(task: TaskInfo) -> Text:
    """A task's state in its colour; a flagged one gets a `⚠` badge, red when its check fails, else yellow."""
    if not task.warnings or task.state not in (TaskState.REVIEW, TaskState.CONFLICT):
        return state_text(task.state)
    return Text(f"{task.state.value} ⚠", style="bold red" if CHECK_FAILED in task.warnings else "bold yellow")


def flag_text(task: TaskInfo) -> str:
    """What the badge means, in words: "check failed, edits refused" ("" for a good result)."""
    return warning_text(task.warnings)


def duration(seconds: float | None) -> str:
    """`42s`, `3m05s`, `2h07m`; empty for None."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def cost(usd: float, priced: bool = True) -> str:
    """Dollars with enough digits to see a cheap task; `unpriced` when the model has no price."""
    if not priced:
        return "unpriced"
    return f"${usd:.4f}" if usd >= 0.01 or usd == 0 else f"${usd:.6f}"


def tokens(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 10_000 else str(n)


def short(text: str, width: int) -> str:
    """One line, cut to `width` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
