"""Review in place: hunks of tasks in REVIEW as diagnostics, code lenses and workspace edits.

Pure functions over the daemon's `DiffResult` and the editor's buffer text; the server decides
when to publish them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types as lsp

from daemon import protocol as p

SOURCE = "pas"
_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


@dataclass
class ReviewTask:
    """A task awaiting review and its diff, as last fetched from the daemon."""

    info: p.TaskInfo
    diff: p.DiffResult

    @property
    def id(self) -> str:
        return self.info.id

    def pending(self) -> list[p.Hunk]:
        return [h for f in self.diff.files for h in f.hunks if h.state is p.HunkState.PENDING]

    def hunks_in(self, path: str) -> list[p.Hunk]:
        return [h for h in self.pending() if h.path == path]


@dataclass
class Reviews:
    """Tasks in review, by id."""

    tasks: dict[str, ReviewTask] = field(default_factory=dict)

    def for_path(self, workspace: Path, path: str) -> list[tuple[ReviewTask, p.Hunk]]:
        return [(t, h) for t in self.tasks.values() if Path(t.info.workspace).resolve() == workspace
                for h in t.hunks_in(path)]

    def paths(self, task_id: str) -> set[str]:
        t = self.tasks.get(task_id)
        return {h.path for f in t.diff.files for h in f.hunks} if t else set()


def split_lines(text: str) -> list[str]:
    """Lines without their endings (a final newline does not start another line)."""
    return text.splitlines()


def hunk_range(hunk: p.Hunk, lines: list[str]) -> lsp.Range:
    """The buffer range of the base lines a hunk replaces (the next line for a pure insertion)."""
    start = max(hunk.old_start - 1, 0)
    if hunk.old_count == 0:
        line = min(start, max(len(lines) - 1, 0))
        return lsp.Range(lsp.Position(line, 0), lsp.Position(line, len(lines[line]) if lines else 0))
    last = min(start + hunk.old_count - 1, max(len(lines) - 1, 0))
    return lsp.Range(lsp.Position(start, 0), lsp.Position(last, len(lines[last]) if lines else 0))


def severity(info: p.TaskInfo) -> lsp.DiagnosticSeverity:
    """Information for a good result; Error when its check still fails; Warning when edits did not apply."""
    if p.CHECK_FAILED in info.warnings:
        return lsp.DiagnosticSeverity.Error
    return lsp.DiagnosticSeverity.Warning if info.warnings else lsp.DiagnosticSeverity.Information


def flag(info: p.TaskInfo) -> str:
    """" (check failed)" for a flagged task, "" for a good one."""
    return f" ({p.warning_text(info.warnings)})" if info.warnings else ""


def diagnostic(task: ReviewTask, hunk: p.Hunk, lines: list[str]) -> lsp.Diagnostic:
    added, removed = len(hunk.new_lines), len(hunk.old_lines)
    return lsp.Diagnostic(
        range=hunk_range(hunk, lines),
        message=f"PAS task {task.id} hunk {hunk.id} (+{added} -{removed}){flag(task.info)}: {task.info.instruction}",
        severity=severity(task.info),
        source=SOURCE,
        code=task.id,
        data={"task": task.id, "hunk": hunk.id},
    )


def code_lenses(task: ReviewTask, hunk: p.Hunk, lines: list[str]) -> list[lsp.CodeLens]:
    r = hunk_range(hunk, lines)
    at = lsp.Range(r.start, r.start)
    one = {"task": task.id, "hunks": [hunk.id]}
    return [
        lsp.CodeLens(range=at, command=lsp.Command(title=f"Approve{flag(task.info)}", command="pas.approve",
                                                   arguments=[one])),
        lsp.CodeLens(range=at, command=lsp.Command(title="Reject", command="pas.reject", arguments=[one])),
        lsp.CodeLens(range=at, command=lsp.Command(title="Revise…", command="pas.promptRevise", arguments=[one])),
        lsp.CodeLens(range=at, command=lsp.Command(title="Show diff", command="pas.showDiff",
                                                   arguments=[{"task": task.id}])),
        *([lsp.CodeLens(range=at, command=lsp.Command(title=f"Approve job {task.info.job_id}",
                                                      command="pas.approveJob",
                                                      arguments=[{"job": task.info.job_id}]))]
          if task.info.job_id else []),
    ]


def hunk_actions(task: ReviewTask, hunk: p.Hunk) -> list[lsp.CodeAction]:
    one = {"task": task.id, "hunks": [hunk.id]}
    return [
        lsp.CodeAction(title=f"PAS: approve hunk {hunk.id} of task {task.id}", kind=lsp.CodeActionKind.QuickFix,
                       command=lsp.Command(title="Approve hunk", command="pas.approve", arguments=[one])),
        lsp.CodeAction(title=f"PAS: reject hunk {hunk.id} of task {task.id}", kind=lsp.CodeActionKind.QuickFix,
                       command=lsp.Command(title="Reject hunk", command="pas.reject", arguments=[one])),
        # client-side (docs/lsp.md): the editor asks for the comment, then runs pas.revise
        lsp.CodeAction(title=f"PAS: revise hunk {hunk.id} of task {task.id}…", kind=lsp.CodeActionKind.QuickFix,
                       command=lsp.Command(title="Revise hunk", command="pas.promptRevise", arguments=[one])),
    ]


def overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    return not (a.end.line < b.start.line or b.end.line < a.start.line)


def base_block(hunk: p.Hunk) -> tuple[int, list[str]]:
    """0-based first line and the base-side lines (context + removed) of a hunk's diff text."""
    lines = hunk.text.split("\n")
    m = _HEADER.match(lines[0]) if lines else None
    if m is None:
        return hunk.old_start - 1, list(hunk.old_lines)
    start = int(m.group(1))
    count = int(m.group(2)) if m.group(2) is not None else 1
    block = [ln[1:] for ln in lines[1:] if ln[:1] in (" ", "-")]
    return (start - 1 if count else start), block


