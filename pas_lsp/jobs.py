"""Jobs from the editor: `pas.delegateJob` arguments, the folder code action, the job's progress text."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from lsprotocol import types as lsp
from pydantic import Field
from pygls.uris import to_fs_path

from daemon import protocol as p
from pas_lsp.tasks import _Args


class JobArgs(_Args):
    uris: list[str] = Field(min_length=1)
    instruction: str | None = None
    model: str | None = None
    split: Literal["per-file", "plan"] = "per-file"
    engine: str | None = None  # None: the model's configured engine (native by default)


class JobRefArgs(_Args):
    job: str = Field(min_length=1)


def folder_actions(uri: str, models: list[str]) -> list[lsp.CodeAction]:
    """Per document, the job a code action can name is the document's folder; clients pass other selections."""
    fs = to_fs_path(uri) if uri.startswith("file:") else None
    if not fs:
        return []
    folder = Path(fs).parent.as_uri()
    out = []
    for model in models:
        title = f"PAS: delegate this file's folder as a job to {model}"
        out.append(lsp.CodeAction(title=title, kind=lsp.CodeActionKind.RefactorRewrite, command=lsp.Command(
            title=title, command="pas.promptDelegateJob", arguments=[{"uris": [folder], "model": model}])))
    return out


def total(job: p.JobInfo) -> int:
    """Subtasks in the job: the plan when there is one, else the tasks queued so far."""
    return max(len(job.plan), len(job.task_ids))


def done_count(job: p.JobInfo) -> int:
    return sum(1 for t in job.tasks if not t.state.active)


def progress(job: p.JobInfo) -> str:
    """The report while a job runs: "3 of 6 tasks done"."""
    n = total(job)
    return f"{done_count(job)} of {n} task{'s' if n != 1 else ''} done"


def outcome(job: p.JobInfo) -> str:
    """The end message of a job's progress."""
    review = sum(1 for t in job.tasks if t.state.reviewable)
    stopped = f" (stopped: {job.stop_reason})" if job.stopped and job.stop_reason else ""
    if job.state is p.JobState.REVIEW:
        return f"ready for review: {review} task{'s' if review != 1 else ''}{stopped}"
    if job.state is p.JobState.FAILED:
        why = job.error or job.stop_reason or next((t.error or t.reason for t in job.tasks if t.error or t.reason),
                                                   None)
        return f"failed: {why or 'no task reached review'}"
    if job.state is p.JobState.CANCELLED:
        return "cancelled"
    return job.state.value.lower()

