"""Flagged results in the editor: a task in review whose check fails is an Error diagnostic with a lens
that says so; the editor that submitted a task is told when it FAILED or reaches review flagged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lsp_helpers import MODEL, REPO_ROOT, execute, open_doc, start_client, wait_until
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, block, offline_config

EDIT = block("app.py", "def add(a, b):\n", "def add(a: int, b: int) -> int:\n")
REFUSED = block("util.py", "def mul(a, b):\n", "def mul(a, b):  # x\n")


@pytest.fixture(scope="module")
def pasd(offline_model: OfflineModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """The module's daemon allows a check command that fails, and leaves no repair round."""
    root = tmp_path_factory.mktemp("daemon")
    d = DaemonProcess(root, workers=2, env={"PYTHONPATH": str(REPO_ROOT)}, config=offline_config(
        offline_model.url, guardrails={"allow_commands": ["sh -c *"], "max_rounds": 0}))
    d.start()
    yield d
    d.cleanup()


def whole(uri: str, instruction: str) -> dict[str, object]:
    return {"uri": uri, "model": MODEL, "instruction": instruction}


async def test_a_failing_check_is_an_error_diagnostic_and_says_so_on_the_lens(
        client: LanguageClient, pasd: DaemonProcess, workspace: Path, offline: OfflineModel) -> None:
    uri = open_doc(client, workspace / "app.py")
    offline.script([{"content": EDIT}])
    async with pasd.client() as c:  # submitted elsewhere (the CLI): reviewed here all the same
        task = await c.wait((await c.submit(p.SubmitParams(
            workspace=str(workspace), instruction="type add", files=["app.py"], check="sh -c 'exit 3'"))).id)
    assert task.warnings == [p.CHECK_FAILED]
    [diag] = await wait_until(lambda: client.diagnostics.get(uri), "review diagnostics")
    assert diag.severity == lsp.DiagnosticSeverity.Error
    assert diag.message == f"PAS task {task.id} hunk 1 (+1 -1) (check failed): type add"
    lenses = await client.text_document_code_lens_async(
        lsp.CodeLensParams(text_document=lsp.TextDocumentIdentifier(uri=uri)))
    assert [lens.command.title for lens in lenses] == ["Approve (check failed)", "Reject", "Revise…", "Show diff"]
    # not this editor's task: no message about it
    assert not any(task.id in m.message for m in client.messages)


async def test_the_submitting_editor_is_told_its_task_failed(client: LanguageClient, workspace: Path,
                                                             offline: OfflineModel) -> None:
    uri = open_doc(client, workspace / "app.py")
    offline.script([{"content": "I would leave this as it is."}])
    result = await execute(client, "pas.delegate", whole(uri, "explain add"))
    task_id = result["task_id"]
    [message] = await wait_until(lambda: [m for m in client.messages if task_id in m.message], "a message")
    assert message.type == lsp.MessageType.Error
    assert message.message == (f"PAS: task {task_id} failed: the model answered without any SEARCH/REPLACE "
                               "edit (no_edits)")


async def test_the_submitting_editor_is_told_its_task_is_in_review_flagged(
        client: LanguageClient, workspace: Path, offline: OfflineModel) -> None:
    uri = open_doc(client, workspace / "app.py")
    offline.script([{"content": EDIT + REFUSED}])
    task_id = (await execute(client, "pas.delegate", whole(uri, "type add")))["task_id"]
    [message] = await wait_until(lambda: [m for m in client.messages if task_id in m.message], "a message")
    assert message.type == lsp.MessageType.Warning
    assert message.message == f"PAS: task {task_id} is in review, but flagged: edits refused (type add)"
    [diag] = await wait_until(lambda: client.diagnostics.get(uri), "review diagnostics")
    assert diag.severity == lsp.DiagnosticSeverity.Warning


async def test_a_client_that_takes_task_notices_gets_them_instead_of_messages(
        pasd: DaemonProcess, workspace: Path, offline: OfflineModel) -> None:
    c = await start_client(pasd, workspace, experimental={"pas": {"taskNotices": True}})
    try:
        notices: list[object] = []
        c.feature("pas/taskNotice")(lambda ls, params: notices.append(params))
        uri = open_doc(c, workspace / "app.py")
        offline.script([{"content": "I would leave this as it is."}])
        task_id = (await execute(c, "pas.delegate", whole(uri, "explain add")))["task_id"]
        [notice] = await wait_until(lambda: notices, "a task notice")
        fields = notice if isinstance(notice, dict) else notice._asdict()  # type: ignore[attr-defined]
        assert (fields["task"], fields["state"], fields["reason"], fields["level"]) == (
            task_id, "FAILED", "no_edits", "error")
        assert not any(task_id in m.message for m in c.messages)
    finally:
        await c.shutdown_session()
