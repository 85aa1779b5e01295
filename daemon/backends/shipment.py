"""A workspace as it is now, packed to travel to another node and unpacked there.

When the engine will snapshot a git tree (a `worktree` or `reuse` snapshot: a task with a check
command, by default), the workspace travels as the commit the local snapshot would use (`git
stash create`, else HEAD) in an incremental `git bundle` against commits the node already has,
plus the task's files as they are now and, when a check or an allowlist may read them, the
untracked files. The node fetches the bundle into a bare mirror of its own and checks the
commit out. Otherwise (a `copy` snapshot, or no git) the task's files travel as contents.
Either way the node gets a directory the engine can take as the workspace, so `run_task` runs
unchanged. No Ray here: the backend moves a Shipment through the object store.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import fnmatch
import hashlib
import os
import secrets
import shutil
import socket
import stat
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict

from daemon.programmer.proc import GitError, git
from daemon.programmer.snapshot import effective_mode
from daemon.programmer.spec import TaskFailed, TaskSpec

MAX_BYTES = 256 * 2**20  # files beyond the bundle; a workspace past this is refused, not truncated


class FileData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: bytes | None = None  # None (and no link): the file does not exist
    link: str | None = None  # a symlink's target; links travel as links, never followed
    executable: bool = False


class Shipment(BaseModel):
    """What a node needs to rebuild the workspace; `repo` None means files only."""

    model_config = ConfigDict(extra="forbid")

    repo: str | None = None  # the node's mirror for this repository
    commit: str | None = None
    ref: str | None = None  # the bundle's ref
    bundle: bytes | None = None  # None: the node already has the commit
    subdir: str = ""  # the workspace inside the repository
    files: dict[str, FileData] = {}  # workspace-relative
    untracked: dict[str, FileData] = {}  # relative to the repository's top level

    @property
    def size(self) -> int:
        return len(self.bundle or b"") + sum(len(f.data or b"") for f in (*self.files.values(),
                                                                            *self.untracked.values()))


class NeedsFullBundle(Exception):
    """The node lacks the commits the bundle builds on (a new node, or its mirror was wiped)."""


# ---------------------------------------------------------------- the daemon's side


class Packer:
    """The daemon's side: packs workspaces, remembering where each one's repository is."""

    def __init__(self, shadow_dir: Path) -> None:
        self.shadow_dir = shadow_dir
        self._repos: dict[Path, tuple[Path, str]] = {}  # workspace -> (top level, git common dir)

    async def pack(self, spec: TaskSpec, known: Mapping[str, Sequence[str]]) -> Shipment:
        """The task's workspace as a Shipment; `known` maps a mirror to commits the node has."""
        workspace = Path(spec.workspace)
        files = {rel: await asyncio.to_thread(read_file, workspace / rel) for rel in spec.files}
        tree = effective_mode(spec.snapshot, bool(spec.check)) in ("worktree", "reuse")
        found = await self._repo(workspace) if tree or spec.allow_files else None
        commit = await _commit(found[0]) if found is not None and tree else None
        if found is None or commit is None:
            extra = await self._allowed(workspace, found is not None, spec.allow_files)
            ship = Shipment(files={**extra, **files})
        else:
            top, common = found
            repo = hashlib.sha256(f"{socket.gethostname()}:{common}".encode()).hexdigest()[:16]
            untracked: dict[str, FileData] = {}
            if spec.check or spec.allow_files:  # only a check or an allowlisted edit reads beyond the task's files
                names = (await git(top, "ls-files", "--others", "--exclude-standard", "-z")).split("\0")
                untracked = {n: await asyncio.to_thread(read_file, top / n) for n in names if n}
            bases = list(known.get(repo, ()))
            bundle, ref = (None, None) if commit in bases else await _bundle(
                common, self.shadow_dir / f"{repo}.git", commit, bases)
            subdir = workspace.resolve().relative_to(top.resolve()).as_posix()
            ship = Shipment(repo=repo, commit=commit, ref=ref, bundle=bundle, files=files, untracked=untracked,
                            subdir="" if subdir == "." else subdir)
        if ship.size > MAX_BYTES:
            raise TaskFailed("too_big", f"the workspace is {ship.size // 2**20} MiB to ship to a node, past the "
                                        f"{MAX_BYTES // 2**20} MiB limit: commit or ignore large untracked files")
        return ship

    async def _allowed(self, workspace: Path, in_git: bool, patterns: list[str]) -> dict[str, FileData]:
        """Files an allowlist glob admits (matched as the guard does): the engine may read them."""
        if not patterns:
            return {}
        if in_git:  # what git lists, rather than a walk through build output and dependencies
            names = (await git(workspace, "ls-files", "-co", "--exclude-standard", "-z")).split("\0")
        else:
            names = await asyncio.to_thread(_walk, workspace)
        matched = [n for n in names if n and any(fnmatch.fnmatchcase(n, g) for g in patterns)]
        return {n: await asyncio.to_thread(read_file, workspace / n) for n in matched}

    async def _repo(self, workspace: Path) -> tuple[Path, str] | None:
        hit = self._repos.get(workspace)
        if hit is not None and _still_top(workspace, hit[0]):
            return hit
        self._repos.pop(workspace, None)
        try:
            top = Path((await git(workspace, "rev-parse", "--show-toplevel")).strip())
            common = (await git(top, "rev-parse", "--path-format=absolute", "--git-common-dir")).strip()
        except (GitError, OSError):
            return None
        self._repos[workspace] = (top, common)
        return top, common


