"""The `pasd` command: start/stop the daemon, submit, list, review, receipts.

Exit codes: 0 success, 1 a one-line error, 2 usage errors (argparse).
Dependencies go one way: entry -> main -> the command modules -> args/output.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Never

from pydantic import ValidationError

from daemon import paths
from daemon import protocol as p
from daemon.cli import engines, jobs, lifecycle, receipts, revise, store, tasks
from daemon.cli.args import bounds, line_range, number, task_state, whole, workers_error
from daemon.client import PasClient
from daemon.errors import PasError
from daemon.version import banner

Command = Callable[[argparse.Namespace, PasClient], Awaitable[int]]


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
    lifecycle.pool_flags(sp)
    sp = cmd("serve", "run the daemon in the foreground", json_flag=False)
    sp.add_argument("--workers", type=int)
    lifecycle.pool_flags(sp)
    cmd("stop", "stop the daemon", json_flag=False)
    cmd("status", "the programmers and what they are doing")
    sp = cmd("submit", "submit a task")
    sp.add_argument("instruction", help="what to do")
    sp.add_argument("--file", "-f", action="append", default=[], help="a file the task may change (repeatable)")
    sp.add_argument("--range", "-r", type=line_range, help="selection START:END (1-based lines) in the first --file")
    sp.add_argument("--model", "-m", help="litellm model string, e.g. openai/gpt-4.1-mini")
    sp.add_argument("--api-base", help="endpoint for the model (OpenAI-compatible servers, Ollama, ...)")
    sp.add_argument("--engine", "-e", help="what runs the task: native (default) or a tool, e.g. aider "
                                            "(`pasd engines` lists them)")
    sp.add_argument("--check", help="command to check the edit, e.g. 'pytest -q' (must be allowlisted)")
    sp.add_argument("--timeout", type=number(0, p.MAX_TIMEOUT_S, open_low=True), help="task time limit in seconds")
    sp.add_argument("--budget", type=number(0, p.MAX_BUDGET_USD), help="task cost cap in USD")
    sp.add_argument("--priority", type=whole(-p.MAX_PRIORITY, p.MAX_PRIORITY), default=0, help="higher runs first")
    sp.add_argument("--workspace", help="workspace root (default: the git top level, else .)")
    sp.add_argument("--wait", "-w", action="store_true", help="wait for the task and show progress")
    sp = cmd("tasks", "list tasks")
    sp.add_argument("--state", action="append", type=task_state, metavar="STATE",
                    help=f"only tasks in this state (repeatable): {', '.join(s.value.lower() for s in p.TaskState)}")
    sp.add_argument("--limit", type=whole(*bounds(p.TaskListParams, "limit")), default=50,
                    help="at most this many tasks, newest first (default: 50)")
    for name, help in (("show", "show a task"), ("diff", "show a task's diff, each hunk numbered for --hunks"),
                       ("cancel", "cancel a task")):
        sp = cmd(name, help)
        sp.add_argument("task", help="task id (or a unique prefix)")
    for name, help in (("approve", "apply a task's diff to your files"), ("reject", "discard a task's diff")):
        sp = cmd(name, help)
        sp.add_argument("task", help="task id (or a unique prefix)")
        sp.add_argument("--hunks", help="only these hunks, e.g. 1,3")
    revise.add_arguments(cmd("revise", revise.HELP))
    sp = cmd("receipts", "what tasks cost and changed")
    sp.add_argument("--task", help="only this task's receipts")
    sp.add_argument("--by", choices=["model", "day", "job", "tier"], help="sum the receipts by model, day, job or tier")
    sp.add_argument("--limit", type=whole(*bounds(p.ReceiptsParams, "limit")), default=50,
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
    sp.add_argument("--timeout", type=number(0, p.MAX_TIMEOUT_S, open_low=True), help="time limit per task in seconds")
    sp.add_argument("--budget", type=number(0, p.MAX_BUDGET_USD), help="cost cap for the whole job in USD")
    sp.add_argument("--task-budget", type=number(0, p.MAX_BUDGET_USD), help="cost cap per task in USD")
    sp.add_argument("--priority", type=whole(-p.MAX_PRIORITY, p.MAX_PRIORITY), default=0, help="higher runs first")
    sp.add_argument("--workspace", help="workspace root (default: the git top level, else .)")
    sp.add_argument("--wait", "-w", action="store_true", help="wait until the job has run")
    sp.add_argument("--task", "-t", action="append", help="approve/reject only this task (repeatable)")
    sp = cmd("jobs", "list jobs")
    sp.add_argument("--limit", type=whole(*bounds(p.JobListParams, "limit")), default=50,
                    help="at most this many jobs, newest first (default: 50)")
    sp = cmd("trust", "let a workspace's .pas.toml, as it is now, widen your settings (endpoints, keys, "
                      "allowlists, budgets)")
    sp.add_argument("workspace", nargs="?", help="workspace root (default: the git top level, else .)")
    sp.add_argument("--revoke", action="store_true", help="stop trusting the workspace's .pas.toml")
    sp.add_argument("--list", action="store_true", help="list the trusted files")
    store.add_parser(cmd)
    cmd("engines", "the engines a task can run on: installed or not, version, how to install")
    sp = cmd("demo", "run the whole flow against the offline model (no API key needed)", json_flag=False)
    sp.add_argument("--clean", action="store_true", help="remove the demo repository at the end (default: keep it)")
    sp.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)  # the default now
    sp = cmd("offline-model", "serve the offline model (OpenAI-compatible, scripted answers, no key) on loopback",
             json_flag=False)
    sp.add_argument("options", nargs="*", help="see `pasd offline-model --help`")
    sp = cmd("completion", "print the shell completion script (see README: Shell completion)", json_flag=False)
    sp.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    return ap


SHELLS = ("bash", "zsh", "fish")


def completion(shell: str) -> str:
    """The completion script for `shell`, generated from this parser (shtab: static, so a TAB runs
    no Python); file and directory options complete paths."""
    import shtab

    ap = build_parser()
    kinds = {"file": shtab.FILE, "files": shtab.FILE, "workspace": shtab.DIRECTORY}
    stack = [ap]
    while stack:
        parser = stack.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack += list(action.choices.values())
            elif action.dest in kinds:
                action.complete = kinds[action.dest]  # type: ignore[attr-defined]
    return str(shtab.complete(ap, shell=shell))


COMMANDS: dict[str, Command] = {
    "status": lifecycle.cmd_status, "trust": lifecycle.cmd_trust,
    "submit": tasks.cmd_submit, "tasks": tasks.cmd_tasks, "show": tasks.cmd_show, "diff": tasks.cmd_diff,
    "approve": tasks.cmd_approve, "reject": tasks.cmd_reject, "cancel": tasks.cmd_cancel,
    "revise": revise.cmd_revise,
    "receipts": receipts.cmd_receipts, "job": jobs.cmd_job, "jobs": jobs.cmd_jobs, "gc": store.cmd_gc,
    "engines": engines.cmd_engines,
}


async def _main(args: argparse.Namespace) -> int:
    if args.command == "start":
        return await lifecycle.cmd_start(args)
    if args.command == "stop":
        return await lifecycle.cmd_stop(args)
    if args.command == "demo":
        from daemon.cli.demo import run_demo

        return await run_demo(args)
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
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["offline-model"]:  # its own parser: argparse cannot pass `--port` on through a subcommand
        from daemon import offline_model

        return offline_model.main(argv[1:], prog="pasd offline-model")
    args = build_parser().parse_args(argv)
    if args.command == "submit" and args.range and not args.file:
        print("pasd submit: --range needs --file (the range is lines of the first --file) "
              "(see `pasd submit --help`)", file=sys.stderr)
        return 2
    if missing := paths.missing_config():
        print(f"pasd: warning: {missing}", file=sys.stderr)
    if args.command == "completion":
        print(completion(args.shell), end="")
        return 0
    if args.command in ("start", "serve") and (bad := workers_error(args.workers)):
        print(bad, file=sys.stderr)
        return 2
    if args.command == "serve" or (args.command == "start" and args.foreground):
        from daemon.app import serve

        try:
            return serve(None, None, args.workers, lifecycle.pool_overrides(args))
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
