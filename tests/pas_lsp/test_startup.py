"""Start-up: the initialize result, the boundary (no litellm, no textual), the time to answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lsp_helpers import REPO_ROOT, make_client, server_env, start_client
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from daemon.testing import DaemonProcess


def test_server_never_loads_litellm_or_textual() -> None:
    code = ("import pas_lsp.server, pas_lsp.__main__, sys, json; pas_lsp.server.create_server(); "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                         capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    assert not loaded & {"litellm", "textual", "openai", "tiktoken"}, loaded


async def test_initialize_advertises_the_commands(pasd: DaemonProcess, workspace: Path) -> None:
    started = time.perf_counter()
    client = await start_client(pasd, workspace)
    elapsed = time.perf_counter() - started
    caps = client.protocol.server_capabilities if hasattr(client.protocol, "server_capabilities") else None
    try:
        result = await client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(command="pas.status", arguments=[{}]))
        assert result["daemon"] == "up"
        assert len(result["programmers"]) == 2
    finally:
        await client.shutdown_session()
    print(f"pas-lsp: process start to initialize result: {elapsed * 1000:.0f} ms")
    assert caps is None or caps.execute_command_provider is not None


async def test_initialize_result(pasd: DaemonProcess, workspace: Path) -> None:
    from pytest_lsp import ClientServerConfig



    config = ClientServerConfig(server_command=[sys.executable, "-m", "pas_lsp"], client_factory=make_client,
                                server_env=server_env(pasd))
    client: LanguageClient = await config.start()
    try:
        result = await client.initialize_session(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=workspace.as_uri()))
        commands = result.capabilities.execute_command_provider
        assert commands is not None
        assert set(commands.commands) == {"pas.delegate", "pas.delegateJob", "pas.approve", "pas.reject",
                                          "pas.approveJob", "pas.rejectJob", "pas.showDiff", "pas.diffContents",
                                          "pas.cancel", "pas.status", "pas.tasks", "pas.models"}
        assert "pas.promptDelegate" not in commands.commands  # a client-side command (docs/lsp.md)
        assert "pas.promptDelegateJob" not in commands.commands
        assert result.capabilities.code_action_provider
        assert result.capabilities.code_lens_provider is not None
    finally:
        await client.shutdown_session()


def test_vscode_commands_do_not_collide_with_server_commands() -> None:
    # vscode-languageclient registers every server command itself; a duplicate id stops the client

    from pas_lsp.commands import COMMANDS

    package = json.loads((Path(__file__).parents[2] / "editors/vscode/package.json").read_text())
    contributed = {c["command"] for c in package["contributes"]["commands"]}
    assert contributed.isdisjoint(COMMANDS), contributed & set(COMMANDS)
