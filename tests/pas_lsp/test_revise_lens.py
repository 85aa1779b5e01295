"""Revise from the editor: a "Revise…" lens and action on each hunk, and the `pas.revise` command."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_helpers import delegate_and_review, execute, open_doc, r, wait_until
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from daemon.offline_model import OfflineModel


async def test_revise_lens_action_and_command(client: LanguageClient, workspace: Path, offline: OfflineModel) -> None:
    uri = open_doc(client, workspace / "app.py")
    task_id = await delegate_and_review(client, uri, r(4, 0, 5, 16), "explain sub")
    lenses = await client.text_document_code_lens_async(
        lsp.CodeLensParams(text_document=lsp.TextDocumentIdentifier(uri=uri)))
    [lens] = [x for x in lenses if x.command and x.command.title == "Revise…"]
    # the editor asks for the comment (a client-side command, docs/lsp.md), then runs pas.revise
    assert lens.command.command == "pas.promptRevise"
    assert list(lens.command.arguments) == [{"task": task_id, "hunks": [1]}]
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), range=r(4, 0, 4, 0),
        context=lsp.CodeActionContext(diagnostics=[])))
    [action] = [a for a in actions if a.title == f"PAS: revise hunk 1 of task {task_id}…"]
    assert action.command is not None and action.command.command == "pas.promptRevise"

    result = await execute(client, "pas.revise", {"task": task_id, "comment": "say what it returns", "hunks": [1]})
    assert result == {"task_id": task_id, "state": "QUEUED", "revision": 1}
    token = f"pas-task-{task_id}-r1"
    reports = await wait_until(lambda: (v := client.progress_reports.get(token)) and
                               isinstance(v[-1], lsp.WorkDoneProgressEnd) and v, "the revision's progress end")
    assert reports[0].title == f"PAS: revise {task_id} (1)"
    assert reports[-1].message == "ready for review: +2 -0"
    # back in review: the new diff (both comments) is shown in place again
    await wait_until(lambda: any(d.code == task_id for d in client.diagnostics.get(uri, [])), "review again")
    request = offline.requests[-1]["messages"][-1]["content"]
    assert "### INSTRUCTION\nsay what it returns" in request and "+# pas: explain sub" in request


async def test_revise_needs_a_comment_and_a_task_in_review(client: LanguageClient, workspace: Path) -> None:
    uri = open_doc(client, workspace / "app.py")
    task_id = await delegate_and_review(client, uri, r(0, 0, 1, 16), "explain add")
    for args in ({"task": task_id}, {"task": task_id, "comment": "  "}):
        with pytest.raises(JsonRpcException) as err:
            await execute(client, "pas.revise", args)
        assert err.value.code == -32602 and "pas.revise" in err.value.message and "comment" in err.value.message
    await execute(client, "pas.reject", {"task": task_id})
    with pytest.raises(JsonRpcException) as err:
        await execute(client, "pas.revise", {"task": task_id, "comment": "again"})
    assert err.value.code == -32002 and "only a task awaiting review" in err.value.message
