"""The review pane: a summary line, the hunks, and the receipt."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from daemon.protocol import DiffResult, JobDiffResult, JobInfo, JobState, Receipt, TaskInfo, TaskState
from pas_tui.format import short, state_text
from pas_tui.widgets.review.hunks import HunkList
from pas_tui.widgets.review.receipt import ReceiptPanel


def conflict_text(task: TaskInfo) -> str:
    """Why a CONFLICT task cannot apply, in one sentence per hunk."""
    if not task.conflicts:
        return "the files changed since the task started; approving again retries the merge"
    return "; ".join(f"hunk {c.hunk_id} in {c.path}: {c.reason}" for c in task.conflicts)


def summary(task: TaskInfo) -> Text:
    text = Text.assemble(state_text(task.state), "  ", short(task.instruction, 80))
    if task.files_changed:
        text.append(f"  ·  {task.files_changed} file{'s' if task.files_changed != 1 else ''} ")
        text.append(f"+{task.lines_added}", style="green")
        text.append(" ")
        text.append(f"-{task.lines_removed}", style="red")
    if task.revision:
        text.append(f"  ·  revision {task.revision}")
    if task.state is TaskState.CONFLICT:
        text.append(f"\ncannot apply: {conflict_text(task)}", style="bold red")
    elif task.error:
        text.append(f"\n{task.error}", style="red")
    return text


def job_summary(job: JobInfo) -> Text:
    n = max(len(job.plan), len(job.task_ids))
    review = sum(1 for t in job.tasks if t.state.reviewable)
    text = Text.assemble(state_text(job.state), "  ", (f"job {job.id}", "bold"), "  ", short(job.instruction, 70),
                         f"  ·  {n} task{'s' if n != 1 else ''}, {review} in review")
    if job.stopped and job.stop_reason:
        text.append(f"\nstopped: {job.stop_reason}", style="yellow")
    if job.error:
        text.append(f"\n{job.error}", style="red")
    return text


class ReviewPane(Vertical):
    """Shows whatever task the task list has selected."""

    DEFAULT_CSS = """
    ReviewPane { height: 2fr; border: round $primary; }
    ReviewPane > #review-summary { height: auto; max-height: 4; padding: 0 1; }
    ReviewPane > Horizontal { height: 1fr; }
    """

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.shown_task: TaskInfo | None = None
        self.shown_job: JobInfo | None = None
        self.border_title = "Review"

    def compose(self) -> ComposeResult:
        yield Static(Text("select a task", style="dim"), id="review-summary")
        with Horizontal():
            yield HunkList(id="hunks")
            yield ReceiptPanel(id="receipt")

    @property
    def hunks(self) -> HunkList:
        return self.query_one(HunkList)

    @property
    def receipt(self) -> ReceiptPanel:
        return self.query_one(ReceiptPanel)

    async def show(self, task: TaskInfo | None, diff: DiffResult | None, receipt: Receipt | None) -> None:
        same = self.shown_task is not None and task is not None and self.shown_task.id == task.id
        self.shown_task, self.shown_job = task, None
        self.query_one("#review-summary", Static).update(summary(task) if task else Text("no task", style="dim"))
        await self.hunks.show(diff, keep_choice=same)
        self.receipt.show(receipt)
        keys = "n/p hunk · space choose · a approve · r reject · v revise"
        self.border_subtitle = keys if diff and diff.files else ""

    async def show_job(self, job: JobInfo, diff: JobDiffResult | None) -> None:
        """A job: its combined diff (every task's hunks, one after another) and its summed receipt."""
        self.shown_task, self.shown_job = None, job
        self.query_one("#review-summary", Static).update(job_summary(job))
        files = [f for d in diff.tasks for f in d.files] if diff else []
        combined = DiffResult(task_id=job.id, state=TaskState.REVIEW, diff=diff.diff, files=files) if diff else None
        await self.hunks.show(combined)
        self.receipt.show_totals(job.receipt, max(len(job.plan), len(job.task_ids)))
        self.border_subtitle = "a approve the job · r reject the job" if job.state is JobState.REVIEW else ""
