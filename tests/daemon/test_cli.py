"""The `pasd` command as a user runs it: output, --json, exit codes."""

from __future__ import annotations

import json
import os
import re
import select
import stat
import subprocess
import sys
from pathlib import Path

from daemon.testing import DaemonProcess


def pasd(d: DaemonProcess, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=d.env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_submit_wait_review_approve_receipts(daemon: DaemonProcess, repo: Path) -> None:
    r = pasd(daemon, "submit", "add a docstring", "--file", "app.py", "--range", "1:2", "--wait", "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    task = json.loads(r.stdout)
    assert task["state"] == "REVIEW" and task["files"] == ["app.py"]

    r = pasd(daemon, "status", "--json")
    assert [pr["state"] for pr in json.loads(r.stdout)["programmers"]] == ["IDLE"] * 4

    r = pasd(daemon, "tasks")
    assert task["id"] in r.stdout and "REVIEW" in r.stdout

    r = pasd(daemon, "diff", task["id"][:4])
    assert r.returncode == 0 and "+# pas: add a docstring" in r.stdout

    r = pasd(daemon, "show", task["id"])
    assert "hunk 1: app.py" in r.stdout

    r = pasd(daemon, "approve", task["id"])
    assert r.returncode == 0 and "APPLIED" in r.stdout
    assert (repo / "app.py").read_text().startswith("# pas: add a docstring\n")

    r = pasd(daemon, "receipts", "--json")
    [receipt] = json.loads(r.stdout)
    assert receipt["task_id"] == task["id"] and receipt["tokens"]["input"] > 0
    assert pasd(daemon, "receipts").stdout.splitlines()[0].split()[:3] == ["TASK", "TRY", "MODEL"]


def test_errors_exit_1_with_one_line(daemon: DaemonProcess, repo: Path) -> None:
    r = pasd(daemon, "show", "nosuch")
    assert r.returncode == 1 and r.stderr.strip() == "pasd: no task 'nosuch'"
    r = pasd(daemon, "submit", "x", "--file", "app.py", "--model", "anthropic/claude-sonnet-4-5", cwd=repo)
    assert r.returncode == 1 and "ANTHROPIC_API_KEY" in r.stderr
    r = pasd(daemon, "submit", "x", "--file", "app.py", "--model", "nope/model", cwd=repo)
    assert r.returncode == 1 and "unknown model" in r.stderr
    r = pasd(daemon, "submit", "x", "--file", "/etc/passwd", cwd=repo)
    assert r.returncode == 1 and "outside the workspace" in r.stderr
    r = pasd(daemon, "submit", "x", "--file", "app.py", "--range", "a:b", cwd=repo)
    assert r.returncode == 2 and "--range" in r.stderr  # a usage error
    r = pasd(daemon, "approve", "nosuch", "--hunks", "x")
    assert r.returncode == 1 and "--hunks" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2(daemon: DaemonProcess) -> None:
    assert pasd(daemon, "frobnicate").returncode == 2
    assert pasd(daemon, "submit").returncode == 2


def test_not_running(daemon: DaemonProcess) -> None:
    daemon.stop()
    r = pasd(daemon, "status")
    assert r.returncode == 1 and "the daemon is not running" in r.stderr and "pasd start" in r.stderr
    assert pasd(daemon, "stop").returncode == 0


def test_start_twice_at_once_runs_one_daemon(daemon: DaemonProcess) -> None:
    daemon.stop()
    cmd = [sys.executable, "-m", "daemon", "start", "--workers", "2"]
    procs = [subprocess.Popen(cmd, env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [pr.communicate(timeout=60) for pr in procs]
    assert [pr.returncode for pr in procs] == [0, 0], outs
    text = "".join(o for o, _ in outs)
    assert text.count("pasd started") == 1 and text.count("already running") == 1, outs
    status = json.loads(pasd(daemon, "status", "--json").stdout)
    assert len(status["programmers"]) == 2
    # the daemon left the starting terminal: its own session, its output in the log
    pid = int(re.search(r"pasd started \(pid (\d+)\)", text).group(1))  # type: ignore[union-attr]
    assert os.getsid(pid) == pid
    log = daemon.state_dir / "logs" / "pasd.log"
    assert "with 2 programmers" in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600  # the log names workspaces, files and tasks
    r = pasd(daemon, "stop")
    assert r.returncode == 0 and "stopped" in r.stdout
    assert not daemon.answers()


def test_start_leaves_the_callers_pipes_alone(daemon: DaemonProcess) -> None:
    """A caller reading a pipe it gave `pasd start` reaches its end once the command is done."""
    daemon.stop()
    r, w = os.pipe()
    try:
        proc = subprocess.run([sys.executable, "-m", "daemon", "start", "--workers", "1"], env=daemon.env,
                              pass_fds=(w,), capture_output=True, text=True, timeout=60)
        os.close(w)
        assert proc.returncode == 0, proc.stderr
        assert daemon.answers()
        assert select.select([r], [], [], 10)[0] == [r] and os.read(r, 1) == b""
    finally:
        os.close(r)
        pasd(daemon, "stop")
