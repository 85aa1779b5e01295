"""`v`: send the selected task's proposal back to its Programmer with a comment."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from daemon.protocol import MAX_COMMENT_CHARS


class ReviseForm(ModalScreen[str | None]):
    """Dismisses with the comment to send, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    ReviseForm { align: center middle; }
    ReviseForm > Vertical { width: 90; height: auto; border: round $accent; background: $surface; padding: 1 2; }
    ReviseForm #revise-error { color: $error; height: auto; }
    ReviseForm Horizontal { height: auto; margin-top: 1; }
    """

    def __init__(self, task_id: str, hunks: list[int]) -> None:
        super().__init__()
        self.task_id = task_id
        self.hunks = hunks

    def compose(self) -> ComposeResult:
        plural = "s" if len(self.hunks) > 1 else ""
        about = f", about hunk{plural} {', '.join(map(str, self.hunks))}" if self.hunks else ""
        with Vertical():
            yield Label(f"Send task {self.task_id} back to its Programmer{about}")
            yield Input(placeholder="what should change? e.g. also handle None", max_length=MAX_COMMENT_CHARS,
                        id="comment")
            yield Label("", id="revise-error")
            with Horizontal():
                yield Button("Revise", variant="primary", id="revise")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#comment", Input).focus()

    @on(Button.Pressed, "#revise")
    @on(Input.Submitted)
    def action_revise(self) -> None:
        comment = self.query_one("#comment", Input).value.strip()
        if not comment:
            self.query_one("#revise-error", Label).update("the comment is empty")
            return
        self.dismiss(comment)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
