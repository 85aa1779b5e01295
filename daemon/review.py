"""Review: the diff a task proposes, and approving or rejecting it (whole or by hunk).

Approve merges 3-way against the task's base. If the user changed the same lines since, the
task goes to CONFLICT and no file is written: the user's tree stays byte for byte as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import stat
from pathlib import Path

from daemon.diff_cache import DiffCache, FileDiffs, diff_changes
from daemon.errors import InvalidParams, InvalidState
from daemon.events import EventBus
from daemon.programmer.diffs import apply_hunks, merge3
from daemon.programmer.guard import refuse_path
from daemon.protocol import (
    Conflict,
    DiffResult,
    FileDiff,
    HunkState,
    ReviewParams,
    ReviewResult,
    TaskEvent,
    TaskInfo,
    TaskState,
)
from daemon.store import Change, Store

CHANGED_MEANWHILE = "the file changed under this hunk since the task started"


def read_text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None


def write_text(path: Path, text: str) -> None:
    """Replace a file atomically, keeping its permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.pasd-tmp")
    mode = None
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(path.stat().st_mode)
    with tmp.open("wb") as fh:
        fh.write(text.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


class Reviewer:
    def __init__(self, store: Store, bus: EventBus) -> None:
        self.store = store
        self.bus = bus
        self._lock = asyncio.Lock()  # approvals touch the user's files one at a time

    @functools.cached_property
    def diff_cache(self) -> DiffCache:
        """Each task's hunks, computed once (its stored changes never change)."""
        return DiffCache()

    def files(self, task: TaskInfo) -> list[tuple[Change, FileDiff, str]]:
        """Each changed file with its hunks (ids across the task, states applied) and unified text.

        A task not yet in the cache is diffed here, on the caller's thread: on the event loop
        prefer `files_async`.
        """
        changes = self.store.changes(task.id)
        diffs = self.diff_cache.get(task.id, changes)
        if diffs is None:
            diffs = self.diff_cache.put(task.id, changes, diff_changes(changes))
        return self._with_states(task, changes, diffs)

    async def files_async(self, task: TaskInfo) -> list[tuple[Change, FileDiff, str]]:
        """`files`, diffing a task not yet in the cache in a worker thread."""
        changes = self.store.changes(task.id)
        return self._with_states(task, changes, await self.diff_cache.load(task.id, changes))

    def _with_states(self, task: TaskInfo, changes: list[Change],
                     diffs: FileDiffs) -> list[tuple[Change, FileDiff, str]]:
        """Copies of the cached hunks with this moment's review states and stale marks."""
        states = self.store.hunk_states(task.id)
        stale = set(task.stale_hunks)
        out = []
        for ch, (fd, text) in zip(changes, diffs, strict=True):
            hunks = [h.model_copy(update={"state": states.get(h.id, HunkState.PENDING), "stale": h.id in stale})
                     for h in fd.hunks]
            out.append((ch, fd.model_copy(update={"hunks": hunks}), text))
        return out

    async def diff(self, task: TaskInfo) -> DiffResult:
        files = await self.files_async(task)
        return DiffResult(task_id=task.id, state=task.state, diff="".join(t for _, _, t in files),
                          files=[fd for _, fd, _ in files])

    def _choose(self, task: TaskInfo, params: ReviewParams,
                files: list[tuple[Change, FileDiff, str]]) -> set[int]:
        if not task.state.reviewable:
            raise InvalidState(f"task {task.id} is {task.state.value}, not awaiting review")
        every = {h.id: h for _, fd, _ in files for h in fd.hunks}
        pending = {i for i, h in every.items() if h.state is HunkState.PENDING}
        if params.hunks is None:
            return pending
        chosen = set(params.hunks)
        unknown = sorted(chosen - every.keys())
        if unknown:
            raise InvalidParams(f"task {task.id} has no hunk {', '.join(map(str, unknown))} "
                                f"(hunks are 1..{len(every)})")
        done = sorted(chosen - pending)
        if done:
            raise InvalidState(f"hunk {', '.join(map(str, done))} of task {task.id} is already "
                               f"{every[done[0]].state.value}")
        return chosen

    async def approve(self, task: TaskInfo, params: ReviewParams) -> ReviewResult:
        async with self._lock:
            task = self.store.get_task(task.id) or task
            files = self.files(task)
            chosen = self._choose(task, params, files)
            by_client = set(params.applied_by_client) & chosen
            plan, conflicts = await self._plan(task, files, chosen - by_client)
            if conflicts:
                task = self._save(task, {}, state=TaskState.CONFLICT, conflicts=conflicts)
                return ReviewResult(task=task, conflicts=conflicts)
            for path, text in plan:
                await asyncio.to_thread(write_text, path, text)
            states = dict.fromkeys(sorted(chosen), HunkState.APPLIED)
            task = self._settle(task, files, states)
            return ReviewResult(task=task, applied=sorted(chosen))

    def reject(self, task: TaskInfo, params: ReviewParams) -> ReviewResult:
        task = self.store.get_task(task.id) or task
        files = self.files(task)
        chosen = self._choose(task, params, files)
        task = self._settle(task, files, dict.fromkeys(sorted(chosen), HunkState.REJECTED))
        return ReviewResult(task=task, rejected=sorted(chosen))

    async def _plan(self, task: TaskInfo, files: list[tuple[Change, FileDiff, str]],
                    write: set[int]) -> tuple[list[tuple[Path, str]], list[Conflict]]:
        workspace = Path(task.workspace)
        plan: list[tuple[Path, str]] = []
        conflicts: list[Conflict] = []
        for ch, fd, _ in files:
            first = fd.hunks[0].id if fd.hunks else 0
            mine = [h.id for h in fd.hunks if h.id in write]
            if not mine:
                continue
            why = refuse_path(workspace, ch.path, {ch.path}, [])
            if why:
                conflicts += [Conflict(hunk_id=i, path=ch.path, reason=f"refused: {why}") for i in mine]
                continue
            target = apply_hunks(ch.base, ch.proposed, {i - first for i in mine})
            path = workspace / ch.path
            current = await asyncio.to_thread(read_text, path)
            if current is None:
                if ch.created or ch.base == "":
                    plan.append((path, target))
                else:
                    conflicts += [Conflict(hunk_id=i, path=ch.path, reason="the file was deleted") for i in mine]
                continue
            if current == ch.base:
                plan.append((path, target))
                continue
            merged, conflicted = await merge3(current, ch.base, target)
            if not conflicted:
                plan.append((path, merged))
                continue
            for i in mine:  # name exactly the hunks that collide with the user's edits
                one = apply_hunks(ch.base, ch.proposed, {i - first})
                _, bad = await merge3(current, ch.base, one)
                if bad:
                    conflicts.append(Conflict(hunk_id=i, path=ch.path, reason=CHANGED_MEANWHILE))
            if not any(c.path == ch.path for c in conflicts):
                conflicts += [Conflict(hunk_id=i, path=ch.path, reason=CHANGED_MEANWHILE) for i in mine]
        return plan, conflicts

    def _settle(self, task: TaskInfo, files: list[tuple[Change, FileDiff, str]],
                states: dict[int, HunkState]) -> TaskInfo:
        """Record hunk decisions; the task is final once no hunk is pending."""
        every = {h.id: states.get(h.id, h.state) for _, fd, _ in files for h in fd.hunks}
        if any(s is HunkState.PENDING for s in every.values()):
            state = TaskState.REVIEW
        elif any(s is HunkState.APPLIED for s in every.values()):
            state = TaskState.APPLIED
        else:
            state = TaskState.REJECTED
        return self._save(task, states, state=state, conflicts=[])

    def _save(self, task: TaskInfo, states: dict[int, HunkState], **changes: object) -> TaskInfo:
        task = task.model_copy(update=changes)
        self.store.set_hunk_states(task, states)
        self.bus.publish(TaskEvent(task=task))
        return task
