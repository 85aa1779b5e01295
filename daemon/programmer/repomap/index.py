"""The daemon's repo-map index: each workspace's parse results, kept up to date instead of rebuilt per task.

The first look lists the files git would list (tracked and untracked, not ignored), stats them in
a thread and parses them. Meanwhile a file-system watch starts on the directories that hold listed
files, each alone (daemon.dirwatch: an ignored tree costs nothing); once it runs and one more full
look has been made, a task's dispatch only looks at the paths the watch saw change: an edit is
re-parsed, a file added or removed makes git list the workspace again, a directory made is watched
too (unless git ignores it) and costs one walk. With no events there is nothing to do. If the
watch cannot start or dies, or there are more than MAX_WATCHED_DIRS directories, every look lists
and stats the files again (the walk), parsing only those whose (mtime, size, inode) changed; the
map is then ranked and rendered from the cached tags. Symbolic links, files over MAX_FILE_BYTES,
binary files and secret-looking files are never read. The engine gets the map as text in its
TaskSpec, so a remote Programmer needs none of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import logging
import os
import re
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from daemon import safe_io
from daemon.dirwatch import ADDED, MODIFIED, DirWatch
from daemon.programmer import proc
from daemon.programmer.repomap import rank, tags
from daemon.protocol import Selection

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_FILE_BYTES = 256 * 1024  # past this a source file is generated or minified, not worth its parse
MAX_FILES = 50_000  # files indexed per workspace, to bound memory in a huge monorepo
MAX_WORKSPACES = 8  # indexes kept; the least recently used goes first
BUILD_WAIT_S = 20.0  # a task waits this long for a cold index, then runs without a map (the build goes on)
SECRET_NAMES = (".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
                "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".pgpass", "*.gpg")


_SECRET = re.compile("|".join(fnmatch.translate(pattern) for pattern in SECRET_NAMES))


def secret_looking(rel: str) -> bool:
    return _SECRET.match(rel.rsplit("/", 1)[-1].lower()) is not None


@dataclass(frozen=True)
class Stats:
    """What the index has done: `parses` counts file parses since it was made (a warm update parses
    only the files that changed), `updates` the looks, `walks` those that listed and stat'ed every
    file (the others looked only at the paths a file-system event named)."""

    files: int
    parses: int
    updates: int
    last_parsed: int
    walks: int = 0


class WorkspaceIndex:
    """One workspace's tags by file. Blocking: call `update` and `render` from a thread."""

    def __init__(self, root: Path, stopping: threading.Event | None = None) -> None:
        self.root = root
        self.stopping = stopping or threading.Event()
        self._lock = threading.Lock()
        self._stamps: dict[str, tuple[int, int, int]] = {}  # file -> (mtime, size, inode) when parsed
        self._graph = rank.Graph()  # holds the parsed files' tags
        self._listing: list[str] = []  # git's last listing, and the files of it worth a look
        self._candidates: list[str] = []
        self._candidate_set: set[str] = set()
        self._parses = self._updates = self._last_parsed = self._walks = 0
        self.synced_with: object = None  # the watch this index was fully looked at under (RepoMaps sets it)

    def stats(self) -> Stats:
        with self._lock:
            return Stats(len(self._stamps), self._parses, self._updates, self._last_parsed, self._walks)

    def _set_listing(self, listing: list[str]) -> None:
        if listing != self._listing:  # the same listing as last time: its filtering is done
            self._listing = listing
            self._candidates = [rel for rel in listing if tags.language_of(rel) is not None
                                and not secret_looking(rel)][:MAX_FILES]
            self._candidate_set = set(self._candidates)

    def update(self, listing: list[str]) -> int:
        """Stat the listed files and parse the new and changed ones (the walk); how many were parsed."""
        with self._lock:
            self._set_listing(listing)
            try:
                root = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                return 0
            try:
                return self._walk(root)
            finally:
                os.close(root)

    def update_paths(self, listing: list[str] | None, changed: set[str]) -> int:
        """Look again only at the changed paths (relative to the root), and at the files a new listing
        (when files were added or removed) gained or lost; how many were parsed."""
        with self._lock:
            look = set(changed)
            if listing is not None:
                before = self._candidate_set
                self._set_listing(listing)
                look |= before ^ self._candidate_set
            try:
                root = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                return 0
            parsed = 0
            try:
                for rel in look:
                    if self.stopping.is_set():
                        break
                    if rel in self._candidate_set:
                        parsed += self._look(root, rel)[1]
                    elif rel in self._stamps:
                        self._drop(rel)
            finally:
                os.close(root)
            self._count(parsed)
            return parsed

    def skip(self) -> None:
        """A look that found nothing to do (no file-system event since the last)."""
        with self._lock:
            self._count(0)

    def _count(self, parsed: int) -> None:
        self._parses += parsed
        self._updates += 1
        self._last_parsed = parsed

    def _look(self, root: int, rel: str) -> tuple[bool, int]:
        """Stat one candidate and parse it if it changed: (whether it is indexed, parses made)."""
        try:
            st = os.stat(rel, dir_fd=root, follow_symlinks=False)
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
            # a symbolic link is not followed, whatever it points at
            if rel in self._stamps:
                self._drop(rel)
            return False, 0
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._stamps.get(rel) == key:
            return True, 0
        self._stamps[rel] = key
        self._graph.put(rel, self._parse(rel))
        return True, 1

    def _drop(self, rel: str) -> None:
        del self._stamps[rel]
        self._graph.put(rel, None)

    def _walk(self, root: int) -> int:
        parsed = 0
        seen: set[str] = set()
        for rel in self._candidates:
            if self.stopping.is_set():
                break
            indexed, n = self._look(root, rel)
            if indexed:
                seen.add(rel)
            parsed += n
        gone = set(self._stamps) - seen if not self.stopping.is_set() else set()
        for rel in gone:
            self._drop(rel)
        self._walks += 1
        self._count(parsed)
        return parsed

    def _parse(self, rel: str) -> tags.FileTags | None:
        try:
            data = safe_io.read(self.root, rel).data  # refuses a link anywhere on the path
        except (OSError, safe_io.LinkRefused):
            return None
        if data is None or len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
            return None
        try:
            return tags.parse(rel, data)
        except Exception:  # a grammar that chokes on one file must not cost the map
            log.debug("repo map: cannot parse %s", rel, exc_info=True)
            return None

    def render(self, files: list[str], selection: Selection | None, instruction: str, max_tokens: int) -> str:
        """The map for one task: what its files (and the names it mentions) lead to, within max_tokens."""
        with self._lock:
            mentioned = set(_words(instruction))
            if selection is not None and (ft := self._graph.tags.get(selection.path)) is not None:
                first, last = selection.start_line - 1, selection.end_line - 1
                mentioned |= {name for name, rows in ft.refs.items() if any(first <= r <= last for r in rows)}
            ranked = rank.rank_definitions(self._graph, files, mentioned)
            return rank.render(ranked, self._graph.tags, max_tokens)


