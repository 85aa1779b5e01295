"""A repository the user did not write runs none of its own git hooks or commands in pasd's git calls."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, block


def plant(repo: Path, marker: Path) -> None:
    """A post-checkout hook and an fsmonitor command that would each leave a marker file."""
    script = f"#!/bin/sh\necho \"$0\" >> {marker}\n"
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(script)
    monitor = repo / ".git" / "monitor.sh"
    monitor.write_text(script)
    for path in (hook, monitor):
        os.chmod(path, 0o755)
    subprocess.run(["git", "config", "core.fsmonitor", str(monitor)], cwd=repo, check=True)
    # the plants are live: git itself runs them for the user's own commands
    subprocess.run(["git", "checkout", "-q", "-b", "probe"], cwd=repo, check=True)
    subprocess.run(["git", "status", "--short"], cwd=repo, check=True, capture_output=True)
    assert {"post-checkout", "monitor.sh"} <= {Path(line).name for line in marker.read_text().split()}
    marker.unlink()


async def test_a_tasks_git_calls_run_no_hook_or_fsmonitor_of_the_repository(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    plant(repo, marker)
    (repo / "app.py").write_text((repo / "app.py").read_text() + "# uncommitted\n")  # stash create has work
    d = make_daemon(pool={"snapshot": "worktree"}, guardrails={"allow_commands": ["true"]})
    offline.script([{"content": block("app.py", "def add(a, b):\n", "def add(a, b):  # typed\n")}] * 2)
    async with d.client() as c:
        for check in (None, "true"):  # a fresh worktree, then a reused one (reset between tasks)
            task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["app.py"],
                                                 check=check))
            task = await c.wait(task.id)
            assert task.state is p.TaskState.REVIEW, task.error
    assert not marker.exists(), marker.read_text()


async def test_an_uncopyable_untracked_entry_leaves_out_no_other_untracked_file(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    """A nested repository is one untracked entry git lists as a folder ("vendored/"): the untracked
    files a check needs are still in the snapshot, in a fresh worktree and in a reused one."""
    nested = repo / "vendored"
    subprocess.run(["git", "init", "-q", str(nested)], check=True)
    (nested / "lib.py").write_text("x = 1\n")
    (repo / "zz_fixture.txt").write_text("needed by the check\n")  # listed after the folder
    listed = subprocess.run(["git", "ls-files", "--others", "--exclude-standard"], cwd=repo, check=True,
                            capture_output=True, text=True).stdout.split()
    assert listed == ["vendored/", "zz_fixture.txt"]
    check = "test -f zz_fixture.txt"
    d = make_daemon(guardrails={"allow_commands": [check]})
    offline.script([{"content": block("app.py", "def add(a, b):\n", "def add(a, b):  # typed\n")}] * 2)
    async with d.client() as c:
        for round_ in ("fresh worktree", "reused worktree"):  # a check makes the snapshot the slot's worktree
            task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["app.py"],
                                                 check=check))
            done = await c.wait(task.id)
            assert done.state is p.TaskState.REVIEW and not done.warnings, (round_, done.error, done.warnings)
            await c.reject(p.ReviewParams(task_id=task.id))
