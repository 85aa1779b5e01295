"""Tasks: list, show, diff, approve, reject, cancel (submit is a quick command: daemon/cli/quick.py)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TypeVar

from daemon import protocol as p
from daemon.cli.args import hunk_list
from daemon.cli.output import ago, badge, out, painted_diff, short, state, table
from daemon.cli.quick import pruned_text, shell_keys, task_text
from daemon.client import PasClient
from daemon.errors import MissingCredentials

Params = TypeVar("Params", p.SubmitParams, p.JobSubmitParams, p.ReviseParams)
Result = TypeVar("Result")


async def with_keys(send: Callable[[Params], Awaitable[Result]], params: Params) -> Result:
    """Submit; when the daemon has no key for the model and this shell has one, submit again with
    that key (for this job only: the daemon keeps it in memory while it runs)."""
    try:
        return await send(params)
    except MissingCredentials as exc:
        if not (keys := shell_keys(exc)):
            raise
        return await send(params.model_copy(update={"keys": keys}))


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
    text = task_text(task.model_dump(mode="json"))
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

