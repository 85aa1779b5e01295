"""Delegate → progress → review in place → approve through applyEdit, conflicts, reject, diffs."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from lsp_helpers import MODEL, buffer_text, delegate_and_review, execute, open_doc, r, wait_until
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from daemon.offline_model import OfflineModel

SWAP = ("I swapped the operands.\n\napp.py\n```\n<<<<<<< SEARCH\n    return a - b\n=======\n"
        "    return b - a\n>>>>>>> REPLACE\n```\n")


async def test_delegate_reports_progress(client: LanguageClient, workspace: Path) -> None:
    uri = open_doc(client, workspace / "app.py")
    task_id = await delegate_and_review(client, uri, r(0, 0, 1, 16), "explain add")
    token = f"pas-task-{task_id}"
    reports = await wait_until(lambda: (v := client.progress_reports.get(token)) and
                               isinstance(v[-1], lsp.WorkDoneProgressEnd) and v, "progress end")
    assert isinstance(reports[0], lsp.WorkDoneProgressBegin)
    assert reports[0].title == "PAS: explain add"
    messages = [x.message for x in reports[1:-1]]
    assert any(m and m.startswith("running on Programmer-") for m in messages), messages
    assert reports[-1].message == "ready for review: +1 -0"


async def test_progress_counts_a_streaming_reply(client: LanguageClient, workspace: Path,
                                                 offline: OfflineModel) -> None:
    prose = "".join(f"Thinking about step {i}.\n" for i in range(40))
    offline.script([{"content": prose + SWAP, "completion_tokens": 99, "chunk_latency": 0.04}])
    uri = open_doc(client, workspace / "app.py")
    task_id = await delegate_and_review(client, uri, r(4, 0, 5, 16), "swap them")
    token = f"pas-task-{task_id}"
    reports = await wait_until(lambda: (v := client.progress_reports.get(token)) and
                               isinstance(v[-1], lsp.WorkDoneProgressEnd) and v, "progress end")
    messages = [x.message or "" for x in reports[1:-1]]
    live = [re.fullmatch(r"model: ~(\d+) tokens, (\d) edit blocks?", m) for m in messages]
    counts = [int(m.group(1)) for m in live if m]
    assert len(counts) >= 2 and counts == sorted(counts) and counts[0] < counts[-1], messages
    assert "model: 99 tokens, 1 edit block" in messages  # the provider's count once the reply ended


async def test_review_survives_a_slow_progress_answer(client: LanguageClient, workspace: Path) -> None:
    """The task reaches review before the editor answers the progress request; its diagnostics stay."""
    uri = open_doc(client, workspace / "app.py")
    client.progress_gate.clear()  # type: ignore[attr-defined]
    delegated = asyncio.create_task(execute(client, "pas.delegate", {
        "uri": uri, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 16}},
        "model": MODEL, "instruction": "explain add"}))
    [diag] = await wait_until(lambda: client.diagnostics.get(uri), "review diagnostics")
    client.progress_gate.set()  # type: ignore[attr-defined]
    result = await delegated
    assert diag.code == result["task_id"]
    token = f"pas-task-{diag.code}"
    reports = await wait_until(lambda: (v := client.progress_reports.get(token)) and
                               isinstance(v[-1], lsp.WorkDoneProgressEnd) and v, "progress end")
    assert reports[-1].message == "ready for review: +1 -0"
    assert [d.code for d in client.diagnostics[uri]] == [diag.code]


async def test_review_shows_diagnostics_and_lenses(client: LanguageClient, workspace: Path) -> None:
    uri = open_doc(client, workspace / "app.py")
    task_id = await delegate_and_review(client, uri, r(4, 0, 5, 16), "explain sub")
    [diag] = client.diagnostics[uri]
    # A pure insertion above line 5 (0-based 4): the diagnostic sits on that line.
    assert diag.range == r(4, 0, 4, len("def sub(a, b):"))
    assert diag.severity == lsp.DiagnosticSeverity.Information and diag.source == "pas"
    lenses = await client.text_document_code_lens_async(
        lsp.CodeLensParams(text_document=lsp.TextDocumentIdentifier(uri=uri)))
    assert [lens.command.title for lens in lenses] == ["Approve", "Reject", "Show diff"]
    assert {lens.range.start.line for lens in lenses} == {4}
    assert lenses[0].command.arguments[0] == {"task": task_id, "hunks": [1]}
    found = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), range=r(4, 0, 4, 0),
        context=lsp.CodeActionContext(diagnostics=[])))
    titles = [a.title for a in found]
    assert titles[:2] == [f"PAS: approve hunk 1 of task {task_id}", f"PAS: reject hunk 1 of task {task_id}"]


async def test_approve_sends_exactly_the_hunk_edit(client: LanguageClient, workspace: Path,
                                                    offline: OfflineModel) -> None:
    offline.script([{"content": SWAP}])
    uri = open_doc(client, workspace / "app.py")
    task_id = await delegate_and_review(client, uri, r(4, 0, 5, 16), "swap")
    [diag] = client.diagnostics[uri]
    assert diag.range == r(5, 0, 5, len("    return a - b"))
    result = await execute(client, "pas.approve", {"task": task_id})
    [params] = client.edits
    assert {k: list(v) for k, v in params.edit.changes.items()} == {
        uri: [lsp.TextEdit(range=r(5, 0, 6, 0), new_text="    return b - a\n")]}
    assert result["applied"] == [1] and result["conflicts"] == [] and result["state"] == "APPLIED"
    assert buffer_text(client, uri).endswith("    return b - a\n")
    # The daemon did not write the file: the change is in the editor's buffer, unsaved.
    assert (workspace / "app.py").read_text().endswith("    return a - b\n")
    await wait_until(lambda: uri in client.diagnostics and len(client.diagnostics[uri]) == 0, "diagnostics cleared")


async def test_conflicting_buffer_gets_no_edit(client: LanguageClient, workspace: Path,
                                               offline: OfflineModel) -> None:
    offline.script([{"content": SWAP}])
    uri = open_doc(client, workspace / "app.py")
    task_id = await delegate_and_review(client, uri, r(4, 0, 5, 16), "swap")
    # The user edits the very line the hunk replaces, without saving.
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[lsp.TextDocumentContentChangePartial(range=r(5, 11, 5, 16), text="a * b")]))
    result = await execute(client, "pas.approve", {"task": task_id})
    assert client.edits == []
    assert result["applied"] == [] and [c["hunk_id"] for c in result["conflicts"]] == [1]
    warning = await wait_until(lambda: [m for m in client.messages if m.type == lsp.MessageType.Warning],
                               "a conflict message")
    assert "not applied" in warning[-1].message and "changed" in warning[-1].message
    assert result["state"] == "REVIEW"


async def test_shifted_buffer_still_applies(client: LanguageClient, workspace: Path, offline: OfflineModel) -> None:
    offline.script([{"content": SWAP}])
    uri = open_doc(client, workspace / "app.py")
    task_id = await delegate_and_review(client, uri, r(4, 0, 5, 16), "swap")
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[lsp.TextDocumentContentChangePartial(range=r(0, 0, 0, 0), text="import os\n")]))
    client.__dict__["texts"][uri][0] = "import os\n" + buffer_text(client, uri)
    result = await execute(client, "pas.approve", {"task": task_id})
    assert client.edits[0].edit.changes[uri][0].range == r(6, 0, 7, 0)
    assert result["applied"] == [1]


async def test_reject_clears_diagnostics(client: LanguageClient, workspace: Path) -> None:
    uri = open_doc(client, workspace / "app.py")
    task_id = await delegate_and_review(client, uri, r(0, 0, 1, 16), "explain add")
    result = await execute(client, "pas.reject", {"task": task_id})
    assert result == {"task_id": task_id, "state": "REJECTED", "rejected": [1]}
    await wait_until(lambda: uri in client.diagnostics and len(client.diagnostics[uri]) == 0, "diagnostics cleared")
    assert client.edits == []
    assert (workspace / "app.py").read_text().startswith("def add")


async def test_closed_file_is_applied_by_the_daemon(client: LanguageClient, workspace: Path) -> None:
    uri = (workspace / "util.py").as_uri()
    result = await execute(client, "pas.delegate", {"uri": uri, "model": MODEL, "instruction": "document mul"})
    task_id = result["task_id"]
    token = f"pas-task-{task_id}"
    await wait_until(lambda: (v := client.progress_reports.get(token)) and isinstance(v[-1], lsp.WorkDoneProgressEnd),
                     "the task to reach review")
    tasks = await execute(client, "pas.tasks", {"states": ["REVIEW"], "uri": uri})
    assert tasks["tasks"][0]["uris"] == [uri] and tasks["tasks"][0]["files"] == ["util.py"]
    result = await execute(client, "pas.approve", {"task": task_id})
    assert client.edits == [] and result["applied"] == [1]
    assert (workspace / "util.py").read_text().startswith("# pas: document mul\n")


async def test_show_diff_and_contents(client: LanguageClient, workspace: Path, offline: OfflineModel) -> None:
    offline.script([{"content": SWAP}])
    uri = open_doc(client, workspace / "app.py")
    task_id = await delegate_and_review(client, uri, r(4, 0, 5, 16), "swap")
    result = await execute(client, "pas.showDiff", {"task": task_id})
    [shown] = client.shown_documents
    assert shown.uri == result["uri"] and shown.uri.endswith(".diff")
    assert "+    return b - a" in Path(shown.uri.removeprefix("file://")).read_text()
    contents = await execute(client, "pas.diffContents", {"task": task_id})
    [f] = contents["files"]
    assert f["path"] == "app.py" and f["uri"] == uri
    assert f["base"].endswith("return a - b\n") and f["proposed"].endswith("return b - a\n")
