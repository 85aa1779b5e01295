"""`pasd revise`: send a task's proposal back to its Programmer with a comment. A quick command, as
`pasd submit` is (daemon/cli/quick.py): it follows the revision the same way."""

from __future__ import annotations

import argparse
import sys

from daemon.cli import rpc
from daemon.cli.args import comment, hunk_list
from daemon.cli.output import out, plural
from daemon.cli.quick import follow, send_with_keys
from daemon.wire import TaskState

HELP = "send a task in review back to its Programmer with a comment; it comes back to review with a new diff"


def add_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("task", help="task id (or a unique prefix)")
    sp.add_argument("comment", type=comment, help='what to change, e.g. "also handle None"')
    sp.add_argument("--hunks", help="the hunks the comment is about, e.g. 1,3 (numbers as `pasd diff` shows)")
    sp.add_argument("--wait", "-w", action="store_true", help="wait for the revised proposal and show progress")


def cmd_revise(args: argparse.Namespace) -> int:
    params = {"task_id": args.task, "comment": args.comment, "hunks": hunk_list(args.hunks)}  # protocol.ReviseParams
    if not args.wait:
        with rpc.Connection() as conn:
            task = send_with_keys(conn, "task.revise", params)
        out(args, task, f"revision {task['revision']} of {task['id']} queued")
        return 0
    with rpc.Events(["task", "progress"]) as events:  # before asking: no event missed
        with rpc.Connection() as conn:
            task = send_with_keys(conn, "task.revise", params)
        if not args.json:
            print(f"revision {task['revision']} of {task['id']} queued; waiting…", file=sys.stderr)
        task = follow(events, task, quiet=args.json)
    if task["reason"] and task["reason"].startswith("revision_"):
        out(args, task, f"task {task['id']} {task['state']}: the previous proposal is still in review")
        print(f"pasd: {task['error']}", file=sys.stderr)
        return 1
    out(args, task, f"task {task['id']} {task['state']} (revision {task['revision']}): "
                    f"{plural(task['files_changed'], 'file')}, +{task['lines_added']} -{task['lines_removed']}; "
                    f"`pasd diff {task['id']}` shows it")
    return 0 if task["state"] == TaskState.REVIEW else 1
