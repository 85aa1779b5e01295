"""The commands a script calls in a loop: `status`, `submit` (and `--wait`), and what they show.

They run on a blocking socket with the standard library only (daemon/cli/rpc.py): no asyncio, no
pydantic, so a command costs little more than Python's own start. Requests carry the fields of
daemon/protocol.py's params models, which the daemon validates as it does every request; replies
are read as the JSON of the result models (field names as protocol.py has them) and printed with
--json as they came.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from daemon.cli import rpc
from daemon.cli.args import workspace_root
from daemon.cli.output import ago, out, plural, short, state, table
from daemon.errors import DaemonUnavailable, MissingCredentials
from daemon.wire import CHECK_FAILED, EDITS_REFUSED, EDITS_UNAPPLIED, TaskState, untrusted_message, warning_text

Json = dict[str, Any]


def cmd_status(args: argparse.Namespace) -> int:
    st = rpc.call("pool.status")
    if args.json:
        out(args, st, "")
        return 0
    programmers = st["programmers"]
    rows = [[pr["id"], state(pr["state"]), pr["task_id"] or "-", pr["model"] or "-",
             ago(pr["busy_since"]) if pr["busy_since"] else "-", str(pr["tasks_done"]), str(pr["failures"])]
            for pr in programmers]
    headers = ["PROGRAMMER", "STATE", "TASK", "MODEL", "BUSY", "DONE", "FAILURES"]
    if any(pr["node"] != "local" for pr in programmers):  # a remote backend: say where each one runs
        rows = [[*r, pr["node"]] for r, pr in zip(rows, programmers, strict=True)]
        headers.append("NODE")
    text = table(rows, headers)
    text += f"\nqueued {st['queued']} · running {st['running']} · awaiting review {st['review']}"
    if st.get("dashboard"):
        text += f"\nweb dashboard: {st['dashboard']} (`pasd web --url` prints it with its token)"
    for err in st["config_errors"]:
        text += f"\nconfig error (last good settings in force): {err}"
    for u in st["untrusted"]:
        text += "\n" + untrusted_message(u["path"], u["ignored"], u["command"])
    out(args, st, text)
    return 0


def warn_untrusted(conn: rpc.Connection, workspace: str) -> None:
    """One line on stderr when the workspace's .pas.toml has settings the daemon ignores."""
    for u in conn.call("pool.status")["untrusted"]:
        if u["workspace"] == workspace:
            print(f"pasd: warning: {untrusted_message(u['path'], u['ignored'], u['command'])}", file=sys.stderr)


def shell_keys(exc: MissingCredentials) -> dict[str, str]:
    """The provider keys the daemon asked for (the variables a MissingCredentials names) that this shell has."""
    wanted = exc.data.get("variables") if isinstance(exc.data, dict) else None
    return {name: os.environ[name] for name in wanted or [] if isinstance(name, str) and os.environ.get(name)}


def send_with_keys(conn: rpc.Connection, method: str, params: Json) -> Any:
    """Send; when the daemon has no key for the model and this shell has one, send again with that key
    (for this task only: the daemon keeps it in memory while it runs)."""
    try:
        return conn.call(method, params)
    except MissingCredentials as exc:
        if not (keys := shell_keys(exc)):
            raise
        return conn.call(method, {**params, "keys": keys})


def cmd_submit(args: argparse.Namespace) -> int:
    files = [str(Path(f).resolve()) for f in args.file]
    selection = {"path": files[0], "start_line": args.range[0], "end_line": args.range[1]} if args.range else None
    params: Json = {  # protocol.SubmitParams
        "workspace": workspace_root(args.workspace), "instruction": args.instruction, "files": files,
        "selection": selection, "model": args.model, "api_base": args.api_base, "engine": args.engine,
        "check": args.check, "timeout_s": args.timeout, "budget_usd": args.budget, "priority": args.priority,
    }
    if not args.wait:
        with rpc.Connection() as conn:
            task = send_with_keys(conn, "task.submit", params)
            warn_untrusted(conn, task["workspace"])
        out(args, task, f"submitted {task['id']} ({task['model']}): {short(task['instruction'], 60)}")
        return 0
    # subscribed before submitting, so that no event of the task (queued, running, model) is missed
    with rpc.Events(["task", "progress"]) as events:
        with rpc.Connection() as conn:
            task = send_with_keys(conn, "task.submit", params)
            warn_untrusted(conn, task["workspace"])
        if not args.json:
            print(f"submitted {task['id']} ({task['model']}); waiting…", file=sys.stderr)
        task = follow(events, task, quiet=args.json)
    out(args, task, task_text(task))
    receipts = rpc.call("receipts.list", {"task_id": task["id"], "limit": 1})["receipts"]
    return verdict(task, receipts[0] if receipts else None)


def active(task: Json) -> bool:
    return TaskState(task["state"]).active


