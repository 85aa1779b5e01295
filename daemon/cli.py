"""The `pasd` command: start/stop the daemon, submit, list, review, receipts.

Exit codes: 0 success, 1 a one-line error, 2 usage errors (argparse).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from daemon import paths
from daemon import protocol as p
from daemon.client import EventStream, PasClient
from daemon.errors import DaemonUnavailable, PasError

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


def ago(t: float | None) -> str:
    if t is None:
        return "-"
    s = max(0, int(time.time() - t))
    return f"{s}s" if s < 60 else f"{s // 60}m" if s < 3600 else f"{s // 3600}h"


# ------------------------------------------------------------ daemon life cycle


def _daemon_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PASD_SOCKET"] = str(paths.socket_path())
    env["PASD_STATE_DIR"] = str(paths.state_dir())
    return env


async def _hello() -> p.HelloResult | None:
    try:
        async with PasClient(name="cli") as c:
            return await c.hello()
    except DaemonUnavailable:
        return None


async def ensure_daemon(workers: int | None = None, quiet: bool = False,
                        pool_argv: list[str] | None = None) -> p.HelloResult:
    """Start the daemon in the background unless one answers; returns once the socket is ready."""
    hello = await _hello()
    if hello is not None:
        if not quiet:
            print(f"pasd is already running (pid {hello.pid}) on {hello.socket}")
        return hello
    state = paths.state_dir()
    (state / "logs").mkdir(parents=True, exist_ok=True)
    log_path = state / "logs" / "pasd.log"
    argv = [sys.executable, "-m", "daemon", "serve"] + (["--workers", str(workers)] if workers else [])
    argv += pool_argv or []
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, env=_daemon_env())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        hello = await _hello()
        if hello is not None:
            if not quiet:
                # another `pasd start` may have won the race for the lock
                verb = "started" if hello.pid == proc.pid else "is already running"
                print(f"pasd {verb} (pid {hello.pid}) on {hello.socket}")
            return hello
        code = proc.poll()
        if code is not None:
            hello = await _hello()
            if hello is not None:  # another start won the lock
                if not quiet:
                    print(f"pasd is already running (pid {hello.pid}) on {hello.socket}")
                return hello
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise PasError(f"the daemon exited during start-up: {tail[0]} (log: {log_path})")
        await asyncio.sleep(0.02)
    raise PasError(f"the daemon did not answer within 30 s (log: {log_path})")


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
    out(args, st, text)
    return 0


def _selection(args: argparse.Namespace, files: list[str]) -> p.Selection | None:
    if not args.range:
        return None
    if not files:
        raise PasError("--range needs --file")
    try:
        a, _, b = args.range.partition(":")
        start, end = int(a), int(b or a)
        return p.Selection(path=files[0], start_line=start, end_line=end)
    except ValueError:
        raise PasError(f"--range must be START:END line numbers (1-based), got {args.range!r}") from None


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
    task = await c.submit(params)
    if not args.wait:
        out(args, task, f"submitted {task.id} ({task.model}): {short(task.instruction, 60)}")
        return 0
    if not args.json:
        print(f"submitted {task.id} ({task.model}); waiting…", file=sys.stderr)
    task = await _wait_with_progress(c, task.id, quiet=args.json)
    out(args, task, _task_text(task))
    return 0 if task.state in (p.TaskState.REVIEW, p.TaskState.APPLIED) else 1


async def _wait_with_progress(c: PasClient, task_id: str, quiet: bool) -> p.TaskInfo:
    async with EventStream(c.socket, kinds=["task", "progress"]) as events:
        task = await c.get(task_id)
        if not task.state.active:
            return task
        async for env in events:
            ev = env.event
            if isinstance(ev, p.ProgressEvent) and ev.task_id == task_id and not quiet:
                print(f"  {ev.phase}: {ev.message}", file=sys.stderr)
            elif isinstance(ev, p.TaskEvent) and ev.task.id == task_id and not ev.task.state.active:
                return ev.task
    raise DaemonUnavailable("the daemon went away while waiting")


def _task_text(t: p.TaskInfo) -> str:
    lines = [f"task {t.id}  {t.state.value}", f"  instruction: {t.instruction}", f"  model: {t.model}",
             f"  files: {', '.join(t.files)}", f"  workspace: {t.workspace}"]
    if t.selection:
        lines.append(f"  selection: {t.selection.path}:{t.selection.start_line}-{t.selection.end_line}")
    if t.programmer:
        lines.append(f"  programmer: {t.programmer} (attempt {t.attempts})")
    if t.state in (p.TaskState.REVIEW, p.TaskState.APPLIED, p.TaskState.CONFLICT, p.TaskState.REJECTED):
        lines.append(f"  changes: {t.files_changed} files, +{t.lines_added} -{t.lines_removed}")
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
    states = [p.TaskState(s.upper()) for s in args.state] if args.state else None
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
    out(args, d, d.diff.rstrip("\n") if d.diff else f"task {d.task_id} has no changes")
    return 0


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


async def cmd_demo(args: argparse.Namespace) -> int:
    from daemon.demo import run_demo

    return await run_demo(args)


# ------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="pasd", description="Hand coding work to a pool of LLM programmers.")
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
    sp.add_argument("--range", "-r", help="selection START:END (1-based lines) in the first --file")
    sp.add_argument("--model", "-m", help="litellm model string, e.g. openai/gpt-4.1-mini")
    sp.add_argument("--api-base", help="endpoint for the model (OpenAI-compatible servers, Ollama, ...)")
    sp.add_argument("--check", help="command to check the edit, e.g. 'pytest -q' (must be allowlisted)")
    sp.add_argument("--timeout", type=float, help="task time limit in seconds")
    sp.add_argument("--budget", type=float, help="task cost cap in USD")
    sp.add_argument("--priority", type=int, default=0, help="higher runs first")
    sp.add_argument("--workspace", help="workspace root (default: the git top level, else .)")
    sp.add_argument("--wait", "-w", action="store_true", help="wait for the task and show progress")
    sp = cmd("tasks", "list tasks")
    sp.add_argument("--state", action="append", choices=[s.value.lower() for s in p.TaskState] +
                    [s.value for s in p.TaskState], help="only tasks in this state (repeatable)")
    sp.add_argument("--limit", type=int, default=50)
    for name, help in (("show", "show a task"), ("diff", "show a task's diff"), ("cancel", "cancel a task")):
        sp = cmd(name, help)
        sp.add_argument("task", help="task id (or a unique prefix)")
    for name, help in (("approve", "apply a task's diff to your files"), ("reject", "discard a task's diff")):
        sp = cmd(name, help)
        sp.add_argument("task", help="task id (or a unique prefix)")
        sp.add_argument("--hunks", help="only these hunks, e.g. 1,3")
    sp = cmd("receipts", "what tasks cost and changed")
    sp.add_argument("--task", help="only this task's receipts")
    sp.add_argument("--limit", type=int, default=50)
    sp = cmd("demo", "run the whole flow against the offline model (no API key needed)", json_flag=False)
    sp.add_argument("--keep", action="store_true", help="keep the demo repository")
    return ap


COMMANDS: dict[str, Command] = {
    "status": cmd_status, "submit": cmd_submit, "tasks": cmd_tasks, "show": cmd_show, "diff": cmd_diff,
    "approve": cmd_approve, "reject": cmd_reject, "cancel": cmd_cancel, "receipts": cmd_receipts,
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
    args = build_parser().parse_args(argv)
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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
