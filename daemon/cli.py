"""The `pasd` command: start/stop the daemon, submit, list, review, receipts.

Exit codes: 0 success, 1 a one-line error, 2 usage errors (argparse).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Never

from pydantic import BaseModel, ValidationError

from daemon import paths
from daemon import protocol as p
from daemon.client import EventStream, PasClient
from daemon.errors import DaemonUnavailable, PasError
from daemon.version import banner

Command = Callable[[argparse.Namespace, PasClient], Awaitable[int]]


def out(args: argparse.Namespace, data: BaseModel | list[Any] | dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        if isinstance(data, BaseModel):
            print(data.model_dump_json(indent=2))
        else:
            print(json.dumps([d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
                             if isinstance(data, list) else data, indent=2))
    else:
        print(text)


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]

    def line(r: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def ago(t: float | None) -> str:
    if t is None:
        return "-"
    s = max(0, int(time.time() - t))
    return f"{s}s" if s < 60 else f"{s // 60}m" if s < 3600 else f"{s // 3600}h"


# ------------------------------------------------------------ daemon life cycle


async def _hello() -> p.HelloResult | None:
    try:
        async with PasClient(name="cli") as c:
            return await c.hello()
    except DaemonUnavailable:
        return None


async def ensure_daemon(workers: int | None = None, quiet: bool = False,
                        socket: str | None = None, pool_argv: list[str] | None = None) -> p.HelloResult:
    """Start the daemon in the background unless one answers; returns once the socket is ready."""
    from daemon import launch

    if socket:
        os.environ["PASD_SOCKET"] = socket
    try:
        found = await asyncio.to_thread(launch.start, workers, quiet, extra=pool_argv)
    except launch.LaunchError as exc:
        raise PasError(str(exc)) from None
    return p.HelloResult.model_validate(found)


async def cmd_start(args: argparse.Namespace) -> int:
    await ensure_daemon(args.workers, pool_argv=_pool_argv(args))
    return 0


def _pool_flags(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--backend", choices=["local", "ray"], help="where programmers run (default: config pool.backend)")
    sp.add_argument("--address", help="Ray cluster address host:port for --backend ray (config pool.address)")
    sp.add_argument("--insecure-local", action="store_true",
                    help="join a loopback Ray cluster without token auth (never for other addresses)")


def _pool_overrides(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    if args.backend:
        out["backend"] = args.backend
    if args.address:
        out["address"] = args.address
    if args.insecure_local:
        out["insecure_local"] = True
    return out


def _pool_argv(args: argparse.Namespace) -> list[str]:
    """The same flags for the background `serve`."""
    argv = [f"--backend={args.backend}"] if args.backend else []
    argv += [f"--address={args.address}"] if args.address else []
    return argv + (["--insecure-local"] if args.insecure_local else [])


async def cmd_stop(args: argparse.Namespace) -> int:
    try:
        async with PasClient(name="cli") as c:
            hello = await c.hello()
            await c.shutdown()
    except DaemonUnavailable:
        print("pasd is not running")
        return 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and await _hello() is not None:
        await asyncio.sleep(0.05)
    print(f"pasd stopped (pid {hello.pid})")
    return 0


# ------------------------------------------------------------ commands that need a daemon


async def cmd_status(args: argparse.Namespace, c: PasClient) -> int:
    st = await c.status()
    rows = [[pr.id, pr.state.value, pr.task_id or "-", pr.model or "-", ago(pr.busy_since) if pr.busy_since else "-",
             str(pr.tasks_done), str(pr.failures)] for pr in st.programmers]
    headers = ["PROGRAMMER", "STATE", "TASK", "MODEL", "BUSY", "DONE", "FAILURES"]
    if any(pr.node != "local" for pr in st.programmers):  # a remote backend: say where each one runs
        rows = [[*r, pr.node] for r, pr in zip(rows, st.programmers, strict=True)]
        headers.append("NODE")
    text = table(rows, headers)
    text += f"\nqueued {st.queued} · running {st.running} · awaiting review {st.review}"
    for err in st.config_errors:
        text += f"\nconfig error (last good settings in force): {err}"
    for u in st.untrusted:
        text += "\n" + u.message()
    out(args, st, text)
    return 0


async def warn_untrusted(c: PasClient, workspace: str) -> None:
    """One line on stderr when the workspace's .pas.toml has settings the daemon ignores."""
    for u in (await c.status()).untrusted:
        if u.workspace == workspace:
            print(f"pasd: warning: {u.message()}", file=sys.stderr)


