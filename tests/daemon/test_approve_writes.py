"""Approve writes only inside the workspace: no link is followed, temp files are exclusive."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from daemon import protocol as p
from daemon.client import PasClient
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, commit_all


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n```\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"


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
