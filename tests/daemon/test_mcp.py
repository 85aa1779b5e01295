"""`pasd mcp`: the pool over the Model Context Protocol, driven by the SDK's own client over stdio.

A real `python -m daemon mcp` process, a real daemon on a temp socket, the offline model behind it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import CallToolResult, TextContent

from daemon.client import PasClient
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, make_repo, offline_config

APP = "def add(a, b):\n    return a + b\n"
TOOLS = {"submit_task", "submit_job", "wait_task", "wait_job", "task_diff", "task_receipt", "list_tasks",
         "pool_status", "cancel_task"}
HANG = {"match": r"### INSTRUCTION\nhang\b", "fault": "hang", "latency": 120}


@pytest.fixture(scope="module")
def model() -> Iterator[OfflineModel]:
    with OfflineModel(seed_rules=[HANG]) as m:
        yield m


@pytest.fixture(scope="module")
def pasd(model: OfflineModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("mcp"), workers=2, config=offline_config(model.url))
    yield d.start()
    d.cleanup()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "ws", {"app.py": APP, "util.py": "def mul(a, b):\n    return a * b\n"})


@asynccontextmanager
async def mcp_session(env: dict[str, str], cwd: Path, *flags: str) -> AsyncIterator[ClientSession]:
    """`pasd mcp` as an MCP client starts it: a subprocess on stdio, initialized."""
    server = StdioServerParameters(command=sys.executable, args=["-m", "daemon", "mcp", *flags], env=env,
                                   cwd=str(cwd))
    with (cwd.parent / "mcp-stderr.log").open("w") as errlog:
        async with stdio_client(server, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


def text(result: CallToolResult) -> str:
    [block] = result.content
    assert isinstance(block, TextContent)
    return block.text


async def call(session: ClientSession, tool: str, **args: Any) -> dict[str, Any]:
    """A tool call that must succeed; its JSON result."""
    result = await session.call_tool(tool, args)
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    assert json.loads(text(result)) == result.structured_content  # the text a model reads says the same
    return result.structured_content


async def error(session: ClientSession, tool: str, **args: Any) -> str:
    """A tool call that must fail as a result the caller reads (not a protocol error); its message."""
    result = await session.call_tool(tool, args)
    assert result.is_error, text(result)
    return text(result)


async def test_round_trip_submit_wait_diff_receipt(pasd: DaemonProcess, ws: Path) -> None:
    async with mcp_session(pasd.env, ws) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(tools) == TOOLS  # no approve tool unless the user turns it on
        assert all(t.description and len(t.description) > 60 for t in tools.values())
        assert "review" in (tools["task_diff"].description or "")

        task = await call(s, "submit_task", instruction="add a docstring", files=["app.py"], start_line=1,
                          end_line=2, engine="native")
        assert task["state"] == "QUEUED" and task["files"] == ["app.py"] and task["selection"] == "app.py:1-2"
        done = await call(s, "wait_task", task_id=task["task_id"], timeout_s=120)
        assert done["state"] == "REVIEW" and done["done"] is True
        assert (done["files_changed"], done["lines_added"], done["lines_removed"]) == (1, 1, 0)
        assert "awaits the user's review" in done["next"]

        diff = text(await s.call_tool("task_diff", {"task_id": task["task_id"][:4]}))  # a prefix is enough
        head, body = diff.split("\n\n", 1)
        assert head.startswith(f"task {task['task_id']} REVIEW, 1 file(s) +1 -0; awaiting the user's review")
        assert "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,3 @@ hunk 1\n+# pas: add a docstring\n def add(a, b):" in body
        assert (ws / "app.py").read_text() == APP  # nothing touches the user's files

        receipt = await call(s, "task_receipt", task_id=task["task_id"])
        [attempt] = receipt["receipts"]
        assert attempt["outcome"] == "review" and attempt["model"] == "openai/pasd-offline"
        assert attempt["tokens_input"] > 0 and attempt["tokens_output"] > 0 and attempt["priced"] is True
        assert attempt["cost_usd"] > 0 and receipt["cost_usd"] == attempt["cost_usd"] == done["cost_usd"]
        assert (attempt["files_changed"], attempt["lines_added"]) == (1, 1)

        listed = await call(s, "list_tasks")
        assert [t["task_id"] for t in listed["tasks"]] == [task["task_id"]]  # this workspace's tasks only
        assert listed["workspace"] == str(ws)
        pool = await call(s, "pool_status")
        assert [pr["id"] for pr in pool["programmers"]] == ["Programmer-01", "Programmer-02"]
        assert pool["review"] >= 1 and pool["default_model"] == "openai/pasd-offline"
        assert "openai/pasd-offline-b" in pool["models"]
        assert pool["engines"][0] == "native"


async def test_a_wait_that_times_out_says_so_and_cancel_ends_the_task(pasd: DaemonProcess, ws: Path) -> None:
    async with mcp_session(pasd.env, ws) as s:
        task = await call(s, "submit_task", instruction="hang", files=["util.py"])
        waited = await call(s, "wait_task", task_id=task["task_id"], timeout_s=0.5)
        assert waited["done"] is False and waited["state"] in ("QUEUED", "RUNNING")
        assert "call wait_task again" in waited["next"]
        assert "no diff yet" in await error(s, "task_diff", task_id=task["task_id"])
        assert "no receipt yet" in (await call(s, "task_receipt", task_id=task["task_id"]))["note"]
        assert (await call(s, "cancel_task", task_id=task["task_id"]))["task_id"] == task["task_id"]
        ended = await call(s, "wait_task", task_id=task["task_id"], timeout_s=60)
        assert ended["state"] == "CANCELLED" and ended["done"] is True


async def test_a_job_runs_per_file(pasd: DaemonProcess, ws: Path) -> None:
    async with mcp_session(pasd.env, ws) as s:
        job = await call(s, "submit_job", instruction="note the module", files=["*.py"])
        assert job["tasks_total"] == 2
        done = await call(s, "wait_job", job_id=job["job_id"][:4], timeout_s=120)  # a prefix is enough
        assert done["done"] is True and done["state"] == "REVIEW", done
        assert sorted(f for t in done["tasks"] for f in t["files"]) == ["app.py", "util.py"]
        for t in done["tasks"]:
            assert t["state"] == "REVIEW" and t["job_id"] == job["job_id"]
            assert "+# pas: note the module" in text(await s.call_tool("task_diff", {"task_id": t["task_id"]}))


async def test_bad_input_is_an_error_result_and_the_server_keeps_serving(pasd: DaemonProcess, ws: Path) -> None:
    async with mcp_session(pasd.env, ws) as s:
        assert await error(s, "task_diff", task_id="nosuch") == "Error executing tool task_diff: no task 'nosuch'"
        assert "no task 'nosuch'" in await error(s, "wait_task", task_id="nosuch")
        assert "no task 'nosuch'" in await error(s, "task_receipt", task_id="nosuch")
        assert "no job 'nosuch'" in await error(s, "wait_job", job_id="nosuch")
        assert "/etc/passwd is outside the workspace" in await error(s, "submit_task", instruction="x",
                                                                     files=["/etc/passwd"])
        assert "outside the workspace" in await error(s, "submit_task", instruction="x", files=["../x.py"])
        assert "unknown model" in await error(s, "submit_task", instruction="x", files=["app.py"], model="nope/m")
        assert "end_line must be >= start_line" in await error(s, "submit_task", instruction="x", files=["app.py"],
                                                               start_line=5, end_line=2)
        assert "needs files" in await error(s, "submit_task", instruction="x", files=[], start_line=1)
        assert "instruction is blank" in await error(s, "submit_task", instruction="  ", files=["app.py"])
        assert "not allowed" in await error(s, "submit_task", instruction="x", files=["app.py"], check="rm -rf /")
        assert "files" in await error(s, "submit_task", instruction="x")  # a missing argument
        assert "unknown engine 'nope'" in await error(s, "submit_task", instruction="x", files=["app.py"],
                                                      engine="nope")
        assert "unknown engine 'nope'" in await error(s, "submit_job", instruction="x", files=["app.py"],
                                                      engine="nope")
        assert "engine" in await error(s, "submit_task", instruction="x", files=["app.py"], engine="Bad Name!")
        assert "timeout_s" in await error(s, "wait_task", task_id="x", timeout_s=-1)
        assert "Unknown tool: approve_task" in await error(s, "approve_task", task_id="x")
        assert (await call(s, "pool_status"))["programmers"]  # still serving, still connected
        assert await call(s, "list_tasks", states=["APPLIED"]) == {"workspace": str(ws), "tasks": []}


async def test_allow_approve_offers_a_tool_that_applies_the_diff(pasd: DaemonProcess, ws: Path) -> None:
    async with mcp_session(pasd.env, ws, "--allow-approve") as s:
        assert {t.name for t in (await s.list_tools()).tools} == TOOLS | {"approve_task"}
        task = await call(s, "submit_task", instruction="add a docstring", files=["app.py"])
        assert (await call(s, "wait_task", task_id=task["task_id"]))["state"] == "REVIEW"
        approved = await call(s, "approve_task", task_id=task["task_id"])
        assert approved["task"]["state"] == "APPLIED" and approved["applied_hunks"] == [1]
        assert (ws / "app.py").read_text() == "# pas: add a docstring\n" + APP
        assert "is APPLIED, not awaiting review" in await error(s, "approve_task", task_id=task["task_id"])


async def test_approving_is_a_setting_a_workspace_file_turns_on_only_once_trusted(
        pasd: DaemonProcess, ws: Path) -> None:
    (ws / ".pas.toml").write_text("[mcp]\nallow_approve = true\n")
    async with mcp_session(pasd.env, ws) as s:
        assert {t.name for t in (await s.list_tools()).tools} == TOOLS  # untrusted: review stays the user's
    trusted = subprocess.run([sys.executable, "-m", "daemon", "trust", str(ws)], env=pasd.env, capture_output=True,
                             text=True, timeout=60)
    assert trusted.returncode == 0, trusted.stderr
    async with mcp_session(pasd.env, ws) as s:
        assert {t.name for t in (await s.list_tools()).tools} == TOOLS | {"approve_task"}
    (ws / ".pas.toml").write_text("[mcp]\nallow_approve = 'yes please'\n")
    res = subprocess.run([sys.executable, "-m", "daemon", "mcp"], env=pasd.env, cwd=ws, capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == 2 and "mcp.allow_approve" in res.stderr and ".pas.toml" in res.stderr, res.stderr


async def test_daemon_down_then_started(model: OfflineModel, tmp_path: Path, ws: Path) -> None:
    """With nothing on the socket: --no-start reports it; by default the server starts the daemon, as the
    editors do."""
    (tmp_path / "own").mkdir()
    d = DaemonProcess(tmp_path / "own", workers=1, config=offline_config(model.url, pool={"workers": 1}))
    try:
        async with mcp_session(d.env, ws, "--no-start") as s:
            assert "the daemon is not running" in await error(s, "pool_status")
            assert "the daemon is not running" in await error(s, "submit_task", instruction="x", files=["app.py"])
            assert {t.name for t in (await s.list_tools()).tools} == TOOLS  # still serving
        async with mcp_session(d.env, ws) as s:
            assert [pr["id"] for pr in (await call(s, "pool_status"))["programmers"]] == ["Programmer-01"]
        assert d.answers()  # it outlives the session, like a daemon started from the editor
    finally:
        if d.answers():
            async with PasClient(d.socket) as c:
                await c.shutdown()
        while d.answers() or d.socket.exists():  # until it has let go of its state
            await asyncio.sleep(0.05)
        d.cleanup()


def test_the_cli_does_not_load_the_sdk() -> None:
    """Only `pasd mcp` pays for importing the SDK."""
    code = ("import sys, daemon.cli.main\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mcp' or 'mcp_' in m))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert loaded.stdout.strip() == "[]"
