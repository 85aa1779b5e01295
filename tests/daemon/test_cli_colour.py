"""Colour in a terminal only: states and diff lines are coloured on a tty, never in a pipe, with
NO_COLOR, or in --json."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from daemon.testing import DaemonProcess

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def on_tty(d: DaemonProcess, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `pasd ARGS` with its stdout on a pseudo-terminal, as in an interactive shell."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "daemon", *args], env={**d.env, "TERM": "xterm", **(env or {})},
                                stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the command closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    finally:
        os.close(master)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def piped(d: DaemonProcess, *args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "daemon", *args], env={**d.env, "TERM": "xterm"},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_colour_on_a_terminal_only(daemon: DaemonProcess, repo: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "daemon", "submit", "add a docstring", "--file", "app.py", "--wait",
                        "--json"], env=daemon.env, cwd=repo, capture_output=True, text=True, timeout=120)
    task_id = json.loads(r.stdout)["id"]

    listing = on_tty(daemon, "tasks")
    assert "\x1b[33mREVIEW\x1b[0m" in listing, listing
    diff = on_tty(daemon, "diff", task_id)
    assert "\x1b[32m+# pas: add a docstring\x1b[0m" in diff and "\x1b[36m@@ " in diff, diff
    shown = on_tty(daemon, "show", task_id)
    assert "\x1b[33mREVIEW\x1b[0m" in shown and "[\x1b[33mpending\x1b[0m]" in shown
    # the same text and alignment as in a pipe, once the codes are taken out
    assert ANSI.sub("", shown) == piped(daemon, "show", task_id)
    status = on_tty(daemon, "status")
    assert ANSI.sub("", status) == piped(daemon, "status")

    for argv in (["tasks"], ["diff", task_id], ["show", task_id], ["status"]):
        assert "\x1b[" not in on_tty(daemon, *argv, env={"NO_COLOR": "1"}), argv
        assert "\x1b[" not in piped(daemon, *argv), argv
    for argv in (["tasks", "--json"], ["diff", task_id, "--json"], ["show", task_id, "--json"]):
        assert "\x1b[" not in on_tty(daemon, *argv), argv
