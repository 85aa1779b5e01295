"""The isolated copy a task works in; the user's tree is never written during a task.

`worktree`: a detached git worktree of `git stash create` (HEAD plus uncommitted changes),
with the task's files copied over from the user's tree so untracked files are seen too.
`reuse`: the same tree, but each programmer keeps one worktree per repository and resets it
(checkout + clean) between tasks instead of adding and removing one: no cost that grows with
the size of the checkout beyond git's stat of it.
`copy`: a temp dir holding only the task's files (also the fallback outside git); the
cheapest by far, but a check command needs the whole tree, so a task with one gets `reuse`.
The native engine needs no tree at all for a task without a check: it edits the files' text in
memory (`in_memory`), with nothing written until the user approves. External engines' tools
work in a real directory, so they get the copy.
`auto` (the default): `copy` for tasks without a check command, `reuse` for the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from daemon.programmer.guard import resolved_inside
from daemon.programmer.proc import GitError, git


@dataclass
class Snapshot:
    root: Path | None  # the workspace root inside the snapshot; None: the files are held in memory only
    base: dict[str, str | None] = field(default_factory=dict)  # task file -> content at start (None: absent)
    dir: Path | None = None  # what to delete
    repo: Path | None = None  # set for git worktrees

    async def remove(self) -> None:
        if self.dir is None:
            return
        removed = False
        if self.repo is not None:
            with contextlib.suppress(GitError, OSError):
                await git(self.repo, "worktree", "remove", "--force", str(self.dir))
                removed = True
        if not removed:
            await asyncio.to_thread(shutil.rmtree, self.dir, True)
            if self.repo is not None:
                with contextlib.suppress(GitError, OSError):
                    await git(self.repo, "worktree", "prune")
        self.dir = None


LEAVES = "is a symlink that leaves the workspace"
MAX_FILE_BYTES = 4 * 2**20
"""The largest file a task may read or change: a bigger one fits no model's context, and reading it
would only cost the daemon time and memory."""


class UnusableFile(ValueError):
    """A task's file that pasd cannot work on: not UTF-8 text, too big, or not a regular file."""

    def __init__(self, path: str, why: str = "is not UTF-8 text", reason: str = "binary_file") -> None:
        super().__init__(f"{path} {why}")
        self.path = path
        self.why = why
        self.reason = reason


def read_text(root: Path, rel: str) -> str | None:
    """The text of `rel` under `root` (None if absent); UnusableFile if pasd cannot work on it.

    A link within the root is read through (as at submit); one that leads out of it is refused, so a
    file turned into a link to, say, a key after its task was submitted is never read, let alone sent.
    """
    path = resolved_inside(root, rel)
    if path is None:
        raise UnusableFile(rel, LEAVES, "unusable_file")
    try:
        # O_NOFOLLOW: a link put there since the resolve is refused, not followed; O_NONBLOCK: a FIFO
        # must not hang the read
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise UnusableFile(rel, LEAVES, "unusable_file") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnusableFile(rel, "is not a regular file", "unusable_file")
        if st.st_size > MAX_FILE_BYTES:
            raise UnusableFile(rel, f"has {st.st_size:,} bytes; a task's file may have {MAX_FILE_BYTES:,} at most",
                               "file_too_large")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnusableFile(rel) from None


async def _git_toplevel(workspace: Path) -> Path | None:
    try:
        out = await git(workspace, "rev-parse", "--show-toplevel")
    except (GitError, OSError):
        return None
    return Path(out.strip())


def effective_mode(mode: str, has_check: bool) -> str:
    """The strategy a task gets: a files-only copy cannot run a check command."""
    if mode == "auto":
        return "reuse" if has_check else "copy"
    if mode == "copy" and has_check:
        return "reuse"
    return mode


