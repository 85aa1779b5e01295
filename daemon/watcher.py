"""Live staleness and config reload, driven by file-system events (watchfiles).

The daemon watches the workspaces that have tasks awaiting review. When the user edits a
file under review, the hunks that would no longer apply cleanly are marked stale at once and
pushed as a task event. Edits to the user config or a `.pas.toml` reload it; a bad edit keeps
the last good settings and the error is reported in `pool.status`.

Tasks in review are indexed by the files they change, so a file event costs a dictionary
lookup; staleness is computed only for the tasks whose files changed, once for each task as it
enters review, and for every task in review each time the watch (re)starts (an edit made while
no watch was in place raised no event), with the diffs and merges off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from daemon import paths
from daemon.config import ConfigCache
from daemon.errors import ConfigError
from daemon.events import EventBus, Subscription
from daemon.programmer.diffs import Patch, merge3
from daemon.protocol import FileDiff, HunkState, TaskEvent, TaskInfo, TaskState
from daemon.review import Reviewer, read_text
from daemon.store import Change, Store

log = logging.getLogger(__name__)

REVIEW_STATES = [TaskState.REVIEW, TaskState.CONFLICT]


async def stale_hunks(reviewer: Reviewer, task: TaskInfo) -> list[int]:
    """Pending hunks whose lines the user has changed since the task's base (they would conflict)."""
    stale: list[int] = []
    workspace = Path(task.workspace)
    for ch, fd, _ in await reviewer.files_async(task):
        pending = [h.id for h in fd.hunks if h.state is HunkState.PENDING]
        if not pending:
            continue
        current = await asyncio.to_thread(read_text, workspace / ch.path)
        if current is None:
            if not ch.created:
                stale += pending
            continue
        if current == ch.base or (ch.created and current == ""):
            continue
        stale += await _stale_in_file(ch, fd, current, pending)
    return stale


async def _stale_in_file(ch: Change, fd: FileDiff, current: str, pending: list[int]) -> list[int]:
    first = fd.hunks[0].id
    applied = {h.id - first for h in fd.hunks if h.state is HunkState.APPLIED}
    # compare against the base plus what was already approved from this task
    patch = await asyncio.to_thread(Patch, ch.base, ch.proposed)
    base, every = await asyncio.to_thread(
        lambda: (patch.apply(applied), patch.apply(applied | {i - first for i in pending})))
    if current == every or not (await merge3(current, base, every))[1]:
        return []  # all of them merge cleanly, so each one alone does
    stale: list[int] = []
    for i in pending:
        target = await asyncio.to_thread(patch.apply, applied | {i - first})
        if current == target:
            continue
        _, conflicted = await merge3(current, base, target)
        if conflicted:
            stale.append(i)
    return stale


