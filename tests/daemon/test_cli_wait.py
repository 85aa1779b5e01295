"""`pasd submit --wait`: every step of the task shown as it happens, and an exit code that tells a
result worth reviewing from one whose check fails or whose edits were refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, block

EDIT = block("app.py", "def add(a, b):\n", "def add(a: int, b: int) -> int:\n")


def submit_wait(d: DaemonProcess, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", "submit", "type add", "--file", "app.py", "--wait", *args],
                          env=d.env, cwd=repo, capture_output=True, text=True, timeout=120)


def test_wait_shows_every_step_from_queued_and_exits_0_for_a_good_result(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(guardrails={"allow_commands": ["sh -c *"]})
    offline.script([{"content": EDIT}])
    r = submit_wait(d, repo, "--check", "sh -c 'exit 0'")
    assert r.returncode == 0, r.stderr
    steps = [line.split()[1:] for line in r.stderr.splitlines() if line.startswith("  ")]
    phases = [s[1] if s[0].startswith("Programmer-") else s[0] for s in steps]
    # subscribed before submitting: the first events of the task are there too, in order
    assert phases[:2] == ["queued:", "running:"] and "model:" in phases and "check:" in phases, r.stderr
    assert any(s[0].startswith("Programmer-0") for s in steps)
    assert "REVIEW" in r.stdout


def test_wait_exits_1_when_the_check_still_fails(make_daemon: DaemonFactory, offline: OfflineModel,
                                                 repo: Path) -> None:
    d = make_daemon(guardrails={"allow_commands": ["sh -c *"], "max_rounds": 0})
    offline.script([{"content": EDIT}])
    r = submit_wait(d, repo, "--check", "sh -c 'exit 3'")
    assert r.returncode == 1, r.stderr
    assert "REVIEW" in r.stdout  # the diff is kept for review, but the exit code says it is not good
    assert "the check still fails after 1 run: sh -c 'exit 3'" in r.stderr


def test_wait_exits_1_when_an_edit_was_refused(make_daemon: DaemonFactory, offline: OfflineModel,
                                               repo: Path) -> None:
    d = make_daemon(guardrails={"max_rounds": 0})
    offline.script([{"content": EDIT + block("util.py", "def mul(a, b):\n", "def mul(a, b):  # x\n")}])
    r = submit_wait(d, repo)
    assert r.returncode == 1, r.stderr
    assert "1 edit refused: util.py (not one of the task's files)" in r.stderr