async def cmd_trust(args: argparse.Namespace, c: PasClient) -> int:
    if args.list:
        if args.workspace or args.revoke:
            raise PasError("--list takes no workspace and no --revoke")
        files = (await c.trusted()).files
        rows = [[f.path, f.sha256[:16], "yes" if f.current else "no (changed since)",
                 time.strftime("%Y-%m-%d %H:%M", time.localtime(f.trusted_at))] for f in files]
        out(args, files, table(rows, ["FILE", "SHA256", "CURRENT", "TRUSTED"]) if rows else "no trusted files")
        return 0
    r = await c.trust(p.TrustParams(workspace=_workspace(args.workspace), revoke=args.revoke))
    if args.revoke:
        text = f"no longer trusted: {r.path}" if r.changed else f"{r.path} was not trusted"
        if r.keys:
            text += f"\nnow ignored: {', '.join(r.keys)}"
    else:
        text = f"trusted {r.path}\nsha256 {r.sha256}\n"
        text += (f"now applies: {', '.join(r.keys)}" if r.keys
                 else "nothing was being ignored: its settings only narrow yours")
    out(args, r, text)
    return 0


def _selection(args: argparse.Namespace, files: list[str]) -> p.Selection | None:
    if not args.range:
        return None
    start, end = args.range
    return p.Selection(path=files[0], start_line=start, end_line=end)


def _line_range(text: str) -> tuple[int, int]:
    """`--range START:END` (or one line N): 1-based, inclusive, START <= END."""
    a, _, b = text.partition(":")
    try:
        start, end = int(a), int(b or a)
    except ValueError:
        start = end = 0
    if not 1 <= start <= end <= p.MAX_LINE_NO:
        raise argparse.ArgumentTypeError(
            f"expected START:END line numbers (1-based, START <= END), got {text!r}")
    return start, end


def _workspace(arg: str | None) -> str:
    if arg:
        return str(Path(arg).resolve())
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True)
        return str(Path(top.stdout.strip()).resolve())
    return str(Path.cwd().resolve())


async def cmd_submit(args: argparse.Namespace, c: PasClient) -> int:
    files = [str(Path(f).resolve()) for f in args.file]
    params = p.SubmitParams(
        workspace=_workspace(args.workspace), instruction=args.instruction, files=files,
        selection=_selection(args, files), model=args.model, api_base=args.api_base, check=args.check,
        timeout_s=args.timeout, budget_usd=args.budget, priority=args.priority,
    )
    if not args.wait:
        task = await c.submit(params)
        await warn_untrusted(c, task.workspace)
        out(args, task, f"submitted {task.id} ({task.model}): {short(task.instruction, 60)}")
        return 0
    # subscribed before submitting, so that no event of the task (queued, running, model) is missed
    async with EventStream(c.socket, kinds=["task", "progress"]) as events:
        task = await c.submit(params)
        await warn_untrusted(c, task.workspace)
        if not args.json:
            print(f"submitted {task.id} ({task.model}); waiting…", file=sys.stderr)
        task = await _follow(events, task, quiet=args.json)
    out(args, task, _task_text(task))
    receipts = await c.receipts(p.ReceiptsParams(task_id=task.id, limit=1))
    return _verdict(task, receipts[0] if receipts else None)