class Watcher:
    def __init__(self, store: Store, bus: EventBus, reviewer: Reviewer, configs: ConfigCache) -> None:
        self.store = store
        self.bus = bus
        self.reviewer = reviewer
        self.configs = configs
        self._changed = asyncio.Event()  # the set of tasks in review changed
        self._tasks: list[asyncio.Task[None]] = []
        self._files: dict[str, tuple[str, set[Path]]] = {}  # task in review -> (workspace, its files)
        self._by_path: dict[Path, set[str]] = {}  # a file -> the tasks in review that change it
        self._unchecked: set[str] = set()  # in review, staleness not yet computed
        self._refreshing = asyncio.Lock()  # one staleness computation at a time

    def start(self) -> None:
        sub = self._sync()
        self._tasks = [asyncio.create_task(self._supervise(), name="pasd-watcher"),
                       asyncio.create_task(self._follow(sub), name="pasd-watcher-follow")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------ the index of tasks in review

    def _sync(self) -> Subscription:
        """Subscribe, then index the tasks in review (an event after this point is not lost)."""
        sub = self.bus.subscribe(["task"])
        tasks = self.store.list_tasks(REVIEW_STATES, limit=100_000)
        for task_id in set(self._files) - {t.id for t in tasks}:
            self._drop(task_id)
        for task in tasks:
            self._add(task)
        return sub

    def _add(self, task: TaskInfo) -> None:
        if task.id in self._files:
            return
        root = Path(task.workspace)
        files = {root / f for f in task.files}
        self._files[task.id] = (task.workspace, files)
        for path in files:
            self._by_path.setdefault(path, set()).add(task.id)
        self._unchecked.add(task.id)
        self._changed.set()

    def _drop(self, task_id: str) -> None:
        _, files = self._files.pop(task_id, ("", set()))
        for path in files:
            ids = self._by_path.get(path, set())
            ids.discard(task_id)
            if not ids:
                self._by_path.pop(path, None)
        self._unchecked.discard(task_id)
        self._changed.set()

    async def _follow(self, sub: Subscription) -> None:
        """A task entering or leaving review changes which files (and workspaces) are watched."""
        try:
            while True:
                env = await sub.get()
                if env is None:  # fell too far behind: start again from the store
                    sub.close()
                    sub = self._sync()
                    continue
                if isinstance(env.event, TaskEvent):
                    task = env.event.task
                    if task.state in REVIEW_STATES:
                        self._add(task)
                    elif task.id in self._files:
                        self._drop(task.id)
        finally:
            sub.close()

    def _roots(self) -> set[str]:
        roots = {ws for ws, _ in self._files.values()}
        config_dir = self.configs.user_file.parent
        if config_dir.is_dir():
            roots.add(str(config_dir))
        return {r for r in roots if Path(r).is_dir()}

    # ------------------------------------------------------------ watching

    async def _supervise(self) -> None:
        from watchfiles import awatch

        while True:
            self._changed.clear()
            roots = self._roots()
            if not roots:
                await self._changed.wait()
                continue
            # Edits made while no watch ran (before the first, or between a stop and this start)
            # raised no event: every task in review is checked again once this watch is in place.
            self._unchecked |= set(self._files)
            stop = asyncio.Event()
            relay = asyncio.create_task(self._relay(roots, stop))
            try:
                async for changes in awatch(*sorted(roots), stop_event=stop, debounce=50, step=20,
                                            recursive=True, ignore_permission_denied=True):
                    await self._handle({Path(p) for _, p in changes})
            except Exception:
                log.exception("file watcher failed; restarting it")
                await asyncio.sleep(1)
            finally:
                relay.cancel()
                await asyncio.gather(relay, return_exceptions=True)

    async def _relay(self, roots: set[str], stop: asyncio.Event) -> None:
        """Check the tasks not yet checked, then stop the current watch when the set of roots
        changes and check tasks new to review.

        This runs first once `awatch` awaits for the first time, which is after it has registered
        its watches: a file read here is either read after an edit or followed by its event.
        """
        await self.refresh_unchecked()
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._roots() != roots:
                stop.set()
                return
            await self.refresh_unchecked()

    async def _handle(self, changed: set[Path]) -> None:
        names = {p.name for p in changed}
        if paths.PROJECT_CONFIG in names or self.configs.user_file in changed:
            self.reload_configs(changed)
        touched: set[str] = set()
        for path in changed:
            touched |= self._by_path.get(path, set())
        for task_id in sorted(touched):
            task = self.store.get_task(task_id)
            if task is not None and task.state in REVIEW_STATES:
                await self.refresh(task)

    def reload_configs(self, changed: set[Path]) -> None:
        workspaces: set[str | None] = {None}
        # only workspaces in use: a snapshot's copy of a .pas.toml (under the state dir) is nobody's config
        workspaces |= {str(p.parent) for p in changed if p.name == paths.PROJECT_CONFIG
                       and self.configs.in_use(str(p.parent))}
        for ws in workspaces:
            with contextlib.suppress(ConfigError):
                self.configs.get(ws)
            error = self.configs.errors.get(ws)
            if error:
                log.error("config not reloaded, keeping the last good settings: %s", error)
            else:
                log.info("config reloaded%s", f" for {ws}" if ws else "")

    async def refresh_unchecked(self) -> None:
        """Compute staleness once for each task that entered review since the last look."""
        while self._unchecked:
            task = self.store.get_task(self._unchecked.pop())
            if task is not None and task.state in REVIEW_STATES:
                await self.refresh(task)

    async def refresh(self, task: TaskInfo) -> None:
        async with self._refreshing:
            stale = await stale_hunks(self.reviewer, task)
            # only while the task still awaits review: a decision made meanwhile stands
            latest = self.store.set_stale_hunks(task.id, stale)
            if latest is not None:
                self.bus.publish(TaskEvent(task=latest))
