"""Review: the diff a task proposes, and approving or rejecting it (whole or by hunk).

Approve merges 3-way against the task's base. If the user changed the same lines since, the
task goes to CONFLICT and no file is written: the user's tree stays byte for byte as it was.
daemon/applying.py then writes the merged files all or nothing, and if a file changes between
the merge and its switch, the approve merges again (a few times) or ends in CONFLICT.
Every review decision on a task (approve, reject, whole or by hunk, alone or for a job) holds
that task's lock and re-reads the task inside it: of two at the same moment exactly one wins,
and the other is told the task no longer awaits review.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from daemon import safe_io
from daemon.applying import INTERRUPTED, Applier, ApplyError, Changed, Write
from daemon.diff_cache import DiffCache, FileDiffs, diff_changes
from daemon.errors import ApplyFailed, InvalidParams, InvalidState, NotFound
from daemon.events import EventBus
from daemon.programmer.diffs import apply_hunks, merge3
from daemon.programmer.guard import refuse_path
from daemon.protocol import (
    Conflict,
    DiffResult,
    FileDiff,
    HunkState,
    ReceiptEvent,
    ReviewParams,
    ReviewResult,
    TaskEvent,
    TaskInfo,
    TaskState,
)
from daemon.safe_io import LinkRefused
from daemon.store import Change, Store

CHANGED_MEANWHILE = "the file changed under this hunk since the task started"
KEPT_CHANGING = "the file kept changing while the approve was merging it"
APPROVE_FAILED = "approve-failed"
MERGE_TRIES = 3  # merges of one approve when files change between merge and switch


def read_text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None


class Reviewer:
    def __init__(self, store: Store, bus: EventBus) -> None:
        self.store = store
        self.bus = bus
        self.applier = Applier(store)
        self._lock = asyncio.Lock()  # approvals touch the user's files one at a time
        self._task_locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def holding(self, task_ids: Iterable[str]) -> AsyncIterator[None]:
        """Hold the review locks of these tasks, taken in one order so two holders never deadlock."""
        async with contextlib.AsyncExitStack() as stack:
            for task_id in sorted(set(task_ids)):
                await stack.enter_async_context(self._task_locks.setdefault(task_id, asyncio.Lock()))
            yield

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

    def _current(self, task_id: str) -> TaskInfo:
        task = self.store.get_task(task_id)
        if task is None:
            raise NotFound(f"no task {task_id!r}")
        return task

    async def approve(self, task: TaskInfo, params: ReviewParams, *, held: bool = False) -> ReviewResult:
        """Apply the chosen hunks; `held`: the caller already holds this task's lock (`holding`)."""
        if not held:
            async with self.holding([task.id]):
                return await self.approve(task, params, held=True)
        async with self._lock:
            changed = ""
            for _ in range(MERGE_TRIES):
                try:
                    return await self._approve_once(task.id, params)
                except Changed as exc:  # the user saved meanwhile: merge again with what they saved
                    changed = exc.path
            task = self._current(task.id)
            files = await self.files_async(task)
            chosen = self._choose(task, params, files)
            return self._conflict(task, [Conflict(hunk_id=h.id, path=ch.path, reason=KEPT_CHANGING)
                                         for ch, fd, _ in files if ch.path == changed
                                         for h in fd.hunks if h.id in chosen])

    async def _approve_once(self, task_id: str, params: ReviewParams) -> ReviewResult:
        """Merge, then write every file or none; `Changed` if a file changed under the switch."""
        task = self._current(task_id)
        files = await self.files_async(task)
        chosen = self._choose(task, params, files)
        by_client = set(params.applied_by_client) & chosen
        try:
            plan, conflicts = await self._plan(task, files, chosen - by_client)
            if conflicts:
                return self._conflict(task, conflicts)
            states = dict.fromkeys(sorted(chosen), HunkState.APPLIED)
            done = self._decided(task, files, states)
            if plan:
                await self.applier.apply(task, plan, states, done)
            else:
                self.store.set_hunk_states(done, states)
        except ApplyError as exc:
            self._save(task, {}, error=str(exc), reason=APPROVE_FAILED)
            raise ApplyFailed(f"task {task.id} was not approved: {exc}") from None
        self.bus.publish(TaskEvent(task=done))
        self._receipt_changed(done.id)
        return ReviewResult(task=done, applied=sorted(chosen))

    def _conflict(self, task: TaskInfo, conflicts: list[Conflict]) -> ReviewResult:
        task = self._save(task, {}, state=TaskState.CONFLICT, conflicts=conflicts)
        return ReviewResult(task=task, conflicts=conflicts)

    async def reject(self, task: TaskInfo, params: ReviewParams, *, held: bool = False) -> ReviewResult:
        """Reject the chosen hunks; `held` as for `approve`."""
        if not held:
            async with self.holding([task.id]):
                return await self.reject(task, params, held=True)
        task = self._current(task.id)
        files = await self.files_async(task)
        chosen = self._choose(task, params, files)
        states = dict.fromkeys(sorted(chosen), HunkState.REJECTED)
        task = self._save(self._decided(task, files, states), states)
        self._receipt_changed(task.id)
        return ReviewResult(task=task, rejected=sorted(chosen))

    def _receipt_changed(self, task_id: str) -> None:
        """The receipt under review now counts the decided hunks (store.put_hunk_states): say so."""
        for receipt in self.store.receipts(task_id, limit=1):
            if receipt.outcome in ("review", "approved", "rejected", "partial"):
                self.bus.publish(ReceiptEvent(receipt=receipt))

    async def _plan(self, task: TaskInfo, files: list[tuple[Change, FileDiff, str]],
                    write: set[int]) -> tuple[list[Write], list[Conflict]]:
        workspace = Path(task.workspace)
        plan: list[Write] = []
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
            try:
                found = await asyncio.to_thread(safe_io.read, workspace, ch.path)
                current = None if found.data is None else found.data.decode("utf-8")
            except LinkRefused as exc:
                conflicts += [Conflict(hunk_id=i, path=ch.path, reason=f"refused: {exc}") for i in mine]
                continue
            except UnicodeDecodeError:
                conflicts += [Conflict(hunk_id=i, path=ch.path, reason="the file is no longer UTF-8 text")
                              for i in mine]
                continue
            except OSError as exc:
                raise ApplyError(f"{ch.path}: {(exc.strerror or str(exc)).lower()}; no file was changed") from exc

            def write_as(text: str, ch: Change = ch, found: safe_io.Current = found) -> None:
                plan.append(Write(ch.path, found.data, text.encode("utf-8"), found.mode))

            target = apply_hunks(ch.base, ch.proposed, {i - first for i in mine})
            if current is None:
                if ch.created or ch.base == "":
                    write_as(target)
                else:
                    conflicts += [Conflict(hunk_id=i, path=ch.path, reason="the file was deleted") for i in mine]
                continue
            if current == ch.base:
                write_as(target)
                continue
            merged, conflicted = await merge3(current, ch.base, target)
            if not conflicted:
                write_as(merged)
                continue
            for i in mine:  # name exactly the hunks that collide with the user's edits
                one = apply_hunks(ch.base, ch.proposed, {i - first})
                _, bad = await merge3(current, ch.base, one)
                if bad:
                    conflicts.append(Conflict(hunk_id=i, path=ch.path, reason=CHANGED_MEANWHILE))
            if not any(c.path == ch.path for c in conflicts):
                conflicts += [Conflict(hunk_id=i, path=ch.path, reason=CHANGED_MEANWHILE) for i in mine]
        return plan, conflicts

    def _decided(self, task: TaskInfo, files: list[tuple[Change, FileDiff, str]],
                 states: dict[int, HunkState]) -> TaskInfo:
        """The task once these hunk decisions are recorded; final once no hunk is pending."""
        every = {h.id: states.get(h.id, h.state) for _, fd, _ in files for h in fd.hunks}
        if any(s is HunkState.PENDING for s in every.values()):
            state = TaskState.REVIEW
        elif any(s is HunkState.APPLIED for s in every.values()):
            state = TaskState.APPLIED
        else:
            state = TaskState.REJECTED
        update: dict[str, object] = {"state": state, "conflicts": []}
        if task.reason in (APPROVE_FAILED, INTERRUPTED):  # an earlier approve's trouble is over
            update |= {"reason": None, "error": None}
        return task.model_copy(update=update)

    def _save(self, task: TaskInfo, states: dict[int, HunkState], **changes: object) -> TaskInfo:
        task = task.model_copy(update=changes)
        self.store.set_hunk_states(task, states)
        self.bus.publish(TaskEvent(task=task))
        return task