async def _follow(events: EventStream, task: p.TaskInfo, quiet: bool) -> p.TaskInfo:
    """The task's progress on stderr (time since submit, the Programmer, the phase) until it ends."""
    started = time.monotonic()
    async for env in events:
        ev = env.event
        if isinstance(ev, p.ProgressEvent) and ev.task_id == task.id and not quiet:
            who = f"{ev.programmer}: " if ev.programmer else ""
            print(f"  {time.monotonic() - started:6.1f}s  {who}{ev.phase}: {ev.message}", file=sys.stderr)
        elif isinstance(ev, p.TaskEvent) and ev.task.id == task.id and not ev.task.state.active:
            return ev.task
    raise DaemonUnavailable("the daemon went away while waiting")


def _verdict(task: p.TaskInfo, receipt: p.Receipt | None) -> int:
    """0 only for a result worth reviewing: in review (or applied) with its check passing and no edit refused."""
    if task.state not in (p.TaskState.REVIEW, p.TaskState.APPLIED):
        return 1
    problems = []
    if receipt is not None and receipt.check == "failed":
        problems.append(f"the check still fails after {plural(receipt.check_rounds, 'run')}: {task.check}")
    if task.refused:
        problems.append(f"{plural(len(task.refused), 'edit')} refused: "
                        + "; ".join(f"{r.path} ({r.reason})" for r in task.refused[:3]))
    for problem in problems:
        print(f"pasd: {problem}; review the diff before approving", file=sys.stderr)
    return 1 if problems else 0


def _task_text(t: p.TaskInfo) -> str:
    lines = [f"task {t.id}  {t.state.value}", f"  instruction: {t.instruction}", f"  model: {t.model}",
             f"  files: {', '.join(t.files)}", f"  workspace: {t.workspace}"]
    if t.selection:
        lines.append(f"  selection: {t.selection.path}:{t.selection.start_line}-{t.selection.end_line}")
    if t.programmer:
        lines.append(f"  programmer: {t.programmer} (attempt {t.attempts})")
    if t.state in (p.TaskState.REVIEW, p.TaskState.APPLIED, p.TaskState.CONFLICT, p.TaskState.REJECTED):
        lines.append(f"  changes: {plural(t.files_changed, 'file')}, +{t.lines_added} -{t.lines_removed}")
    lines.append(f"  cost: ${t.cost_usd:.6f}")
    if t.error or t.reason:
        lines.append(f"  reason: {t.reason or '-'}: {t.error or ''}")
    for r in t.refused:
        lines.append(f"  refused edit: {r.path}: {r.reason}")
    for cf in t.conflicts:
        lines.append(f"  conflict: hunk {cf.hunk_id} in {cf.path}: {cf.reason}")
    if t.stale_hunks:
        lines.append(f"  stale hunks (file changed since): {', '.join(map(str, t.stale_hunks))}")
    return "\n".join(lines)


async def cmd_tasks(args: argparse.Namespace, c: PasClient) -> int:
    states: list[p.TaskState] | None = args.state
    tasks = await c.list(p.TaskListParams(states=states, limit=args.limit))
    rows = [[t.id, t.state.value, short(t.instruction, 36), t.model, short(", ".join(t.files), 30),
             f"${t.cost_usd:.4f}", ago(t.created_at)] for t in tasks]
    out(args, tasks, table(rows, ["ID", "STATE", "INSTRUCTION", "MODEL", "FILES", "COST", "AGE"])
        if tasks else "no tasks")
    return 0


async def cmd_show(args: argparse.Namespace, c: PasClient) -> int:
    task = await c.get(args.task)
    text = _task_text(task)
    if task.state.reviewable:
        d = await c.diff(task.id)
        hunks = [f"  hunk {h.id}: {h.path} {h.header} [{h.state.value}{', stale' if h.stale else ''}]"
                 for f in d.files for h in f.hunks]
        text += "\n" + "\n".join(hunks)
    out(args, task, text)
    return 0


async def cmd_diff(args: argparse.Namespace, c: PasClient) -> int:
    d = await c.diff(args.task)
    out(args, d, numbered(d).rstrip("\n") if d.diff else f"task {d.task_id} has no changes")
    return 0