def locate(hunk: p.Hunk, lines: list[str]) -> int | None:
    """How far the hunk's base text has moved in the buffer (0: where the task saw it); None: it changed.

    The check covers the hunk's context lines too, so a pure insertion is placed by its neighbours.
    Edits elsewhere in the buffer that only shift lines are fine when the block is found once.
    """
    start, block = base_block(hunk)
    if not block:
        return 0 if hunk.old_start - 1 <= len(lines) else None
    if lines[start : start + len(block)] == block:
        return 0
    found = [i for i in range(len(lines) - len(block) + 1) if lines[i : i + len(block)] == block]
    return found[0] - start if len(found) == 1 else None


def text_edit(hunk: p.Hunk, lines: list[str], text: str, shift: int) -> lsp.TextEdit:
    """The buffer edit that replaces the hunk's base lines with its new lines."""
    eol = "\r\n" if "\r\n" in text else "\n"
    start = max(hunk.old_start - 1, 0) + shift
    end = start + hunk.old_count
    new = "".join(line + eol for line in hunk.new_lines)
    if end >= len(lines) and text and not text.endswith(("\n", "\r")) and hunk.old_count:
        # The hunk ends on a last line without a newline: stop at its end, keep it unterminated.
        last = len(lines) - 1
        return lsp.TextEdit(lsp.Range(lsp.Position(start, 0), lsp.Position(last, len(lines[last]))),
                            new[: -len(eol)] if new else "")
    if start >= len(lines) and text and not text.endswith(("\n", "\r")):
        last = len(lines) - 1
        return lsp.TextEdit(lsp.Range(lsp.Position(last, len(lines[last])), lsp.Position(last, len(lines[last]))),
                            eol + new[: -len(eol)])
    return lsp.TextEdit(lsp.Range(lsp.Position(start, 0), lsp.Position(end, 0)), new)