def _still_top(workspace: Path, top: Path) -> bool:
    """No repository was made or removed between the workspace and its cached top level."""
    if not (top / ".git").exists():
        return False
    here = workspace
    while here != top:
        if (here / ".git").exists() or here == here.parent:
            return False
        here = here.parent
    return True


def read_file(path: Path) -> FileData:
    try:
        if path.is_symlink():
            return FileData(link=os.readlink(path))
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return FileData()
    return FileData(data=data, executable=bool(path.stat().st_mode & stat.S_IXUSR))


async def _commit(top: Path) -> str | None:
    """The commit the local snapshot would check out: HEAD plus uncommitted changes."""
    try:
        commit = (await git(top, "stash", "create")).strip()
        return commit or (await git(top, "rev-parse", "--verify", "HEAD")).strip()
    except GitError:
        return None  # no commits yet: ship files


async def _bundle(common: str, shadow: Path, commit: str, bases: list[str]) -> tuple[bytes | None, str]:
    """A bundle of `commit` without what `bases` already hold.

    `git bundle` needs a ref, and the user's repository is never written: a bare shadow
    repository borrows its objects (alternates) and holds a ref for just this call.
    """
    if not (shadow / "objects" / "info").is_dir():
        shadow.parent.mkdir(parents=True, exist_ok=True)
        await git(shadow.parent, "init", "--quiet", "--bare", str(shadow))
    (shadow / "objects" / "info" / "alternates").write_text(f"{common}/objects\n")
    ref = f"refs/ship/{commit}-{secrets.token_hex(4)}"
    out = shadow / f"{ref.rsplit('/', 1)[1]}.bundle"
    await git(shadow, "update-ref", ref, commit)
    try:
        try:
            await git(shadow, "bundle", "create", "--quiet", str(out), ref, *(["--not", *bases] if bases else []))
        except GitError as exc:
            if "empty bundle" in str(exc):
                return None, ref  # the commit is reachable from one the node has
            if not bases:
                raise
            # a base is gone from the user's repository (gc): ship the commit whole
            await git(shadow, "bundle", "create", "--quiet", str(out), ref)
        return await asyncio.to_thread(out.read_bytes), ref
    finally:
        with contextlib.suppress(GitError, OSError):
            await git(shadow, "update-ref", "-d", ref)
        out.unlink(missing_ok=True)


