"""Jobs: split work across the pool; show, diff, approve, reject or cancel a job; list jobs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable

from daemon import protocol as p
from daemon.cli.args import workspace_root
from daemon.cli.lifecycle import warn_untrusted
from daemon.cli.output import ago, badge, out, painted_diff, plural, short, state, table
from daemon.cli.tasks import number_hunks, with_keys
from daemon.client import PasClient

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
    ws = workspace_root(args.workspace)
    # relative paths and globs are relative to where the user is; the daemon expands them in the workspace
    cwd = os.path.realpath(os.getcwd())
    files = [f if os.path.isabs(f) else os.path.join(cwd, f) for f in args.files]
    job = await with_keys(c.submit_job, p.JobSubmitParams(
        workspace=ws, instruction=words[0], files=files, split=args.split, model=args.model,
        api_base=args.api_base, check=args.check, timeout_s=args.timeout, budget_usd=args.budget,
        task_budget_usd=args.task_budget, priority=args.priority, engine=args.engine))
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
    lines = [f"job {j.id}  {state(j.state.value)}  ({j.split}, {_job_progress(j)})",
             f"  instruction: {j.instruction}", f"  model: {j.model}", f"  workspace: {j.workspace}"]
    budget = f" of ${j.budget_usd:g}" if j.budget_usd is not None else ""
    lines.append(f"  spent: ${j.spent_usd:.6f}{budget}" + (f" (planning ${j.plan_cost_usd:.6f})" if j.plan_cost_usd
                                                          else ""))
    if j.stopped:
        lines.append(f"  stopped: {j.stop_reason or 'yes'}")
    if j.error:
        lines.append(f"  error: {j.error}")
    if j.tasks:
        rows = [[t.id, badge(t), t.tier or "-", t.model, short(", ".join(t.files), 30), f"${t.cost_usd:.6f}",
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


def _done_total(j: p.JobInfo) -> tuple[int, int]:
    """Tasks that have run (in review or past it), and all the job's tasks: the plan's, or those queued so far."""
    total = max(len(j.plan), len(j.task_ids), len(j.tasks))
    return sum(1 for t in j.tasks if not t.state.active), total


def _job_progress(j: p.JobInfo) -> str:
    """"3 of 4 tasks done, 1 queued or running"."""
    done, total = _done_total(j)
    active = len(j.tasks) - done
    return f"{done} of {plural(total, 'task')} done" + (f", {active} queued or running" if active else "")


async def job_show(args: argparse.Namespace, c: PasClient, ref: str) -> int:
    job = await c.job(ref)
    text = _job_text(job)
    d = await c.job_diff(job.id)
    if d.diff:
        text += "\n\n" + painted_diff(d.diff.rstrip("\n"))
    out(args, job, text)
    return 0


async def job_diff(args: argparse.Namespace, c: PasClient, ref: str) -> int:
    """The job's diff, task after task, each hunk numbered as `pasd diff TASK` numbers it."""
    d = await c.job_diff(ref)
    text = number_hunks(d.diff, [h for t in d.tasks for f in t.files for h in f.hunks])
    out(args, d, painted_diff(text.rstrip("\n")) if d.diff else f"job {d.job_id} has no changes")
    return 0


async def job_review(args: argparse.Namespace, c: PasClient, ref: str) -> int:
    params = p.JobReviewParams(job_id=ref, task_ids=args.task or None)
    approve = args.words[0] == "approve"
    res = await (c.approve_job(params) if approve else c.reject_job(params))
    verb = "applied" if approve else "rejected"
    lines = [f"job {res.job.id} {state(res.job.state.value)}"]
    for r in res.results:
        hunks = r.applied if approve else r.rejected
        lines.append(f"  task {r.task.id} {state(r.task.state.value)}: "
                     f"{verb} hunks {', '.join(map(str, hunks)) or '-'}")
    lines += [f"  conflict: task hunk {cf.hunk_id} in {cf.path}: {cf.reason}" for cf in res.conflicts]
    out(args, res, "\n".join(lines))
    return 1 if res.conflicts else 0


async def job_cancel(args: argparse.Namespace, c: PasClient, ref: str) -> int:
    job = await c.cancel_job(ref)
    out(args, job, f"job {job.id} {job.state.value}: {job.stop_reason or ''}")
    return 0


async def cmd_jobs(args: argparse.Namespace, c: PasClient) -> int:
    jobs = await c.jobs(p.JobListParams(limit=args.limit))
    rows = [[j.id, state(j.state.value), j.split, short(j.instruction, 36), j.model, "{}/{}".format(*_done_total(j)),
             f"${j.spent_usd:.4f}", ago(j.created_at)] for j in jobs]
    out(args, jobs, table(rows, ["JOB", "STATE", "SPLIT", "INSTRUCTION", "MODEL", "DONE/TASKS", "SPENT", "AGE"])
        if jobs else "no jobs")
    return 0

