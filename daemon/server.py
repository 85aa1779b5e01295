"""JSON-RPC 2.0 over a Unix socket, one JSON object per line.

Bad input of any kind gets the standard error and the connection stays up; only peers of
another uid are disconnected. `events.subscribe` adds an event stream to the connection.

Each connection is bounded: at most MAX_IN_FLIGHT requests are handled at once (past that the
socket is not read, so the kernel holds the client back), the outgoing buffer is limited, and a
client that reads nothing for `stall_timeout_s` while a reply waits is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import struct
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from daemon import protocol as p
from daemon.errors import PasError
from daemon.events import MAX_QUEUED_BYTES, EventBus, Subscription
from daemon.programmer.llm import scrub
from daemon.service import Service

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
MAX_IN_FLIGHT = 16  # requests handled at once per connection
WRITE_HIGH = 256 * 1024  # outgoing bytes buffered per connection before a writer waits
STALL_TIMEOUT_S = 30.0  # how long a client may leave a reply unread before it is disconnected


def stall_timeout() -> float:
    """STALL_TIMEOUT_S, or `$PASD_STALL_TIMEOUT_S` (tests, and users with very slow clients)."""
    try:
        value = float(os.environ.get("PASD_STALL_TIMEOUT_S", STALL_TIMEOUT_S))
    except ValueError:
        return STALL_TIMEOUT_S
    return value if math.isfinite(value) and value > 0 else STALL_TIMEOUT_S


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def parse(line: bytes) -> Any:
    """Strict JSON: Python's json also takes NaN, Infinity and 1e999, which no other peer can send back."""
    return json.loads(line, parse_constant=_refuse_constant, parse_float=_finite_float)


def peer_uid(sock: socket.socket) -> int | None:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _error(id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    return p.error_response(id, p.RpcError(code=code, message=message, data=data))


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(x) for x in err["loc"]) or "params"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid params: " + "; ".join(parts)


class Connection:
    def __init__(self, server: RpcServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.lock = asyncio.Lock()
        self.subscription: Subscription | None = None
        self.pump: asyncio.Task[None] | None = None
        self.requests: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()  # set while fewer than MAX_IN_FLIGHT requests are in flight
        self._room.set()
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH)

    async def send(self, msg: dict[str, Any]) -> None:
        await self.write((json.dumps(msg, separators=(",", ":")) + "\n").encode())

    async def write(self, data: bytes) -> None:
        """Write and wait until the client has taken most of it; a client that takes nothing for
        `stall_timeout_s` is disconnected."""
        async with self.lock:
            if self.writer.is_closing():
                raise ConnectionResetError("connection closed")
            self.writer.write(data)
            left = self.writer.transport.get_write_buffer_size()
            while True:
                try:
                    async with asyncio.timeout(self.server.stall_timeout_s):
                        await self.writer.drain()
                    return
                except TimeoutError:
                    now = self.writer.transport.get_write_buffer_size()
                    if now < left:  # reading, only slowly (a long reply): keep waiting
                        left = now
                        continue
                log.warning("disconnected a client that left %d bytes unread for %g s", now,
                            self.server.stall_timeout_s)
                self.writer.transport.abort()
                raise ConnectionResetError("the client stopped reading")

    def _request_done(self, task: asyncio.Task[None]) -> None:
        self.requests.discard(task)
        if len(self.requests) < MAX_IN_FLIGHT:
            self._room.set()

    async def lines(self) -> Any:
        """Yield complete lines; an over-long line yields None once and is skipped."""
        buf = bytearray()
        skipping = False
        while True:
            chunk = await self.reader.read(CHUNK)
            if not chunk:
                return
            buf += chunk
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) > p.MAX_LINE_BYTES:
                        if not skipping:
                            yield None
                        skipping = True
                        buf.clear()
                    break
                line = bytes(buf[:nl])
                del buf[: nl + 1]
                if skipping:
                    skipping = False  # the tail of the over-long line
                    continue
                if len(line) > p.MAX_LINE_BYTES:
                    yield None
                    continue
                yield line

    async def serve(self) -> None:
        try:
            async for line in self.lines():
                if line is None:
                    await self.send(_error(None, p.ErrorCode.PARSE_ERROR,
                                           f"line longer than {p.MAX_LINE_BYTES} bytes"))
                    continue
                if not line.strip():
                    continue
                # Requests run concurrently: a long approve never blocks pool.status.
                task = asyncio.create_task(self.handle(line))
                self.requests.add(task)
                task.add_done_callback(self._request_done)
                if len(self.requests) >= MAX_IN_FLIGHT:
                    # read no further: the socket fills up and the kernel holds the client back
                    self._room.clear()
                    await self._room.wait()
        except (ConnectionError, OSError):
            pass
        finally:
            await self.close()

    async def close(self) -> None:
        for task in list(self.requests):
            task.cancel()
        await asyncio.gather(*self.requests, return_exceptions=True)
        if self.subscription is not None:
            self.subscription.close()
        if self.pump is not None:
            self.pump.cancel()
            await asyncio.gather(self.pump, return_exceptions=True)
        self.writer.close()
        try:
            async with asyncio.timeout(self.server.stall_timeout_s):
                await self.writer.wait_closed()
        except TimeoutError:
            self.writer.transport.abort()  # a client that never reads what is left
        except Exception:
            pass

    async def handle(self, line: bytes) -> None:
        reply = await self.server.dispatch(line, self)
        if reply is not None:
            with contextlib.suppress(ConnectionError, OSError):
                await self.send(reply)

    async def subscribe(self, params: p.SubscribeParams) -> p.SubscribeResult:
        if self.subscription is None:
            self.subscription = self.server.bus.subscribe(list(params.kinds) if params.kinds else None,
                                                          max_bytes=MAX_QUEUED_BYTES, on_drop=self._dropped,
                                                          write_through=self._write_through)
            self.pump = asyncio.create_task(self._pump(self.subscription))
        return p.SubscribeResult(status=self.server.service.status())

    def _write_through(self, line: bytes) -> bool:
        """Send an event line now, from the publisher, if nothing else of ours waits to go out.

        The publisher is usually a task's step, which may run on for tens of milliseconds, with other
        tasks' steps queued behind it: a writer task woken by the event would wait for all of them.
        When the client is keeping up (nothing buffered, no write of ours waiting or draining), the
        line goes to the socket here, usually all of it into the kernel at once; otherwise it takes
        the queue, and the pump's drain (with its stall timeout) and the bus's bounds apply.
        """
        transport = self.writer.transport
        if self.lock.locked() or transport.is_closing() or transport.get_write_buffer_size():
            return False
        transport.write(line)
        return True

    def _dropped(self) -> None:
        """The bus dropped this subscriber for falling behind: end the connection now, unread data and all."""
        self.writer.transport.abort()

    async def _pump(self, sub: Subscription) -> None:
        try:
            while (first := await sub.next()) is not None:
                # one write for a burst of events, each encoded once for all subscribers
                await self.write(b"".join(pub.line for pub in [first, *sub.ready()]))
        except (ConnectionError, OSError):
            pass
        finally:
            if sub.overflowed:
                self.writer.transport.abort()


