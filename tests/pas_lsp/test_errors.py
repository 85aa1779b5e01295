"""Bad params and a missing daemon come back as LSP errors plus a message; the server keeps answering."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_helpers import execute, start_client, wait_until
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from daemon.testing import DaemonProcess

BAD = [
    ("pas.delegate", [{"range": {}}]),
    ("pas.delegate", ["not an object"]),
    ("pas.delegate", [{"uri": "file:///nowhere/x.py", "instruction": "   "}]),
    ("pas.approve", [{}]),
    ("pas.approve", [{"task": 7}]),
    ("pas.reject", [{"task": "t", "hunks": "all"}]),
    ("pas.showDiff", []),
    ("pas.diffContents", [{"task": ""}]),
    ("pas.cancel", [{"task": "x"}, {"task": "y"}]),
    ("pas.tasks", [{"states": ["NOPE"]}]),
]


@pytest.mark.parametrize(("command", "args"), BAD, ids=[f"{c}-{i}" for i, (c, _) in enumerate(BAD)])
async def test_bad_params_are_errors(client: LanguageClient, command: str, args: list) -> None:
    with pytest.raises(JsonRpcException) as err:
        await execute(client, command, *args)
    assert err.value.code == -32602, err.value.message
    assert command in err.value.message
    await wait_until(lambda: [m for m in client.messages if m.type == lsp.MessageType.Error], "an error message")
    status = await execute(client, "pas.status", {})
    assert status["daemon"] == "up"


async def test_unknown_task_is_an_error(client: LanguageClient) -> None:
    with pytest.raises(JsonRpcException) as err:
        await execute(client, "pas.approve", {"task": "no-such-task"})
    assert err.value.code == -32001
    assert (await execute(client, "pas.status", {}))["daemon"] == "up"


async def test_delegate_to_an_unknown_engine_names_the_engines(client: LanguageClient, workspace: Path) -> None:
    with pytest.raises(JsonRpcException) as err:
        await execute(client, "pas.delegate", {"uri": (workspace / "app.py").as_uri(), "instruction": "x",
                                               "engine": "nope"})
    assert "unknown engine 'nope'; engines: native, aider" in err.value.message
    assert (await execute(client, "pas.status", {}))["daemon"] == "up"


async def test_daemon_down_then_back(pasd: DaemonProcess, workspace: Path) -> None:
    client = await start_client(pasd, workspace)
    try:
        await wait_until(lambda: client.statuses and client.statuses[-1]["daemon"] == "up", "daemon up")
        pasd.kill()
        await wait_until(lambda: client.statuses[-1]["daemon"] == "down", "pas/status down")
        pasd.start()
        await wait_until(lambda: client.statuses[-1]["daemon"] == "up", "pas/status up again", timeout=20)
        assert (await execute(client, "pas.status", {}))["daemon"] == "up"
    finally:
        await client.shutdown_session()


async def test_daemon_cannot_start(pasd: DaemonProcess, workspace: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    env = {"PASD_SOCKET": str(tmp_path / "none.sock"), "PASD_STATE_DIR": str(blocker / "state")}
    client = await start_client(pasd, workspace, env=env)
    try:
        await wait_until(lambda: client.statuses and client.statuses[-1]["daemon"] == "down", "pas/status down")
        with pytest.raises(JsonRpcException) as err:
            await execute(client, "pas.delegate", {"uri": (workspace / "app.py").as_uri(), "instruction": "x"})
        assert "could not be started" in err.value.message
        assert any("could not be started" in m.message for m in client.messages)
        assert (await execute(client, "pas.status", {}))["daemon"] == "down"
    finally:
        await client.shutdown_session()