def numbered(d: p.DiffResult) -> str:
    """The diff with each hunk's number (what `--hunks` takes) after its `@@ -a,b +c,d @@`: the
    text there is free for a heading, so the output is still a patch `git apply` and `patch` take."""
    hunks = [h for f in d.files for h in f.hunks]
    lines = d.diff.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if hunks and line.startswith("@@ ") and line.rstrip("\r\n") == hunks[0].header:
            h = hunks.pop(0)
            marks = "".join([f", {h.state.value}" if h.state is not p.HunkState.PENDING else "",
                             ", stale" if h.stale else ""])
            lines[i] = f"{h.header} hunk {h.id}{marks}\n"
    return "".join(lines)


def _hunks(arg: str | None) -> list[int] | None:
    if not arg:
        return None
    try:
        return [int(x) for x in arg.split(",") if x.strip()]
    except ValueError:
        raise PasError(f"--hunks takes hunk numbers like 1,3; got {arg!r}") from None


async def cmd_approve(args: argparse.Namespace, c: PasClient) -> int:
    res = await c.approve(p.ReviewParams(task_id=args.task, hunks=_hunks(args.hunks)))
    if res.conflicts:
        lines = [f"task {res.task.id} CONFLICT: nothing was written"]
        lines += [f"  hunk {cf.hunk_id} in {cf.path}: {cf.reason}" for cf in res.conflicts]
        out(args, res, "\n".join(lines))
        return 1
    out(args, res, f"task {res.task.id} {res.task.state.value}: applied hunks {', '.join(map(str, res.applied))}")
    return 0


async def cmd_reject(args: argparse.Namespace, c: PasClient) -> int:
    res = await c.reject(p.ReviewParams(task_id=args.task, hunks=_hunks(args.hunks)))
    out(args, res, f"task {res.task.id} {res.task.state.value}: rejected hunks {', '.join(map(str, res.rejected))}")
    return 0


async def cmd_cancel(args: argparse.Namespace, c: PasClient) -> int:
    task = await c.cancel(args.task)
    out(args, task, f"task {task.id} {task.state.value}")
    return 0


async def cmd_receipts(args: argparse.Namespace, c: PasClient) -> int:
    if args.by:
        return await cmd_receipts_by(args, c)
    rs = await c.receipts(p.ReceiptsParams(task_id=args.task, limit=args.limit))
    rows = [[r.task_id, str(r.attempt), r.provider.model, str(r.tokens.input), str(r.tokens.output),
             f"{r.cost_usd:.6f}" + ("" if r.priced else "*"), f"{r.wall_s:.2f}", str(r.files_changed),
             f"+{r.lines_added}/-{r.lines_removed}", r.outcome] for r in rs]
    text = table(rows, ["TASK", "TRY", "MODEL", "TOK IN", "TOK OUT", "COST USD", "SECONDS", "FILES", "LINES",
                        "OUTCOME"]) if rs else "no receipts"
    if any(not r.priced for r in rs):
        text += "\n* unpriced: the model is not in litellm's price table (set prices in [models.settings])"
    out(args, rs, text)
    return 0


async def cmd_receipts_by(args: argparse.Namespace, c: PasClient) -> int:
    if args.task:
        raise PasError("--by sums every receipt; it does not take --task")
    summary = await c.receipts_summary(p.ReceiptsSummaryParams(by=args.by))
    rows = [[g.key, str(g.receipts), str(g.tasks), str(g.tokens_input), str(g.tokens_output),
             f"{g.cost_usd:.6f}" + ("*" if g.unpriced else "")] for g in summary.groups]
    text = table(rows, [args.by.upper(), "RECEIPTS", "TASKS", "TOK IN", "TOK OUT", "COST USD"])
    text = f"{text}\ntotal ${summary.total_usd:.6f}" if rows else "no receipts"
    if any(g.unpriced for g in summary.groups):
        text += "\n* includes unpriced receipts (set prices in [models.settings])"
    out(args, summary, text)
    return 0


# ------------------------------------------------------------ jobs

JOB_VERBS = ("show", "diff", "approve", "reject", "cancel")


def _usage(message: str) -> int:
    print(f"pasd job: {message}", file=sys.stderr)
    return 2


