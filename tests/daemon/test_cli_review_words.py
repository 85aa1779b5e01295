"""What `pasd show`, `pasd job diff` and `pasd jobs` say after a review, and the help's wording."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, block, commit_all, write_files


def pasd(d: DaemonProcess, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=d.env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def hunk_lines(text: str) -> dict[int, str]:
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^  hunk (\d+): long\.txt @@.*@@ \[(\w+)\]$", text, re.M)}


def test_show_lists_every_hunks_fate_after_a_partial_review(daemon: DaemonProcess, offline: OfflineModel,
                                                            repo: Path) -> None:
    write_files(repo, {"long.txt": "".join(f"line {i}\n" for i in range(1, 61))})
    commit_all(repo, "long file")
    offline.script([{"content": block("long.txt", "line 3\n", "line three\n")
                     + block("long.txt", "line 30\n", "line thirty\n")
                     + block("long.txt", "line 55\n", "line fifty-five\n")}])
    r = pasd(daemon, "submit", "spell numbers", "--file", "long.txt", "--wait", "--json", cwd=repo)
    task_id = json.loads(r.stdout)["id"]

    assert pasd(daemon, "approve", task_id, "--hunks", "1").returncode == 0
    shown = pasd(daemon, "show", task_id).stdout
    assert hunk_lines(shown) == {1: "applied", 2: "pending", 3: "pending"}, shown
    assert "  hunks: 1 applied, 2 pending" in shown.splitlines()

    assert pasd(daemon, "reject", task_id, "--hunks", "2").returncode == 0
    assert pasd(daemon, "approve", task_id, "--hunks", "3").returncode == 0
    shown = pasd(daemon, "show", task_id).stdout
    assert shown.startswith(f"task {task_id}  APPLIED")
    assert hunk_lines(shown) == {1: "applied", 2: "rejected", 3: "applied"}, shown
    assert "  hunks: 2 applied, 1 rejected" in shown.splitlines()


def test_job_diff_numbers_hunks_and_jobs_says_what_it_counts(daemon: DaemonProcess, repo: Path) -> None:
    r = pasd(daemon, "job", "note it", "--files", "app.py", "util.py", "--wait", "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    text = pasd(daemon, "job", "diff", job["id"]).stdout
    tasks = [line for line in text.splitlines() if line.startswith("# task ")]
    headers = [line for line in text.splitlines() if line.startswith("@@ ")]
    assert len(tasks) == 2 and len(headers) == 2 and all(h.endswith(" @@ hunk 1") for h in headers), text
    # the same numbers `pasd diff TASK` shows, which `pasd approve TASK --hunks` takes
    for task_id in job["task_ids"]:
        [own] = [line for line in pasd(daemon, "diff", task_id).stdout.splitlines() if line.startswith("@@ ")]
        assert own in headers

    listing = pasd(daemon, "jobs").stdout.splitlines()
    assert listing[0].split()[5] == "DONE/TASKS"
    assert listing[1].split()[0] == job["id"] and " 2/2 " in listing[1]


def test_help_explains_every_limit_and_each_state_once(daemon: DaemonProcess) -> None:
    for command, what in (("tasks", "tasks"), ("receipts", "receipts"), ("jobs", "jobs")):
        text = " ".join(pasd(daemon, command, "--help").stdout.split())
        assert f"--limit LIMIT at most this many {what}, newest first" in text, text
    text = pasd(daemon, "tasks", "--help").stdout
    for state in ("queued", "running", "review", "applied", "rejected", "conflict", "failed", "cancelled"):
        assert len(re.findall(rf"\b{state}\b", text)) == 1, (state, text)
