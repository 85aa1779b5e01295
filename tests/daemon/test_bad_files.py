"""Files and paths a task cannot use: binary files are the task's fault (never a programmer's),
and paths the system cannot take are refused at the socket."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.client import EventStream
from daemon.errors import InvalidParams
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, occupy

BINARY = b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary"


def exchange(sock_path: os.PathLike[str] | str, *requests: dict[str, object]) -> list[dict[str, object]]:
    """Send requests on one raw connection (json.dumps writes a NUL as \\u0000); one reply each."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(sock_path))
        reader = s.makefile("rb")
        out = []
        for i, req in enumerate(requests):
            s.sendall(json.dumps({"jsonrpc": "2.0", "id": i, **req}).encode() + b"\n")
            out.append(json.loads(reader.readline()))
        return out


async def test_binary_file_is_refused_at_submit(daemon: DaemonProcess, repo: Path) -> None:
    (repo / "logo.png").write_bytes(BINARY)
    async with daemon.client() as c:
        with pytest.raises(InvalidParams, match=r"logo.png is not UTF-8 text"):
            await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["app.py", "logo.png"]))
        assert await c.list() == []


async def test_huge_files_and_fifos_are_refused_at_submit_without_reading_them(daemon: DaemonProcess,
                                                                             repo: Path) -> None:
    with (repo / "dump.sql").open("wb") as fh:  # sparse: 64 MiB on paper, nothing on disk
        fh.truncate(64 * 2**20)
    os.mkfifo(repo / "pipe.py")  # nobody ever writes it: a blocking read would hang the daemon
    async with daemon.client() as c:
        with pytest.raises(InvalidParams, match=r"dump.sql has 67,108,864 bytes; a task's file may have 4,194,304"):
            await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["dump.sql"]))
        with pytest.raises(InvalidParams, match=r"pipe.py is not a regular file"):
            await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["pipe.py"]))
        with pytest.raises(InvalidParams, match=r"pipe.py is not a regular file"):
            await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["pipe.py"],
                                          selection=p.Selection(path="pipe.py", start_line=1, end_line=2)))
        assert await c.list() == [] and (await c.status()).programmers  # still serving


async def test_a_file_that_grows_huge_before_its_task_runs_fails_the_task(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(workers=1)
    # a rule, not a script entry: the blocker may be cancelled before its request reaches the model
    offline.set_rules([{"match": r"### INSTRUCTION\nhang\b", "fault": "hang", "latency": 120}])
    async with d.client() as c, EventStream(d.socket, kinds=["task"]) as events:
        blocker = await occupy(c, events, repo)
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["util.py"]))
        with (repo / "util.py").open("ab") as fh:
            fh.truncate(16 * 2**20)
        await c.cancel(blocker)
        done = await c.wait(task.id)
        assert done.state is p.TaskState.FAILED and done.reason == "file_too_large" and done.attempts == 1
        [prog] = (await c.status()).programmers
        assert prog.state is p.ProgrammerState.IDLE and prog.failures == 0


async def test_a_file_that_turns_binary_before_its_task_runs_fails_the_task(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(workers=1)
    # a rule, not a script entry: the blocker may be cancelled before its request reaches the model
    offline.set_rules([{"match": r"### INSTRUCTION\nhang\b", "fault": "hang", "latency": 120}])
    async with d.client() as c, EventStream(d.socket, kinds=["task"]) as events:
        blocker = await occupy(c, events, repo)
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["util.py"]))
        (repo / "util.py").write_bytes(BINARY)  # text when submitted, binary when it runs
        await c.cancel(blocker)
        done = await c.wait(task.id)
        assert done.state is p.TaskState.FAILED and done.reason == "binary_file" and done.attempts == 1
        assert "util.py is not UTF-8 text" in (done.error or "")
        [prog] = (await c.status()).programmers
        assert prog.state is p.ProgrammerState.IDLE and prog.failures == 0  # not the programmer's fault
    assert not any("util.py" in json.dumps(r["messages"]) for r in offline.requests)  # never sent to the model


