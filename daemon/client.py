"""Async client for the pasd socket, shared by the CLI, pas-lsp and pas-tui.

Light on purpose: asyncio, pydantic and the protocol models only.
"""

from __future__ import annotations

import asyncio
import builtins
import itertools
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter

from daemon import paths
from daemon import protocol as p
from daemon.errors import DaemonUnavailable, PasError, from_rpc

R = TypeVar("R", bound=BaseModel)

_EVENT = TypeAdapter(p.EventEnvelope)
READ_LIMIT = 1024 * 1024  # the stream's buffer; longer replies are read in pieces of this size


async def read_line(reader: asyncio.StreamReader, max_bytes: int = p.MAX_REPLY_BYTES) -> bytes:
    """One line (with its newline), b"" at end of stream; ValueError past `max_bytes`.

    Replies may be far longer than the stream's buffer: a long one is taken in buffer-sized
    pieces and joined once, so the buffer stays small and nothing is copied over and over.
    """
    parts: list[bytes] = []
    size = 0
    while True:
        try:
            part = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:
            part = await reader.readexactly(exc.consumed)
        except asyncio.IncompleteReadError:
            return b""  # the connection ended, mid-line or not
        size += len(part)
        if size > max_bytes:
            raise ValueError(f"a reply line longer than {max_bytes} bytes")
        parts.append(part)
        if part.endswith(b"\n"):
            return parts[0] if len(parts) == 1 else b"".join(parts)


