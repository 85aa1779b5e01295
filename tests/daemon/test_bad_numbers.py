"""Numbers that are not numbers (NaN, Infinity), out of range, or records that no longer load:
clean errors at the socket, and a daemon that starts and dispatches whatever is stored."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from daemon import protocol as p
from daemon.client import EventStream
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, occupy


def exchange(sock_path: os.PathLike[str] | str, *lines: bytes) -> list[dict[str, object]]:
    """Send raw lines on one connection; read one reply per line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(sock_path))
        reader = s.makefile("rb")
        out = []
        for line in lines:
            s.sendall(line + b"\n")
            out.append(json.loads(reader.readline()))
        return out


def submit_line(repo: Path, id: int, raw: str, *, selection: str = "") -> bytes:
    """A task.submit request with one field written verbatim (so it may hold what json.dumps cannot)."""
    sel = f', "selection": {selection}' if selection else ""
    return (f'{{"jsonrpc": "2.0", "id": {id}, "method": "task.submit", "params": {{"workspace": '
            f'{json.dumps(str(repo))}, "instruction": "x", "files": ["app.py"]{sel}, {raw}}}}}').encode()


def test_non_finite_and_out_of_range_numbers_get_clean_errors(daemon: DaemonProcess, repo: Path) -> None:
    cases = [
        ("NaN constant", '"timeout_s": NaN', -32700),
        ("Infinity constant", '"timeout_s": Infinity', -32700),
        ("-Infinity constant", '"budget_usd": -Infinity', -32700),
        ("a float that overflows to inf", '"timeout_s": 1e999', -32700),
        ("a timeout past a week", '"timeout_s": 1e12', -32602),
        ("a negative timeout", '"timeout_s": -5', -32602),
        ("a zero timeout", '"timeout_s": 0', -32602),
        ("a huge budget", '"budget_usd": 1e300', -32602),
        ("a negative budget", '"budget_usd": -1', -32602),
        ("a huge priority", f'"priority": {10**30}', -32602),
        ("a priority with 5000 digits", f'"priority": {"9" * 5000}', -32700),
    ]
    lines = [submit_line(repo, i, raw) for i, (_, raw, _) in enumerate(cases)]
    lines.append(submit_line(repo, 99, '"priority": 0',
                             selection='{"path": "app.py", "start_line": 1, "end_line": 100000000000}'))
    lines.append(b'{"jsonrpc": "2.0", "id": 100, "method": "task.approve", '
                 b'"params": {"task_id": "x", "hunks": [1e400]}}')
    lines.append(b'{"jsonrpc": "2.0", "id": 101, "method": "receipts.summary", "params": {"since": NaN}}')
    lines.append(b'{"jsonrpc": "2.0", "id": 102, "method": "task.list"}')
    replies = exchange(daemon.socket, *lines)
    for (what, _, code), reply in zip(cases, replies, strict=False):
        assert reply.get("error", {}).get("code") == code, (what, reply)  # type: ignore[union-attr]
    assert replies[0]["error"]["message"] == "parse error: NaN is not valid JSON"  # type: ignore[index]
    assert "timeout_s" in replies[4]["error"]["message"]  # type: ignore[index]
    assert "end_line" in replies[len(cases)]["error"]["message"]  # type: ignore[index]
    assert [r["error"]["code"] for r in replies[len(cases) + 1:-1]] == [-32700, -32700]  # type: ignore[index]
    assert replies[-1]["result"]["tasks"] == []  # nothing was stored, the connection still serves


