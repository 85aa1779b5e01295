"""The socket: JSON-RPC errors for bad input, the daemon keeps serving, same-uid only, 0600."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat

from daemon.errors import DaemonUnavailable
from daemon.testing import DaemonProcess


def exchange(sock_path: os.PathLike[str] | str, *lines: bytes) -> list[dict[str, object]]:
    """Send raw lines on one connection; read one reply per line that expects one."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(str(sock_path))
        reader = s.makefile("rb")
        out = []
        for line in lines:
            s.sendall(line if line.endswith(b"\n") else line + b"\n")
            out.append(json.loads(reader.readline()))
        return out


def test_bad_requests_get_jsonrpc_errors_and_connection_survives(daemon: DaemonProcess) -> None:
    replies = exchange(
        daemon.socket,
        b"this is not json",
        b"[1, 2, 3]",
        b'{"jsonrpc": "2.0", "id": 1, "method": "no.such.method"}',
        b'{"jsonrpc": "2.0", "id": 2, "method": "task.get", "params": {"task_id": 42}}',
        b'{"jsonrpc": "2.0", "id": 3, "method": "task.submit", "params": {"workspace": "/tmp"}}',
        b'{"jsonrpc": "1.0", "id": 4, "method": "hello"}',
        b'{"jsonrpc": "2.0", "id": 5, "method": "task.get", "params": ["positional"]}',
        b'{"jsonrpc": "2.0", "id": 6, "method": "task.get", "params": {"task_id": "zzzzzz"}}',
        b'{"jsonrpc": "2.0", "id": 7, "method": "pool.status"}',
    )
    codes = [r.get("error", {}).get("code") for r in replies]  # type: ignore[union-attr]
    assert codes == [-32700, -32600, -32601, -32602, -32602, -32600, -32602, -32001, None]
    assert "instruction" in replies[4]["error"]["message"]  # type: ignore[index]
    assert replies[7]["error"]["message"] == "no task 'zzzzzz'"  # type: ignore[index]
    assert len(replies[8]["result"]["programmers"]) == 4  # type: ignore[index]


def test_oversized_line_is_refused_and_next_request_served(daemon: DaemonProcess) -> None:
    big = b'{"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {"client": "' + b"x" * (9 * 2**20) + b'"}}'
    replies = exchange(daemon.socket, big, b'{"jsonrpc": "2.0", "id": 2, "method": "hello"}')
    assert replies[0]["error"]["code"] == -32700  # type: ignore[index]
    assert replies[1]["result"]["server"] == "pasd"  # type: ignore[index]


def test_socket_and_dir_permissions(daemon: DaemonProcess) -> None:
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(daemon.socket.parent).st_mode) == 0o700


async def test_models_list_and_client_reconnects_after_restart(daemon: DaemonProcess) -> None:
    async with daemon.client() as c:
        models = await c.models()
        assert models.default == "openai/pasd-offline" and models.choices[0] == "openai/pasd-offline"
        daemon.restart()
        # the same client object reconnects on its next call
        for _ in range(100):
            try:
                assert (await c.hello()).server == "pasd"
                break
            except DaemonUnavailable:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the client did not reconnect")
