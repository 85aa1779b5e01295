"""Live staleness and config reload, driven by file-system events (watchfiles).

The daemon watches the workspaces that have tasks awaiting review. When the user edits a
file under review, the hunks that would no longer apply cleanly are marked stale at once and
pushed as a task event. Edits to the user config or a `.pas.toml` reload it; a bad edit keeps
the last good settings and the error is reported in `pool.status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from daemon import paths
from daemon.config import ConfigCache
from daemon.errors import ConfigError
from daemon.events import EventBus
from daemon.programmer.diffs import apply_hunks, merge3
from daemon.protocol import HunkState, TaskEvent, TaskInfo, TaskState
from daemon.review import Reviewer, read_text
from daemon.store import Store

log = logging.getLogger(__name__)

REVIEW_STATES = [TaskState.REVIEW, TaskState.CONFLICT]
WATCH_TRIGGERS = {TaskState.REVIEW, TaskState.CONFLICT, TaskState.APPLIED, TaskState.REJECTED}


async def stale_hunks(reviewer: Reviewer, task: TaskInfo) -> list[int]:
    """Pending hunks whose lines the user has changed since the task's base (they would conflict)."""
    stale: list[int] = []
    workspace = Path(task.workspace)
    for ch, fd, _ in reviewer.files(task):
        pending = [h for h in fd.hunks if h.state is HunkState.PENDING]
        if not pending:
            continue
        current = await asyncio.to_thread(read_text, workspace / ch.path)
        if current is None:
            if not ch.created:
                stale += [h.id for h in pending]
            continue
        if current == ch.base or (ch.created and current == ""):
            continue
        first = fd.hunks[0].id
        states = reviewer.store.hunk_states(task.id)
        applied = {h.id - first for h in fd.hunks if states.get(h.id) is HunkState.APPLIED}
        for h in pending:
            # compare against the base plus what was already approved from this task
            base = apply_hunks(ch.base, ch.proposed, applied)
            target = apply_hunks(ch.base, ch.proposed, applied | {h.id - first})
            if current == target:
                continue
            _, conflicted = await merge3(current, base, target)
            if conflicted:
                stale.append(h.id)
    return stale


class Watcher:
    def __init__(self, store: Store, bus: EventBus, reviewer: Reviewer, configs: ConfigCache) -> None:
        self.store = store
        self.bus = bus
        self.reviewer = reviewer
        self.configs = configs
        self._changed = asyncio.Event()  # the set of watched roots may have changed
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._supervise(), name="pasd-watcher"),
                       asyncio.create_task(self._follow(), name="pasd-watcher-follow")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _follow(self) -> None:
        """A task entering or leaving review changes which workspaces are watched."""
        sub = self.bus.subscribe(["task"])
        try:
            while (env := await sub.get()) is not None:
                if isinstance(env.event, TaskEvent) and env.event.task.state in WATCH_TRIGGERS:
                    self._changed.set()
        finally:
            sub.close()

    def _roots(self) -> set[str]:
        roots = self.store.workspaces(REVIEW_STATES)
        config_dir = self.configs.user_file.parent
        if config_dir.is_dir():
            roots.add(str(config_dir))
        return {r for r in roots if Path(r).is_dir()}

    async def _supervise(self) -> None:
        from watchfiles import awatch

        while True:
            self._changed.clear()
            roots = self._roots()
            if not roots:
                await self._changed.wait()
                continue
            await self.refresh_all()  # catch edits made while nothing was watched
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
        """Stop the current watch when the set of roots changes."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._roots() != roots:
                stop.set()
                return

    async def _handle(self, changed: set[Path]) -> None:
        names = {p.name for p in changed}
        if paths.PROJECT_CONFIG in names or self.configs.user_file in changed:
            self.reload_configs(changed)
        tasks = self.store.list_tasks(REVIEW_STATES, limit=100_000)
        for task in tasks:
            root = Path(task.workspace)
            touched = {root / f for f in task.files}
            if touched & changed:
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

    async def refresh_all(self) -> None:
        for task in self.store.list_tasks(REVIEW_STATES, limit=100_000):
            await self.refresh(task)

    async def refresh(self, task: TaskInfo) -> None:
        stale = await stale_hunks(self.reviewer, task)
        latest = self.store.get_task(task.id)
        if latest is None or not latest.state.reviewable or latest.stale_hunks == stale:
            return
        latest = latest.model_copy(update={"stale_hunks": stale})
        self.store.save_task(latest)
        self.bus.publish(TaskEvent(task=latest))
