"""What runs on a Ray node: one async actor whose slots are Programmers.

The actor rebuilds each task's workspace from its Shipment, runs the same `run_task` as the
local backend and streams progress, then one final Message, back to the daemon. Provider keys
are read from this node's own environment by the engine; nothing secret arrives here.
Health, cancel and warm-up run in their own concurrency group so a full actor still answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import ray
from pydantic import BaseModel, ConfigDict

from daemon.backends.shipment import Mirrors, NeedsFullBundle, Shipment, Staged
from daemon.errors import PasError
from daemon.programmer import llm
from daemon.programmer.engine import run_task
from daemon.programmer.spec import ContextSpec, EngineResult, ProviderFault, TaskFailed, TaskSpec
from daemon.protocol import Receipt

log = logging.getLogger("pasd.node")
CONTROL = "control"  # the concurrency group of health, cancel and warm-up


class Message(BaseModel):
    """One item of a run's stream: progress, then exactly one outcome."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["progress", "ok", "failed", "fault", "error", "stale", "cancelled"]
    phase: str = ""
    message: str = ""
    reason: str = ""
    result: EngineResult | None = None
    receipt: Receipt | None = None
    retry_after: float | None = None
    retryable: bool = False


def node_dir() -> Path:
    """Where this node keeps mirrors and task directories: `$PASD_NODE_DIR`, else the user's cache."""
    env = os.environ.get("PASD_NODE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("pasd")) / "node"


def node_name() -> str:
    """Ray's name for this node (its IP unless `ray start --node-name`), made unique among live nodes."""
    node_id = ray.get_runtime_context().get_node_id()
    alive = [n for n in ray.nodes() if n.get("Alive")]
    name = next((str(n["NodeName"]) for n in alive if n["NodeID"] == node_id), node_id[:8])
    if sum(1 for n in alive if n["NodeName"] == name) > 1:
        name = f"{name}/{node_id[:8]}"
    return name


class ProgrammerNode:
    """A Ray actor (made with `ray.remote` by the daemon's backend); `slot_key` names its work dir."""

    def __init__(self, slot_key: str) -> None:
        root = node_dir()
        self.mirrors = Mirrors(root / "mirrors")
        self.work = root / "work" / slot_key
        shutil.rmtree(self.work, ignore_errors=True)  # what a killed predecessor of this slot left
        self.node = node_name()
        self._running: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Task[Message]]] = {}

    @ray.method(concurrency_group=CONTROL)  # type: ignore[untyped-decorator]
    async def ready(self) -> dict[str, Any]:
        return {"node": self.node, "node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    @ray.method(concurrency_group=CONTROL)  # type: ignore[untyped-decorator]
    async def warm(self) -> None:
        """Import litellm before the first task needs it (seconds, once per actor)."""
        await llm.ensure_loaded()

    @ray.method(concurrency_group=CONTROL)  # type: ignore[untyped-decorator]
    async def health(self) -> bool:
        """The engine's tools work here: git answers and the work dir is writable."""
        try:
            proc = await asyncio.create_subprocess_exec("git", "--version", stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.DEVNULL)
            if await proc.wait() != 0:
                return False
            self.work.mkdir(parents=True, exist_ok=True)
            return os.access(self.work, os.W_OK)
        except OSError:
            return False

    @ray.method(concurrency_group=CONTROL)  # type: ignore[untyped-decorator]
    async def cancel(self, key: str) -> bool:
        """Cancel a running attempt; its snapshot and staged workspace are removed as it unwinds."""
        entry = self._running.get(key)
        if entry is None:
            return False
        loop, job = entry
        loop.call_soon_threadsafe(job.cancel)  # the run lives on the default group's loop
        return True

    async def run(self, spec_json: str, ship: Shipment) -> AsyncIterator[str]:
        """Stream Message JSON: progress as it happens, then the outcome (call with num_returns="streaming")."""
        spec = TaskSpec.model_validate_json(spec_json)
        key = f"{spec.task_id}-{spec.attempt}"
        queue: asyncio.Queue[Message] = asyncio.Queue()

        def progress(phase: str, message: str) -> None:
            queue.put_nowait(Message(kind="progress", phase=phase, message=message))

        job = asyncio.create_task(self._attempt(spec, ship, progress), name=f"attempt-{key}")
        job.add_done_callback(lambda j: queue.put_nowait(_final(j)))
        self._running[key] = (asyncio.get_running_loop(), job)
        try:
            while True:
                msg = await queue.get()
                yield msg.model_dump_json()
                if msg.kind != "progress":
                    return
        finally:
            self._running.pop(key, None)
            if not job.done():  # the daemon went away or cancelled the stream
                job.cancel()
            with contextlib.suppress(BaseException):
                await job

    async def _attempt(self, spec: TaskSpec, ship: Shipment, progress: Callable[[str, str], None]) -> Message:
        key = f"{spec.task_id}-{spec.attempt}"
        progress("snapshot", f"rebuilding the workspace on {self.node}")
        try:
            staged: Staged = await self.mirrors.unpack(ship, self.work / "stage", spec.programmer, key)
        except NeedsFullBundle:
            return Message(kind="stale")
        try:
            await llm.ensure_loaded()
            llm.validate(spec.model)  # this node's keys, not the daemon's
            local = spec.model_copy(update={"workspace": str(staged.workspace),
                                            "worktrees_dir": str(self.work / "snapshots"),
                                            "context": self._reads(spec, ship)})
            result = await run_task(local, progress)
        except PasError as exc:  # missing credentials or an unknown model on this node
            return Message(kind="failed", reason="credentials", message=f"on node {self.node}: {exc.message}")
        except TaskFailed as exc:
            return Message(kind="failed", reason=exc.reason, message=exc.message, retryable=exc.retryable,
                           receipt=self._mark(exc.receipt))
        except ProviderFault as exc:
            return Message(kind="fault", reason=exc.reason, message=exc.message, retry_after=exc.retry_after,
                           receipt=self._mark(exc.receipt))
        finally:
            await asyncio.shield(staged.remove())
        result.receipt = self._mark(result.receipt) or result.receipt
        return Message(kind="ok", result=result)

    def _reads(self, spec: TaskSpec, ship: Shipment) -> ContextSpec:
        """File requests read the rebuilt workspace: a commit checked out here, or only the task's files."""
        if ship.repo is None:
            why = f"the workspace is not reachable from Ray node {self.node}: only the task's files were sent there"
            return spec.context.model_copy(update={"unreachable": why})
        missing = (f"no such file in the commit sent to Ray node {self.node} (untracked files are sent only "
                   "with a check command or an allowlist)")
        return spec.context.model_copy(update={"missing": missing})

    def _mark(self, receipt: Receipt | None) -> Receipt | None:
        return receipt.model_copy(update={"node": self.node}) if receipt is not None else None


def _final(job: asyncio.Task[Message]) -> Message:
    if job.cancelled():
        return Message(kind="cancelled", message="cancelled")
    exc = job.exception()
    if exc is not None:
        log.error("the engine failed", exc_info=exc)
        return Message(kind="error", reason="engine", message=f"{type(exc).__name__}: {exc}")
    return job.result()
