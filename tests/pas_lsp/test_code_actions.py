"""Code actions: delegate a selection, the file or its folder (a job) to each model; `pas:` comments submit directly."""

from __future__ import annotations

from pathlib import Path

from lsp_helpers import MODEL, open_doc, r, start_client, wait_until
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from daemon.testing import DaemonProcess


async def actions(client: LanguageClient, uri: str, rng: lsp.Range) -> list[lsp.CodeAction]:
    result = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), range=rng,
        context=lsp.CodeActionContext(diagnostics=[])))
    return [a for a in result or [] if isinstance(a, lsp.CodeAction)]


async def test_selection_lists_the_configured_models(client: LanguageClient, workspace: Path) -> None:
    uri = open_doc(client, workspace / "app.py")
    found = await actions(client, uri, r(0, 0, 1, 16))
    titles = [a.title for a in found]
    assert titles == [
        f"PAS: delegate selection to {MODEL}", "PAS: delegate selection to openai/pasd-offline-b",
        f"PAS: delegate this file to {MODEL}", "PAS: delegate this file to openai/pasd-offline-b",
        f"PAS: delegate this file's folder as a job to {MODEL}",
        "PAS: delegate this file's folder as a job to openai/pasd-offline-b",
    ]
    first = found[0].command
    assert first is not None and first.command == "pas.promptDelegate"
    assert list(first.arguments) == [{"uri": uri, "model": MODEL,
                                "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 16}}}]


async def test_cursor_offers_the_file_only(client: LanguageClient, workspace: Path) -> None:
    uri = open_doc(client, workspace / "app.py")
    titles = [a.title for a in await actions(client, uri, r(1, 3, 1, 3))]
    assert titles == [f"PAS: delegate this file to {MODEL}", "PAS: delegate this file to openai/pasd-offline-b",
                      f"PAS: delegate this file's folder as a job to {MODEL}",
                      "PAS: delegate this file's folder as a job to openai/pasd-offline-b"]


async def test_pas_comment_gives_the_instruction(client: LanguageClient, workspace: Path) -> None:
    path = workspace / "app.py"
    path.write_text("def add(a, b):\n    # pas: add type hints\n    return a + b\n")
    uri = open_doc(client, path)
    found = await actions(client, uri, r(0, 0, 3, 0))
    assert found[0].title == f"PAS: add type hints ({MODEL})"
    cmd = found[0].command
    assert cmd is not None and cmd.command == "pas.delegate"
    assert cmd.arguments[0]["instruction"] == "add type hints"


async def test_models_fall_back_to_the_daemon_config(pasd: DaemonProcess, workspace: Path) -> None:
    client = await start_client(pasd, workspace, options={})
    try:
        uri = open_doc(client, workspace / "app.py")
        titles = [a.title for a in await actions(client, uri, r(0, 0, 1, 0))]
        # offline_config's models.choices
        assert titles[:2] == [f"PAS: delegate selection to {MODEL}", "PAS: delegate selection to openai/pasd-offline-b"]
    finally:
        await client.shutdown_session()


async def test_bad_options_are_reported_and_replaced(pasd: DaemonProcess, workspace: Path) -> None:
    client = await start_client(pasd, workspace, options={"models": "not-a-list", "defaultModel": 3})
    try:
        await wait_until(lambda: len(client.messages) >= 2, "two warnings")
        text = " ".join(m.message for m in client.messages)
        assert "pas.models" in text and "pas.defaultModel" in text
        uri = open_doc(client, workspace / "app.py")
        titles = [a.title for a in await actions(client, uri, r(0, 0, 1, 0))]
        assert titles[0] == f"PAS: delegate selection to {MODEL}"  # the daemon's choices
    finally:
        await client.shutdown_session()
