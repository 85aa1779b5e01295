"""The bodies of `pasd mcp`'s tools: one daemon connection, one workspace, and what a caller reads back
(compact views of tasks, jobs and receipts, each with the next step). Every error is a one-line ToolError.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from daemon import protocol as p
from daemon.cli.tasks import number_hunks, with_keys
from daemon.client import EventStream, PasClient, ensure_daemon
from daemon.errors import DaemonUnavailable, PasError

REVIEW_NOTE = ("The diff awaits the user's review: read it with task_diff; the user approves or rejects it "
               "(`pasd approve {id}` / `pasd reject {id}`, the editor or pas-tui). Their files are unchanged "
               "until then.")

NEXT = {
    p.TaskState.QUEUED: "waiting for a free programmer; call wait_task again",
    p.TaskState.RUNNING: "still running; call wait_task again",
    p.TaskState.APPLIED: "the user approved it: the change is in their files",
    p.TaskState.REJECTED: "the user rejected it: nothing was written",
    p.TaskState.CONFLICT: "the user's files changed under the diff; nothing was written",
    p.TaskState.FAILED: "the task failed (see error); submit again, perhaps with another model or instruction",
    p.TaskState.CANCELLED: "the task was cancelled",
}

# ------------------------------------------------------------------ what a caller reads


def _drop_empty(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, [], {}, "")}


def task_view(t: p.TaskInfo) -> dict[str, Any]:
    """A task as an agent needs it: state, outcome, size and cost, and what to do next."""
    done = not t.state.active
    return _drop_empty({
        "task_id": t.id, "state": t.state.value, "done": done, "model": t.model,
        "engine": t.engine if t.engine != "native" else None,
        "instruction": t.instruction if len(t.instruction) <= 200 else t.instruction[:199] + "…",
        "files": t.files,
        "selection": f"{t.selection.path}:{t.selection.start_line}-{t.selection.end_line}" if t.selection else None,
        "programmer": t.programmer, "job_id": t.job_id, "revision": t.revision or None,
        "files_changed": t.files_changed if done else None, "lines_added": t.lines_added if done else None,
        "lines_removed": t.lines_removed if done else None, "cost_usd": round(t.cost_usd, 6) if done else None,
        "warnings": p.warning_text(t.warnings) if t.warnings else None,
        "refused_edits": [f"{r.path}: {r.reason}" for r in t.refused],
        "unapplied_edits": t.unapplied,
        "error": t.error, "reason": t.reason,
        "next": REVIEW_NOTE.format(id=t.id) if t.state is p.TaskState.REVIEW else NEXT.get(t.state),
    })


def _without_next(view: dict[str, Any]) -> dict[str, Any]:
    """A task among many: what to do next is said once, for all of them."""
    return {k: v for k, v in view.items() if k != "next"}


def receipt_view(r: p.Receipt) -> dict[str, Any]:
    return _drop_empty({
        "attempt": r.attempt, "revision": r.revision or None, "programmer": r.programmer,
        "model": r.provider.model, "outcome": r.outcome,
        "tokens_input": r.tokens.input, "tokens_output": r.tokens.output,
        "tokens_reasoning": r.tokens.reasoning or None, "tokens_estimated": r.tokens.estimated or None,
        "cost_usd": r.cost_usd, "priced": r.priced, "wall_s": round(r.wall_s, 3), "llm_s": round(r.llm_s, 3),
        "llm_calls": r.llm_calls, "files_changed": r.files_changed, "lines_added": r.lines_added,
        "lines_removed": r.lines_removed, "check": r.check, "check_rounds": r.check_rounds or None,
        "warnings": p.warning_text(r.warnings) if r.warnings else None,
        "refused_edits": [f"{x.path}: {x.reason}" for x in r.refused], "tier": r.tier,
    })


def job_view(j: p.JobInfo) -> dict[str, Any]:
    done = sum(1 for t in j.tasks if not t.state.active)
    return _drop_empty({
        "job_id": j.id, "state": j.state.value, "done": not j.state.active, "split": j.split, "model": j.model,
        "tasks_total": max(len(j.plan), len(j.task_ids), len(j.tasks)), "tasks_done": done,
        "tasks": [_without_next(task_view(t)) for t in j.tasks],
        "not_queued": [f"{', '.join(i.files)}: {i.instruction}" for i in j.pending],
        "spent_usd": round(j.spent_usd, 6), "budget_usd": j.budget_usd,
        "stopped": j.stop_reason if j.stopped else None, "error": j.error,
        "next": ("each task in REVIEW has a diff awaiting the user's review (task_diff TASK_ID); "
                 f"the user approves the job with `pasd job approve {j.id}`") if not j.state.active else
                "still running; call wait_job again",
    })


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


# ------------------------------------------------------------------ the tools, as plain functions


class PoolTools:
    """The tools' bodies: one daemon connection, one workspace; every error a one-line ToolError."""

    def __init__(self, workspace: str, *, start_daemon: bool = True) -> None:
        self.workspace = workspace
        self.start_daemon = start_daemon
        self._client: PasClient | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> PasClient:
        """A connected client; starts the daemon (as the editors do) when none answers."""
        async with self._lock:
            if self._client is not None and self._client.connected:
                return self._client
            if self._client is not None:
                await self._client.close()
            client = PasClient(name="pasd-mcp")
            try:
                await client.connect()
            except DaemonUnavailable:
                if not self.start_daemon:
                    raise
                try:
                    await ensure_daemon(quiet=True)  # quiet: stdout carries the protocol
                except (PasError, OSError) as exc:
                    raise DaemonUnavailable(f"pasd is not running and could not be started: {exc}") from None
                await client.connect()
            self._client = client
            return client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @contextlib.asynccontextmanager
    async def daemon(self) -> AsyncIterator[PasClient]:
        """The one place errors become tool errors: the caller reads what was wrong, the server goes on."""
        try:
            yield await self.client()
        except PasError as exc:
            raise ToolError(exc.message) from None
        except ValidationError as exc:  # a value the protocol refuses, caught before it is sent
            raise ToolError(_one_line(exc)) from None

    async def _untrusted(self, c: PasClient) -> str | None:
        notes = [u.message() for u in (await c.status()).untrusted if u.workspace == self.workspace]
        return "; ".join(notes) or None

    async def submit_task(self, instruction: str, files: list[str], start_line: int | None, end_line: int | None,
                          model: str | None, check: str | None, timeout_s: float | None,
                          budget_usd: float | None, engine: str | None = None) -> dict[str, Any]:
        async with self.daemon() as c:
            selection = None
            if start_line is not None or end_line is not None:
                if not files:
                    raise ToolError("a line range needs files: the range is lines of the first file")
                selection = p.Selection(path=files[0], start_line=start_line or end_line or 1,
                                        end_line=end_line or start_line or 1)
            task = await with_keys(c.submit, p.SubmitParams(
                workspace=self.workspace, instruction=instruction, files=files, selection=selection, model=model,
                check=check, timeout_s=timeout_s, budget_usd=budget_usd, engine=engine))
            view = task_view(task)
            view["next"] = f"queued; call wait_task with task_id {task.id!r} for the outcome"
            if note := await self._untrusted(c):
                view["warning"] = note
            return view

    async def submit_job(self, instruction: str, files: list[str], split: Literal["per-file", "plan"],
                         model: str | None, check: str | None, timeout_s: float | None,
                         budget_usd: float | None, engine: str | None = None) -> dict[str, Any]:
        async with self.daemon() as c:
            job = await with_keys(c.submit_job, p.JobSubmitParams(
                workspace=self.workspace, instruction=instruction, files=files, split=split, model=model,
                check=check, timeout_s=timeout_s, budget_usd=budget_usd, engine=engine))
            view = job_view(job)
            view["next"] = f"queued; call wait_job with job_id {job.id!r} for its tasks' outcomes"
            return view

    async def wait_task(self, task_id: str, timeout_s: float, ctx: Context[Any, Any] | None = None) -> dict[str, Any]:
        async with self.daemon() as c:
            async with EventStream(c.socket, kinds=["task", "progress"]) as events:  # before reading: nothing missed
                task = await c.get(task_id)
                if task.state.active:
                    task = await _until_done(events, task, timeout_s, ctx)
            view = task_view(task)
            if task.state.active:
                view["next"] = f"not done after {timeout_s:g} s ({task.state.value}); call wait_task again"
            return view

    async def wait_job(self, job_id: str, timeout_s: float) -> dict[str, Any]:
        async with self.daemon() as c:
            async with EventStream(c.socket, kinds=["job"]) as events:  # before reading: nothing missed
                job = await c.job(job_id)  # the id in full: the caller may give a prefix
                stream = aiter(events)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout_s):
                        while job.state.active:
                            env = await anext(stream, None)
                            if env is None:
                                raise DaemonUnavailable("the daemon closed the event stream")
                            if isinstance(env.event, p.JobEvent) and env.event.job.id == job.id:
                                job = env.event.job
            return job_view(job)

    async def task_diff(self, task_id: str) -> str:
        async with self.daemon() as c:
            d = await c.diff(task_id)
            if d.state.active:
                raise ToolError(f"task {d.task_id} is {d.state.value}: no diff yet; call wait_task first")
            head = f"task {d.task_id} {d.state.value}"
            if d.pruned_at:
                return f"{head}: its diff was removed by retention (`pasd gc`); the receipt remains"
            if not d.diff:
                return f"{head}: no changes"
            added = sum(f.added for f in d.files)
            removed = sum(f.removed for f in d.files)
            head += f", {len(d.files)} file(s) +{added} -{removed}"
            if d.state is p.TaskState.REVIEW:
                head += f"; awaiting the user's review (`pasd approve {d.task_id}` applies it)"
            hunks = [h for f in d.files for h in f.hunks]
            return f"{head}\n\n{number_hunks(d.diff, hunks)}"

    async def task_receipt(self, task_id: str) -> dict[str, Any]:
        async with self.daemon() as c:
            task = await c.get(task_id)
            receipts = await c.receipts(p.ReceiptsParams(task_id=task.id, limit=100))
            return _drop_empty({
                "task_id": task.id, "state": task.state.value, "cost_usd": round(sum(r.cost_usd for r in receipts), 6),
                "receipts": [receipt_view(r) for r in reversed(receipts)],  # oldest attempt first
                "note": None if receipts else "no receipt yet: the task has not finished an attempt",
            })

    async def list_tasks(self, states: list[p.TaskState] | None, limit: int, all_workspaces: bool) -> dict[str, Any]:
        async with self.daemon() as c:
            tasks = await c.list(p.TaskListParams(states=states or None, limit=limit,
                                                  workspace=None if all_workspaces else self.workspace))
            return {"workspace": None if all_workspaces else self.workspace,
                    "tasks": [_without_next(task_view(t)) for t in tasks]}

    async def pool_status(self) -> dict[str, Any]:
        async with self.daemon() as c:
            st = await c.status()
            models = await c.models(self.workspace)
            engines = [e.name for e in await c.engines() if e.installed]
            return _drop_empty({
                "programmers": [_drop_empty({"id": pr.id, "state": pr.state.value, "task_id": pr.task_id,
                                             "model": pr.model, "tasks_done": pr.tasks_done,
                                             "last_error": pr.last_error}) for pr in st.programmers],
                "queued": st.queued, "running": st.running, "review": st.review,
                "default_model": models.default, "models": models.choices, "engines": engines,
                "workspace": self.workspace,
                "config_errors": st.config_errors,
                "warnings": [u.message() for u in st.untrusted if u.workspace == self.workspace],
            })

    async def cancel_task(self, task_id: str) -> dict[str, Any]:
        async with self.daemon() as c:
            return task_view(await c.cancel(task_id))

    async def approve_task(self, task_id: str, hunks: list[int] | None) -> dict[str, Any]:
        async with self.daemon() as c:
            res = await c.approve(p.ReviewParams(task_id=task_id, hunks=hunks or None))
            return _drop_empty({
                "task": task_view(res.task), "applied_hunks": res.applied,
                "conflicts": [f"hunk {cf.hunk_id} in {cf.path}: {cf.reason}" for cf in res.conflicts],
            })


async def _until_done(events: EventStream, task: p.TaskInfo, timeout_s: float,
                      ctx: Context[Any, Any] | None) -> p.TaskInfo:
    """Follow the stream until the task stops running or `timeout_s` passes (then the task as it is);
    each progress step goes to the caller as a progress notification."""
    steps = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            async for env in events:
                ev = env.event
                if isinstance(ev, p.ProgressEvent) and ev.task_id == task.id and not ev.streaming and ctx:
                    steps += 1
                    await ctx.report_progress(steps, message=f"{ev.phase}: {ev.message}")
                elif isinstance(ev, p.TaskEvent) and ev.task.id == task.id and ev.task.revision >= task.revision:
                    task = ev.task
                    if not task.state.active:
                        return task
            raise DaemonUnavailable("the daemon closed the event stream")
    return task