class PasClient:
    """One connection to the daemon; requests may be issued concurrently."""

    def __init__(self, socket: str | os.PathLike[str] | None = None, *, name: str = "client") -> None:
        self.socket = Path(socket) if socket else paths.socket_path()
        self.name = name
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._read_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------ connection

    async def connect(self) -> PasClient:
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(str(self.socket), limit=READ_LIMIT)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonUnavailable(
                f"the daemon is not running (nothing answers at {self.socket}); start it with `pasd start`") from exc
        except OSError as exc:
            raise DaemonUnavailable(f"cannot connect to {self.socket}: {exc.strerror or exc}") from exc
        self._read_task = asyncio.create_task(self._read_loop(), name=f"pasd-client-{self.name}")
        return self

    async def close(self) -> None:
        if self._read_task is not None:
            self._read_task.cancel()
            try:
                await self._read_task
            except (asyncio.CancelledError, Exception):
                pass
            self._read_task = None
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
            self._writer = None
        self._fail_pending(DaemonUnavailable("connection closed"))

    async def __aenter__(self) -> PasClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._writer is not None and self._read_task is not None and not self._read_task.done()

    def _fail_pending(self, exc: Exception) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await read_line(self._reader)
                if not line:
                    break
                msg = json.loads(line)
                fut = self._pending.pop(msg.get("id"), None)
                if fut is None or fut.done():
                    continue
                if "error" in msg:
                    fut.set_exception(from_rpc(p.RpcError.model_validate(msg["error"])))
                else:
                    fut.set_result(msg.get("result"))
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            # the next call reconnects: a restarted daemon is picked up transparently
            if self._writer is not None:
                self._writer.close()
            self._writer = None
            self._fail_pending(DaemonUnavailable("the daemon closed the connection"))

    # ------------------------------------------------------------ requests

    async def call(self, method: str, params: BaseModel | None = None) -> BaseModel:
        """Send one request; returns the method's result model or raises a PasError."""
        params_model, result_model = p.METHODS[method]
        if params is None:
            params = params_model()
        if self._writer is None:
            if self._read_task is not None:
                await asyncio.gather(self._read_task, return_exceptions=True)
            await self.connect()
        assert self._writer is not None
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        data = (json.dumps(p.request(method, params, req_id)) + "\n").encode()
        try:
            async with self._lock:
                self._writer.write(data)
                await self._writer.drain()
        except OSError as exc:
            self._pending.pop(req_id, None)
            raise DaemonUnavailable(f"lost the daemon: {exc}") from exc
        result = await fut
        return result_model.model_validate(result)

    async def _typed(self, method: str, params: BaseModel | None, kind: type[R]) -> R:
        result = await self.call(method, params)
        assert isinstance(result, kind)
        return result

    async def hello(self) -> p.HelloResult:
        return await self._typed("hello", p.HelloParams(client=self.name), p.HelloResult)

    async def status(self) -> p.PoolStatus:
        return await self._typed("pool.status", None, p.PoolStatus)

    async def submit(self, params: p.SubmitParams) -> p.TaskInfo:
        return await self._typed("task.submit", params, p.TaskInfo)

    async def get(self, task_id: str) -> p.TaskInfo:
        return await self._typed("task.get", p.TaskRef(task_id=task_id), p.TaskInfo)

    async def list(self, params: p.TaskListParams | None = None) -> list[p.TaskInfo]:
        return (await self._typed("task.list", params or p.TaskListParams(), p.TaskList)).tasks

    async def task_page(self, params: p.TaskListParams) -> p.TaskList:
        """One page of tasks with its cursor to the next (and the total, if asked)."""
        return await self._typed("task.list", params, p.TaskList)

    async def cancel(self, task_id: str) -> p.TaskInfo:
        return await self._typed("task.cancel", p.TaskRef(task_id=task_id), p.TaskInfo)

    async def diff(self, task_id: str) -> p.DiffResult:
        return await self._typed("task.diff", p.TaskRef(task_id=task_id), p.DiffResult)

    async def contents(self, task_id: str) -> p.ContentsResult:
        return await self._typed("task.contents", p.TaskRef(task_id=task_id), p.ContentsResult)

    async def approve(self, params: p.ReviewParams) -> p.ReviewResult:
        return await self._typed("task.approve", params, p.ReviewResult)

    async def reject(self, params: p.ReviewParams) -> p.ReviewResult:
        return await self._typed("task.reject", params, p.ReviewResult)

    async def revise(self, params: p.ReviseParams) -> p.TaskInfo:
        return await self._typed("task.revise", params, p.TaskInfo)

    async def receipts(self, params: p.ReceiptsParams | None = None) -> builtins.list[p.Receipt]:
        return (await self._typed("receipts.list", params or p.ReceiptsParams(), p.ReceiptList)).receipts

    async def engines(self) -> builtins.list[p.EngineInfo]:
        return (await self._typed("engines.list", p.Empty(), p.EngineList)).engines

    async def models(self, workspace: str | None = None) -> p.ModelsResult:
        return await self._typed("models.list", p.ModelsParams(workspace=workspace), p.ModelsResult)

    async def trust(self, params: p.TrustParams) -> p.TrustResult:
        return await self._typed("workspace.trust", params, p.TrustResult)

    async def trusted(self) -> p.TrustList:
        return await self._typed("workspace.trusted", None, p.TrustList)

    async def shutdown(self) -> p.ShutdownResult:
        return await self._typed("daemon.shutdown", None, p.ShutdownResult)

    async def submit_job(self, params: p.JobSubmitParams) -> p.JobInfo:
        return await self._typed("job.submit", params, p.JobInfo)

    async def job(self, job_id: str) -> p.JobInfo:
        return await self._typed("job.get", p.JobRef(job_id=job_id), p.JobInfo)

    async def jobs(self, params: p.JobListParams | None = None) -> builtins.list[p.JobInfo]:
        return (await self.job_page(params or p.JobListParams())).jobs

    async def job_page(self, params: p.JobListParams) -> p.JobList:
        """One page of jobs with its cursor to the next."""
        return await self._typed("job.list", params, p.JobList)

    async def cancel_job(self, job_id: str) -> p.JobInfo:
        return await self._typed("job.cancel", p.JobRef(job_id=job_id), p.JobInfo)

    async def job_diff(self, job_id: str) -> p.JobDiffResult:
        return await self._typed("job.diff", p.JobRef(job_id=job_id), p.JobDiffResult)

    async def approve_job(self, params: p.JobReviewParams) -> p.JobReviewResult:
        return await self._typed("job.approve", params, p.JobReviewResult)

    async def reject_job(self, params: p.JobReviewParams) -> p.JobReviewResult:
        return await self._typed("job.reject", params, p.JobReviewResult)

    async def receipts_summary(self, params: p.ReceiptsSummaryParams) -> p.ReceiptSummary:
        return await self._typed("receipts.summary", params, p.ReceiptSummary)

    async def receipt_series(self, params: p.ReceiptSeriesParams | None = None) -> p.ReceiptSeries:
        return await self._typed("receipts.series", params or p.ReceiptSeriesParams(), p.ReceiptSeries)

    async def gc(self, params: p.GcParams) -> p.GcResult:
        return await self._typed("store.gc", params, p.GcResult)

    async def wait_job(self, job_id: str) -> p.JobInfo:
        """Wait on the event stream until the job has stopped running."""
        async with EventStream(self.socket, kinds=["job"]) as events:
            job = await self.job(job_id)
            if not job.state.active:
                return job
            async for env in events:
                ev = env.event
                if isinstance(ev, p.JobEvent) and ev.job.id == job_id and not ev.job.state.active:
                    return ev.job
        raise DaemonUnavailable("the daemon closed the event stream")

    async def wait(self, task_id: str, *, until: set[p.TaskState] | None = None) -> p.TaskInfo:
        """Wait on the event stream until the task reaches a state in `until` (default: done running)."""
        until = until or {s for s in p.TaskState if not s.active}
        async with EventStream(self.socket, kinds=["task"]) as events:
            task = await self.get(task_id)
            if task.state in until:
                return task
            async for env in events:
                ev = env.event
                if isinstance(ev, p.TaskEvent) and ev.task.id == task_id and ev.task.state in until:
                    return ev.task
        raise DaemonUnavailable("the daemon closed the event stream")


