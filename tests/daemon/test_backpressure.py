"""A client that writes without reading cannot grow the daemon: each connection has a bounded
number of requests in flight and a bounded outgoing buffer, a stalled client is disconnected,
and an event subscriber that falls behind is dropped and its connection closed."""

from __future__ import annotations

import json
import select
import socket
import time
from pathlib import Path

from daemon import protocol as p
from daemon.testing import DaemonFactory, DaemonProcess

TERMINAL = {s.value for s in p.TaskState if not s.active}

REQUEST = b'{"jsonrpc":"2.0","id":1,"method":"pool.status"}\n'


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def connections(sock: Path) -> int:
    """Connections the daemon holds open on its socket (accepted sockets carry its path in /proc/net/unix)."""
    n = 0
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 8 and parts[7] == str(sock) and parts[5] == "03":
            n += 1
    return n


def wait_until(cond: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def flood(sock: Path, requests: int) -> tuple[socket.socket, int]:
    """Write requests and never read a reply; returns the socket and how many bytes the daemon let in."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(sock))
    s.setblocking(False)
    blob = REQUEST * requests
    sent = 0
    while sent < len(blob):
        try:
            sent += s.send(blob[sent:sent + 65536])
        except BlockingIOError:
            if not select.select([], [s], [], 3.0)[1]:
                break  # the daemon stopped reading this socket: the kernel holds the client back
        except (BrokenPipeError, ConnectionResetError):
            break
    return s, sent


def drain_to_eof(s: socket.socket) -> None:
    """Read what the daemon sent until it closes the connection (or resets it)."""
    s.setblocking(True)
    s.settimeout(30)
    try:
        while s.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass


async def test_a_client_that_never_reads_cannot_grow_the_daemon(daemon: DaemonProcess) -> None:
    assert daemon.proc is not None
    pid = daemon.proc.pid
    before = rss_mb(pid)
    bad, sent = flood(daemon.socket, 200_000)
    try:
        assert sent < len(REQUEST) * 200_000  # pushed back long before the last request
        grown = rss_mb(pid) - before
        assert grown < 100, f"the daemon grew by {grown:.0f} MB"
        async with daemon.client() as c:  # another client is served meanwhile
            assert len((await c.status()).programmers) == 4
            assert connections(daemon.socket) == 2
    finally:
        bad.close()
    wait_until(lambda: connections(daemon.socket) == 0, "the daemon to let go of the connection")
    assert rss_mb(pid) - before < 100
    async with daemon.client() as c:
        assert len((await c.status()).programmers) == 4


async def test_a_stalled_client_is_disconnected(make_daemon: DaemonFactory) -> None:
    d = make_daemon(env={"PASD_STALL_TIMEOUT_S": "2"})
    bad, _ = flood(d.socket, 50_000)
    try:
        # the daemon closes the connection by itself while the client still holds it open
        wait_until(lambda: connections(d.socket) == 0, "the daemon to drop the stalled client")
        drain_to_eof(bad)
    finally:
        bad.close()
    assert "disconnected a client that left" in d.log.read_text()
    async with d.client() as c:
        assert len((await c.status()).programmers) == 4


async def test_a_subscriber_that_falls_behind_is_dropped_and_closed(make_daemon: DaemonFactory, repo: Path) -> None:
    d = make_daemon(workers=2, env={"PASD_STALL_TIMEOUT_S": "600"})  # only the event bus's bound can act
    sub = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sub.connect(str(d.socket))
    sub.sendall(b'{"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{}}\n')  # and never read
    big = "note this. " + "x" * 200_000  # each task event carries the instruction
    try:
        async with d.client() as c:
            wait_until(lambda: connections(d.socket) == 2, "both connections")
            for _ in range(200):
                await c.submit(p.SubmitParams(workspace=str(repo), instruction=big, files=["app.py"]))
                if "dropped a subscriber that fell behind" in d.log.read_text():
                    break
            else:
                raise AssertionError("the subscriber was never dropped")
            wait_until(lambda: connections(d.socket) == 1, "the daemon to close the subscriber's connection")
            # only the client's subscription: the daemon's own (jobs, the file watcher) keep theirs
            assert d.log.read_text().count("dropped a subscriber") == 1
            drain_to_eof(sub)
            assert len((await c.status()).programmers) == 2
    finally:
        sub.close()


def read_events(s: socket.socket, until: set[str]) -> tuple[list[dict[str, object]], int]:
    """Read a subscriber's stream until each task in `until` has had a terminal task event;
    returns the event envelopes in arrival order and the bytes read."""
    s.setblocking(True)
    s.settimeout(60)
    envs: list[dict[str, object]] = []
    left = set(until)
    buf = b""
    total = 0
    while left:
        data = s.recv(1 << 20)
        assert data, "the daemon closed the subscriber's connection"
        total += len(data)
        buf += data
        *lines, buf = buf.split(b"\n")
        for line in lines:
            msg = json.loads(line)
            if msg.get("method") != "event":
                continue
            env = msg["params"]
            envs.append(env)
            ev = env["event"]
            if ev["kind"] == "task" and ev["task"]["state"] in TERMINAL:
                left.discard(ev["task"]["id"])
    return envs, total


async def test_a_subscriber_that_reads_late_gets_every_event_in_order(make_daemon: DaemonFactory,
                                                                      repo: Path) -> None:
    """Events go straight to a subscriber that keeps up and queue for one that does not: a subscriber
    that reads nothing for a while, then reads while tasks still run, gets every event once and in order."""
    d = make_daemon(workers=2, env={"PASD_STALL_TIMEOUT_S": "600"})
    sub = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sub.connect(str(d.socket))
    sub.sendall(b'{"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{}}\n')
    note = "note this. " + "x" * 40_000  # each task event carries the instruction
    try:
        async with d.client() as c:
            wait_until(lambda: connections(d.socket) == 2, "both connections")
            ids = [(await c.submit(p.SubmitParams(workspace=str(repo), instruction=note, files=["app.py"]))).id
                   for _ in range(30)]
            await c.wait(ids[len(ids) // 2])  # half of them published while the subscriber reads nothing
            envs, total = read_events(sub, set(ids))
            # more than the socket's buffers hold: the daemon queued part of the stream meanwhile
            assert total > 4 * sub.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            seqs = [int(env["seq"]) for env in envs]  # type: ignore[call-overload]
            # no kinds asked for: every event published since the subscription, none twice, in order
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            assert {env["event"]["task"]["id"] for env in envs  # type: ignore[index]
                    if env["event"]["kind"] == "task"} == set(ids)  # type: ignore[index]
            assert "dropped a subscriber" not in d.log.read_text()
    finally:
        sub.close()