def follow(events: rpc.Events, task: Json, quiet: bool) -> Json:
    """The task's progress on stderr (time since submit, the Programmer, the phase) until it ends; for a
    revision, until that revision ends (the end of the proposal it revises is not waited for).

    On a terminal a streaming reply's token count updates in place on one line; elsewhere only the
    reply's final count is written, so a log gets one line per step.
    """
    started = time.monotonic()
    live = sys.stderr.isatty()
    open_line = False  # a live line is on screen without its newline
    for env in events:
        ev = env["event"]
        if ev["kind"] == "progress" and ev["task_id"] == task["id"] and not quiet:
            who = f"{ev['programmer']}: " if ev["programmer"] else ""
            line = f"  {time.monotonic() - started:6.1f}s  {who}{ev['phase']}: {ev['message']}"
            if ev["streaming"]:
                if live:
                    print(f"\r\x1b[K{line}", end="", file=sys.stderr, flush=True)
                    open_line = True
                continue
            print(f"\r\x1b[K{line}" if open_line else line, file=sys.stderr)
            open_line = False
        elif (ev["kind"] == "task" and ev["task"]["id"] == task["id"] and ev["task"]["revision"] >= task["revision"]
              and not active(ev["task"])):
            if open_line:
                print(file=sys.stderr)
            done: Json = ev["task"]
            return done
    raise DaemonUnavailable("the daemon went away while waiting")


def verdict(task: Json, receipt: Json | None) -> int:
    """0 only for a result worth reviewing: in review (or applied) and not flagged (check failing, edits
    refused or not applied after the last round); 1 otherwise, with the reason on stderr."""
    if task["state"] not in (TaskState.REVIEW, TaskState.APPLIED):
        return 1
    flags = set(task["warnings"])
    problems = []
    if CHECK_FAILED in flags:
        runs = plural(receipt["check_rounds"], "run") if receipt is not None else "the last round"
        problems.append(f"the check still fails after {runs}: {task['check']}")
    if EDITS_REFUSED in flags:
        problems.append(f"{plural(len(task['refused']), 'edit')} refused: "
                        + "; ".join(f"{r['path']} ({r['reason']})" for r in task["refused"][:3]))
    if EDITS_UNAPPLIED in flags:
        problems.append(f"{plural(len(task['unapplied']), 'edit')} not applied: " + "; ".join(task["unapplied"][:3]))
    for problem in problems:
        print(f"pasd: {problem}; review the diff before approving", file=sys.stderr)
    return 1 if problems else 0


def pruned_text(at: float) -> str:
    when = time.strftime("%Y-%m-%d", time.localtime(at))
    return f"removed by retention (`pasd gc`) on {when}; the task's summary and receipts are kept"


def task_text(t: Json) -> str:
    """A task (a TaskInfo's JSON) as `pasd show` and `pasd submit --wait` print it."""
    flagged = f" ⚠ flagged: {warning_text(t['warnings'])}" if t["warnings"] else ""
    engine = f" (engine {t['engine']})" if t.get("engine", "native") != "native" else ""
    lines = [f"task {t['id']}  {state(t['state'])}{flagged}", f"  instruction: {t['instruction']}",
             f"  model: {t['model']}{engine}", f"  files: {', '.join(t['files'])}", f"  workspace: {t['workspace']}"]
    if sel := t["selection"]:
        lines.append(f"  selection: {sel['path']}:{sel['start_line']}-{sel['end_line']}")
    if t["programmer"]:
        lines.append(f"  programmer: {t['programmer']} (attempt {t['attempts']})")
    if t["revision"]:
        lines.append(f"  revision: {t['revision']} (sent back {plural(t['revision'], 'time')} with a comment)")
    if t["state"] in (TaskState.REVIEW, TaskState.APPLIED, TaskState.CONFLICT, TaskState.REJECTED):
        lines.append(f"  changes: {plural(t['files_changed'], 'file')}, +{t['lines_added']} -{t['lines_removed']}")
    if t["pruned_at"]:
        lines.append(f"  diff: {pruned_text(t['pruned_at'])}")
    lines.append(f"  cost: ${t['cost_usd']:.6f}")
    if t["error"] or t["reason"]:
        lines.append(f"  reason: {t['reason'] or '-'}: {t['error'] or ''}")
    for r in t["refused"]:
        lines.append(f"  refused edit: {r['path']}: {r['reason']}")
    for why in t["unapplied"]:
        lines.append(f"  edit not applied: {why}")
    for cf in t["conflicts"]:
        lines.append(f"  conflict: hunk {cf['hunk_id']} in {cf['path']}: {cf['reason']}")
    if t["stale_hunks"]:
        lines.append(f"  stale hunks (file changed since): {', '.join(map(str, t['stale_hunks']))}")
    return "\n".join(lines)