class EventStream:
    """A dedicated connection that receives `event` notifications."""

    def __init__(self, socket: str | os.PathLike[str] | None = None,
                 kinds: list[Any] | None = None) -> None:
        self.socket = Path(socket) if socket else paths.socket_path()
        self.kinds = kinds
        self.status: p.PoolStatus | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> EventStream:
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(str(self.socket), limit=READ_LIMIT)
        except OSError as exc:
            raise DaemonUnavailable(f"the daemon is not running (nothing answers at {self.socket})") from exc
        req = p.request("events.subscribe", p.SubscribeParams(kinds=self.kinds), 1)
        self._writer.write((json.dumps(req) + "\n").encode())
        await self._writer.drain()
        line = await read_line(self._reader)
        if not line:
            raise DaemonUnavailable("the daemon closed the event stream")
        msg = json.loads(line)
        if "error" in msg:
            raise from_rpc(p.RpcError.model_validate(msg["error"]))
        self.status = p.SubscribeResult.model_validate(msg["result"]).status
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass

    def __aiter__(self) -> AsyncIterator[p.EventEnvelope]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[p.EventEnvelope]:
        assert self._reader is not None
        while True:
            try:
                line = await read_line(self._reader)
            except OSError:
                return
            if not line:
                return
            msg = json.loads(line)
            if msg.get("method") == "event":
                yield _EVENT.validate_python(msg["params"])


async def connect(socket: str | os.PathLike[str] | None = None, *, name: str = "client") -> PasClient:
    return await PasClient(socket, name=name).connect()



async def ensure_daemon(workers: int | None = None, quiet: bool = False,
                        socket: str | None = None, pool_argv: list[str] | None = None) -> p.HelloResult:
    """Start the daemon in the background unless one answers; returns once the socket is ready."""
    from daemon import launch

    if socket:
        os.environ["PASD_SOCKET"] = socket
    try:
        found = await asyncio.to_thread(launch.start, workers, quiet, extra=pool_argv)
    except launch.LaunchError as exc:
        raise PasError(str(exc)) from None
    return p.HelloResult.model_validate(found)


__all__ = ["DaemonUnavailable", "EventStream", "PasClient", "PasError", "connect", "ensure_daemon"]
