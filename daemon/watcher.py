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
from daemon.dirwatch import DirWatch
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
        self._changed = asyncio.Event()  # the tasks in review, or the directories to watch, changed
        self._tasks: list[asyncio.Task[None]] = []
        self._files: dict[str, tuple[str, set[Path]]] = {}  # task in review -> (workspace, its files)
        self._by_path: dict[Path, set[str]] = {}  # a file -> the tasks in review that change it
        self._by_dir: dict[Path, set[str]] = {}  # a directory on the way to such a file -> those tasks
        self._at: dict[Path, Path] = {}  # a file in review -> the directory watched for it
        self._unchecked: set[str] = set()  # in review, staleness not yet computed
        self._refreshing = asyncio.Lock()  # one staleness computation at a time
        self._readers: dict[DirWatch, asyncio.Task[None]] = {}  # the watch in use, and those retiring

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

    @staticmethod
    def _dirs_to(root: Path, file: Path) -> list[Path]:
        """The directories from the workspace down to a file's own, both included."""
        dirs = [file.parent]
        while dirs[-1] != root and root in dirs[-1].parents:
            dirs.append(dirs[-1].parent)
        return dirs

    def _place(self, root: Path, path: Path) -> None:
        """Watch a file's directory, or its nearest existing parent while it is missing."""
        self._at[path] = next((d for d in self._dirs_to(root, path) if d.is_dir()), root)

    def _add(self, task: TaskInfo) -> None:
        if task.id in self._files:
            return
        root = Path(task.workspace)
        files = {root / f for f in task.files}
        self._files[task.id] = (task.workspace, files)
        for path in files:
            self._by_path.setdefault(path, set()).add(task.id)
            self._place(root, path)
            for d in self._dirs_to(root, path):
                self._by_dir.setdefault(d, set()).add(task.id)
        self._unchecked.add(task.id)
        self._changed.set()

    def _drop(self, task_id: str) -> None:
        workspace, files = self._files.pop(task_id, ("", set()))
        for path in files:
            for index, keys in ((self._by_path, [path]), (self._by_dir, self._dirs_to(Path(workspace), path))):
                for key in keys:
                    ids = index.get(key, set())
                    ids.discard(task_id)
                    if not ids:
                        index.pop(key, None)
            if path not in self._by_path:
                self._at.pop(path, None)
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

    def _dirs(self) -> frozenset[str]:
        """What to watch, each directory alone (daemon.dirwatch): the directory of each file in
        review, or its nearest existing parent while it is missing; each workspace in review (its
        `.pas.toml`); the user config's directory."""
        dirs = {str(d) for d in self._at.values()}
        dirs |= {ws for ws, _ in self._files.values() if Path(ws).is_dir()}
        if self.configs.user_file.parent.is_dir():
            dirs.add(str(self.configs.user_file.parent))
        return frozenset(dirs)

    # ------------------------------------------------------------ watching

    async def _supervise(self) -> None:
        """Keep one watch on the directories `_dirs` names. A new watch is in place before the one it
        replaces is retired (which first hands over what it has collected), so no edit falls
        between them; a task is checked once its directories are watched."""
        current: DirWatch | None = None
        backoff = 1.0
        try:
            while True:
                self._changed.clear()
                batch, self._unchecked = self._unchecked, set()  # their directories are in the next `_dirs`
                dirs = self._dirs()
                if current is None or current.failed or dirs != current.dirs:
                    if current is not None and current.failed:
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 30.0)
                    new = await self._start(dirs) if dirs else None
                    if current is not None:
                        current.retired = True
                    current = new
                    if dirs and new is None:  # nothing watched: try again, and check everything then
                        self._unchecked |= batch | set(self._files)
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 30.0)
                        continue
                    elif new is not None:
                        backoff = 1.0
                # a file read now is either read after an edit, or followed by the edit's event
                await self._refresh_ids(batch)
                if not self._changed.is_set():
                    await self._changed.wait()
        finally:
            for watch, reader in list(self._readers.items()):
                watch.stop.set()
                reader.cancel()
            await asyncio.gather(*self._readers.values(), return_exceptions=True)

    async def _start(self, dirs: frozenset[str]) -> DirWatch | None:
        try:
            watch = await DirWatch.start(dirs)
        except Exception as e:
            log.error("file watcher could not start (%s); live stale marks wait until it does", e)
            return None
        reader = asyncio.create_task(self._read(watch), name="pasd-watcher-read")
        self._readers[watch] = reader
        reader.add_done_callback(lambda _: self._readers.pop(watch, None))
        return watch

    async def _read(self, watch: DirWatch) -> None:
        try:
            async with contextlib.aclosing(watch.changes()) as changes:
                async for changed in changes:
                    await self._handle({Path(path) for _, path in changed})
        except Exception:
            log.exception("file watcher failed; restarting it")
            watch.failed = True
            self._unchecked |= set(self._files)  # edits made until the next watch raise no event
            self._changed.set()

    async def _handle(self, changed: set[Path]) -> None:
        names = {p.name for p in changed}
        if paths.PROJECT_CONFIG in names or self.configs.user_file in changed:
            self.reload_configs(changed)
        touched: set[str] = set()
        moved: set[str] = set()  # a directory on the way to a file in review came or went
        for path in changed:
            touched |= self._by_path.get(path, set())
            moved |= self._by_dir.get(path, set())
        if moved:  # watch the directories as they now are, then check those tasks again
            for task_id in moved:
                workspace, files = self._files[task_id]
                for path in files:
                    self._place(Path(workspace), path)
            self._unchecked |= moved
            self._changed.set()
        for task_id in sorted(touched - moved):
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

    async def _refresh_ids(self, ids: set[str]) -> None:
        for task_id in sorted(ids):
            task = self.store.get_task(task_id)
            if task is not None and task.state in REVIEW_STATES:
                await self.refresh(task)

    async def refresh(self, task: TaskInfo) -> None:
        async with self._refreshing:
            stale = await stale_hunks(self.reviewer, task)
            # only while the task still awaits review: a decision made meanwhile stands
            latest = self.store.set_stale_hunks(task.id, stale)
            if latest is not None:
                self.bus.publish(TaskEvent(task=latest))
