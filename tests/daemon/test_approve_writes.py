"""Approve writes only inside the workspace: no link is followed, temp files are exclusive."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.client import PasClient
from daemon.errors import InvalidState
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, block, commit_all, paused


async def review_task(c: PasClient, repo: Path, files: list[str]) -> p.TaskInfo:
    task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="edit", files=files))
    task = await c.wait(task.id)
    assert task.state is p.TaskState.REVIEW, task
    return task


def temps(root: Path) -> list[str]:
    return sorted(str(f.relative_to(root)) for f in root.rglob("*pasd-tmp*") if ".git" not in f.parts)


async def test_a_committed_link_at_the_old_temp_name_cannot_redirect_the_write(
        daemon: DaemonProcess, offline: OfflineModel, repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours\n")
    (repo / ".app.py.pasd-tmp").symlink_to(outside)
    commit_all(repo, "a link where the daemon once put its temp file")
    offline.script([{"content": block("app.py", "    return a + b\n", "    return b + a\n")}])
    async with daemon.client() as c:
        task = await review_task(c, repo, ["app.py"])
        res = await c.approve(p.ReviewParams(task_id=task.id))
        assert res.task.state is p.TaskState.APPLIED
    assert outside.read_text() == "not yours\n"
    assert not (repo / "app.py").is_symlink()
    assert "return b + a" in (repo / "app.py").read_text()
    assert os.readlink(repo / ".app.py.pasd-tmp") == str(outside)  # the committed link is left alone
    assert temps(repo) == [".app.py.pasd-tmp"]


async def test_a_target_that_is_a_link_is_refused_and_left_alone(
        daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    offline.script([{"content": block("app.py", "    return a + b\n", "    return b + a\n")}])
    async with daemon.client() as c:
        task = await review_task(c, repo, ["app.py"])
        # the file turns into a link to another file of the workspace, with the very same text
        (repo / "same.py").write_bytes((repo / "app.py").read_bytes())
        (repo / "app.py").unlink()
        (repo / "app.py").symlink_to("same.py")
        res = await c.approve(p.ReviewParams(task_id=task.id))
        assert res.task.state is p.TaskState.CONFLICT and res.applied == []
        assert [cf.reason for cf in res.conflicts] == ["refused: app.py is a symbolic link"]
    assert os.readlink(repo / "app.py") == "same.py"
    assert "return a + b" in (repo / "same.py").read_text()
    assert temps(repo) == []


async def test_a_directory_swapped_for_a_link_during_the_approve_is_not_followed(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path, tmp_path: Path) -> None:
    (repo / "pkg").mkdir()
    original = "def f():\n    return 1\n"
    (repo / "pkg" / "mod.py").write_text(original)
    commit_all(repo, "pkg")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "mod.py").write_text(original)
    offline.script([{"content": block("pkg/mod.py", "    return 1\n", "    return 2\n")}])
    d = make_daemon(workers=1, env={"PASD_PAUSE_AT": "approve.staged"})
    async with d.client() as c:
        task = await review_task(c, repo, ["pkg/mod.py"])
        approving = asyncio.create_task(c.approve(p.ReviewParams(task_id=task.id)))
        held = await paused(d, "approve.staged", approving)
        # staged and ready to switch: now pkg/ becomes a link to a directory outside the workspace
        (repo / "pkg").rename(repo / "pkg.orig")
        (repo / "pkg").symlink_to(outside)
        held.unlink()
        with pytest.raises(InvalidState, match=r"pkg/mod\.py: its directory was moved or replaced"):
            await approving
        task = await c.get(task.id)
        assert task.state is p.TaskState.REVIEW and task.reason == "approve-failed"
    assert (outside / "mod.py").read_text() == original
    assert (repo / "pkg.orig" / "mod.py").read_text() == original
    assert temps(repo) == [] and sorted(os.listdir(outside)) == ["mod.py"]


async def test_new_files_get_the_users_default_mode_and_replaced_files_keep_theirs(
        daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    os.chmod(repo / "util.py", 0o750)
    offline.script([{"content": block("util.py", "    return a * b\n", "    return b * a\n")
                     + block("docs/new/notes.txt", "", "notes\n")}])
    async with daemon.client() as c:
        task = await review_task(c, repo, ["util.py", "docs/new/notes.txt"])
        assert (await c.approve(p.ReviewParams(task_id=task.id))).task.state is p.TaskState.APPLIED
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((repo / "docs/new/notes.txt").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((repo / "docs/new").stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((repo / "util.py").stat().st_mode) == 0o750
    assert (repo / "docs/new/notes.txt").read_text() == "notes\n" and "b * a" in (repo / "util.py").read_text()
    assert temps(repo) == []
