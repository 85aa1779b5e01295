"""Work-done progress in the editor, one per task and one per job, driven by the daemon's events.

A progress exists once the editor accepted its token (`window/workDoneProgress/create`); what
arrives before that waits and is sent after `begin`, in order. Clients without progress support
get none, and the work goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from daemon import protocol as p
from pas_lsp import jobs, tasks

log = logging.getLogger(__name__)


@dataclass
class Tracked:
    """One task's (or job's) progress; events that arrive before `begin` wait in `pending`."""

    token: str
    title: str
    started: bool = False
    ended: bool = False
    last: str = ""  # the message last sent (or held back)
    pending: list[tuple[Literal["report", "end"], str]] = field(default_factory=list)


class Progress:
    def __init__(self, server: LanguageServer) -> None:
        self.server = server
        self.tasks: dict[str, Tracked] = {}
        self.jobs: dict[str, Tracked] = {}

    def follows(self, subject: str) -> bool:
        return subject in self.tasks or subject in self.jobs

    async def begin_task(self, task: p.TaskInfo) -> None:
        tp = Tracked(token=f"pas-task-{task.id}", title=f"PAS: {task.instruction}")
        self.tasks[task.id] = tp
        if not await self._start(tp, "queued"):
            self.tasks.pop(task.id, None)

    async def begin_job(self, job: p.JobInfo) -> None:
        tp = Tracked(token=f"pas-job-{job.id}", title=f"PAS job: {job.instruction}")
        self.jobs[job.id] = tp
        if not await self._start(tp, jobs.progress(job)):
            self.jobs.pop(job.id, None)

    def follow(self, ev: p.Event) -> None:
        """What an event means for the progress shown: a job's count, a task's phase or its end."""
        if isinstance(ev, p.JobEvent):
            self.job_changed(ev.job)
        elif isinstance(ev, p.ProgressEvent):
            if ev.phase != "done" and (tp := self.tasks.get(ev.task_id)) is not None:
                self._send(tp, "report", tasks.report(ev))
        elif isinstance(ev, p.TaskEvent) and not ev.task.state.active:
            self.task_ended(ev.task)

    def job_changed(self, job: p.JobInfo) -> None:
        """One report per change of "N of M tasks done"; the end once the job stops running."""
        tp = self.jobs.get(job.id)
        if tp is None:
            return
        if job.state.active:
            message = jobs.progress(job)
            if message != tp.last:
                self._send(tp, "report", message)
        else:
            self._send(tp, "end", jobs.outcome(job))

    def task_ended(self, task: p.TaskInfo) -> None:
        tp = self.tasks.get(task.id)
        if tp is not None:
            self._send(tp, "end", tasks.outcome(task))

    async def _start(self, tp: Tracked, message: str) -> bool:
        caps = self.server.client_capabilities.window
        if not (caps and caps.work_done_progress):
            return False
        wdp = self.server.work_done_progress
        try:
            await wdp.create_async(tp.token)
        except Exception as exc:  # a client may refuse progress; the work goes on without it
            log.info("no progress %s: %s", tp.token, exc)
            return False
        wdp.begin(tp.token, lsp.WorkDoneProgressBegin(title=tp.title, message=message))
        tp.started = True
        tp.last = message
        for kind, pending in tp.pending:
            if kind == "report" and pending == tp.last:
                continue  # said while the editor was accepting the token, and `begin` says it already
            self._send(tp, kind, pending)
        tp.pending.clear()
        return True

    def _send(self, tp: Tracked, kind: Literal["report", "end"], message: str) -> None:
        if tp.ended:
            return
        if not tp.started:
            tp.pending.append((kind, message))
            return
        tp.last = message
        wdp = self.server.work_done_progress
        if kind == "end":
            tp.ended = True
            wdp.end(tp.token, lsp.WorkDoneProgressEnd(message=message))
            self.tasks = {k: v for k, v in self.tasks.items() if v is not tp}
            self.jobs = {k: v for k, v in self.jobs.items() if v is not tp}
        else:
            wdp.report(tp.token, lsp.WorkDoneProgressReport(message=message))
