"""`s`: the submit form — instruction, files, model from the configured choices, check command, engine."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from daemon.protocol import SubmitParams


class SubmitForm(ModalScreen[SubmitParams | None]):
    """Dismisses with the SubmitParams to send, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    SubmitForm { align: center middle; }
    SubmitForm > Vertical { width: 90; height: auto; border: round $accent; background: $surface; padding: 1 2; }
    SubmitForm Label { margin-top: 1; }
    SubmitForm #submit-error { color: $error; height: auto; }
    SubmitForm Horizontal { height: auto; margin-top: 1; }
    """

    def __init__(self, workspace: str, choices: list[str], default: str | None, note: str = "") -> None:
        super().__init__()
        self.workspace = workspace
        self.choices = choices
        self.default = default if default in choices else None
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Workspace")
            yield Input(self.workspace, id="workspace")
            yield Label("Instruction")
            yield Input(placeholder="what should the programmer do?", id="instruction")
            yield Label("Files (space or comma separated, relative to the workspace)")
            yield Input(placeholder="app.py util.py", id="files")
            yield Label("Model")
            yield Select([(c, c) for c in self.choices], value=self.default or Select.NULL,
                         prompt="the configured default", id="model")
            yield Label("Check command (optional)")
            yield Input(placeholder="pytest -q", id="check")
            yield Label("Engine (optional: native, or a tool `pasd engines` lists, e.g. aider)")
            yield Input(placeholder="the model's configured engine", id="engine")
            yield Label(self.note, id="submit-error")
            with Horizontal():
                yield Button("Submit", variant="primary", id="submit")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#instruction", Input).focus()

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def params(self) -> SubmitParams:
        """The form as SubmitParams; raises ValueError with a readable message."""
        model = self.query_one("#model", Select).value
        files = [f for f in self._value("files").replace(",", " ").split() if f]
        if not self._value("instruction"):
            raise ValueError("the instruction is empty")
        if not self._value("workspace"):
            raise ValueError("the workspace is empty")
        return SubmitParams(workspace=self._value("workspace"), instruction=self._value("instruction"),
                            files=files, model=None if model is Select.NULL else str(model),
                            check=self._value("check") or None, engine=self._value("engine") or None)

    @on(Button.Pressed, "#submit")
    @on(Input.Submitted)
    def action_submit(self) -> None:
        try:
            params = self.params()
        except ValueError as exc:
            self.query_one("#submit-error", Label).update(str(exc))
            return
        self.dismiss(params)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
