"""JSON-RPC to the daemon over a plain blocking socket: the standard library only.

The quick commands (daemon/cli/quick.py) send a request or two and print the reply, and a script
may call them in a loop: through PasClient each would start asyncio and pydantic first, about three
times what Python's own start costs, for a reply the daemon sends in under a millisecond. The
schema is the same: the daemon validates every request against daemon/protocol.py whoever sends
it, and a reply is the JSON of that method's result model.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from daemon import paths
from daemon.errors import DaemonUnavailable, from_code
from daemon.wire import MAX_REPLY_BYTES


class Connection:
    """One connection; requests go one at a time, each waiting for its reply."""

    def __init__(self, sock_path: Path | None = None) -> None:
        self.path = sock_path or paths.socket_path()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            self._sock.close()
            raise DaemonUnavailable(
                f"the daemon is not running (nothing answers at {self.path}); start it with `pasd start`") from exc
        except OSError as exc:
            self._sock.close()
            raise DaemonUnavailable(f"cannot connect to {self.path}: {exc.strerror or exc}") from exc
        self._file = self._sock.makefile("rb")
        self._ids = 0

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def send(self, method: str, params: dict[str, Any] | None = None) -> int:
        self._ids += 1
        line = json.dumps({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params or {}})
        try:
            self._sock.sendall(line.encode() + b"\n")
        except OSError as exc:
            raise DaemonUnavailable(f"lost the daemon: {exc}") from exc
        return self._ids

    def message(self) -> dict[str, Any]:
        """The next message the daemon sends: a reply or an event notification."""
        try:
            line = self._file.readline(MAX_REPLY_BYTES + 1)
        except OSError as exc:
            raise DaemonUnavailable(f"lost the daemon: {exc}") from exc
        if not line.endswith(b"\n"):
            if len(line) > MAX_REPLY_BYTES:
                raise DaemonUnavailable(f"a reply line longer than {MAX_REPLY_BYTES} bytes")
            raise DaemonUnavailable("the daemon closed the connection")
        try:
            msg = json.loads(line)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            raise DaemonUnavailable("the daemon sent something that is not a JSON-RPC message")
        return msg

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """The method's result (the JSON of its result model), or the typed PasError the daemon answered."""
        req = self.send(method, params)
        while True:
            msg = self.message()
            if msg.get("id") != req:
                continue
            if "error" in msg:
                err = msg["error"]
                raise from_code(err.get("code", 0), str(err.get("message", "")), err.get("data"))
            return msg.get("result")


def call(method: str, params: dict[str, Any] | None = None) -> Any:
    """One request on a connection of its own."""
    with Connection() as conn:
        return conn.call(method, params)


class Events:
    """A connection subscribed to `event` notifications of `kinds`; iterating it gives each
    notification's params (an EventEnvelope's JSON) as they come."""

    def __init__(self, kinds: list[str]) -> None:
        self.kinds = kinds
        self._conn: Connection | None = None

    def __enter__(self) -> Events:
        self._conn = Connection()
        try:
            self._conn.call("events.subscribe", {"kinds": self.kinds})
        except BaseException:
            self._conn.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._conn is not None:
            self._conn.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        assert self._conn is not None
        while True:
            try:
                msg = self._conn.message()
            except DaemonUnavailable:
                return
            if msg.get("method") == "event" and isinstance(msg.get("params"), dict):
                yield msg["params"]
