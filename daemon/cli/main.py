"""The `pasd` command: start/stop the daemon, submit, list, review, receipts.

Exit codes: 0 success, 1 a one-line error, 2 usage errors (argparse).
Dependencies go one way: entry -> main -> the command modules -> args/output.

This module and what it imports at the top are the standard library only: a command imports its
own module when it runs (QUICK, COMMANDS), so `pasd status` never pays for pydantic or asyncio,
and no command pays for another's imports. tests/daemon/test_cli_quick.py holds it to that.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Never

from daemon import paths, wire
from daemon.cli import mcp, revise, store, web
from daemon.cli.args import instruction, line_range, number, pool_flags, task_state, whole, workers_error
from daemon.errors import PasError

if TYPE_CHECKING:
    from daemon.client import PasClient

# Each command as "module:function", imported only when that command runs.
# QUICK: `def f(args) -> int` on a blocking socket, standard library only (daemon/cli/rpc.py): what
# a script calls in a loop. COMMANDS: `async def f(args, client) -> int` on PasClient and the models.
QUICK: dict[str, str] = {
    "status": "daemon.cli.quick:cmd_status", "submit": "daemon.cli.quick:cmd_submit",
    "revise": "daemon.cli.revise:cmd_revise",
}
COMMANDS: dict[str, str] = {
    "trust": "daemon.cli.lifecycle:cmd_trust",
    "tasks": "daemon.cli.tasks:cmd_tasks", "show": "daemon.cli.tasks:cmd_show", "diff": "daemon.cli.tasks:cmd_diff",
    "approve": "daemon.cli.tasks:cmd_approve", "reject": "daemon.cli.tasks:cmd_reject",
    "cancel": "daemon.cli.tasks:cmd_cancel",
    "receipts": "daemon.cli.receipts:cmd_receipts",
    "job": "daemon.cli.jobs:cmd_job", "jobs": "daemon.cli.jobs:cmd_jobs",
    "gc": "daemon.cli.store:cmd_gc",
    "engines": "daemon.cli.engines:cmd_engines",
}

Command = Callable[[argparse.Namespace, "PasClient"], Awaitable[int]]


def load(target: str) -> Any:
    """The function a "module:function" entry names."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


class Version(argparse.Action):
    """`--version`, with the version looked up only when asked (importlib.metadata is slow to import)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from daemon.version import banner

        print(banner("pasd"))  # on stdout, as argparse's own version action has it
        parser.exit()


class Parser(argparse.ArgumentParser):
    """Usage errors in one line (what was wrong, where to read more), exit 2."""

    commands: list[str]  # every command's name, built or not (see build_parser)

    def error(self, message: str) -> Never:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


class Unused(argparse.ArgumentParser):
    """Stands in for the parsers of the commands not being run: their arguments are not needed."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        return argparse.Action(option_strings=[], dest=argparse.SUPPRESS)


