"""An approve is all or nothing: a crash or an I/O error between its files never leaves them mixed."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.client import PasClient
from daemon.errors import DaemonUnavailable, InvalidState
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, block, commit_all, paused, write_files

OLD = {"a.txt": "alpha\n", "b.txt": "bravo\n", "sub/c.txt": "charlie\n"}
NEW = {"a.txt": "ALPHA\n", "b.txt": "BRAVO\n", "sub/c.txt": "CHARLIE\n"}


def three_files(repo: Path, offline: OfflineModel) -> None:
    write_files(repo, OLD)
    commit_all(repo, "three files")
    offline.script([{"content": "".join(block(f, OLD[f], NEW[f]) for f in OLD)}])


def contents(repo: Path) -> dict[str, str]:
    return {f: (repo / f).read_text() for f in OLD}


def temps(root: Path) -> list[str]:
    return sorted(str(f.relative_to(root)) for f in root.rglob("*pasd-tmp*") if ".git" not in f.parts)


def show(d: DaemonProcess, task_id: str) -> str:
    return subprocess.run([sys.executable, "-m", "daemon", "show", task_id], env=d.env,
                          capture_output=True, text=True, check=True).stdout


async def review_task(c: PasClient, repo: Path) -> p.TaskInfo:
    task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="upper", files=list(OLD)))
    task = await c.wait(task.id)
    assert task.state is p.TaskState.REVIEW, task
    return task


async def crash_while_approving(d: DaemonProcess, repo: Path) -> p.TaskInfo:
    async with d.client() as c:
        task = await review_task(c, repo)
        with pytest.raises(DaemonUnavailable):
            await c.approve(p.ReviewParams(task_id=task.id))
    assert d.proc is not None and d.proc.wait(30) == -signal.SIGKILL
    return task


def restart(d: DaemonProcess) -> None:
    d.env.pop("PASD_CRASH_AT", None)
    d.proc = None
    d.start()


async def test_a_crash_between_files_is_completed_at_restart(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    three_files(repo, offline)
    d = make_daemon(workers=1, env={"PASD_CRASH_AT": "approve.switched"})
    task = await crash_while_approving(d, repo)
    # killed right after the first rename: one file new, two old
    assert contents(repo) == {**OLD, "a.txt": NEW["a.txt"]}
    restart(d)
    assert contents(repo) == NEW and temps(repo) == []
    async with d.client() as c:
        task = await c.get(task.id)
        assert task.state is p.TaskState.APPLIED and task.reason == "approve-interrupted"
        assert "completed when pasd restarted: 3 files written" in (task.error or "")
        assert [h.state for f in (await c.diff(task.id)).files for h in f.hunks] == [p.HunkState.APPLIED] * 3
    assert "approve-interrupted: the approve was interrupted by a stop and completed" in show(d, task.id)


async def test_a_crash_between_files_then_a_user_edit_is_undone_at_restart(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    three_files(repo, offline)
    d = make_daemon(workers=1, env={"PASD_CRASH_AT": "approve.switched"})
    task = await crash_while_approving(d, repo)
    (repo / "sub/c.txt").write_text("charlie (mine)\n")  # before the restart the user saves a file not yet switched
    restart(d)
    # the one file switched is put back; the user's save is kept
    assert contents(repo) == {**OLD, "sub/c.txt": "charlie (mine)\n"} and temps(repo) == []
    async with d.client() as c:
        task = await c.get(task.id)
        assert task.state is p.TaskState.REVIEW and task.reason == "approve-interrupted"
        assert "undone when pasd restarted" in (task.error or "")
        assert "sub/c.txt changed since and was left as it is" in (task.error or "")
    assert "interrupted by a stop and undone when pasd restarted" in show(d, task.id)


async def test_a_crash_while_staging_leaves_no_temp_file_and_no_change(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    three_files(repo, offline)
    d = make_daemon(workers=1, env={"PASD_CRASH_AT": "approve.staging"})
    task = await crash_while_approving(d, repo)
    assert len(temps(repo)) == 1  # killed after staging the first file
    restart(d)
    assert contents(repo) == OLD and temps(repo) == []
    async with d.client() as c:
        task = await c.get(task.id)
        assert task.state is p.TaskState.REVIEW and "before any file was written" in (task.error or "")
        # still approvable, and the note goes once the approve succeeds
        res = await c.approve(p.ReviewParams(task_id=task.id))
        assert res.task.state is p.TaskState.APPLIED and res.task.error is None
    assert contents(repo) == NEW


async def test_an_io_error_on_one_file_while_switching_puts_every_file_back(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    three_files(repo, offline)
    d = make_daemon(workers=1, env={"PASD_PAUSE_AT": "approve.staged"})
    async with d.client() as c:
        task = await review_task(c, repo)
        approving = asyncio.create_task(c.approve(p.ReviewParams(task_id=task.id)))
        held = await paused(d, "approve.staged", approving)
        # staged, about to switch: the last file is replaced by a directory (this fails even as root)
        (repo / "sub/c.txt").unlink()
        (repo / "sub/c.txt").mkdir()
        held.unlink()
        with pytest.raises(InvalidState, match=r"task \w+ was not approved: sub/c.txt: is a directory; "
                                               "every file was put back as it was"):
            await approving
        task = await c.get(task.id)
        assert task.state is p.TaskState.REVIEW and task.reason == "approve-failed"
        assert "sub/c.txt: is a directory" in (task.error or "")
    # a.txt and b.txt had been switched: both are back, byte for byte
    assert {f: (repo / f).read_text() for f in ("a.txt", "b.txt")} == {"a.txt": OLD["a.txt"], "b.txt": OLD["b.txt"]}
    assert (repo / "sub/c.txt").is_dir() and temps(repo) == []
    assert "approve-failed: sub/c.txt: is a directory" in show(d, task.id)


async def test_an_io_error_while_staging_touches_no_file_and_the_task_stays_approvable(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    three_files(repo, offline)
    d = make_daemon(workers=1, env={"PASD_PAUSE_AT": "approve.planned"})
    async with d.client() as c:
        task = await review_task(c, repo)
        approving = asyncio.create_task(c.approve(p.ReviewParams(task_id=task.id)))
        held = await paused(d, "approve.planned", approving)
        # merged, about to stage: the directory of the last file becomes a file
        shutil.rmtree(repo / "sub")
        (repo / "sub").write_text("now a file\n")
        held.unlink()
        with pytest.raises(InvalidState, match="could not stage the new content: not a directory; "
                                               "no file was changed"):
            await approving
        task = await c.get(task.id)
        assert task.state is p.TaskState.REVIEW and task.reason == "approve-failed"
        assert {f: (repo / f).read_text() for f in ("a.txt", "b.txt")} == {"a.txt": OLD["a.txt"], "b.txt": OLD["b.txt"]}
        assert (repo / "sub").read_text() == "now a file\n" and temps(repo) == []
        (repo / "sub").unlink()
        write_files(repo, {"sub/c.txt": OLD["sub/c.txt"]})
        res = await c.approve(p.ReviewParams(task_id=task.id))
        assert res.task.state is p.TaskState.APPLIED and res.task.error is None
    assert contents(repo) == NEW and temps(repo) == []
