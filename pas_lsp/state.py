"""`PasServer`: the language server's state and what its handlers and commands do with it.

The handlers (`server.py`) and the commands (`commands.py`) both build on this module; it
imports neither of them, so dependencies run one way.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from daemon import protocol as p
from pas_lsp import review, tasks
from pas_lsp.config import Effective, PasSettings, effective, parse_settings
from pas_lsp.daemon_link import DaemonLink
from pas_lsp.errors import InvalidParams
from pas_lsp.progress import Progress

log = logging.getLogger(__name__)
VERSION = "0.1.0"
STATUS_NOTIFICATION = "pas/status"
NOTICE_NOTIFICATION = "pas/taskNotice"


class PasServer(LanguageServer):
    """Holds the link to the daemon, the settings, the tasks in review and per-task progress."""

    def __init__(self) -> None:
        super().__init__("pas-lsp", VERSION)
        self.link = DaemonLink()
        self.settings = PasSettings()
        self.reviews = review.Reviews()
        self.tracker = Progress(self)
        self.follower: asyncio.Task[None] | None = None
        self._effective: dict[Path | None, Effective] = {}
        self._reported: set[str] = set()
        self._untrusted: set[tuple[str, str]] = set()  # (file, sha256) already reported
        self._published: set[str] = set()
        self._submitting = 0
        self._early: list[p.EventEnvelope] = []
        self._diff_dir: Path | None = None
        self._mine: set[str] = set()  # tasks and jobs this editor submitted: told when they end badly
        self._noticed: set[tuple[str, str]] = set()  # (task, state) already told

    # ------------------------------------------------------------ settings

    async def use_settings(self, raw: Any) -> None:
        settings, problems = parse_settings(raw)
        for problem in problems:
            self.tell_once(problem, lsp.MessageType.Warning)
        self.settings = settings
        self._effective.clear()
        await self.link.set_socket(settings.socket or None)

    def effective(self, workspace: Path | None) -> Effective:
        if workspace not in self._effective:
            eff, error = effective(self.settings, workspace)
            if error:
                self.tell_once(f"PAS: {error}", lsp.MessageType.Warning)
            self._effective[workspace] = eff
        return self._effective[workspace]

    def tell(self, message: str, kind: lsp.MessageType = lsp.MessageType.Info) -> None:
        self.window_show_message(lsp.ShowMessageParams(type=kind, message=message))

    def tell_once(self, message: str, kind: lsp.MessageType) -> None:
        if message not in self._reported:
            self._reported.add(message)
            self.tell(message, kind)

    # ------------------------------------------------------------ workspace

    def roots(self) -> list[Path]:
        uris = [f.uri for f in self.workspace.folders.values()]
        if self.workspace.root_uri:
            uris.append(self.workspace.root_uri)
        out = []
        for uri in uris:
            path = to_fs_path(uri)
            if path:
                out.append(Path(path).resolve())
        return sorted(set(out), key=lambda r: len(r.parts), reverse=True)

    def locate(self, uri: str) -> tuple[Path, str]:
        """The workspace root holding a document and the document's path relative to it."""
        fs = to_fs_path(uri) if uri.startswith("file:") else None
        if not fs:
            raise InvalidParams(f"not a file URI: {uri}")
        path = Path(fs).resolve()
        for root in self.roots():
            if path.is_relative_to(root):
                return root, path.relative_to(root).as_posix()
        root = next((d for d in path.parents if (d / ".git").exists()), path.parent)
        return root, path.relative_to(root).as_posix()

    def owns(self, workspace: str) -> bool:
        roots = self.roots()
        return not roots or Path(workspace).resolve() in roots

    def open_documents(self) -> dict[Path, str]:
        """Open documents by file path, to their URIs as the client spelled them."""
        out = {}
        for uri in self.workspace.text_documents:
            fs = to_fs_path(uri) if uri.startswith("file:") else None
            if fs:
                out[Path(fs).resolve()] = uri
        return out

    def lines(self, uri: str) -> list[str]:
        return review.split_lines(self.workspace.get_text_document(uri).source)

    # ------------------------------------------------------------ review in place

    def hunks_at(self, uri: str) -> list[tuple[review.ReviewTask, p.Hunk]]:
        try:
            root, rel = self.locate(uri)
        except InvalidParams:
            return []
        return self.reviews.for_path(root, rel)

    def publish_review(self) -> None:
        """Diagnostics for every open document (and empty lists where they went away)."""
        now: set[str] = set()
        for uri in list(self.workspace.text_documents):
            found = self.hunks_at(uri)
            if not found and uri not in self._published:
                continue
            lines = self.lines(uri)
            diags = [review.diagnostic(t, h, lines) for t, h in found]
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diags))
            if diags:
                now.add(uri)
        self._published = now
        caps = self.client_capabilities.workspace
        if caps and caps.code_lens and caps.code_lens.refresh_support:
            self.workspace_code_lens_refresh(None)

    async def track(self, task: p.TaskInfo) -> None:
        """Follow a task's state: keep its diff while it awaits review, end its progress when done."""
        changed = False
        if task.state.reviewable and self.owns(task.workspace):
            client = await self.link.client(start=False)
            self.reviews.tasks[task.id] = review.ReviewTask(task, await client.diff(task.id))
            changed = True
        elif self.reviews.tasks.pop(task.id, None) is not None:
            changed = True
        if changed:
            self.publish_review()
        if not task.state.active:
            self.tracker.task_ended(task)
        self.notice(task)

    def notice(self, task: p.TaskInfo) -> None:
        """Tell the editor that submitted a task (or its job) that it FAILED or is in review flagged, once.

        A client that declares `experimental.pas.taskNotices` gets the `pas/taskNotice` notification
        (the VS Code extension shows it with its own buttons); any other gets window/showMessage.
        """
        if task.id not in self._mine and (task.job_id is None or task.job_id not in self._mine):
            return
        found = tasks.notice(task)
        if task.state.final:
            self._mine.discard(task.id)
        if found is None or (task.id, task.state.value) in self._noticed:
            return
        self._noticed.add((task.id, task.state.value))
        kind, message = found
        if self.wants_notices():
            self.protocol.notify(NOTICE_NOTIFICATION, {
                "task": task.id, "state": task.state.value, "reason": task.reason, "warnings": task.warnings,
                "level": "error" if kind is lsp.MessageType.Error else "warning", "message": message})
        else:
            self.tell(message, kind)

    def wants_notices(self) -> bool:
        experimental = self.client_capabilities.experimental
        pas = experimental.get("pas") if isinstance(experimental, dict) else None
        return isinstance(pas, dict) and pas.get("taskNotices") is True

    # ------------------------------------------------------------ submitting

    async def submit(self, params: p.SubmitParams | p.ReviseParams) -> p.TaskInfo:
        """Submit a task (or send one back with a comment); events that race ahead of the answer are
        replayed once its id is known."""
        client = await self.link.client()
        self._submitting += 1
        try:
            task = await (client.submit(params) if isinstance(params, p.SubmitParams) else client.revise(params))
        finally:
            self._submitting -= 1
        self._mine.add(task.id)
        early = [env for env in self._early if _subject(env.event) == task.id]
        if not self._submitting:
            self._early.clear()
        await self.tracker.begin_task(task)
        for env in early:  # progress only: the review already follows the live events, and these are older
            self.tracker.follow(env.event)
            if isinstance(env.event, p.TaskEvent):  # it may have failed before its id was known here
                self.notice(env.event.task)
        return task

    async def submit_job(self, params: p.JobSubmitParams) -> p.JobInfo:
        """Submit a job; one progress for the whole job, its tasks reviewed one by one as usual."""
        client = await self.link.client()
        self._submitting += 1
        try:
            job = await client.submit_job(params)
        finally:
            self._submitting -= 1
        self._mine.add(job.id)
        early = [env for env in self._early if _subject(env.event) == job.id]
        if not self._submitting:
            self._early.clear()
        await self.tracker.begin_job(job)
        for env in early:
            self.tracker.follow(env.event)
        return job

    # ------------------------------------------------------------ daemon events

    async def on_up(self, status: p.PoolStatus) -> None:
        self.publish_status(status)
        client = await self.link.client(start=False)
        reviewable = await client.list(p.TaskListParams(states=[p.TaskState.REVIEW, p.TaskState.CONFLICT]))
        keep = {t.id for t in reviewable}
        for task_id in [t for t in self.reviews.tasks if t not in keep]:
            del self.reviews.tasks[task_id]
        for task in reviewable:
            await self.track(task)
        for task_id in list(self.tracker.tasks):  # tasks that ended while the daemon was away
            try:
                await self.track(await client.get(task_id))
            except Exception as exc:
                log.info("task %s: %s", task_id, exc)
        for job_id in list(self.tracker.jobs):
            try:
                self.tracker.job_changed(await client.job(job_id))
            except Exception as exc:
                log.info("job %s: %s", job_id, exc)
        self.publish_review()

    async def on_event(self, env: p.EventEnvelope) -> None:
        ev = env.event
        subject = _subject(ev)
        if subject is not None and self._submitting and not self.tracker.follows(subject):
            self._early = [*self._early[-200:], env]
        if isinstance(ev, p.TaskEvent):
            await self.track(ev.task)  # its review, and its progress's end
        else:
            self.tracker.follow(ev)
        if isinstance(ev, (p.TaskEvent, p.ProgrammerEvent)):
            client = await self.link.client(start=False)
            self.publish_status(await client.status())

    async def on_down(self, reason: str) -> None:
        log.info("daemon down: %s", reason)
        self.protocol.notify(STATUS_NOTIFICATION, {"daemon": "down", "idle": 0, "busy": 0, "failed": 0,
                                                   "queued": 0, "running": 0, "review": 0})

    def publish_status(self, status: p.PoolStatus) -> None:
        self.protocol.notify(STATUS_NOTIFICATION, status_counts(status))
        self.report_untrusted(status)

    def report_untrusted(self, status: p.PoolStatus) -> None:
        """One warning per workspace file (as it is now) whose settings the daemon ignores."""
        for u in status.untrusted:
            if self.owns(u.workspace) and (u.path, u.sha256) not in self._untrusted:
                self._untrusted.add((u.path, u.sha256))
                self.tell(f"PAS: {u.message()}", lsp.MessageType.Warning)

    def diff_dir(self) -> Path:
        if self._diff_dir is None:
            self._diff_dir = Path(tempfile.mkdtemp(prefix="pas-lsp-diffs-"))
        return self._diff_dir

    async def stop(self) -> None:
        """Cancel the follower and close the daemon connection (on `shutdown`)."""
        if self.follower is not None:
            self.follower.cancel()
            try:
                await self.follower
            except (asyncio.CancelledError, Exception):
                pass
            self.follower = None
        await self.link.close()
        if self._diff_dir is not None:
            shutil.rmtree(self._diff_dir, ignore_errors=True)


def _subject(ev: Any) -> str | None:
    """The task or job an event is about (ids of both are unique across the two)."""
    if isinstance(ev, p.ProgressEvent):
        return ev.task_id
    if isinstance(ev, p.TaskEvent):
        return ev.task.id
    if isinstance(ev, p.JobEvent):
        return ev.job.id
    return None


def status_counts(status: p.PoolStatus) -> dict[str, Any]:
    states = [prog.state for prog in status.programmers]
    return {"daemon": "up", "idle": states.count(p.ProgrammerState.IDLE),
            "busy": states.count(p.ProgrammerState.BUSY), "failed": states.count(p.ProgrammerState.FAILED),
            "queued": status.queued, "running": status.running, "review": status.review}
