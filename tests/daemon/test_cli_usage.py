"""The `pasd` command as a new user meets it: usage errors, pipes, short ids, wording, versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from daemon.testing import DaemonProcess


def pasd(d: DaemonProcess, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=d.env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


BAD_VALUES = [
    (["submit", "x", "-f", "app.py", "--timeout", "-5"], "--timeout", "above 0 to 604800"),
    (["submit", "x", "-f", "app.py", "--timeout", "0"], "--timeout", "above 0 to 604800"),
    (["submit", "x", "-f", "app.py", "--budget", "-1"], "--budget", "from 0 to 1000000"),
    (["submit", "x", "-f", "app.py", "--priority", "99999999"], "--priority", "whole number"),
    (["submit", "x", "-f", "app.py", "--range", "50:10"], "--range", "START <= END"),
    (["submit", "x", "-f", "app.py", "--range", "a:b"], "--range", "START:END"),
    (["submit", "x", "--range", "1:2"], "--range needs --file", ""),
    (["job", "x", "--files", "app.py", "--budget", "-2"], "--budget", "from 0 to 1000000"),
    (["job", "x", "--files", "app.py", "--task-budget", "nan"], "--task-budget", "a number"),
    (["tasks", "--limit", "0"], "--limit", "from 1 to 10000"),
    (["tasks", "--state", "done"], "--state", "queued, running, review"),
    (["receipts", "--limit", "0"], "--limit", "from 1 to 100000"),
    (["jobs", "--limit", "-1"], "--limit", "from 1 to 10000"),
]


def test_bad_values_are_one_line_usage_errors_and_nothing_is_sent(daemon: DaemonProcess, repo: Path) -> None:
    for argv, flag, accepts in BAD_VALUES:
        r = pasd(daemon, *argv, cwd=repo)
        assert r.returncode == 2 and r.stdout == "", (argv, r)
        [line] = r.stderr.splitlines()  # no traceback, no usage block
        assert line.startswith(f"pasd {argv[0]}: ") and flag in line and accepts in line, (argv, line)
    assert json.loads(pasd(daemon, "tasks", "--json").stdout) == []
    assert json.loads(pasd(daemon, "jobs", "--json").stdout) == []


def test_help_names_each_state_once_and_explains_limit(daemon: DaemonProcess) -> None:
    text = pasd(daemon, "tasks", "--help").stdout
    assert text.count("review") == 1 and "REVIEW" not in text
    assert "at most this many tasks" in text
