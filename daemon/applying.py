"""Writing an approved change to the user's files: staged, journaled, all or nothing.

review.py plans (3-way merge) and hands over, per file, the bytes the merge read and the
bytes to write. Here: record the approve in the store's journal → stage every file as an
exclusive temp beside its target, fsynced → mark the journal "switching" → rename each temp
into place, re-reading the target right before and requiring the bytes the merge used (else
`Changed`: every file switched so far is put back, the caller merges again) → one transaction
sets the hunk and task states and drops the journal. An I/O error puts every file back and
raises `ApplyError`. A daemon stopped midway finishes or undoes the approve at its next start
(`recover`), and says which on the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from daemon import crashpoints, safe_io
from daemon.events import EventBus
from daemon.journal import Approval, ApproveJournal, Staged
from daemon.protocol import HunkState, TaskEvent, TaskInfo
from daemon.safe_io import LinkRefused
from daemon.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")
INTERRUPTED = "approve-interrupted"


@dataclass(frozen=True)
class Write:
    """One file to write: what the merge read there (None: no file), what goes there, its mode."""

    path: str
    before: bytes | None
    after: bytes
    mode: int | None = None


class Changed(Exception):
    """A file changed after the merge read it; every file is as it was before the approve."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class ApplyError(Exception):
    """Staging or switching failed; the message says why and what could not be put back."""