async def test_a_file_turned_into_a_link_out_of_the_workspace_before_its_task_runs_is_never_read(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path, tmp_path: Path) -> None:
    secret = tmp_path / "id_rsa"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY----- SECRET-KEY-MATERIAL\n")
    d = make_daemon(workers=1)
    offline.set_rules([{"match": r"### INSTRUCTION\nhang\b", "fault": "hang", "latency": 120}])
    async with d.client() as c, EventStream(d.socket, kinds=["task"]) as events:
        blocker = await occupy(c, events, repo)
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["util.py"]))
        (repo / "util.py").unlink()  # e.g. a pull that replaced the file with a link, while the task waited
        (repo / "util.py").symlink_to(secret)
        await c.cancel(blocker)
        done = await c.wait(task.id)
        assert done.state is p.TaskState.FAILED and done.reason == "unusable_file" and done.attempts == 1
        assert "util.py is a symlink that leaves the workspace" in (done.error or "")
        [prog] = (await c.status()).programmers
        assert prog.state is p.ProgrammerState.IDLE and prog.failures == 0
    assert not any("SECRET-KEY-MATERIAL" in json.dumps(r) for r in offline.requests)


async def test_a_link_within_the_workspace_is_a_file_like_any_other(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    (repo / "alias.py").symlink_to("util.py")
    d = make_daemon(workers=1)
    async with d.client() as c:
        done = await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction="note it",
                                                           files=["alias.py"]))).id)
        assert done.state is p.TaskState.REVIEW
        assert (await c.diff(done.id)).files[0].path == "alias.py"
    assert (repo / "util.py").read_text() in json.dumps(offline.requests[-1]["messages"]).replace("\\n", "\n")


async def test_a_binary_file_the_allowlist_admits_fails_the_task(make_daemon: DaemonFactory,
                                                                offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(workers=1, guardrails={"allow_files": ["*.bin"]})
    (repo / "data.bin").write_bytes(BINARY)
    offline.script([{"content": "data.bin\n```\n<<<<<<< SEARCH\nbinary\n=======\ntext\n>>>>>>> REPLACE\n```\n"}])
    async with d.client() as c:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["app.py"]))
        done = await c.wait(task.id)
        assert done.state is p.TaskState.FAILED and done.reason == "binary_file" and done.attempts == 1
        assert "data.bin is not UTF-8 text" in (done.error or "")
        [prog] = (await c.status()).programmers
        assert prog.state is p.ProgrammerState.IDLE and prog.failures == 0
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert receipt.outcome == "failed: binary_file" and receipt.tokens.input > 0  # the reply is paid for
    assert (repo / "data.bin").read_bytes() == BINARY


def test_unusable_paths_are_invalid_params(daemon: DaemonProcess, repo: Path) -> None:
    ws = str(repo)
    long = "/".join(["d" * 200] * 25)  # past PATH_MAX
    cases: list[tuple[str, dict[str, object], str]] = [
        ("task.submit", {"workspace": ws + "\0", "instruction": "x", "files": ["app.py"]}, "NUL"),
        ("task.submit", {"workspace": ws, "instruction": "x", "files": ["app\0.py"]}, "NUL"),
        ("task.submit", {"workspace": ws, "instruction": "x", "files": [],
                         "selection": {"path": "app.py\0", "start_line": 1, "end_line": 1}}, "NUL"),
        ("task.submit", {"workspace": ws, "instruction": "x", "files": [long]}, "longer than"),
        ("task.submit", {"workspace": ws, "instruction": "x", "files": ["x" * 300 + ".py"]}, "component"),
        ("task.submit", {"workspace": ws, "instruction": "x", "files": ["\ud800.py"]}, "surrogate"),
        ("job.submit", {"workspace": ws, "instruction": "x", "files": ["src/\0*.py"]}, "NUL"),
        ("job.submit", {"workspace": "/\0", "instruction": "x", "files": ["*.py"]}, "NUL"),
        ("task.list", {"workspace": ws + "\0"}, "NUL"),
        ("job.list", {"workspace": "\0"}, "NUL"),
        ("models.list", {"workspace": "\0"}, "NUL"),
    ]
    replies = exchange(daemon.socket, *({"method": m, "params": params} for m, params, _ in cases),
                       {"method": "task.list"})
    for (method, _, words), reply in zip(cases, replies, strict=False):
        error = reply.get("error")
        assert isinstance(error, dict) and error["code"] == -32602, (method, reply)
        assert words in error["message"], (method, error["message"])
    assert replies[-1]["result"]["tasks"] == []