async def create(workspace: Path, files: list[str], dest_parent: Path, name: str,
                 mode: str = "worktree", *, slot: str | None = None) -> Snapshot:
    """Make the task's snapshot under dest_parent; files are workspace-relative.

    `name` is unique per attempt; `slot` (the programmer) names the worktree `reuse` keeps.
    """
    dest_parent.mkdir(parents=True, exist_ok=True)
    top = await _git_toplevel(workspace) if mode in ("worktree", "reuse") else None
    snap: Snapshot | None = None
    if top is not None and mode == "reuse" and slot:
        key = hashlib.sha1(str(top.resolve()).encode()).hexdigest()[:10]
        snap = await _reused(workspace, top, dest_parent / f"{slot}-{key}")
    elif top is not None:
        snap = await _worktree(workspace, top, dest_parent / name)
    if snap is None:
        tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f"{name}-", dir=dest_parent))
        snap = Snapshot(root=tmp, dir=tmp)
    root = snap.root
    assert root is not None
    try:
        # one thread hop for all the files: under a busy pool each hop costs more than a small copy
        snap.base.update(await asyncio.to_thread(_fill, workspace, root, files))
    except BaseException:
        await snap.remove()
        raise
    return snap


async def _base(top: Path) -> tuple[str, list[str]] | None:
    """The commit holding HEAD plus uncommitted changes, and the untracked files."""
    async def commit() -> str:
        made = (await git(top, "stash", "create")).strip()
        return made or (await git(top, "rev-parse", "--verify", "HEAD")).strip()

    try:
        made, others = await asyncio.gather(commit(), git(top, "ls-files", "--others", "--exclude-standard", "-z"))
    except GitError:
        return None  # a repository without commits: fall back to a copy
    return made, [u for u in others.split("\0") if u]


async def _reused(workspace: Path, top: Path, dest: Path) -> Snapshot | None:
    """The programmer's own worktree of this repository, reset to the user's tree."""
    base = await _base(top)
    if base is None:
        return None
    commit, untracked = base
    fresh = True
    if (dest / ".git").is_file():
        try:
            await git(dest, "checkout", "--force", "--detach", "--quiet", commit)
            await git(dest, "clean", "-fdxq")  # the last task's edits and untracked copies
            fresh = False
        except GitError:
            pass  # e.g. a lock left by a cancelled task: start this slot again
    if fresh:
        await _add_worktree(top, dest, commit)
    await asyncio.to_thread(_copy_untracked, top, dest, untracked)
    rel = workspace.resolve().relative_to(top.resolve())
    return Snapshot(root=dest / rel, repo=top)  # no dir: kept for the programmer's next task


async def _add_worktree(top: Path, dest: Path, commit: str) -> None:
    if dest.exists():
        await asyncio.to_thread(shutil.rmtree, dest, True)
        with contextlib.suppress(GitError):
            await git(top, "worktree", "prune")
    await git(top, "worktree", "add", "--detach", "--quiet", str(dest), commit)


async def _worktree(workspace: Path, top: Path, dest: Path) -> Snapshot | None:
    base = await _base(top)
    if base is None:
        return None
    commit, untracked = base
    await _add_worktree(top, dest, commit)
    # `git stash create` leaves out untracked files; a check command may need them
    await asyncio.to_thread(_copy_untracked, top, dest, untracked)
    rel = workspace.resolve().relative_to(top.resolve())
    return Snapshot(root=dest / rel, dir=dest, repo=top)


async def in_memory(workspace: Path, files: list[str]) -> Snapshot:
    """The task's files as they are in the user's tree, read and held in memory: no directory."""
    # one thread hop for all the files: under a busy pool each hop costs more than a small read
    return Snapshot(root=None, base=await asyncio.to_thread(_read_all, workspace, files))


def _read_all(workspace: Path, files: list[str]) -> dict[str, str | None]:
    return {rel: read_text(workspace, rel) for rel in files}


def _fill(workspace: Path, root: Path, files: list[str]) -> dict[str, str | None]:
    """Copy the task's files from the user's tree into the snapshot; their contents (None: absent)."""
    base: dict[str, str | None] = {}
    for rel in files:
        content = base[rel] = read_text(workspace, rel)
        if content is None:
            with contextlib.suppress(FileNotFoundError):
                (root / rel).unlink()
        else:
            _copy_files(workspace, root, [rel])
    return base


def _copy_untracked(src: Path, dest: Path, rels: list[str]) -> None:
    """Copy the untracked files a check may need; one that cannot be copied (gone meanwhile, a
    nested repository's folder) is left out without leaving out the ones after it."""
    for rel in rels:
        with contextlib.suppress(OSError):
            _copy_files(src, dest, [rel])


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
