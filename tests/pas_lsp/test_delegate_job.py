"""Jobs: `pas.delegateJob` on a folder, one `$/progress` for the job, the folder code action, bad params."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_helpers import MODEL, execute, open_doc, r, wait_until
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient
from test_code_actions import actions

from daemon import protocol as p
from daemon.testing import DaemonProcess, add_modules


def add_folder(workspace: Path, n: int = 3) -> list[str]:
    return add_modules(workspace, n)


async def test_delegate_job_on_a_folder_runs_one_task_per_file(client: LanguageClient, workspace: Path,
                                                               pasd: DaemonProcess) -> None:
    files = add_folder(workspace)
    result = await execute(client, "pas.delegateJob", {"uris": [(workspace / "src").as_uri()],
                                                       "instruction": "add a note", "model": MODEL})
    job_id = result["job_id"]
    token = f"pas-job-{job_id}"
    reports = await wait_until(lambda: (v := client.progress_reports.get(token)) and
                               isinstance(v[-1], lsp.WorkDoneProgressEnd) and v, "the job's progress end", 60)
    assert isinstance(reports[0], lsp.WorkDoneProgressBegin)
    assert reports[0].title == "PAS job: add a note"
    assert reports[0].message == "0 of 3 tasks done"
    middle = [x.message for x in reports[1:-1]]
    assert all(isinstance(x, lsp.WorkDoneProgressReport) for x in reports[1:-1])
    # two programmers for three tasks: at least one task finishes while the job still runs
    assert middle and all(m in ("1 of 3 tasks done", "2 of 3 tasks done") for m in middle), middle
    assert reports[-1].message == "ready for review: 3 tasks"
    assert len(middle) == len(set(middle))  # one report per change, not one per event

    async with pasd.client() as c:
        job = await c.job(job_id)
    assert job.state is p.JobState.REVIEW and job.split == "per-file"
    assert sorted(f for t in job.tasks for f in t.files) == files
    assert all(t.job_id == job_id for t in job.tasks)

    # each task is reviewed as today: its hunks show up as diagnostics in an open document
    uri = open_doc(client, workspace / files[0])
    await wait_until(lambda: client.diagnostics.get(uri), "review diagnostics in a job's file")
    [diag] = client.diagnostics[uri]
    assert diag.code in job.task_ids


async def test_several_files_are_one_job(client: LanguageClient, workspace: Path, pasd: DaemonProcess) -> None:
    uris = [(workspace / "app.py").as_uri(), (workspace / "util.py").as_uri()]
    result = await execute(client, "pas.delegateJob", {"uris": uris, "instruction": "tidy", "split": "per-file"})
    async with pasd.client() as c:
        job = await c.job(result["job_id"])
    assert job.files == ["app.py", "util.py"] and len(job.task_ids) == 2
    assert sorted(result["task_ids"]) == sorted(job.task_ids)


async def test_folder_action_prompts_for_a_job(client: LanguageClient, workspace: Path) -> None:
    uri = open_doc(client, workspace / "app.py")
    found = [a for a in await actions(client, uri, r(1, 3, 1, 3)) if "job" in a.title]
    assert [a.title for a in found] == [f"PAS: delegate this file's folder as a job to {MODEL}",
                                        "PAS: delegate this file's folder as a job to openai/pasd-offline-b"]
    cmd = found[0].command
    assert cmd is not None and cmd.command == "pas.promptDelegateJob"
    assert list(cmd.arguments) == [{"uris": [workspace.as_uri()], "model": MODEL}]


async def delegated_job(client: LanguageClient, workspace: Path, files: list[str]) -> str:
    """Delegate the src folder as a job and wait until its progress ends (all tasks in review)."""
    result = await execute(client, "pas.delegateJob", {"uris": [(workspace / "src").as_uri()],
                                                       "instruction": "add a note", "model": MODEL})
    job_id = result["job_id"]
    await wait_until(lambda: (v := client.progress_reports.get(f"pas-job-{job_id}")) and
                     isinstance(v[-1], lsp.WorkDoneProgressEnd), "the job's progress end", 60)
    return str(job_id)


async def test_approve_job_puts_open_files_in_the_buffer_and_writes_the_others(
        client: LanguageClient, workspace: Path) -> None:
    files = add_folder(workspace, 2)
    uri = open_doc(client, workspace / files[0])
    job_id = await delegated_job(client, workspace, files)
    await wait_until(lambda: client.diagnostics.get(uri), "review diagnostics in the open file")
    lenses = await client.text_document_code_lens_async(
        lsp.CodeLensParams(text_document=lsp.TextDocumentIdentifier(uri=uri)))
    job_lens = lenses[-1].command
    assert job_lens.title == f"Approve job {job_id}" and job_lens.command == "pas.approveJob"

    result = await execute(client, job_lens.command, *job_lens.arguments)
    assert result["job_id"] == job_id and result["state"] == "APPLIED"
    assert [t["applied"] for t in result["tasks"]] == [[1], [1]]
    # the open file changed in the editor's buffer only; the closed one on disk
    [params] = client.edits  # type: ignore[attr-defined]
    assert list(params.edit.changes) == [uri]
    assert (workspace / files[0]).read_text().startswith("def f0")
    assert (workspace / files[1]).read_text().startswith("# pas: add a note\n")
    await wait_until(lambda: uri in client.diagnostics and len(client.diagnostics[uri]) == 0, "diagnostics cleared")


async def test_reject_job_leaves_every_file_as_it_was(client: LanguageClient, workspace: Path) -> None:
    files = add_folder(workspace, 2)
    job_id = await delegated_job(client, workspace, files)
    result = await execute(client, "pas.rejectJob", {"job": job_id})
    assert result == {"job_id": job_id, "state": "REJECTED"}
    assert all((workspace / f).read_text().startswith("def f") for f in files)
    with pytest.raises(JsonRpcException) as err:
        await execute(client, "pas.approveJob", {"job": job_id})
    assert "no task in review" in err.value.message


BAD = [
    [{}],
    [{"uris": []}],
    [{"uris": "file:///x", "instruction": "x"}],
    [{"uris": ["file:///x"], "instruction": "x", "split": "halves"}],
    "NO_INSTRUCTION",
    "MISSING_FILE",
]


@pytest.mark.parametrize("args", BAD, ids=[f"bad-{i}" for i in range(len(BAD))])
async def test_bad_params_are_errors(client: LanguageClient, workspace: Path, args: object) -> None:
    if args == "NO_INSTRUCTION":
        args = [{"uris": [workspace.as_uri()]}]
    elif args == "MISSING_FILE":
        args = [{"uris": [(workspace / "nope").as_uri()], "instruction": "x"}]
    assert isinstance(args, list)
    with pytest.raises(JsonRpcException) as err:
        await execute(client, "pas.delegateJob", *args)
    assert err.value.code == -32602, err.value.message
    assert "pas.delegateJob" in err.value.message
    await wait_until(lambda: [m for m in client.messages if m.type == lsp.MessageType.Error], "an error message")