def _words(text: str) -> list[str]:
    """Identifier-like words of an instruction (`fix parse_config's error` names parse_config)."""
    cleaned = "".join(c if c.isalnum() or c == "_" else " " for c in text)
    return [w for w in cleaned.split() if w.isidentifier() and len(w) > 2]


MAX_DIRTY = 5_000  # paths changed between two looks past which one walk is cheaper than remembering them
MAX_WATCHED_DIRS = 20_000  # directories of listed files past which each look walks instead of watching


def listed_dirs(listing: list[str]) -> frozenset[str]:
    """The directories that hold listed files and every directory on the way to them ("" is the root)."""
    dirs = {""}
    for rel in listing:
        d = rel.rpartition("/")[0]
        while d not in dirs:
            dirs.add(d)
            d = d.rpartition("/")[0]
    return frozenset(dirs)


def _kept_and_made(root: str, kept: frozenset[str], made: set[str], limit: int = MAX_WATCHED_DIRS) -> frozenset[str]:
    """Of `kept`, those still directories; each directory in `made` and every directory under it
    (a `mkdir -p` reports only the first), `.git` and symbolic links left out; at most `limit`."""
    out = {d for d in kept if os.path.isdir(os.path.join(root, d)) and not os.path.islink(os.path.join(root, d))}
    for top in sorted(made):
        for here, subdirs, _ in os.walk(os.path.join(root, top)):  # os.walk does not follow links
            rel = os.path.relpath(here, root)
            if len(out) >= limit:
                return frozenset(out)
            out.add(rel)
            subdirs[:] = [d for d in subdirs if d != ".git"]
    return frozenset(out)