async def cmd_job(args: argparse.Namespace, c: PasClient) -> int:
    words: list[str] = args.words
    if words[0] in JOB_VERBS and len(words) == 2:
        verbs: dict[str, Callable[[argparse.Namespace, PasClient, str], Awaitable[int]]] = {
            "show": job_show, "diff": job_diff, "approve": job_review, "reject": job_review, "cancel": job_cancel}
        return await verbs[words[0]](args, c, words[1])
    if words[0] in JOB_VERBS and len(words) != 2:
        return _usage(f"{words[0]} takes one job id, e.g. pasd job {words[0]} j1a2b3c")
    if len(words) > 1:
        return _usage("quote the instruction: pasd job \"INSTRUCTION\" --files PATTERN")
    if not args.files:
        return _usage("name the files with --files, e.g. --files 'src/**/*.py'")
    if args.task:
        return _usage("--task is for approve and reject")
    ws = _workspace(args.workspace)
    # relative paths and globs are relative to where the user is; the daemon expands them in the workspace
    cwd = os.path.realpath(os.getcwd())
    files = [f if os.path.isabs(f) else os.path.join(cwd, f) for f in args.files]
    job = await c.submit_job(p.JobSubmitParams(
        workspace=ws, instruction=words[0], files=files, split=args.split, model=args.model,
        api_base=args.api_base, check=args.check, timeout_s=args.timeout, budget_usd=args.budget,
        task_budget_usd=args.task_budget, priority=args.priority))
    await warn_untrusted(c, job.workspace)
    if not args.wait:
        out(args, job, f"submitted job {job.id} ({job.split}, {plural(len(job.plan), 'task')}, {job.model}): "
                       f"{short(job.instruction, 60)}")
        return 0
    if not args.json:
        print(f"submitted job {job.id} ({plural(len(job.plan), 'task')}); waiting…", file=sys.stderr)
    job = await c.wait_job(job.id)
    out(args, job, _job_text(job))
    return 0 if job.state in (p.JobState.REVIEW, p.JobState.APPLIED) else 1


def _job_text(j: p.JobInfo) -> str:
    lines = [f"job {j.id}  {j.state.value}  ({j.split}, {_job_progress(j)})",
             f"  instruction: {j.instruction}", f"  model: {j.model}", f"  workspace: {j.workspace}"]
    budget = f" of ${j.budget_usd:g}" if j.budget_usd is not None else ""
    lines.append(f"  spent: ${j.spent_usd:.6f}{budget}" + (f" (planning ${j.plan_cost_usd:.6f})" if j.plan_cost_usd
                                                          else ""))
    if j.stopped:
        lines.append(f"  stopped: {j.stop_reason or 'yes'}")
    if j.error:
        lines.append(f"  error: {j.error}")
    if j.tasks:
        rows = [[t.id, t.state.value, t.tier or "-", t.model, short(", ".join(t.files), 30), f"${t.cost_usd:.6f}",
                 f"+{t.lines_added} -{t.lines_removed}"] for t in j.tasks]
        lines += ["  " + r for r in table(rows, ["TASK", "STATE", "TIER", "MODEL", "FILES", "COST", "LINES"])
                  .splitlines()]
    for item in j.pending:
        lines.append(f"  not queued: {', '.join(item.files)}: {short(item.instruction, 50)}")
    r = j.receipt
    tiers = ", ".join(f"{k} {v}" for k, v in r.tiers.items())
    lines.append(f"  receipt: {plural(r.receipts, 'attempt')}, tokens {r.tokens.input} in / {r.tokens.output} out, "
                 f"${r.cost_usd:.6f}{'' if r.priced else ' (some unpriced)'}, model {r.llm_s:.2f} s, "
                 f"{plural(r.files_changed, 'file')} +{r.lines_added} -{r.lines_removed}"
                 + (f", tiers: {tiers}" if tiers else ""))
    return "\n".join(lines)


