"""PasApp: wires the regions to the daemon link. Logic lives in the widgets and `connection`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer

from daemon import protocol as p
from daemon.errors import PasError
from pas_tui.connection import PAGE, Backoff, ClientFactory, DaemonEvent, Link, Lost, Synced
from pas_tui.pages import Pages
from pas_tui.widgets.banner import ConnectionBanner
from pas_tui.widgets.pool_panel import PoolPanel
from pas_tui.widgets.review import ReviewPane
from pas_tui.widgets.review.pane import conflict_text
from pas_tui.widgets.task_list import TaskList

# The other screens (receipts with its chart, help, the forms) are imported when they first open:
# the main screen paints sooner without them.

DONE = {"approve": "approved", "reject": "rejected"}  # each review verb's past tense, spelled out


class PasApp(App[None]):
    """The monitor: pool panel, task list and review pane, live from the daemon's events."""

    TITLE = "pas-tui"
    BINDINGS = [
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("n", "hunk(1)", "Next hunk", show=False),  # the review pane's subtitle shows these
        Binding("p", "hunk(-1)", "Previous hunk", show=False),
        Binding("space", "toggle_hunk", "Choose hunk", show=False),
        Binding("a", "review('approve')", "Approve"),
        Binding("r", "review('reject')", "Reject"),
        Binding("v", "revise", "Revise"),
        Binding("c", "cancel_task", "Cancel"),
        Binding("s", "submit", "Submit"),
        Binding("R", "receipts", "Receipts", key_display="R"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    MAIN_ONLY = frozenset({"filter", "hunk", "toggle_hunk", "review", "revise", "cancel_task"})

    def __init__(self, socket: str | os.PathLike[str] | None = None, *, client_factory: ClientFactory | None = None,
                 workspace: str | os.PathLike[str] | None = None, clock: Callable[[], float] = time.time,
                 backoff: Backoff | None = None, page: int = PAGE) -> None:
        super().__init__()
        self.link = Link(socket, client_factory=client_factory, backoff=backoff, page=page)
        self.workspace = str(Path(workspace or Path.cwd()).resolve())
        self.clock = clock
        self.synced = 0  # how many times the link has (re)synchronised; tests wait on it
        self._told_untrusted: set[tuple[str, str]] = set()  # (file, sha256) already reported

    def compose(self) -> ComposeResult:
        yield ConnectionBanner()
        yield PoolPanel(clock=self.clock)
        yield TaskList(clock=self.clock)
        yield ReviewPane()
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = str(self.link.socket)
        self.query_one("#tasks").focus()
        self.run_worker(self.link.run(self.post_message), name="events", group="events", exclusive=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Review keys act on the main screen only (not under the receipts screen or a form)."""
        if action in self.MAIN_ONLY and len(self.screen_stack) > 1:
            return False
        return True

    # ------------------------------------------------------------ the link

    @on(Synced)
    def _synced(self, msg: Synced) -> None:
        if not self.is_running:  # shutting down: the screens go before the daemon's messages queued for them
            return
        self.query_one(ConnectionBanner).connected()
        self.query_one(PoolPanel).show_status(msg.status)
        tasks = self.query_one(TaskList)
        was = tasks.selected_id
        tasks.replace_all(msg.tasks, msg.jobs, msg.next, msg.jobs_next)
        self._report_untrusted(msg.status)
        self.synced += 1
        if tasks.selected_id == was:  # else its TaskList.Selected loads the review: once, not twice
            self._load_review()

    @on(Lost)
    def _lost(self, msg: Lost) -> None:
        if not self.is_running:  # as in _synced
            return
        self.query_one(ConnectionBanner).disconnected(msg.reason, msg.retry_in)

    @on(DaemonEvent)
    def _event(self, msg: DaemonEvent) -> None:
        if not self.is_running:  # as in _synced
            return
        ev = msg.envelope.event
        if isinstance(ev, p.ProgrammerEvent):
            self.query_one(PoolPanel).update_programmer(ev.programmer)
        elif isinstance(ev, p.ProgressEvent):
            self.query_one(PoolPanel).show_progress(ev)
        elif isinstance(ev, p.TaskEvent):
            tasks = self.query_one(TaskList)
            before = self._task_seen(ev.task)
            if ev.task.state is p.TaskState.QUEUED:  # a new task may be the first from its workspace
                self.check_untrusted()
            if tasks.selected and tasks.selected.id == ev.task.id and (before is None or before != ev.task):
                self._load_review()
        elif isinstance(ev, p.JobEvent):
            tasks = self.query_one(TaskList)
            before_job = tasks.jobs.get(ev.job.id)
            tasks.upsert_job(ev.job)
            if tasks.selected_job and tasks.selected_job.id == ev.job.id and before_job != ev.job:
                self._load_review()
        elif isinstance(ev, p.ReceiptEvent):
            pane = self.query_one(ReviewPane)
            if pane.shown_task and pane.shown_task.id == ev.receipt.task_id:
                pane.receipt.show(ev.receipt)
            if len(self.screen_stack) > 1:  # only then can the receipts screen be open
                from pas_tui.widgets.receipts_screen import ReceiptsScreen

                if isinstance(self.screen, ReceiptsScreen):
                    self.screen.add(ev.receipt)

    def _task_seen(self, task: p.TaskInfo) -> p.TaskInfo | None:
        """Show a task's new state in the list and the pool's counts; returns what was known before."""
        before = self.query_one(TaskList).tasks.get(task.id)
        self.query_one(TaskList).upsert(task)
        self.query_one(PoolPanel).task_moved(before.state if before else None, task.state)
        if before is None and task.state is not p.TaskState.QUEUED:
            self.recount()  # a task older than the list: where it was counted is unknown here, not to the daemon
        return before

    @on(TaskList.Selected)
    def _selected(self) -> None:
        self._load_review()

    @on(TaskList.NeedOlder)
    @on(TaskList.Search)
    @on(TaskList.Recount)
    def _ask_for_rows(self, msg: TaskList.NeedOlder | TaskList.Search | TaskList.Recount) -> None:
        group, request = Pages(self.link, self.query_one(TaskList)).for_message(msg)
        self.run_worker(request, group=group, exclusive=True, exit_on_error=False)

    def _report_untrusted(self, status: p.PoolStatus) -> None:
        """Once per workspace file (as it is now): which of its settings the daemon ignores, and the fix."""
        for u in status.untrusted:
            if (u.path, u.sha256) not in self._told_untrusted:
                self._told_untrusted.add((u.path, u.sha256))
                self.notify(u.message(), title="untrusted .pas.toml", severity="warning", timeout=30)

    # ------------------------------------------------------------ workers (requests to the daemon)

    @work(exclusive=True, group="untrusted", exit_on_error=False)
    async def check_untrusted(self) -> None:
        try:
            status = await self.link.client.status()
        except PasError:
            return
        self._report_untrusted(status)

    @work(exclusive=True, group="recount", exit_on_error=False)
    async def recount(self) -> None:
        try:
            status = await self.link.client.status()
        except PasError:
            return
        self.query_one(PoolPanel).show_counts(status)

    def _load_review(self) -> None:
        tasks = self.query_one(TaskList)
        job = tasks.selected_job
        if job is not None:
            self.load_job_review(job)
        else:
            self.load_review(tasks.selected)

    @work(exclusive=True, group="review", exit_on_error=False)
    async def load_job_review(self, job: p.JobInfo) -> None:
        diff: p.JobDiffResult | None = None
        try:
            diff = await self.link.client.job_diff(job.id)
        except PasError:
            pass  # gone or disconnected: the next event or resync reloads
        await self.query_one(ReviewPane).show_job(job, diff)

    @work(exclusive=True, group="review", exit_on_error=False)
    async def load_review(self, task: p.TaskInfo | None) -> None:
        diff: p.DiffResult | None = None
        receipt: p.Receipt | None = None
        if task is not None:
            try:
                client = self.link.client
                if task.files_changed or task.state.reviewable or task.state is p.TaskState.APPLIED:
                    diff = await client.diff(task.id)
                # cast: PasClient has a method named `list`, so mypy misreads its `list[...]` annotations
                receipts = await client.receipts(p.ReceiptsParams(task_id=task.id))
                receipt = receipts[-1] if receipts else None
            except PasError:
                pass  # gone or disconnected: show what we have; the next event or resync reloads
        await self.query_one(ReviewPane).show(task, diff, receipt)

    @work(group="rpc", exit_on_error=False)
    async def review(self, verb: str, task: p.TaskInfo, hunks: list[int] | None) -> None:
        params = p.ReviewParams(task_id=task.id, hunks=hunks)
        try:
            client = self.link.client
            result = await (client.approve(params) if verb == "approve" else client.reject(params))
        except PasError as exc:
            self.notify(exc.message, title=f"{verb} failed", severity="error")
            return
        if result.conflicts:
            self.notify(f"cannot apply: {conflict_text(result.task)}. Edit the file back or reject the task.",
                        title="conflict", severity="error", timeout=10)
        elif verb == "reject" and task.state is p.TaskState.CONFLICT:
            self.notify(f"rejected; it could not apply because {conflict_text(task)}", title="rejected")
        else:
            done = result.applied if verb == "approve" else result.rejected
            self.notify(f"{DONE[verb]} hunk{'s' if len(done) != 1 else ''} {', '.join(map(str, done))}",
                        title=result.task.state.value)
        self._load_review()

    @work(group="rpc", exit_on_error=False)
    async def revise(self, task: p.TaskInfo, comment: str, hunks: list[int] | None) -> None:
        try:
            result = await self.link.client.revise(p.ReviseParams(task_id=task.id, comment=comment, hunks=hunks))
        except PasError as exc:
            self.notify(exc.message, title="revise failed", severity="error")
            return
        self.query_one(TaskList).upsert(result)
        self.notify(f"revision {result.revision} of {result.id} queued", title=result.state.value)

    @work(group="rpc", exit_on_error=False)
    async def review_job(self, verb: str, job: p.JobInfo) -> None:
        params = p.JobReviewParams(job_id=job.id)
        try:
            client = self.link.client
            result = await (client.approve_job(params) if verb == "approve" else client.reject_job(params))
        except PasError as exc:
            self.notify(exc.message, title=f"{verb} failed", severity="error")
            return
        n = len(result.results)
        if result.conflicts:
            detail = "; ".join(f"hunk {c.hunk_id} in {c.path}: {c.reason}" for c in result.conflicts)
            self.notify(f"job {job.id}: {DONE[verb]} {n} task{'s' if n != 1 else ''}; cannot apply {detail}",
                        title="conflict", severity="error", timeout=10)
        else:
            self.notify(f"job {job.id}: {DONE[verb]} {n} task{'s' if n != 1 else ''}", title=result.job.state.value)
        self.query_one(TaskList).upsert_job(result.job)
        self._load_review()

    @work(group="rpc", exit_on_error=False)
    async def cancel_job(self, job_id: str) -> None:
        try:
            job = await self.link.client.cancel_job(job_id)
        except PasError as exc:
            self.notify(exc.message, title="cancel failed", severity="error")
            return
        self.notify(f"job {job.id} is {job.state.value}")

    @work(group="rpc", exit_on_error=False)
    async def cancel_task(self, task_id: str) -> None:
        try:
            task = await self.link.client.cancel(task_id)
        except PasError as exc:
            self.notify(exc.message, title="cancel failed", severity="error")
            return
        self.notify(f"task {task.id} is {task.state.value}")

    @work(group="rpc", exit_on_error=False)
    async def submit(self, params: p.SubmitParams) -> None:
        try:
            task = await self.link.client.submit(params)
        except PasError as exc:
            self.notify(exc.message, title="submit failed", severity="error")
            return
        if task.id not in self.query_one(TaskList).tasks:  # its events may have come first, and be newer
            self._task_seen(task)
        self.notify(f"task {task.id} queued on {task.model}")

    @work(group="rpc", exit_on_error=False)
    async def open_receipts(self) -> None:
        try:
            receipts = await self.link.client.receipts()
        except PasError as exc:
            self.notify(exc.message, title="receipts", severity="error")
            return
        from pas_tui.widgets.receipts_screen import ReceiptsScreen

        await self.push_screen(ReceiptsScreen(receipts))

    # ------------------------------------------------------------ key actions

    def action_filter(self) -> None:
        self.query_one(TaskList).open_filter()

    def action_hunk(self, step: int) -> None:
        self.query_one(ReviewPane).hunks.move(step)

    def action_toggle_hunk(self) -> None:
        self.query_one(ReviewPane).hunks.toggle()

    def action_review(self, verb: str) -> None:
        pane = self.query_one(ReviewPane)
        job = self.query_one(TaskList).selected_job
        if job is not None:
            if job.state is not p.JobState.REVIEW:
                self.notify(f"job {job.id} is {job.state.value}, not awaiting review", severity="warning")
            else:
                self.review_job(verb, job)
            return
        task = self.query_one(TaskList).selected
        if task is None:
            return
        if not task.state.reviewable:
            self.notify(f"task {task.id} is {task.state.value}, not awaiting review", severity="warning")
            return
        if task.state is p.TaskState.CONFLICT and verb == "approve":
            self.notify(f"retrying the merge; it failed because {conflict_text(task)}", title="conflict")
        self.review(verb, task, pane.hunks.chosen or None)

    def action_revise(self) -> None:
        """Ask for a comment, then send the selected task back to its Programmer (about the chosen hunks)."""
        task = self.query_one(TaskList).selected
        if self.query_one(TaskList).selected_job is not None or task is None:
            self.notify("select a task awaiting review to revise it", severity="warning")
            return
        if not task.state.reviewable:
            self.notify(f"task {task.id} is {task.state.value}, not awaiting review", severity="warning")
            return
        hunks = self.query_one(ReviewPane).hunks.chosen
        from pas_tui.widgets.revise_form import ReviseForm

        def done(comment: str | None) -> None:
            if comment:
                self.revise(task, comment, hunks or None)

        self.push_screen(ReviseForm(task.id, hunks), done)

    def action_cancel_task(self) -> None:
        job = self.query_one(TaskList).selected_job
        if job is not None:
            if job.state.active:
                self.cancel_job(job.id)
            else:
                self.notify("only a queued or running job can be cancelled", severity="warning")
            return
        task = self.query_one(TaskList).selected
        if task is None or not task.state.active:
            self.notify("only a queued or running task can be cancelled", severity="warning")
            return
        self.cancel_task(task.id)

    def action_submit(self) -> None:
        self.open_submit_form()

    @work(exclusive=True, group="submit-form", exit_on_error=False)
    async def open_submit_form(self) -> None:
        """The submit form, offering the models the daemon's config has for this workspace."""
        try:
            models = await self.link.client.models(self.workspace)
            choices, default, note = models.choices, models.default, ""
        except PasError as exc:
            choices, default, note = [], None, exc.message
        from pas_tui.widgets.submit_form import SubmitForm

        def done(params: p.SubmitParams | None) -> None:
            if params is not None:
                self.submit(params)

        self.push_screen(SubmitForm(self.workspace, choices, default, note), done)

    def action_receipts(self) -> None:
        self.open_receipts()

    def action_help(self) -> None:
        from pas_tui.widgets.help_screen import HelpScreen

        self.push_screen(HelpScreen([b for b in self.BINDINGS if isinstance(b, Binding)]))
