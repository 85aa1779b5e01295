"""`pas.models`: the models an editor offers when delegating, from its settings or else from the daemon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsp_helpers import MODEL, execute, start_client

from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, fake_aider, offline_config, write_config

OTHER = "openai/pasd-offline-b"


def plain(result: Any) -> dict[str, Any]:
    return result if isinstance(result, dict) else dict(result._asdict())


async def test_with_no_models_set_the_daemons_choices_are_offered(pasd: DaemonProcess, workspace: Path,
                                                                  tmp_path: Path) -> None:
    # The server's own view of the config differs from the running daemon's: the answer must be the daemon's.
    elsewhere = write_config(tmp_path / "elsewhere.toml", {"models": {"default": "openai/not-the-daemons",
                                                                     "choices": ["openai/not-the-daemons"]}})
    client = await start_client(pasd, workspace, options={"models": [], "defaultModel": ""},
                                env={"PASD_CONFIG": str(elsewhere)})
    try:
        offered = plain(await execute(client, "pas.models", {"uri": (workspace / "app.py").as_uri()}))
        assert offered == {"models": [MODEL, OTHER], "default": MODEL, "source": "daemon", "engines": ["native"]}
        assert plain(await execute(client, "pas.models", {}))["models"] == [MODEL, OTHER]  # no document open
    finally:
        await client.shutdown_session()


async def test_the_clients_default_comes_first_among_the_daemons_choices(pasd: DaemonProcess,
                                                                         workspace: Path) -> None:
    client = await start_client(pasd, workspace, options={"models": [], "defaultModel": OTHER})
    try:
        offered = plain(await execute(client, "pas.models", {}))
        assert offered == {"models": [MODEL, OTHER], "default": OTHER, "source": "daemon", "engines": ["native"]}
    finally:
        await client.shutdown_session()


async def test_the_clients_models_win_over_the_daemons(pasd: DaemonProcess, workspace: Path) -> None:
    client = await start_client(pasd, workspace, options={"models": ["openai/mine", OTHER]})
    try:
        offered = plain(await execute(client, "pas.models", {}))
        assert offered["models"] == ["openai/mine", OTHER] and offered["source"] == "settings"
    finally:
        await client.shutdown_session()


async def test_a_bad_argument_is_a_clear_error(pasd: DaemonProcess, workspace: Path) -> None:
    client = await start_client(pasd, workspace)
    try:
        try:
            await execute(client, "pas.models", {"uri": 7})
        except Exception as exc:  # the JSON-RPC error the server answers with
            assert "pas.models: uri" in str(exc)
        else:
            raise AssertionError("a number for `uri` was accepted")
    finally:
        await client.shutdown_session()


async def test_the_engines_installed_where_the_daemon_runs_are_offered(
        offline_model: OfflineModel, workspace: Path, tmp_path: Path) -> None:
    config = offline_config(offline_model.url, engines={"aider": {"path": str(fake_aider(tmp_path / "bin"))},
                                                        "claude": {"path": str(tmp_path / "none")}})
    d = DaemonProcess(tmp_path, workers=1, config=config)
    d.start()
    try:
        # the client's models; the daemon's engines, the stand-in aider installed, claude not
        client = await start_client(d, workspace, options={"models": [OTHER]})
        try:
            offered = plain(await execute(client, "pas.models", {}))
            assert offered == {"models": [OTHER], "default": MODEL, "source": "settings",
                               "engines": ["native", "aider"]}
        finally:
            await client.shutdown_session()
    finally:
        d.cleanup()