class Watch:
    """File-system watches on one workspace's directories that hold what git lists, each directory
    alone (an ignored tree such as node_modules costs nothing): the paths changed since the last look.

    `live` from its first report (changes, or half a second without), until it stops or fails: the
    look after that walks once and then follows its events. A directory made since (or made again:
    its old watch went with it) sets `grew`: the workspace is then watched anew and walked."""

    def __init__(self, root: str, dirs: frozenset[str], ignored: frozenset[str] = frozenset()) -> None:
        self.root = root
        self.dirs = dirs
        self.ignored = ignored  # directories made before that git ignores: made again, they change nothing
        self._prefix = root.rstrip(os.sep) + os.sep
        self.live = False
        self.failed = False
        self.ready = asyncio.Event()  # set once its watches are in place, or it failed
        self.changed: set[str] = set()  # paths relative to the root
        self.relist = False  # a file was added or removed (or a .gitignore changed): git must list again
        self.overflow = False
        self.grew = False  # a directory was made
        self.made: set[str] = set()  # the directories made (relative), until the workspace is watched anew
        self._stopping = False
        self._watch: DirWatch | None = None
        self.task = asyncio.create_task(self._run(), name="pasd-repo-map-watch")

    def take(self) -> tuple[set[str], bool, bool]:
        """(changed paths, whether to list again, whether to walk instead) since the last take."""
        taken = self.changed, self.relist, self.overflow or self.grew
        self.changed, self.relist, self.overflow, self.grew = set(), False, False, False
        return taken

    async def _run(self) -> None:
        try:
            watch = await DirWatch.start(os.path.join(self.root, d) if d else self.root for d in self.dirs)
        except Exception as exc:  # an inotify limit: every look walks the files instead
            self._fail(exc)
            return
        if self._stopping:
            watch.close()
            self.ready.set()
            return
        self._watch = watch
        self.ready.set()
        try:
            async with contextlib.aclosing(watch.changes(quiet=True)) as batches:
                async for changes in batches:
                    if not self.live:
                        self.live = True
                        log.info("repo map: watching %s (%d directories)", self.root, len(self.dirs))
                    self._take_in(changes)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a watcher error: every look walks the files instead
            self._fail(exc)
        finally:
            self.live = False

    def _fail(self, exc: Exception) -> None:
        self.failed = True
        self.ready.set()
        log.warning("repo map: cannot watch %s (%s); each task stats its files instead", self.root, exc)

    def _take_in(self, changes: set[tuple[int, str]]) -> None:
        for change, path in changes:
            if not path.startswith(self._prefix):
                self.overflow = True  # a path not named under the root: walk rather than guess
                continue
            rel = path[len(self._prefix):]
            if rel == ".git" or rel.startswith(".git/") or "/.git/" in rel:
                continue
            name = rel.rsplit("/", 1)[-1]
            if change != MODIFIED or name == ".gitignore":
                self.relist = True
                if change == ADDED and rel not in self.ignored and os.path.isdir(path) and not os.path.islink(path):
                    self.grew = True
                    self.made.add(rel)
            if tags.language_of(name) is not None:
                self.changed.add(rel)
        if len(self.changed) > MAX_DIRTY:
            self.changed.clear()
            self.overflow = True

    async def stop(self) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.stop.set()
        await asyncio.gather(self.task, return_exceptions=True)