def build_parser(only: str | None = None) -> Parser:
    """The parser of every command; with `only`, of that command alone (what one run needs: building
    all ~25 sub-parsers costs about as much as the rest of `pasd status` together)."""
    ap = Parser(prog="pasd", description="Hand coding work to a pool of LLM programmers.")
    ap.commands = []
    ap.add_argument("--version", action=Version)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    unused = Unused(add_help=False)

    def cmd(name: str, help: str, *, json_flag: bool = True) -> argparse.ArgumentParser:
        ap.commands.append(name)
        if only is not None and name != only:
            return unused
        sp = sub.add_parser(name, help=help, description=help)
        if json_flag:
            sp.add_argument("--json", action="store_true", help="print JSON")
        return sp

    sp = cmd("start", "start the daemon in the background", json_flag=False)
    sp.add_argument("--workers", type=int, help="number of programmers (default: config pool.workers)")
    sp.add_argument("--foreground", action="store_true", help="run in the foreground")
    pool_flags(sp)
    sp = cmd("serve", "run the daemon in the foreground", json_flag=False)
    sp.add_argument("--workers", type=int)
    pool_flags(sp)
    cmd("stop", "stop the daemon", json_flag=False)
    cmd("status", "the programmers and what they are doing")
    sp = cmd("submit", "submit a task")
    sp.add_argument("instruction", type=instruction, help="what to do")
    sp.add_argument("--file", "-f", action="append", default=[], help="a file the task may change (repeatable)")
    sp.add_argument("--range", "-r", type=line_range, help="selection START:END (1-based lines) in the first --file")
    sp.add_argument("--model", "-m", help="litellm model string, e.g. openai/gpt-4.1-mini")
    sp.add_argument("--api-base", help="endpoint for the model (OpenAI-compatible servers, Ollama, ...)")
    sp.add_argument("--engine", "-e", help="what runs the task: native (default) or a tool, e.g. aider "
                                            "(`pasd engines` lists them)")
    sp.add_argument("--check", help="command to check the edit, e.g. 'pytest -q' (must be allowlisted)")
    sp.add_argument("--timeout", type=number(0, wire.MAX_TIMEOUT_S, open_low=True), help="task time limit in seconds")
    sp.add_argument("--budget", type=number(0, wire.MAX_BUDGET_USD), help="task cost cap in USD")
    sp.add_argument("--priority", type=whole(-wire.MAX_PRIORITY, wire.MAX_PRIORITY), default=0,
                    help="higher runs first")
    sp.add_argument("--workspace", help="workspace root (default: the git top level, else .)")
    sp.add_argument("--wait", "-w", action="store_true", help="wait for the task and show progress")
    sp = cmd("tasks", "list tasks")
    sp.add_argument("--state", action="append", type=task_state, metavar="STATE",
                    help=f"only tasks in this state (repeatable): {', '.join(s.value.lower() for s in wire.TaskState)}")
    sp.add_argument("--limit", type=whole(1, wire.MAX_TASK_PAGE), default=50,
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
    sp.add_argument("--limit", type=whole(1, wire.MAX_RECEIPT_PAGE), default=50,
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
    sp.add_argument("--engine", "-e", help="what runs every task: native (default) or a tool, e.g. aider "
                                            "(`pasd engines` lists them)")
    sp.add_argument("--check", help="check command for every task (must be allowlisted)")
    sp.add_argument("--timeout", type=number(0, wire.MAX_TIMEOUT_S, open_low=True),
                    help="time limit per task in seconds")
    sp.add_argument("--budget", type=number(0, wire.MAX_BUDGET_USD), help="cost cap for the whole job in USD")
    sp.add_argument("--task-budget", type=number(0, wire.MAX_BUDGET_USD), help="cost cap per task in USD")
    sp.add_argument("--priority", type=whole(-wire.MAX_PRIORITY, wire.MAX_PRIORITY), default=0,
                    help="higher runs first")
    sp.add_argument("--workspace", help="workspace root (default: the git top level, else .)")
    sp.add_argument("--wait", "-w", action="store_true", help="wait until the job has run")
    sp.add_argument("--task", "-t", action="append", help="approve/reject only this task (repeatable)")
    sp = cmd("jobs", "list jobs")
    sp.add_argument("--limit", type=whole(1, wire.MAX_JOB_PAGE), default=50,
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
    mcp.add_arguments(cmd("mcp", mcp.HELP, json_flag=False))
    web.add_arguments(cmd("web", web.HELP, json_flag=False))
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


async def _main(args: argparse.Namespace) -> int:
    if args.command == "start":
        return int(await load("daemon.cli.lifecycle:cmd_start")(args))
    if args.command == "stop":
        return int(await load("daemon.cli.lifecycle:cmd_stop")(args))
    if args.command == "demo":
        return int(await load("daemon.cli.demo:run_demo")(args))
    from daemon.client import PasClient

    command: Command = load(COMMANDS[args.command])
    async with PasClient(name="cli") as c:
        return await command(args, c)


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
    ap = build_parser(only=argv[0] if argv else None)
    if not argv or argv[0] not in ap.commands:  # --help, a typo: the whole parser says what there is
        ap = build_parser()
    args = ap.parse_args(argv)
    if args.command == "submit" and args.range and not args.file:
        print("pasd submit: --range needs --file (the range is lines of the first --file) "
              "(see `pasd submit --help`)", file=sys.stderr)
        return 2
    if missing := paths.missing_config():
        print(f"pasd: warning: {missing}", file=sys.stderr)
    if args.command == "completion":
        print(completion(args.shell), end="")
        return 0
    if args.command in QUICK:
        try:
            return int(load(QUICK[args.command])(args))
        except PasError as exc:
            print(f"pasd: {exc.message}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
    if args.command in ("start", "serve") and (bad := workers_error(args.workers)):
        print(bad, file=sys.stderr)
        return 2
    if args.command in ("mcp", "web"):  # their own servers, each with its own event loop
        return int({"mcp": mcp.run, "web": web.run}[args.command](args))
    if args.command == "serve" or (args.command == "start" and args.foreground):
        from daemon.app import serve
        from daemon.cli.lifecycle import pool_overrides

        try:
            return serve(None, None, args.workers, pool_overrides(args))
        except PasError as exc:
            print(f"pasd: {exc.message}", file=sys.stderr)
            return 1
    import asyncio

    from pydantic import ValidationError

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