def test_cli_refuses_infinite_timeout_and_budget(tmp_path: Path) -> None:
    for flag, value in (("--timeout", "inf"), ("--timeout", "nan"), ("--timeout", "0"), ("--budget", "-1"),
                        ("--budget", "Infinity")):
        r = subprocess.run([sys.executable, "-m", "daemon", "submit", "x", "--file", "a.py", flag, value],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert r.returncode == 2, (flag, value, r.stderr)
        assert f"argument {flag}: expected a number" in r.stderr.splitlines()[-1]


def test_workers_zero_is_a_usage_error(tmp_path: Path) -> None:
    try:
        _workers_zero_is_a_usage_error(tmp_path)
    finally:  # a regression would have started a daemon: stop it
        if (tmp_path / "s.sock").exists():
            exchange(tmp_path / "s.sock", b'{"jsonrpc": "2.0", "id": 1, "method": "daemon.shutdown"}')


def _workers_zero_is_a_usage_error(tmp_path: Path) -> None:
    for argv in (["start", "--workers", "0"], ["serve", "--workers", "0"], ["start", "--workers", "-2"],
                 ["start", "--foreground", "--workers", "513"]):
        r = subprocess.run([sys.executable, "-m", "daemon", *argv], capture_output=True, text=True, timeout=60,
                           env={"PASD_SOCKET": str(tmp_path / "s.sock"), "PASD_STATE_DIR": str(tmp_path / "state"),
                                "PATH": "/usr/bin:/bin"})
        assert r.returncode == 2, (argv, r.stderr)
        [line] = r.stderr.splitlines()
        assert line.startswith("pasd: --workers takes a whole number from 1 to 512") and argv[-1] in line
    assert not (tmp_path / "s.sock").exists()  # no daemon was started


def test_the_daemon_refuses_zero_workers(tmp_path: Path) -> None:
    from daemon.app import Daemon
    from daemon.errors import ConfigError

    try:
        Daemon(socket_path=tmp_path / "s.sock", state_dir=tmp_path / "state", workers=0,
               config_file=tmp_path / "none.toml")
    except ConfigError as exc:
        assert "pool.workers" in exc.message
    else:
        raise AssertionError("0 workers must not mean the default")


def corrupt(state_dir: Path, task_id: str, sql: str, *args: object) -> None:
    """Change a task's stored row behind the daemon's back, as a bug or a broken disk would."""
    db = sqlite3.connect(state_dir / "pasd.db", isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        assert db.execute(f"UPDATE tasks SET {sql} WHERE id = ?", (*args, task_id)).rowcount == 1
    finally:
        db.close()


async def test_unreadable_stored_tasks_fail_and_the_daemon_starts(make_daemon: DaemonFactory, repo: Path) -> None:
    d = make_daemon(workers=2)
    async with d.client() as c:
        ids = [(await c.submit(p.SubmitParams(workspace=str(repo), instruction=f"note {i}", files=["app.py"]))).id
               for i in range(4)]
        for task_id in ids:
            await c.wait(task_id)
    d.stop()
    null_timeout, bad_json, bad_state, requeued = ids
    # what `--timeout inf` used to leave behind: a queued task whose timeout is null
    corrupt(d.state_dir, null_timeout, "state = 'QUEUED', info = json_set(info, '$.state', 'QUEUED', "
                                       "'$.timeout_s', json('null'))")
    corrupt(d.state_dir, bad_json, "state = 'RUNNING', info = ?", '{"id": "half a record')
    corrupt(d.state_dir, bad_state, "state = 'LIMBO', info = json_set(info, '$.state', 'LIMBO')")
    corrupt(d.state_dir, requeued, "state = 'QUEUED', info = json_set(info, '$.state', 'QUEUED')")
    d.start()
    async with d.client() as c:
        listed = {t.id: t for t in await c.list()}
        assert set(listed) == set(ids)
        for task_id in (null_timeout, bad_json, bad_state):
            t = await c.get(task_id)
            assert t.state is p.TaskState.FAILED and t.reason == "unreadable", t
            assert (t.error or "").startswith("stored record unreadable: "), t.error
            assert listed[task_id].state is p.TaskState.FAILED
        kept = await c.get(null_timeout)
        assert kept.instruction == "note 0" and kept.files == ["app.py"]  # what could be read is kept
        assert "timeout_s" in (kept.error or "")
        assert (await c.get(bad_json)).instruction == "(unreadable)"
        # the well-formed queued task runs, and so does a new one
        assert (await c.wait(requeued)).state is p.TaskState.REVIEW
        new = await c.submit(p.SubmitParams(workspace=str(repo), instruction="after", files=["util.py"]))
        assert (await c.wait(new.id)).state is p.TaskState.REVIEW
    assert "stored record unreadable" in d.log.read_text()


async def test_a_row_corrupted_while_queued_does_not_stop_dispatch(make_daemon: DaemonFactory,
                                                                   offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(workers=1)
    # a rule, not a script entry: the blocker may be cancelled before its request reaches the model
    offline.set_rules([{"match": r"### INSTRUCTION\nhang\b", "fault": "hang", "latency": 120}])
    async with d.client() as c, EventStream(d.socket, kinds=["task"]) as events:
        blocker = await occupy(c, events, repo)
        queued = await c.submit(p.SubmitParams(workspace=str(repo), instruction="queued", files=["util.py"]))
        corrupt(d.state_dir, queued.id, "info = json_set(info, '$.priority', 'high')")
        await c.cancel(blocker)  # the only programmer is free: the dispatcher reads the corrupted row
        assert (await c.wait(queued.id)).reason == "unreadable"
        after = await c.submit(p.SubmitParams(workspace=str(repo), instruction="after", files=["util.py"]))
        assert (await c.wait(after.id)).state is p.TaskState.REVIEW


async def test_an_infinite_timeout_in_the_config_is_the_longest_a_task_may_have(make_daemon: DaemonFactory,
                                                                                repo: Path) -> None:
    d = make_daemon(workers=1, guardrails={"task_timeout_s": float("inf")})  # `inf` is valid TOML
    async with d.client() as c:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="note", files=["app.py"]))
        assert task.timeout_s == p.MAX_TIMEOUT_S
        assert (await c.wait(task.id)).state is p.TaskState.REVIEW
    d.restart()  # and it is stored as a number the next start reads
    async with d.client() as c:
        assert (await c.get(task.id)).timeout_s == p.MAX_TIMEOUT_S