def _job_progress(j: p.JobInfo) -> str:
    """"3 of 4 tasks done, 1 queued or running": the subtasks are the plan's, or the tasks queued so far."""
    total = max(len(j.plan), len(j.task_ids), len(j.tasks))
    done = sum(1 for t in j.tasks if not t.state.active)
    active = len(j.tasks) - done
    return f"{done} of {plural(total, 'task')} done" + (f", {active} queued or running" if active else "")


async def job_show(args: argparse.Namespace, c: PasClient, ref: str) -> int:
    job = await c.job(ref)
    text = _job_text(job)
    d = await c.job_diff(job.id)
    if d.diff:
        text += "\n\n" + d.diff.rstrip("\n")
    out(args, job, text)
    return 0


async def job_diff(args: argparse.Namespace, c: PasClient, ref: str) -> int:
    d = await c.job_diff(ref)
    out(args, d, d.diff.rstrip("\n") if d.diff else f"job {d.job_id} has no changes")
    return 0


async def job_review(args: argparse.Namespace, c: PasClient, ref: str) -> int:
    params = p.JobReviewParams(job_id=ref, task_ids=args.task or None)
    approve = args.words[0] == "approve"
    res = await (c.approve_job(params) if approve else c.reject_job(params))
    verb = "applied" if approve else "rejected"
    lines = [f"job {res.job.id} {res.job.state.value}"]
    for r in res.results:
        hunks = r.applied if approve else r.rejected
        lines.append(f"  task {r.task.id} {r.task.state.value}: {verb} hunks {', '.join(map(str, hunks)) or '-'}")
    lines += [f"  conflict: task hunk {cf.hunk_id} in {cf.path}: {cf.reason}" for cf in res.conflicts]
    out(args, res, "\n".join(lines))
    return 1 if res.conflicts else 0


async def job_cancel(args: argparse.Namespace, c: PasClient, ref: str) -> int:
    job = await c.cancel_job(ref)
    out(args, job, f"job {job.id} {job.state.value}: {job.stop_reason or ''}")
    return 0


async def cmd_jobs(args: argparse.Namespace, c: PasClient) -> int:
    jobs = await c.jobs(p.JobListParams(limit=args.limit))
    rows = [[j.id, j.state.value, j.split, short(j.instruction, 36), j.model, f"{len(j.tasks)}/{len(j.plan)}",
             f"${j.spent_usd:.4f}", ago(j.created_at)] for j in jobs]
    out(args, jobs, table(rows, ["JOB", "STATE", "SPLIT", "INSTRUCTION", "MODEL", "TASKS", "SPENT", "AGE"])
        if jobs else "no jobs")
    return 0


async def cmd_demo(args: argparse.Namespace) -> int:
    from daemon.demo import run_demo

    return await run_demo(args)


# ------------------------------------------------------------ parser


def _show(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _number(low: float, high: float, *, open_low: bool = False) -> Callable[[str], float]:
    """An argparse type for a finite number in a range (`float` alone takes inf and nan)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or value > high or (open_low and value == low):
            above = "above" if open_low else "from"
            raise argparse.ArgumentTypeError(f"expected a number {above} {_show(low)} to {_show(high)}, got {text!r}")
        return value
    return parse


def _bounds(model: type[BaseModel], field: str) -> tuple[int, int]:
    """A protocol or config field's `ge`/`le`, so the CLI refuses what the socket would."""
    found = {k: getattr(m, k) for m in model.model_fields[field].metadata for k in ("ge", "le") if hasattr(m, k)}
    return int(found["ge"]), int(found["le"])


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type for a whole number in a range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}, got {text!r}")
        return value
    return parse


def _task_state(text: str) -> p.TaskState:
    try:
        return p.TaskState(text.upper())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(s.value.lower() for s in p.TaskState)}, got {text!r}") from None


def _workers_error(workers: int | None) -> str | None:
    """A one-line usage error for a --workers value outside the pool's bounds (None if it is fine)."""
    from daemon.config import PoolConfig

    if workers is None:
        return None
    low, high = _bounds(PoolConfig, "workers")
    if low <= workers <= high:
        return None
    return f"pasd: --workers takes a whole number from {low} to {high} (programmers in the pool), got {workers}"