def _walk(workspace: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(workspace):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        out += [(Path(dirpath) / name).relative_to(workspace).as_posix() for name in filenames]
    return out


# ---------------------------------------------------------------- the node's side


@dataclass
class Staged:
    """The rebuilt workspace on the node; `remove` takes away what belongs to this attempt only."""

    workspace: Path
    dir: Path
    kept: bool = False  # a programmer's staged repository, reset by its next task

    async def remove(self) -> None:
        if not self.kept:
            await asyncio.to_thread(shutil.rmtree, self.dir, True)


class Mirrors:
    """The node's bare mirrors, one per repository, and the workspaces staged from them.

    A staged workspace is a repository of its own that borrows the mirror's objects
    (alternates), one per programmer and repository, reset between its tasks: the engine's
    snapshot worktrees register there, never in the shared mirror, and its `reuse` snapshot
    finds the same repository again on the programmer's next task.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}

    async def unpack(self, ship: Shipment, stages: Path, slot: str, name: str) -> Staged:
        """Rebuild the workspace under `stages`, for programmer `slot` and attempt `name`.

        Raises NeedsFullBundle when the mirror lacks the commit.
        """
        if ship.repo is None or ship.commit is None:
            dest = stages / name
            await asyncio.to_thread(shutil.rmtree, dest, True)
            dest.mkdir(parents=True)
            staged = Staged(workspace=dest, dir=dest)
            try:
                await asyncio.to_thread(_write_all, dest, ship.files)
            except BaseException:
                await staged.remove()
                raise
            return staged
        mirror = self.root / f"{ship.repo}.git"
        if ship.bundle is not None and ship.ref is not None:
            async with self._locked(ship.repo):
                await _fetch(mirror, ship.bundle, ship.ref, ship.commit)
        dest = stages / f"{slot}-{ship.repo}"
        staged = Staged(workspace=dest / ship.subdir if ship.subdir else dest, dir=dest, kept=True)
        try:
            fresh = not (dest / ".git").is_dir()
            if fresh:
                await asyncio.to_thread(shutil.rmtree, dest, True)
                dest.parent.mkdir(parents=True, exist_ok=True)
                await git(dest.parent, "init", "--quiet", "--template=", str(dest))
                await asyncio.to_thread(_borrow, dest / ".git", mirror)
            try:
                await git(dest, "checkout", "--quiet", "--force", "--detach", ship.commit)
            except GitError as exc:
                if ship.bundle is None:  # the daemon thought this node had the commit
                    raise NeedsFullBundle(str(exc)) from None
                raise
            if not fresh:
                await git(dest, "clean", "-ffdxq")  # the last task's files
            await asyncio.to_thread(_write_all, dest, ship.untracked)
            await asyncio.to_thread(_write_all, staged.workspace, ship.files)
        except NeedsFullBundle:
            raise
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, dest, True)  # start this slot again next time
            raise
        return staged

    @contextlib.asynccontextmanager
    async def _locked(self, repo: str) -> AsyncIterator[None]:
        """One writer per mirror: an asyncio lock within this actor, a flock across processes."""
        async with self._locks.setdefault(repo, asyncio.Lock()):
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / f"{repo}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock


def _borrow(gitdir: Path, mirror: Path) -> None:
    """Point a staged repository at the mirror's objects; give it an identity for `git stash create`."""
    (gitdir / "objects" / "info").mkdir(parents=True, exist_ok=True)
    (gitdir / "objects" / "info" / "alternates").write_text(f"{mirror / 'objects'}\n")
    with (gitdir / "config").open("a") as fh:
        fh.write("[user]\n\tname = pasd\n\temail = pasd@localhost\n[gc]\n\tauto = 0\n")


async def _fetch(mirror: Path, bundle: bytes, ref: str, commit: str) -> None:
    if not (mirror / "HEAD").exists():
        await git(mirror.parent, "init", "--quiet", "--bare", str(mirror))
        await git(mirror, "config", "gc.autoDetach", "false")  # no gc left running in the background
    elif await _has_commit(mirror, commit):
        return  # another task brought it meanwhile
    path = mirror / f"incoming-{secrets.token_hex(4)}.bundle"
    await asyncio.to_thread(path.write_bytes, bundle)
    try:
        await git(mirror, "fetch", "--quiet", "--no-write-fetch-head", str(path), f"{ref}:refs/pasd/{commit}")
    except GitError as exc:
        if "prerequisite" in str(exc):
            raise NeedsFullBundle(str(exc)) from None
        raise
    finally:
        path.unlink(missing_ok=True)


async def _has_commit(mirror: Path, commit: str) -> bool:
    try:
        await git(mirror, "cat-file", "-e", f"{commit}^{{commit}}")
    except GitError:
        return False
    return True


def _write_all(root: Path, files: Mapping[str, FileData]) -> None:
    for rel, entry in files.items():
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts or parts[0] == ".git":
            raise ValueError(f"refusing to write {rel!r} outside the workspace")
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        if entry.link is not None:
            os.symlink(entry.link, target)
        elif entry.data is not None:
            target.write_bytes(entry.data)
            if entry.executable:
                target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
