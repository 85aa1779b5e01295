"""`pasd submit --wait`: every step of the task shown as it happens, and an exit code that tells a
result worth reviewing from one whose check fails or whose edits were refused."""

from __future__ import annotations

import json
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


def pasd(d: DaemonProcess, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=d.env, cwd=repo, capture_output=True,
                          text=True, timeout=120)


def test_a_flagged_task_says_so_in_tasks_show_and_receipts(make_daemon: DaemonFactory, offline: OfflineModel,
                                                          repo: Path) -> None:
    d = make_daemon(guardrails={"allow_commands": ["sh -c *"], "max_rounds": 0})
    offline.script([{"content": EDIT}])
    r = submit_wait(d, repo, "--check", "sh -c 'exit 3'", "--json")
    assert r.returncode == 1, r.stderr
    task_id = json.loads(r.stdout)["id"]
    assert json.loads(r.stdout)["warnings"] == ["check_failed"]

    rows = {line.split()[0]: line for line in pasd(d, repo, "tasks").stdout.splitlines()}
    assert rows[task_id].split()[1:3] == ["REVIEW", "⚠"]
    assert f"⚠ flagged: {task_id} check failed" in rows["⚠"]

    first = pasd(d, repo, "show", task_id).stdout.splitlines()[0]
    assert first == f"task {task_id}  REVIEW ⚠ flagged: check failed"

    header, row = pasd(d, repo, "receipts").stdout.splitlines()[:2]
    assert header.split()[-5:] == ["READS", "CHECK", "REPAIRS", "HUNKS", "OUTCOME"]
    assert row.split()[-8:] == ["0", "failed", "0", "-/1", "review", "⚠", "check", "failed"]


def test_an_unapplied_edit_fails_the_wait_and_is_named(make_daemon: DaemonFactory, offline: OfflineModel,
                                                       repo: Path) -> None:
    d = make_daemon(guardrails={"max_rounds": 0})
    offline.script([{"content": EDIT + block("app.py", "def nowhere():\n", "def here():\n")}])
    r = submit_wait(d, repo)
    assert r.returncode == 1, r.stderr
    assert "pasd: 1 edit not applied: " in r.stderr and "def nowhere" in r.stderr


def test_receipts_by_model_rates_approved_hunks(make_daemon: DaemonFactory, offline: OfflineModel,
                                                repo: Path) -> None:
    d = make_daemon()
    apart = "def add(a, b):\n    return a + b\n" + "\n" * 10 + "def sub(a, b):\n    return a - b\n"
    (repo / "app.py").write_text(apart)  # two hunks
    offline.script([{"content": EDIT + block("app.py", "def sub(a, b):\n", "def sub(a: int, b: int) -> int:\n")}])
    r = submit_wait(d, repo, "--json")
    assert r.returncode == 0, r.stderr
    task_id = json.loads(r.stdout)["id"]
    assert pasd(d, repo, "approve", task_id, "--hunks", "2").returncode == 0

    r = pasd(d, repo, "receipts", "--by", "model")
    header, row = r.stdout.splitlines()[:2]
    assert header.split()[9:12] == ["APPROVED", "CHECKS", "OK"]
    assert row.split()[0] == "openai/pasd-offline" and row.split()[6:8] == ["50%", "(1/2)"]
    [group] = json.loads(pasd(d, repo, "receipts", "--by", "model", "--json").stdout)["groups"]
    assert (group["approval_rate"], group["approved_tasks"], group["check_pass_rate"]) == (0.5, 1, None)
    [receipt] = json.loads(pasd(d, repo, "receipts", "--task", task_id, "--json").stdout)
    assert (receipt["hunks_approved"], receipt["hunks_proposed"], receipt["outcome"]) == (1, 2, "review")
    assert pasd(d, repo, "reject", task_id).returncode == 0
    [receipt] = json.loads(pasd(d, repo, "receipts", "--task", task_id, "--json").stdout)
    assert receipt["outcome"] == "partial"