class RepoMaps:
    """The daemon's indexes, one per workspace, their file-system watches and the threads that update
    them (owned here). `watch=False` keeps to the walk at every look."""

    def __init__(self, watch: bool = True) -> None:
        self._indexes: OrderedDict[str, WorkspaceIndex] = OrderedDict()
        self._watches: dict[str, Watch] = {}
        self._watching = watch
        self._unwatched: set[str] = set()  # workspaces with too many directories to watch: walked at each look
        self._serial: dict[str, asyncio.Lock] = {}  # one update of a workspace at a time (see _update)
        self._updating: dict[str, asyncio.Task[Any]] = {}  # the latest update of each workspace
        self._jobs: set[asyncio.Task[Any]] = set()  # every update still running
        self.stopping = threading.Event()
        # threads of their own: in the shared default pool (6 threads on 2 cores) a render queued
        # behind the snapshots of a burst of tasks doubled their dispatch time
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pasd-repo-map")

    async def _thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, functools.partial(fn, *args))

    def index(self, workspace: str) -> WorkspaceIndex:
        idx = self._indexes.get(workspace)
        if idx is None:
            idx = self._indexes[workspace] = WorkspaceIndex(Path(workspace), self.stopping)
            while len(self._indexes) > MAX_WORKSPACES:
                gone, _ = self._indexes.popitem(last=False)
                self._serial.pop(gone, None)
                if (w := self._watches.pop(gone, None)) is not None:
                    self._own(w.stop())
        self._indexes.move_to_end(workspace)
        return idx

    def following(self, workspace: str) -> bool:
        """Whether the workspace's next look follows file-system events (its watch runs, and the index
        was walked once under it), rather than walking."""
        w = self._watches.get(workspace)
        idx = self._indexes.get(workspace)
        return w is not None and w.live and idx is not None and idx.synced_with is w

    def watch(self, workspace: str) -> Watch | None:
        """The workspace's watch: None before its first listing, outside git, when watching is off,
        or past MAX_WATCHED_DIRS directories."""
        return self._watches.get(workspace)

    async def _rewatch(self, workspace: str, listing: list[str], wait: bool = True) -> Watch | None:
        """Watch anew, the old watch stopped, the directories of listed files, those the old watch
        had that still exist, and those made since that git does not ignore (an empty one too: a
        file may come into it later); the new watch (once in place, with `wait`)."""
        old = self._watches.pop(workspace, None)
        if old is not None:
            self._own(old.stop())
        if not self._watching or self.stopping.is_set() or workspace in self._unwatched:
            return None
        listed = dirs = await self._thread(listed_dirs, listing)
        ignored = frozenset[str]()
        if old is not None:
            dirs |= await self._thread(_kept_and_made, workspace, old.dirs - dirs, old.made)
            ignored = old.ignored
            if old.made:
                newly = await self._ignored(workspace, dirs - listed)
                dirs -= newly
                ignored |= newly & old.made
        if len(dirs) > MAX_WATCHED_DIRS:
            self._unwatched.add(workspace)
            log.info("repo map: %s has %d directories to watch, over %d: each task stats its files instead",
                     workspace, len(dirs), MAX_WATCHED_DIRS)
            return None
        w = self._watches[workspace] = Watch(workspace, dirs, ignored)
        if wait:
            await w.ready.wait()
        return w

    async def map_for(self, workspace: str, files: list[str], selection: Selection | None,
                      instruction: str, max_tokens: int) -> str:
        """The repo map text for a task; "" when off, outside git, or while a cold index is still building."""
        if max_tokens <= 0 or self.stopping.is_set():
            return ""
        try:
            return await self._map_for(workspace, files, selection, instruction, max_tokens)
        except Exception:  # the map helps a task; it must never fail one
            log.warning("repo map for %s failed; the task runs without it", workspace, exc_info=True)
            return ""

    def warm(self, workspace: str) -> None:
        """Start indexing a workspace a task was submitted for, so that its dispatch finds the index built."""
        running = self._updating.get(workspace)
        if not self.stopping.is_set() and (running is None or running.done()):
            self._updating[workspace] = self._own(self._update(workspace))

    async def _update(self, workspace: str) -> bool:
        """Bring the workspace's index up to date; False outside git."""
        # one at a time: a look that finds no event must not render before the look that took them is done
        async with self._serial.setdefault(workspace, asyncio.Lock()):
            return await self._update_now(workspace)

    async def _update_now(self, workspace: str) -> bool:
        idx = self._indexes.get(workspace)
        w = self._watches.get(workspace)
        unwatched = False  # git lists files in a directory the watch does not cover
        if idx is not None and w is not None and w.live and idx.synced_with is w and not w.grew:
            changed, relist, overflow = w.take()
            if not overflow:
                if not changed and not relist:
                    idx.skip()  # nothing happened: no listing, no stat
                    return True
                listing = await self._list(workspace) if relist else None
                if relist and listing is None:
                    idx.synced_with = None  # what was taken is lost: the next look walks
                    return False
                if listing is None or await self._thread(listed_dirs, listing) <= w.dirs:
                    await self._thread(idx.update_paths, listing, changed)
                    return True
                unwatched = True  # (a .gitignore edit let a directory in): watch anew, and walk
        # the walk: list and stat everything; made under a live watch, it lets the next looks follow events
        first: list[str] | None = None
        if w is None or w.grew or unwatched:
            # a first look, or directories came (or came back, their old watches gone with them):
            # watch what git lists now; the first look does not wait, the next one walks under it
            first = await self._list(workspace)
            if first is None:
                return False
            w = await self._rewatch(workspace, first, wait=w is not None)
        live = w is not None and w.live
        if live and w is not None:
            w.take()  # the walk sees these; what changes from here on is kept for the next look
        listing = first if first is not None and not live else await self._list(workspace)
        if listing is None:
            return False
        idx = self.index(workspace)
        await self._thread(idx.update, listing)
        if live and w is not None and w.live and self._watches.get(workspace) is w and idx.synced_with is not w:
            idx.synced_with = w
            log.info("repo map of %s: following file-system events", workspace)
        return True

    @staticmethod
    async def _ignored(workspace: str, dirs: set[str] | frozenset[str]) -> set[str]:
        """Those of the directories git ignores (or lie under one it ignores)."""
        if not dirs:
            return set()
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        res = await proc.run(["git", *proc.GIT_SAFE, "check-ignore", "-z", "--stdin"], workspace, timeout=30.0,
                             input="".join(d + "/\0" for d in dirs).encode(), env=env)
        if res.code not in (0, 1):  # 1: none is ignored
            return set(dirs)  # cannot tell: watch only what git lists
        ignored = {p.rstrip("/") for p in res.stdout.split("\0") if p}
        return {d for d in dirs if d in ignored or any(d.startswith(i + "/") for i in ignored)}

    @staticmethod
    async def _list(workspace: str) -> list[str] | None:
        """git's listing of the workspace (tracked and untracked, not ignored); None outside git."""
        try:
            out = await proc.git(workspace, "ls-files", "-z", "-co", "--exclude-standard", timeout=30.0)
        except (proc.GitError, OSError):
            return None  # not a git repository (or no longer there): no listing to trust
        return [p for p in out.split("\0") if p]

    async def _map_for(self, workspace: str, files: list[str], selection: Selection | None,
                       instruction: str, max_tokens: int) -> str:
        started = time.monotonic()
        job = self._updating.get(workspace)
        if job is None or job.done():
            job = self._updating[workspace] = self._own(self._update(workspace))
        # else a cold build, or another task's update, is running: its result serves this look too. A
        # burst of dispatches then costs one update, not one walk each queued behind the others.
        if not await self._wait(workspace, job) or job.cancelled() or job.exception() or not job.result():
            return ""
        idx = self.index(workspace)
        text = await self._thread(idx.render, files, selection, instruction, max_tokens)
        s = idx.stats()
        log.debug("repo map of %s: %d files, %d parsed, %d tokens in %.3f s", workspace, s.files,
                  s.last_parsed, rank.estimate_tokens(text), time.monotonic() - started)
        return text

    def _own(self, work: Any) -> asyncio.Task[Any]:
        job = asyncio.create_task(work, name="pasd-repo-map")
        self._jobs.add(job)
        job.add_done_callback(self._done)
        return job

    def _done(self, job: asyncio.Task[Any]) -> None:
        self._jobs.discard(job)
        if not job.cancelled() and job.exception() is not None:
            log.warning("repo map update failed", exc_info=job.exception())

    async def _wait(self, workspace: str, job: asyncio.Task[Any]) -> bool:
        """Whether the job finished within BUILD_WAIT_S (it goes on either way, and its failure is logged)."""
        done, _ = await asyncio.wait({job}, timeout=BUILD_WAIT_S)
        if not done:
            log.info("the repo map of %s is still building; this task runs without it", workspace)
        return bool(done)

    async def close(self) -> None:
        """Stop the watches, and the updates at their next file; wait for their threads."""
        self.stopping.set()
        watches, self._watches = list(self._watches.values()), {}
        await asyncio.gather(*(w.stop() for w in watches), *self._jobs, return_exceptions=True)
        self._updating.clear()
        await asyncio.to_thread(self._threads.shutdown, wait=True)