class Parser(argparse.ArgumentParser):
    """Usage errors in one line (what was wrong, where to read more), exit 2."""

    def error(self, message: str) -> Never:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="pasd", description="Hand coding work to a pool of LLM programmers.")
    ap.add_argument("--version", action="version", version=banner("pasd"))
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name: str, help: str, *, json_flag: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        if json_flag:
            sp.add_argument("--json", action="store_true", help="print JSON")
        return sp

    sp = cmd("start", "start the daemon in the background", json_flag=False)
    sp.add_argument("--workers", type=int, help="number of programmers (default: config pool.workers)")
    sp.add_argument("--foreground", action="store_true", help="run in the foreground")
    _pool_flags(sp)
    sp = cmd("serve", "run the daemon in the foreground", json_flag=False)
    sp.add_argument("--workers", type=int)
    _pool_flags(sp)
    cmd("stop", "stop the daemon", json_flag=False)
    cmd("status", "the programmers and what they are doing")
    sp = cmd("submit", "submit a task")
    sp.add_argument("instruction", help="what to do")
    sp.add_argument("--file", "-f", action="append", default=[], help="a file the task may change (repeatable)")
    sp.add_argument("--range", "-r", type=_line_range, help="selection START:END (1-based lines) in the first --file")
    sp.add_argument("--model", "-m", help="litellm model string, e.g. openai/gpt-4.1-mini")
    sp.add_argument("--api-base", help="endpoint for the model (OpenAI-compatible servers, Ollama, ...)")
    sp.add_argument("--check", help="command to check the edit, e.g. 'pytest -q' (must be allowlisted)")
    sp.add_argument("--timeout", type=_number(0, p.MAX_TIMEOUT_S, open_low=True), help="task time limit in seconds")
    sp.add_argument("--budget", type=_number(0, p.MAX_BUDGET_USD), help="task cost cap in USD")
    sp.add_argument("--priority", type=_whole(-p.MAX_PRIORITY, p.MAX_PRIORITY), default=0, help="higher runs first")
    sp.add_argument("--workspace", help="workspace root (default: the git top level, else .)")
    sp.add_argument("--wait", "-w", action="store_true", help="wait for the task and show progress")
    sp = cmd("tasks", "list tasks")
    sp.add_argument("--state", action="append", type=_task_state, metavar="STATE",
                    help=f"only tasks in this state (repeatable): {', '.join(s.value.lower() for s in p.TaskState)}")
    sp.add_argument("--limit", type=_whole(*_bounds(p.TaskListParams, "limit")), default=50,
                    help="at most this many tasks, newest first (default: 50)")
    for name, help in (("show", "show a task"), ("diff", "show a task's diff, each hunk numbered for --hunks"),
                       ("cancel", "cancel a task")):
        sp = cmd(name, help)
        sp.add_argument("task", help="task id (or a unique prefix)")
    for name, help in (("approve", "apply a task's diff to your files"), ("reject", "discard a task's diff")):
        sp = cmd(name, help)
        sp.add_argument("task", help="task id (or a unique prefix)")
        sp.add_argument("--hunks", help="only these hunks, e.g. 1,3")
    sp = cmd("receipts", "what tasks cost and changed")
    sp.add_argument("--task", help="only this task's receipts")
    sp.add_argument("--by", choices=["model", "day", "job", "tier"], help="sum the receipts by model, day, job or tier")
    sp.add_argument("--limit", type=_whole(*_bounds(p.ReceiptsParams, "limit")), default=50,
                    help="at most this many receipts, newest first (default: 50)")
    sp = cmd("job", "split work into tasks across the pool; or show, diff, approve, reject, cancel a job")
    sp.add_argument("words", nargs="+", metavar="INSTRUCTION | {show,diff,approve,reject,cancel} JOB",
                    help="what to do (quoted), or a verb and a job id")
    sp.add_argument("--files", "-f", action="extend", nargs="+", default=[],
                    help="files, directories or quoted globs ('src/**/*.py') in scope")
    sp.add_argument("--split", choices=["per-file", "plan"], default="per-file",
                    help="one task per file, or let the model plan the subtasks")
    sp.add_argument("--model", "-m", help='model for every task, a tier name, or "auto" to route by size')
    sp.add_argument("--api-base", help="endpoint for the model")
    sp.add_argument("--check", help="check command for every task (must be allowlisted)")
    sp.add_argument("--timeout", type=_number(0, p.MAX_TIMEOUT_S, open_low=True), help="time limit per task in seconds")
    sp.add_argument("--budget", type=_number(0, p.MAX_BUDGET_USD), help="cost cap for the whole job in USD")
    sp.add_argument("--task-budget", type=_number(0, p.MAX_BUDGET_USD), help="cost cap per task in USD")
    sp.add_argument("--priority", type=_whole(-p.MAX_PRIORITY, p.MAX_PRIORITY), default=0, help="higher runs first")
    sp.add_argument("--workspace", help="workspace root (default: the git top level, else .)")
    sp.add_argument("--wait", "-w", action="store_true", help="wait until the job has run")
    sp.add_argument("--task", "-t", action="append", help="approve/reject only this task (repeatable)")
    sp = cmd("jobs", "list jobs")
    sp.add_argument("--limit", type=_whole(*_bounds(p.JobListParams, "limit")), default=50,
                    help="at most this many jobs, newest first (default: 50)")
    sp = cmd("trust", "let a workspace's .pas.toml, as it is now, widen your settings (endpoints, keys, "
                      "allowlists, budgets)")
    sp.add_argument("workspace", nargs="?", help="workspace root (default: the git top level, else .)")
    sp.add_argument("--revoke", action="store_true", help="stop trusting the workspace's .pas.toml")
    sp.add_argument("--list", action="store_true", help="list the trusted files")
    sp = cmd("demo", "run the whole flow against the offline model (no API key needed)", json_flag=False)
    sp.add_argument("--keep", action="store_true", help="keep the demo repository")
    return ap


