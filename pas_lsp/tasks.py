"""Delegating: command arguments, `pas:` comments, delegate code actions, task outcomes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types as lsp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daemon import protocol as p
from pas_lsp.errors import InvalidParams

M = TypeVar("M", bound=BaseModel)

PAS_COMMENT = re.compile(r"(?:#|//|--)\s*pas:\s*(.*\S)", re.IGNORECASE)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Position(_Args):
    line: int = Field(ge=0)
    character: int = Field(ge=0)


class Range(_Args):
    start: Position
    end: Position


class DelegateArgs(_Args):
    uri: str = Field(min_length=1)
    range: Range | None = None
    model: str | None = None
    instruction: str | None = None
    engine: str | None = None  # None: the model's configured engine (native by default)


class TaskArgs(_Args):
    task: str = Field(min_length=1)
    hunks: list[int] | None = None


class ReviseArgs(_Args):
    task: str = Field(min_length=1)
    comment: str = Field(min_length=1, max_length=p.MAX_COMMENT_CHARS)
    hunks: list[int] | None = None


class TaskOnlyArgs(_Args):
    task: str = Field(min_length=1)


class TasksArgs(_Args):
    states: list[p.TaskState] | None = None
    uri: str | None = None


class ModelsArgs(_Args):
    uri: str | None = None  # a document: the models for its workspace (its .pas.toml applies)


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")


def parse_args(command: str, model: type[M], args: tuple[Any, ...]) -> M:
    """The one object argument of a command, validated; InvalidParams names what is wrong."""
    if len(args) > 1:
        raise InvalidParams(f"{command}: expected one object argument, got {len(args)} arguments")
    raw = args[0] if args else {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidParams(f"{command}: expected an object argument, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "argument"
        raise InvalidParams(f"{command}: {where}: {err['msg']}") from exc


def instruction_in(lines: list[str]) -> str | None:
    for line in lines:
        m = PAS_COMMENT.search(line)
        if m:
            return m.group(1)
    return None


def selection(path: str, r: Range | lsp.Range) -> p.Selection | None:
    """Whole 1-based lines covered by an LSP range; None for an empty range."""
    if (r.start.line, r.start.character) == (r.end.line, r.end.character):
        return None
    end = r.end.line
    if r.end.character == 0 and end > r.start.line:
        end -= 1  # a selection that ends at the start of a line does not include that line
    return p.Selection(path=path, start_line=r.start.line + 1, end_line=end + 1)


def scope_lines(lines: list[str], r: lsp.Range) -> list[str]:
    """The lines of a selection, or the cursor's line for an empty one."""
    end = r.end.line - 1 if r.end.character == 0 and r.end.line > r.start.line else r.end.line
    return lines[r.start.line : end + 1]


def delegate_actions(uri: str, r: lsp.Range, lines: list[str], models: list[str]) -> list[lsp.CodeAction]:
    """Delegate actions for a selection and for the file; a `pas:` comment makes them submit directly."""
    actions = []
    empty = (r.start.line, r.start.character) == (r.end.line, r.end.character)
    instruction = instruction_in(scope_lines(lines, r))
    rng = {"start": {"line": r.start.line, "character": r.start.character},
           "end": {"line": r.end.line, "character": r.end.character}}
    for model in models:
        if not empty:
            args: dict[str, Any] = {"uri": uri, "range": rng, "model": model}
            if instruction:
                actions.append(_action(f"PAS: {instruction} ({model})", "pas.delegate",
                                       {**args, "instruction": instruction}))
            else:
                actions.append(_action(f"PAS: delegate selection to {model}", "pas.promptDelegate", args))
        elif instruction:
            actions.append(_action(f"PAS: {instruction} ({model})", "pas.delegate",
                                   {"uri": uri, "model": model, "instruction": instruction}))
    for model in models:
        actions.append(_action(f"PAS: delegate this file to {model}", "pas.promptDelegate",
                               {"uri": uri, "model": model}))
    return actions


def _action(title: str, command: str, args: dict[str, Any]) -> lsp.CodeAction:
    return lsp.CodeAction(title=title, kind=lsp.CodeActionKind.RefactorRewrite,
                          command=lsp.Command(title=title, command=command, arguments=[args]))


def task_summary(t: p.TaskInfo) -> dict[str, Any]:
    root = Path(t.workspace)
    return {"id": t.id, "state": t.state.value, "instruction": t.instruction, "model": t.model,
            "files": list(t.files), "uris": [(root / f).as_uri() for f in t.files], "job": t.job_id}


def report(ev: p.ProgressEvent) -> str:
    """A task's progress message: its step, or a model reply's tokens and edit blocks as they arrive."""
    if ev.tokens is None:
        return ev.message
    blocks = ev.edit_blocks or 0
    counts = f"{ev.tokens} tokens, {blocks} edit block{'' if blocks == 1 else 's'}"
    return f"model: ~{counts}" if ev.streaming else f"model: {counts}"


def outcome(t: p.TaskInfo) -> str:
    """The end message of a task's progress."""
    if t.state is p.TaskState.REVIEW and t.reason and t.reason.startswith("revision_"):
        return f"{t.error or t.reason}; the previous proposal is still in review"
    if t.state is p.TaskState.REVIEW:
        flagged = f" ({p.warning_text(t.warnings)})" if t.warnings else ""
        return f"ready for review{flagged}: +{t.lines_added} -{t.lines_removed}"
    if t.state is p.TaskState.FAILED:
        return f"failed: {t.error or t.reason or 'unknown error'}"
    if t.state is p.TaskState.CANCELLED:
        return "cancelled"
    if t.state is p.TaskState.APPLIED and t.files_changed == 0:
        return "no change"
    return t.state.value.lower()


def notice(t: p.TaskInfo) -> tuple[lsp.MessageType, str] | None:
    """What the editor that submitted a task is told when it ends badly: FAILED, or in review flagged."""
    if t.state is p.TaskState.FAILED:
        why = f"{t.error} ({t.reason})" if t.error and t.reason else t.error or t.reason or "unknown error"
        return lsp.MessageType.Error, f"PAS: task {t.id} failed: {why}"
    if t.state is p.TaskState.REVIEW and t.warnings:
        return (lsp.MessageType.Warning,
                f"PAS: task {t.id} is in review, but flagged: {p.warning_text(t.warnings)} ({t.instruction})")
    return None