class RpcServer:
    def __init__(self, service: Service, bus: EventBus, path: Path) -> None:
        self.service = service
        self.bus = bus
        self.path = path
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self.stall_timeout_s = stall_timeout()

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # the caller holds the lock: any socket here is stale
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._accept, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        uid = peer_uid(sock) if sock is not None else None
        if uid != os.getuid():
            log.warning("refused a connection from uid %s", uid)
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            await Connection(self, reader, writer).serve()
        except asyncio.CancelledError:
            # close() ends every connection this way; asyncio 3.11 logs a handler task that ends
            # cancelled as an error, so the handler ends normally instead (the transport closes).
            writer.close()
        finally:
            self._conns.discard(task)

    async def dispatch(self, line: bytes, conn: Connection) -> dict[str, Any] | None:
        try:
            msg = parse(line)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return _error(None, p.ErrorCode.PARSE_ERROR, f"parse error: {str(exc)[:200]}")
        if not isinstance(msg, dict):
            return _error(None, p.ErrorCode.INVALID_REQUEST, "invalid request: expected one JSON object per line")
        req_id = msg.get("id")
        if not isinstance(req_id, (str, int, type(None))) or isinstance(req_id, bool):
            return _error(None, p.ErrorCode.INVALID_REQUEST, "invalid request: id must be a string or number")
        method = msg.get("method")
        if msg.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return _error(req_id, p.ErrorCode.INVALID_REQUEST, "invalid request: needs jsonrpc '2.0' and a method")
        is_notification = "id" not in msg
        if method not in p.METHODS:
            return None if is_notification else _error(req_id, p.ErrorCode.METHOD_NOT_FOUND,
                                                       f"method not found: {method}")
        params_model, _ = p.METHODS[method]
        raw = msg.get("params", {})
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            return _error(req_id, p.ErrorCode.INVALID_PARAMS, "invalid params: expected an object")
        try:
            params = params_model.model_validate(raw)
        except ValidationError as exc:
            return _error(req_id, p.ErrorCode.INVALID_PARAMS, _describe(exc))
        except RecursionError:
            return _error(req_id, p.ErrorCode.INVALID_PARAMS, "invalid params: nested too deeply")
        result: BaseModel
        try:
            if method == "events.subscribe":
                assert isinstance(params, p.SubscribeParams)
                result = await conn.subscribe(params)
            else:
                result = await self.service.handlers[method](params)
        except PasError as exc:
            return None if is_notification else p.error_response(req_id, exc.to_rpc())
        except Exception as exc:
            log.exception("internal error in %s", method)
            return _error(req_id, p.ErrorCode.INTERNAL_ERROR, scrub(f"internal error: {type(exc).__name__}: {exc}"))
        return None if is_notification else p.response(req_id, result)