COMMANDS: dict[str, Command] = {
    "status": cmd_status, "submit": cmd_submit, "tasks": cmd_tasks, "show": cmd_show, "diff": cmd_diff,
    "approve": cmd_approve, "reject": cmd_reject, "cancel": cmd_cancel, "receipts": cmd_receipts,
    "job": cmd_job, "jobs": cmd_jobs, "trust": cmd_trust,
}


async def _main(args: argparse.Namespace) -> int:
    if args.command in ("start",):
        return await cmd_start(args)
    if args.command == "stop":
        return await cmd_stop(args)
    if args.command == "demo":
        return await cmd_demo(args)
    async with PasClient(name="cli") as c:
        return await COMMANDS[args.command](args, c)


def main(argv: list[str] | None = None) -> int:
    """Run one command. A reader that stops early (`pasd diff X | head`) ends it quietly with 141,
    128 + SIGPIPE, as `git log | head` or `cat` report it, so a script still sees the output was cut."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        # what is left in the buffer goes nowhere, and the flush at exit finds nothing to complain about
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "submit" and args.range and not args.file:
        print("pasd submit: --range needs --file (the range is lines of the first --file) "
              "(see `pasd submit --help`)", file=sys.stderr)
        return 2
    if missing := paths.missing_config():
        print(f"pasd: warning: {missing}", file=sys.stderr)
    if args.command in ("start", "serve") and (bad := _workers_error(args.workers)):
        print(bad, file=sys.stderr)
        return 2
    if args.command == "serve" or (args.command == "start" and args.foreground):
        from daemon.app import serve

        try:
            return serve(None, None, args.workers, _pool_overrides(args))
        except PasError as exc:
            print(f"pasd: {exc.message}", file=sys.stderr)
            return 1
    try:
        return asyncio.run(_main(args))
    except PasError as exc:
        print(f"pasd: {exc.message}", file=sys.stderr)
        return 1
    except ValidationError as exc:  # a value the protocol refuses, caught before it is sent
        err = exc.errors()[0]
        print(f"pasd: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
