"""The daemon process: composes store, pool, scheduler, review and the socket server."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO

from daemon import applying, backends, paths
from daemon import protocol as p
from daemon.config import ConfigCache
from daemon.dashboard import Dashboard
from daemon.errors import PasError
from daemon.events import EventBus
from daemon.jobs import JobManager
from daemon.pool import Pool
from daemon.private import make_undumpable, private_files, private_state
from daemon.programmer import llm, snapshot
from daemon.programmer.repomap.index import RepoMaps
from daemon.review import Reviewer
from daemon.revising import Reviser
from daemon.routing import TierFallback
from daemon.scheduler import Scheduler
from daemon.server import RpcServer
from daemon.service import Service
from daemon.store import Store
from daemon.trust import TrustStore
from daemon.watcher import Watcher

log = logging.getLogger("pasd")


class AlreadyRunning(PasError):
    pass


def pasd_version() -> str:
    try:
        return version("pasd")
    except PackageNotFoundError:
        return "0+unknown"


class Lock:
    """An exclusive flock held for the daemon's lifetime; the file records the holder's pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "?"
            fh.close()
            raise AlreadyRunning(f"pasd is already running (pid {pid})") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class Daemon:
    def __init__(self, *, socket_path: Path | None = None, state_dir: Path | None = None,
                 workers: int | None = None, config_file: Path | None = None,
                 pool: dict[str, object] | None = None) -> None:
        self.socket_path = socket_path or paths.socket_path()
        self.state_dir = state_dir or paths.state_dir()
        # 0 is not "the default": the settings' bounds refuse it
        pool_overrides = {**({"workers": workers} if workers is not None else {}), **(pool or {})}
        overrides = {"pool": pool_overrides} if pool_overrides else {}
        self.configs = ConfigCache(config_file, overrides, TrustStore(self.state_dir))
        self.settings = self.configs.get()  # a bad user config stops the start with its message
        self.run_id = time.strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()
        self._stop = asyncio.Event()
        self._locks = [Lock(Path(str(self.socket_path) + ".lock")), Lock(self.state_dir / "pasd.lock")]

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        # before anything is read or loaded: other processes of this user cannot read our memory or
        # /proc/<pid>/environ (where the model keys are), nor attach a debugger
        make_undumpable()
        for lock in self._locks:
            lock.acquire()
        try:
            await self._run()
        finally:
            for lock in reversed(self._locks):
                lock.release()

    async def _run(self) -> None:
        private_state(self.state_dir)  # the lock file is new, or an older daemon left 0644 files
        worktrees = self.state_dir / "worktrees"
        cleaned = await snapshot.clean_stale(worktrees)
        if cleaned:
            log.info("removed %d stale snapshots", cleaned)
        store = Store(self.state_dir)
        if mended := store.reconcile_jsonl():
            log.info("restored %d receipts to their JSONL files", mended)
        bus = EventBus()
        if interrupted := await applying.recover(store, bus):  # before serving: no review sees a half-done approve
            log.warning("finished or undid %d approve(s) a stop interrupted", interrupted)
        backend = await backends.create(self.settings.pool, worktrees, self.state_dir)
        pool = Pool(self.settings.pool.workers, backend, bus)
        backends.attach(backend, pool)
        scheduler = Scheduler(store, pool, bus, self.configs.get, self.run_id, worktrees)
        requeued, failed = scheduler.recover(self.settings.pool.max_retries)
        if requeued or failed:
            log.info("recovered after a stop: %d tasks re-queued, %d failed", requeued, failed)
        hello = p.HelloResult(version=pasd_version(), pid=os.getpid(), run_id=self.run_id,
                              socket=str(self.socket_path), state_dir=str(self.state_dir))
        reviewer = Reviewer(store, bus)
        watcher = Watcher(store, bus, reviewer, self.configs)
        service = Service(store=store, pool=pool, bus=bus, scheduler=scheduler, reviewer=reviewer,
                          configs=self.configs, hello=hello, on_shutdown=self.request_stop)
        scheduler.fallback = TierFallback(store, self.configs.get)
        maps = scheduler.maps = RepoMaps()
        jobs = JobManager(service)
        Reviser(service, jobs)
        private_files(self.state_dir)  # the job store's database (and its -wal) is made by now
        server = RpcServer(service, bus, self.socket_path)
        await server.start()
        if self.settings.web.enabled:  # the user's config only, read at start (never a workspace's)
            service.dashboard = Dashboard(self.socket_path, self.state_dir, self.settings.web.port)
            service.dashboard.start()
        scheduler.start()
        watcher.start()
        jobs.start()
        service.retention.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        if missing := paths.missing_config():
            log.warning("%s", missing)
        log.info("pasd %s serving on %s with %d programmers (run %s)", hello.version, self.socket_path,
                 len(pool.programmers), self.run_id)
        try:
            await self._stop.wait()
        finally:
            log.info("stopping")
            await service.retention.close()  # first: a gc under way ends after its batch, not after the rest
            if service.dashboard is not None:
                await service.dashboard.close()
            await server.close()
            await watcher.close()
            await jobs.close()
            await scheduler.close()
            await maps.close()
            await pool.backend.close()
            await llm.aclose()  # the direct provider path's connections
            store.close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)


def serve(socket_path: Path | None, state_dir: Path | None, workers: int | None,
          pool: dict[str, object] | None = None) -> int:
    """Run the daemon in the foreground until stopped; 0 on a clean stop. `pool`: [pool] overrides."""
    state = state_dir or paths.state_dir()
    private_state(state)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # watchfiles logs every change at INFO; with the log beside a watched config file that loops forever
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    daemon = Daemon(socket_path=socket_path, state_dir=state, workers=workers, pool=pool)
    asyncio.run(daemon.run())
    return 0
