"""The isolated copy a task works in; the user's tree is never written during a task.

`worktree`: a detached git worktree of `git stash create` (HEAD plus uncommitted changes),
with the task's files copied over from the user's tree so untracked files are seen too.
`copy`: a temp dir holding only the task's files (also the fallback outside git).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from daemon.programmer.proc import GitError, git


@dataclass
class Snapshot:
    root: Path  # the workspace root inside the snapshot
    base: dict[str, str | None] = field(default_factory=dict)  # task file -> content at start (None: absent)
    dir: Path | None = None  # what to delete
    repo: Path | None = None  # set for git worktrees

    async def remove(self) -> None:
        if self.dir is None:
            return
        if self.repo is not None:
            with contextlib.suppress(GitError, OSError):
                await git(self.repo, "worktree", "remove", "--force", str(self.dir))
        await asyncio.to_thread(shutil.rmtree, self.dir, True)
        if self.repo is not None:
            with contextlib.suppress(GitError, OSError):
                await git(self.repo, "worktree", "prune")
        self.dir = None


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path.name} is not UTF-8 text") from exc


async def _git_toplevel(workspace: Path) -> Path | None:
    try:
        out = await git(workspace, "rev-parse", "--show-toplevel")
    except (GitError, OSError):
        return None
    return Path(out.strip())


async def create(workspace: Path, files: list[str], dest_parent: Path, name: str,
                 mode: str = "worktree") -> Snapshot:
    """Make the task's snapshot under dest_parent/name; files are workspace-relative."""
    dest_parent.mkdir(parents=True, exist_ok=True)
    top = await _git_toplevel(workspace) if mode == "worktree" else None
    snap: Snapshot | None = None
    if top is not None:
        snap = await _worktree(workspace, top, dest_parent / name)
    if snap is None:
        tmp = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=dest_parent))
        snap = Snapshot(root=tmp, dir=tmp)
    try:
        for rel in files:
            content = await asyncio.to_thread(_read, workspace / rel)
            snap.base[rel] = content
            target = snap.root / rel
            if content is None:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                continue
            await asyncio.to_thread(_copy_files, workspace, snap.root, [rel])
    except BaseException:
        await snap.remove()
        raise
    return snap


async def _worktree(workspace: Path, top: Path, dest: Path) -> Snapshot | None:
    try:
        commit = (await git(top, "stash", "create")).strip()
        if not commit:
            commit = (await git(top, "rev-parse", "--verify", "HEAD")).strip()
    except GitError:
        return None  # a repository without commits: fall back to a copy
    if dest.exists():
        await asyncio.to_thread(shutil.rmtree, dest, True)
        with contextlib.suppress(GitError):
            await git(top, "worktree", "prune")
    await git(top, "worktree", "add", "--detach", "--quiet", str(dest), commit)
    # `git stash create` leaves out untracked files; a check command may need them
    untracked = (await git(top, "ls-files", "--others", "--exclude-standard", "-z")).split("\0")
    with contextlib.suppress(OSError):
        await asyncio.to_thread(_copy_files, top, dest, [u for u in untracked if u])
    rel = workspace.resolve().relative_to(top.resolve())
    return Snapshot(root=dest / rel, dir=dest, repo=top)


def _copy_files(src: Path, dest: Path, rels: list[str]) -> None:
    """Copy files as they are; a symlink is copied as a link, never written through."""
    for rel in rels:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        shutil.copy2(src / rel, target, follow_symlinks=False)


async def clean_stale(worktrees_dir: Path) -> int:
    """Remove snapshots a killed daemon left behind; returns how many."""
    if not worktrees_dir.is_dir():
        return 0
    count = 0
    for entry in worktrees_dir.iterdir():
        repo: Path | None = None
        gitfile = entry / ".git"
        if gitfile.is_file():
            text = gitfile.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                # <repo>/.git/worktrees/<name> -> <repo>/.git
                repo = Path(text.split(":", 1)[1].strip()).parent.parent
        await asyncio.to_thread(shutil.rmtree, entry, True)
        if repo is not None and repo.exists():
            with contextlib.suppress(GitError, OSError):
                await git(repo, "worktree", "prune")
        count += 1
    return count
