"""The socket under hostile input: other users are refused; fuzzed JSON-RPC never brings it down."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon import protocol as p
from daemon.testing import DaemonProcess

NOBODY_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"pool.status"}\\n')
    data = s.recv(65536)
except OSError as exc:
    data = b""
print("REPLY" if data else "CLOSED")
"""


@pytest.mark.skipif(os.getuid() != 0 or not shutil.which("setpriv"), reason="needs root to act as another user")
def test_connections_from_another_uid_are_refused(tmp_path: Path) -> None:
    # a socket `nobody` can reach at all (/tmp may be private); the daemon itself must refuse
    daemon = DaemonProcess(tmp_path, workers=1, config={}, sock_parent="/var/tmp").start()
    try:
        os.chmod(daemon.socket.parent, 0o755)
        os.chmod(daemon.socket, 0o666)
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
        as_nobody = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                    python, "-c", NOBODY_CLIENT, str(daemon.socket)],
                                   capture_output=True, text=True, timeout=30)
        assert as_nobody.stdout.strip() == "CLOSED", as_nobody.stderr
        assert "refused a connection from uid 65534" in daemon.log.read_text()
        assert daemon.answers()  # and the owner is still served
    finally:
        daemon.cleanup()


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("fuzz"), workers=1, config={})
    yield d.start()
    d.cleanup()


class Conn:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")

    def ask(self, line: bytes) -> dict[str, object] | None:
        self.sock.sendall(line + b"\n")
        reply = self.reader.readline()
        return json.loads(reply) if reply else None

    def hello(self, n: int) -> None:
        reply = self.ask(json.dumps({"jsonrpc": "2.0", "id": f"h{n}", "method": "hello"}).encode())
        assert reply is not None and reply["id"] == f"h{n}" and "result" in reply, reply


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=50))
json_any = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                          st.dictionaries(st.text(max_size=10), inner, max_size=5)),
                        max_leaves=30)
safe_methods = sorted(set(p.METHODS) - {"daemon.shutdown", "events.subscribe", "task.submit"})


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(max_size=300).filter(lambda b: b"\n" not in b))
def test_random_bytes(fuzz_daemon: DaemonProcess, garbage: bytes) -> None:
    conn = Conn(fuzz_daemon.socket)
    if garbage.strip():
        reply = conn.ask(garbage)
        assert reply is not None and "error" in reply
    conn.hello(0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.one_of(st.sampled_from(safe_methods), st.text(max_size=20)), params=json_any,
       req_id=st.one_of(st.integers(), st.text(max_size=8), st.none(), st.lists(st.integers(), max_size=2)))
def test_random_requests_get_an_answer_and_the_daemon_stays_up(fuzz_daemon: DaemonProcess, method: str,
                                                               params: object, req_id: object) -> None:
    if method in ("daemon.shutdown", "events.subscribe", "task.submit"):
        method = "pool.status"
    conn = Conn(fuzz_daemon.socket)
    msg = {"jsonrpc": "2.0", "id": req_id if req_id is not None else 0, "method": method, "params": params}
    reply = conn.ask(json.dumps(msg).encode())
    assert reply is not None
    assert ("result" in reply) != ("error" in reply)
    if "error" in reply:
        err = reply["error"]
        assert isinstance(err, dict) and isinstance(err["code"], int) and err["message"]
    conn.hello(1)


@pytest.mark.parametrize("payload", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    json.dumps({"jsonrpc": "2.0", "id": 1, "method": "task.get", "params": {"task_id": "x" * 4_000_000}}).encode(),
    json.dumps({"jsonrpc": "2.0", "id": 1, "method": "task.list", "params": {"limit": "many"}}).encode(),
    json.dumps({"jsonrpc": "2.0", "id": 1, "method": "task.approve",
                "params": {"task_id": "x", "hunks": "1"}}).encode(),
    b"\xff\xfe\x00garbage",
])
def test_pathological_payloads(fuzz_daemon: DaemonProcess, payload: bytes) -> None:
    conn = Conn(fuzz_daemon.socket)
    reply = conn.ask(payload)
    assert reply is not None and "error" in reply
    conn.hello(2)
