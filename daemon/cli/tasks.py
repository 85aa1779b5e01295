"""Tasks: submit (and follow), list, show, diff, approve, reject, cancel."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from daemon import protocol as p
from daemon.cli.args import hunk_list, workspace_root
from daemon.cli.lifecycle import warn_untrusted
from daemon.cli.output import ago, badge, out, painted_diff, plural, short, state, table
from daemon.client import EventStream, PasClient
from daemon.errors import DaemonUnavailable, MissingCredentials


def _selection(args: argparse.Namespace, files: list[str]) -> p.Selection | None:
    if not args.range:
        return None
    start, end = args.range
    return p.Selection(path=files[0], start_line=start, end_line=end)


async def cmd_submit(args: argparse.Namespace, c: PasClient) -> int:
    files = [str(Path(f).resolve()) for f in args.file]
    params = p.SubmitParams(
        workspace=workspace_root(args.workspace), instruction=args.instruction, files=files,
        selection=_selection(args, files), model=args.model, api_base=args.api_base, check=args.check,
        timeout_s=args.timeout, budget_usd=args.budget, priority=args.priority, engine=args.engine,
    )
    if not args.wait:
        task = await submit(c, params)
        await warn_untrusted(c, task.workspace)
        out(args, task, f"submitted {task.id} ({task.model}): {short(task.instruction, 60)}")
        return 0
    # subscribed before submitting, so that no event of the task (queued, running, model) is missed
    async with EventStream(c.socket, kinds=["task", "progress"]) as events:
        task = await submit(c, params)
        await warn_untrusted(c, task.workspace)
        if not args.json:
            print(f"submitted {task.id} ({task.model}); waiting…", file=sys.stderr)
        task = await follow(events, task, quiet=args.json)
    out(args, task, _task_text(task))
    receipts = await c.receipts(p.ReceiptsParams(task_id=task.id, limit=1))
    return _verdict(task, receipts[0] if receipts else None)


Params = TypeVar("Params", p.SubmitParams, p.JobSubmitParams, p.ReviseParams)
Result = TypeVar("Result")


async def with_keys(send: Callable[[Params], Awaitable[Result]], params: Params) -> Result:
    """Submit; when the daemon has no key for the model and this shell has one, submit again with
    that key (for this task or job only: the daemon keeps it in memory while it runs)."""
    try:
        return await send(params)
    except MissingCredentials as exc:
        wanted = exc.data.get("variables") if isinstance(exc.data, dict) else None
        keys = {name: os.environ[name] for name in wanted or [] if isinstance(name, str) and os.environ.get(name)}
        if not keys:
            raise
        return await send(params.model_copy(update={"keys": keys}))


async def submit(c: PasClient, params: p.SubmitParams) -> p.TaskInfo:
    return await with_keys(c.submit, params)


async def follow(events: EventStream, task: p.TaskInfo, quiet: bool) -> p.TaskInfo:
    """The task's progress on stderr (time since submit, the Programmer, the phase) until it ends; for a
    revision, until that revision ends (the end of the proposal it revises is not waited for).

    On a terminal a streaming reply's token count updates in place on one line; elsewhere only the
    reply's final count is written, so a log gets one line per step.
    """
    started = time.monotonic()
    live = sys.stderr.isatty()
    open_line = False  # a live line is on screen without its newline
    async for env in events:
        ev = env.event
        if isinstance(ev, p.ProgressEvent) and ev.task_id == task.id and not quiet:
            who = f"{ev.programmer}: " if ev.programmer else ""
            line = f"  {time.monotonic() - started:6.1f}s  {who}{ev.phase}: {ev.message}"
            if ev.streaming:
                if live:
                    print(f"\r\x1b[K{line}", end="", file=sys.stderr, flush=True)
                    open_line = True
                continue
            print(f"\r\x1b[K{line}" if open_line else line, file=sys.stderr)
            open_line = False
        elif (isinstance(ev, p.TaskEvent) and ev.task.id == task.id and ev.task.revision >= task.revision
              and not ev.task.state.active):
            if open_line:
                print(file=sys.stderr)
            return ev.task
    raise DaemonUnavailable("the daemon went away while waiting")


def _verdict(task: p.TaskInfo, receipt: p.Receipt | None) -> int:
    """0 only for a result worth reviewing: in review (or applied) and not flagged (check failing, edits
    refused or not applied after the last round); 1 otherwise, with the reason on stderr."""
    if task.state not in (p.TaskState.REVIEW, p.TaskState.APPLIED):
        return 1
    flags = set(task.warnings)
    problems = []
    if p.CHECK_FAILED in flags:
        runs = plural(receipt.check_rounds, "run") if receipt is not None else "the last round"
        problems.append(f"the check still fails after {runs}: {task.check}")
    if p.EDITS_REFUSED in flags:
        problems.append(f"{plural(len(task.refused), 'edit')} refused: "
                        + "; ".join(f"{r.path} ({r.reason})" for r in task.refused[:3]))
    if p.EDITS_UNAPPLIED in flags:
        problems.append(f"{plural(len(task.unapplied), 'edit')} not applied: " + "; ".join(task.unapplied[:3]))
    for problem in problems:
        print(f"pasd: {problem}; review the diff before approving", file=sys.stderr)
    return 1 if problems else 0


def _task_text(t: p.TaskInfo) -> str:
    flagged = f" ⚠ flagged: {p.warning_text(t.warnings)}" if t.warnings else ""
    lines = [f"task {t.id}  {state(t.state.value)}{flagged}", f"  instruction: {t.instruction}", f"  model: {t.model}",
             f"  files: {', '.join(t.files)}", f"  workspace: {t.workspace}"]
    if t.selection:
        lines.append(f"  selection: {t.selection.path}:{t.selection.start_line}-{t.selection.end_line}")
    if t.programmer:
        lines.append(f"  programmer: {t.programmer} (attempt {t.attempts})")
    if t.revision:
        lines.append(f"  revision: {t.revision} (sent back {plural(t.revision, 'time')} with a comment)")
    if t.state in (p.TaskState.REVIEW, p.TaskState.APPLIED, p.TaskState.CONFLICT, p.TaskState.REJECTED):
        lines.append(f"  changes: {plural(t.files_changed, 'file')}, +{t.lines_added} -{t.lines_removed}")
    if t.pruned_at:
        lines.append(f"  diff: {pruned_text(t.pruned_at)}")
    lines.append(f"  cost: ${t.cost_usd:.6f}")
    if t.error or t.reason:
        lines.append(f"  reason: {t.reason or '-'}: {t.error or ''}")
    for r in t.refused:
        lines.append(f"  refused edit: {r.path}: {r.reason}")
    for why in t.unapplied:
        lines.append(f"  edit not applied: {why}")
    for cf in t.conflicts:
        lines.append(f"  conflict: hunk {cf.hunk_id} in {cf.path}: {cf.reason}")
    if t.stale_hunks:
        lines.append(f"  stale hunks (file changed since): {', '.join(map(str, t.stale_hunks))}")
    return "\n".join(lines)


async def cmd_tasks(args: argparse.Namespace, c: PasClient) -> int:
    states: list[p.TaskState] | None = args.state
    tasks = await c.list(p.TaskListParams(states=states, limit=args.limit))
    rows = [[t.id, badge(t), short(t.instruction, 36), t.model, short(", ".join(t.files), 30),
             f"${t.cost_usd:.4f}", ago(t.created_at)] for t in tasks]
    text = table(rows, ["ID", "STATE", "INSTRUCTION", "MODEL", "FILES", "COST", "AGE"]) if tasks else "no tasks"
    if any(t.warnings for t in tasks):
        text += "\n⚠ flagged: " + "; ".join(f"{t.id} {p.warning_text(t.warnings)}" for t in tasks if t.warnings)
    out(args, tasks, text)
    return 0


REVIEWED = (p.TaskState.REVIEW, p.TaskState.CONFLICT, p.TaskState.APPLIED, p.TaskState.REJECTED)


def fate(h: p.Hunk) -> str:
    """What became of a hunk: applied, rejected, pending, or stale (pending, its file changed since)."""
    if h.state is p.HunkState.PENDING and h.stale:
        return "stale"
    return h.state.value


async def cmd_show(args: argparse.Namespace, c: PasClient) -> int:
    task = await c.get(args.task)
    text = _task_text(task)
    if task.state in REVIEWED:  # every task that had a diff: which hunks went which way
        d = await c.diff(task.id)
        hunks = [h for f in d.files for h in f.hunks]
        if hunks:
            counts: dict[str, int] = {}
            for h in hunks:
                counts[fate(h)] = counts.get(fate(h), 0) + 1
            text += f"\n  hunks: {', '.join(f'{n} {state(k)}' for k, n in counts.items())}\n"
            text += "\n".join(f"  hunk {h.id}: {h.path} {h.header} [{state(fate(h))}]" for h in hunks)
    out(args, task, text)
    return 0


async def cmd_diff(args: argparse.Namespace, c: PasClient) -> int:
    d = await c.diff(args.task)
    if d.pruned_at:
        text = f"task {d.task_id}: {pruned_text(d.pruned_at)}"
    else:
        text = painted_diff(numbered(d).rstrip("\n")) if d.diff else f"task {d.task_id} has no changes"
    out(args, d, text)
    return 0


def pruned_text(at: float) -> str:
    when = time.strftime("%Y-%m-%d", time.localtime(at))
    return f"removed by retention (`pasd gc`) on {when}; the task's summary and receipts are kept"


def numbered(d: p.DiffResult) -> str:
    """The diff with each hunk's number (what `--hunks` takes) after its `@@ -a,b +c,d @@`: the
    text there is free for a heading, so the output is still a patch `git apply` and `patch` take."""
    return number_hunks(d.diff, [h for f in d.files for h in f.hunks])


def number_hunks(text: str, hunks: list[p.Hunk]) -> str:
    """Mark each of `hunks`, in order, at its header line in `text` (a task's diff, or a job's:
    its tasks' diffs one after the other, each numbered from 1 as `pasd diff TASK` numbers it)."""
    hunks = list(hunks)
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if hunks and line.startswith("@@ ") and line.rstrip("\r\n") == hunks[0].header:
            h = hunks.pop(0)
            marks = "".join([f", {h.state.value}" if h.state is not p.HunkState.PENDING else "",
                             ", stale" if h.stale else ""])
            lines[i] = f"{h.header} hunk {h.id}{marks}\n"
    return "".join(lines)



async def cmd_approve(args: argparse.Namespace, c: PasClient) -> int:
    res = await c.approve(p.ReviewParams(task_id=args.task, hunks=hunk_list(args.hunks)))
    if res.conflicts:
        lines = [f"task {res.task.id} {state('CONFLICT')}: nothing was written"]
        lines += [f"  hunk {cf.hunk_id} in {cf.path}: {cf.reason}" for cf in res.conflicts]
        out(args, res, "\n".join(lines))
        return 1
    out(args, res, f"task {res.task.id} {state(res.task.state.value)}: "
                   f"applied hunks {', '.join(map(str, res.applied))}")
    return 0


async def cmd_reject(args: argparse.Namespace, c: PasClient) -> int:
    res = await c.reject(p.ReviewParams(task_id=args.task, hunks=hunk_list(args.hunks)))
    out(args, res, f"task {res.task.id} {state(res.task.state.value)}: "
                   f"rejected hunks {', '.join(map(str, res.rejected))}")
    return 0


async def cmd_cancel(args: argparse.Namespace, c: PasClient) -> int:
    task = await c.cancel(args.task)
    out(args, task, f"task {task.id} {state(task.state.value)}")
    return 0