async def see_through(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to its end even if the caller is cancelled meanwhile (the cancel is re-raised after).

    A switch abandoned halfway (a client hanging up mid-approve) would leave the journal for the
    next start while the task still reads REVIEW; the caller keeps its review locks until this ends.
    """
    task = asyncio.ensure_future(coro)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                break
            cancelled = True
    result = task.result()
    if cancelled:
        raise asyncio.CancelledError
    return result


def _name(path: str) -> str:
    return PurePosixPath(path).name


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


def put_back(fd: int, f: Staged) -> str | None:
    """Restore what was there before `f` was switched in; why not, if the file changed since."""
    name = _name(f.path)
    now = safe_io.read_at(fd, name, f.path).data
    if now == f.before:
        return None
    if now != f.after:
        return f"{f.path} changed again meanwhile and was left as it is"
    if f.before is None:
        safe_io.remove(fd, name)
        return None
    tmp = safe_io.temp_name(name)
    safe_io.stage(fd, tmp, f.before, f.mode)
    safe_io.switch(fd, tmp, name)
    return None


class Applier:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.journal = ApproveJournal(store)

    async def apply(self, task: TaskInfo, writes: list[Write], states: dict[int, HunkState],
                    done: TaskInfo) -> None:
        """Write every file or none, then record `done` and the hunk states in one transaction."""
        await see_through(self._apply(task, writes, states, done))

    async def _apply(self, task: TaskInfo, writes: list[Write], states: dict[int, HunkState],
                     done: TaskInfo) -> None:
        root = Path(task.workspace)
        files = [Staged(path=w.path, temp=safe_io.temp_name(_name(w.path)), before=w.before, after=w.after,
                        mode=w.mode) for w in writes]
        self.journal.begin(Approval(task_id=task.id, phase="staging", state=done.state,
                                           hunk_states=states, files=files))
        crashpoints.reach("approve.planned")
        await crashpoints.pause("approve.planned", self.store.state_dir)
        made: list[str] = []
        try:
            fds = await asyncio.to_thread(self._stage, root, files, made)
        except BaseException as exc:
            self.journal.end(task.id)
            if isinstance(exc, (OSError, LinkRefused)):
                raise ApplyError(f"could not stage the new content: {_why(exc)}; no file was changed") from exc
            raise
        try:
            try:
                self.journal.staged(task.id, made)
                crashpoints.reach("approve.staged")
                await crashpoints.pause("approve.staged", self.store.state_dir)
            except BaseException:
                await asyncio.to_thread(self._undo, root, files, fds, [], made)
                self.journal.end(task.id)
                raise
            try:
                await asyncio.to_thread(self._switch, root, files, fds, made)
            except BaseException:
                self.journal.end(task.id)
                raise
            self.journal.finish(done, states)
        finally:
            for fd in fds:
                os.close(fd)

    @staticmethod
    def _stage(root: Path, files: list[Staged], made: list[str]) -> list[int]:
        fds: list[int] = []
        try:
            for f in files:
                fd, _ = safe_io.open_parent(root, f.path, made=made)
                fds.append(fd)
                safe_io.stage(fd, f.temp, f.after, f.mode)
                crashpoints.reach("approve.staging")
            for fd in fds:
                os.fsync(fd)  # the temps' names are durable before the journal says "switching"
        except BaseException:
            for fd, f in zip(fds, files, strict=False):
                with contextlib.suppress(OSError):
                    safe_io.remove(fd, f.temp)
                os.close(fd)
            safe_io.remove_dirs(root, made)
            raise
        return fds

    @staticmethod
    def _switch(root: Path, files: list[Staged], fds: list[int], made: list[str]) -> None:
        switched: list[Staged] = []
        current = ""
        try:
            for f, fd in zip(files, fds, strict=True):
                current, name = f.path, _name(f.path)
                if not safe_io.same_dir(root, f.path, fd):
                    raise ApplyError(f"{f.path}: its directory was moved or replaced during the approve")
                if safe_io.read_at(fd, name, f.path).data != f.before:
                    raise Changed(f.path)
                safe_io.switch(fd, f.temp, name)
                switched.append(f)
                crashpoints.reach("approve.switched")
            for fd in fds:
                os.fsync(fd)
        except BaseException as exc:
            problems = Applier._undo(root, files, fds, switched, made)
            if (isinstance(exc, Changed) and not problems) or not isinstance(
                    exc, (OSError, LinkRefused, ApplyError, Changed)):
                raise
            if isinstance(exc, Changed):
                why = f"{current} changed during the approve"
            elif isinstance(exc, ApplyError):
                why = str(exc)
            else:
                why = f"{current}: {_why(exc)}"
            undone = "; ".join(problems) if problems else "every file was put back as it was"
            raise ApplyError(f"{why}; {undone}") from exc

    @staticmethod
    def _undo(root: Path, files: list[Staged], fds: list[int], switched: list[Staged], made: list[str]) -> list[str]:
        """Put back the files already switched and drop the temps; what could not be put back."""
        problems = []
        for f, fd in zip(files, fds, strict=True):
            try:
                if f in switched:
                    if why := put_back(fd, f):
                        problems.append(why)
                else:
                    safe_io.remove(fd, f.temp)
            except (OSError, LinkRefused) as exc:
                problems.append(f"{f.path} could not be put back: {_why(exc)}")
        safe_io.remove_dirs(root, made)
        return problems


# ---------------------------------------------------------------- recovery at start


async def recover(store: Store, bus: EventBus) -> int:
    """Finish or undo the approves a stop interrupted; the task says which. How many there were."""
    journal = ApproveJournal(store)
    approvals = journal.pending()
    for approval in approvals:
        task = store.get_task(approval.task_id)
        if task is None:
            journal.end(approval.task_id)
            continue
        try:
            completed, note = await asyncio.to_thread(_recover_files, Path(task.workspace), approval)
        except Exception as exc:  # the daemon must start; the task says what happened
            completed, note = False, f"the approve was interrupted by a stop and could not be checked: {_why(exc)}"
        update: dict[str, object] = {"reason": INTERRUPTED, "error": note}
        if completed:
            update |= {"state": approval.state, "conflicts": [], "stale_hunks": []}
        done = task.model_copy(update=update)
        journal.finish(done, approval.hunk_states if completed else {})
        bus.publish(TaskEvent(task=done))
        log.warning("task %s: %s", task.id, note)
    return len(approvals)


def _recover_files(root: Path, approval: Approval) -> tuple[bool, str]:
    with contextlib.ExitStack() as stack:
        fds: list[int | None] = []
        for f in approval.files:
            try:
                fds.append(stack.enter_context(safe_io.parent(root, f.path))[0])
            except (OSError, LinkRefused):
                fds.append(None)
        if approval.phase != "switching":
            _drop_temps(approval, fds)
            return False, "the approve was interrupted by a stop before any file was written; nothing changed"
        where = [_where(f, fd) for f, fd in zip(approval.files, fds, strict=True)]
        if set(where) <= {"new", "ready"}:
            for f, fd, w in zip(approval.files, fds, where, strict=True):
                if w == "ready" and fd is not None:
                    safe_io.switch(fd, f.temp, _name(f.path))
            for fd in fds:
                if fd is not None:
                    os.fsync(fd)
            return True, (f"the approve was interrupted by a stop and completed when pasd restarted: "
                          f"{len(where)} file{'s' if len(where) != 1 else ''} written")
        problems = [f"{f.path} changed since and was left as it is"
                    for f, w in zip(approval.files, where, strict=True) if w == "other"]
        for f, fd, w in zip(approval.files, fds, where, strict=True):
            if w == "new" and fd is not None and (why := put_back(fd, f)):
                problems.append(why)
        _drop_temps(approval, fds)
        safe_io.remove_dirs(root, approval.made_dirs)
        return False, ("the approve was interrupted by a stop and undone when pasd restarted: every file is as "
                       "it was before" + "".join(f"; {p}" for p in problems))


def _where(f: Staged, fd: int | None) -> str:
    """Where a file stands: "new", "ready" (old, temp staged), "old" (temp gone) or "other" (changed)."""
    if fd is None:
        return "other"
    try:
        now = safe_io.read_at(fd, _name(f.path), f.path).data
    except (OSError, LinkRefused):
        return "other"
    if now == f.after:
        return "new"
    if now == f.before:
        return "ready" if safe_io.exists(fd, f.temp) else "old"
    return "other"


def _drop_temps(approval: Approval, fds: list[int | None]) -> None:
    for f, fd in zip(approval.files, fds, strict=True):
        if fd is not None:
            with contextlib.suppress(OSError):
                safe_io.remove(fd, f.temp)

