"""The daemon's repo-map index: each workspace's parse results, kept up to date instead of rebuilt per task.

A task's dispatch lists the files git would list (tracked and untracked, not ignored), stats them
in a thread and parses only those whose (mtime, size, inode) changed since the last look; the map
is then ranked and rendered from the cached tags. Symbolic links, files over MAX_FILE_BYTES,
binary files and secret-looking files are never read. The engine gets the map as text in its
TaskSpec, so a remote Programmer needs none of this.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import re
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon import safe_io
from daemon.programmer import proc
from daemon.programmer.repomap import rank, tags
from daemon.protocol import Selection

log = logging.getLogger(__name__)

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
    only the files that changed)."""

    files: int
    parses: int
    updates: int
    last_parsed: int


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
        self._parses = self._updates = self._last_parsed = 0

    def stats(self) -> Stats:
        with self._lock:
            return Stats(len(self._stamps), self._parses, self._updates, self._last_parsed)

    def update(self, listing: list[str]) -> int:
        """Stat the listed files and parse the new and changed ones; how many were parsed."""
        with self._lock:
            if listing != self._listing:  # the same listing as last time: its filtering is done
                self._listing = listing
                self._candidates = [rel for rel in listing if tags.language_of(rel) is not None
                                    and not secret_looking(rel)][:MAX_FILES]
            try:
                root = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                return 0
            try:
                return self._update(root)
            finally:
                os.close(root)

    def _update(self, root: int) -> int:
        parsed = 0
        seen: set[str] = set()
        for rel in self._candidates:
            if self.stopping.is_set():
                break
            try:
                st = os.stat(rel, dir_fd=root, follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
                continue  # a symbolic link is not followed, whatever it points at
            seen.add(rel)
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
            if self._stamps.get(rel) == key:
                continue
            self._stamps[rel] = key
            self._graph.put(rel, self._parse(rel))
            parsed += 1
        gone = set(self._stamps) - seen if not self.stopping.is_set() else set()
        for rel in gone:
            del self._stamps[rel]
            self._graph.put(rel, None)
        self._parses += parsed
        self._updates += 1
        self._last_parsed = parsed
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


class RepoMaps:
    """The daemon's indexes, one per workspace, and the threads that update them (owned here)."""

    def __init__(self) -> None:
        self._indexes: OrderedDict[str, WorkspaceIndex] = OrderedDict()
        self._updating: dict[str, asyncio.Task[Any]] = {}  # the latest update of each workspace
        self._jobs: set[asyncio.Task[Any]] = set()  # every update still running
        self.stopping = threading.Event()

    def index(self, workspace: str) -> WorkspaceIndex:
        idx = self._indexes.get(workspace)
        if idx is None:
            idx = self._indexes[workspace] = WorkspaceIndex(Path(workspace), self.stopping)
            while len(self._indexes) > MAX_WORKSPACES:
                self._indexes.popitem(last=False)
        self._indexes.move_to_end(workspace)
        return idx

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
        """List the workspace's files with git and bring its index up to date; False outside git."""
        try:
            out = await proc.git(workspace, "ls-files", "-z", "-co", "--exclude-standard", timeout=30.0)
        except (proc.GitError, OSError):
            return False  # not a git repository (or no longer there): no listing to trust
        await asyncio.to_thread(self.index(workspace).update, [p for p in out.split("\0") if p])
        return True

    async def _map_for(self, workspace: str, files: list[str], selection: Selection | None,
                       instruction: str, max_tokens: int) -> str:
        started = time.monotonic()
        running = self._updating.get(workspace)
        if running is not None and not running.done():
            # a cold build, or another task's update: wait for it, then look again (cheap once it is done)
            if not await self._wait(workspace, running):
                return ""
        job = self._updating[workspace] = self._own(self._update(workspace))
        if not await self._wait(workspace, job) or job.cancelled() or job.exception() or not job.result():
            return ""
        idx = self.index(workspace)
        text = await asyncio.to_thread(idx.render, files, selection, instruction, max_tokens)
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
        """Stop the updates at their next file; wait for their threads."""
        self.stopping.set()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        self._updating.clear()
