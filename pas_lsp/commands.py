"""The `workspace/executeCommand` commands of docs/lsp.md, one coroutine each.

Each takes the server and the raw command arguments and returns a JSON-able dict; errors are
raised (PasError) and turned into LSP errors by the server's registration.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from daemon import protocol as p
from daemon.errors import DaemonUnavailable, PasError
from pas_lsp import jobs, review, tasks
from pas_lsp.config import combine
from pas_lsp.errors import InvalidParams
from pas_lsp.state import PasServer, status_counts

log = logging.getLogger(__name__)
Command = Callable[..., Awaitable[dict[str, Any]]]


async def delegate(ls: PasServer, *args: Any) -> dict[str, Any]:
    a = tasks.parse_args("pas.delegate", tasks.DelegateArgs, args)
    root, rel = ls.locate(a.uri)
    instruction = (a.instruction or "").strip()
    if not instruction:
        lines = _text_lines(ls, a.uri, root / rel)
        scope = tasks.scope_lines(lines, _lsp_range(a.range)) if a.range else lines
        instruction = tasks.instruction_in(scope) or ""
    if not instruction:
        raise InvalidParams("pas.delegate: instruction is missing (and no `pas:` comment to take it from)")
    sel = tasks.selection(rel, a.range) if a.range else None
    model = a.model or ls.effective(root).default_model
    task = await ls.submit(p.SubmitParams(workspace=str(root), instruction=instruction, files=[rel],
                                          selection=sel, model=model, engine=a.engine or None))
    return {"task_id": task.id}


async def delegate_job(ls: PasServer, *args: Any) -> dict[str, Any]:
    """Files and folders of one workspace as a job; the daemon expands folders and globs."""
    a = tasks.parse_args("pas.delegateJob", jobs.JobArgs, args)
    instruction = (a.instruction or "").strip()
    if not instruction:
        raise InvalidParams("pas.delegateJob: instruction is missing")
    located = [ls.locate(uri) for uri in a.uris]
    roots = {root for root, _ in located}
    if len(roots) > 1:
        raise InvalidParams(f"pas.delegateJob: the files are in {len(roots)} workspaces; a job works in one")
    root = roots.pop()
    for (_, rel), uri in zip(located, a.uris, strict=True):
        if not (root / rel).exists():
            raise InvalidParams(f"pas.delegateJob: no such file or folder: {uri}")
    model = a.model or ls.effective(root).default_model
    job = await ls.submit_job(p.JobSubmitParams(workspace=str(root), instruction=instruction,
                                                files=[rel for _, rel in located], split=a.split, model=model,
                                                engine=a.engine or None))
    return {"job_id": job.id, "task_ids": list(job.task_ids)}


async def approve(ls: PasServer, *args: Any) -> dict[str, Any]:
    """Open documents get the hunks through workspace/applyEdit; the daemon writes closed files."""
    a = tasks.parse_args("pas.approve", tasks.TaskArgs, args)
    client = await ls.link.client()
    info, diff = await client.get(a.task), await client.diff(a.task)
    pending = [h for f in diff.files for h in f.hunks if h.state is p.HunkState.PENDING]
    chosen = pending if a.hunks is None else [h for h in pending if h.id in set(a.hunks)]
    if not info.state.reviewable or not chosen or (a.hunks is not None and len(chosen) != len(set(a.hunks))):
        # Let the daemon say what is wrong (wrong state, unknown or settled hunk).
        r = await client.approve(p.ReviewParams(task_id=a.task, hunks=a.hunks))
        await ls.track(r.task)
        return _approved(r.task, r.applied, r.conflicts)
    root, opened = Path(info.workspace).resolve(), ls.open_documents()
    conflicts: list[p.Conflict] = []
    by_daemon: list[int] = []
    edits: dict[str, list[lsp.TextEdit]] = {}
    by_client: list[int] = []
    for h in chosen:
        uri = opened.get((root / h.path).resolve())
        if uri is None:
            by_daemon.append(h.id)
            continue
        text = ls.workspace.get_text_document(uri).source
        lines = review.split_lines(text)
        shift = review.locate(h, lines)
        if shift is None:
            conflicts.append(p.Conflict(hunk_id=h.id, path=h.path,
                                        reason="the editor's text under this hunk changed since the task started"))
            continue
        edits.setdefault(uri, []).append(review.text_edit(h, lines, text, shift))
        by_client.append(h.id)
    applied: list[int] = []
    state = info.state
    if by_daemon:
        r = await client.approve(p.ReviewParams(task_id=a.task, hunks=by_daemon))
        applied += r.applied
        conflicts += r.conflicts
        state = r.task.state
    if edits:
        result = await ls.workspace_apply_edit_async(lsp.ApplyWorkspaceEditParams(
            edit=lsp.WorkspaceEdit(changes=edits), label=f"PAS: approve task {a.task}"))
        if result.applied:
            r = await client.approve(p.ReviewParams(task_id=a.task, hunks=by_client, applied_by_client=by_client))
            applied += r.applied
            conflicts += r.conflicts
            state = r.task.state
        else:
            why = result.failure_reason or "the editor refused the edit"
            conflicts += [p.Conflict(hunk_id=i, path=_path_of(chosen, i), reason=why) for i in by_client]
    await ls.track(await client.get(a.task))
    if conflicts:
        detail = "; ".join(f"{c.path} hunk {c.hunk_id}: {c.reason}" for c in conflicts)
        ls.tell(f"PAS: task {a.task}: {len(conflicts)} hunk(s) not applied ({detail})", lsp.MessageType.Warning)
    return {"task_id": a.task, "state": state.value, "applied": sorted(applied),
            "conflicts": [c.model_dump(mode="json") for c in conflicts]}


def _approved(task: p.TaskInfo, applied: list[int], conflicts: list[p.Conflict]) -> dict[str, Any]:
    return {"task_id": task.id, "state": task.state.value, "applied": applied,
            "conflicts": [c.model_dump(mode="json") for c in conflicts]}


def _path_of(hunks: list[p.Hunk], hunk_id: int) -> str:
    return next(h.path for h in hunks if h.id == hunk_id)


async def approve_job(ls: PasServer, *args: Any) -> dict[str, Any]:
    """Every task of the job still in review, each as `pas.approve` does it (open documents via applyEdit)."""
    a = tasks.parse_args("pas.approveJob", jobs.JobRefArgs, args)
    client = await ls.link.client()
    job = await client.job(a.job)
    pending = [t for t in job.tasks if t.state.reviewable]
    if not pending:
        raise InvalidParams(f"pas.approveJob: job {job.id} has no task in review (it is {job.state.value})")
    results = [await approve(ls, {"task": t.id}) for t in pending]
    job = await client.job(job.id)
    return {"job_id": job.id, "state": job.state.value, "tasks": results}


async def reject_job(ls: PasServer, *args: Any) -> dict[str, Any]:
    a = tasks.parse_args("pas.rejectJob", jobs.JobRefArgs, args)
    client = await ls.link.client()
    r = await client.reject_job(p.JobReviewParams(job_id=a.job))
    for t in r.job.tasks:
        await ls.track(t)
    return {"job_id": r.job.id, "state": r.job.state.value}


async def reject(ls: PasServer, *args: Any) -> dict[str, Any]:
    a = tasks.parse_args("pas.reject", tasks.TaskArgs, args)
    client = await ls.link.client()
    r = await client.reject(p.ReviewParams(task_id=a.task, hunks=a.hunks))
    await ls.track(r.task)
    return {"task_id": r.task.id, "state": r.task.state.value, "rejected": r.rejected}


async def revise(ls: PasServer, *args: Any) -> dict[str, Any]:
    """Send the task's proposal back to its Programmer with a comment (about some hunks)."""
    a = tasks.parse_args("pas.revise", tasks.ReviseArgs, args)
    if not a.comment.strip():
        raise InvalidParams("pas.revise: comment is blank")
    task = await ls.submit(p.ReviseParams(task_id=a.task, comment=a.comment, hunks=a.hunks))
    await ls.track(task)
    return {"task_id": task.id, "state": task.state.value, "revision": task.revision}


async def show_diff(ls: PasServer, *args: Any) -> dict[str, Any]:
    a = tasks.parse_args("pas.showDiff", tasks.TaskOnlyArgs, args)
    client = await ls.link.client()
    diff = await client.diff(a.task)
    path = ls.diff_dir() / f"pas-{a.task}.diff"
    path.write_text(diff.diff)
    uri = path.as_uri()
    caps = ls.client_capabilities.window
    if caps and caps.show_document and caps.show_document.support:
        await ls.window_show_document_async(lsp.ShowDocumentParams(uri=uri, take_focus=True))
    return {"uri": uri}


async def diff_contents(ls: PasServer, *args: Any) -> dict[str, Any]:
    a = tasks.parse_args("pas.diffContents", tasks.TaskOnlyArgs, args)
    client = await ls.link.client()
    info, contents = await client.get(a.task), await client.contents(a.task)
    files = [{"path": f.path, "uri": (Path(info.workspace) / f.path).as_uri(), "base": f.base,
              "proposed": f.proposed} for f in contents.files]
    return {"task_id": info.id, "files": files}


async def cancel(ls: PasServer, *args: Any) -> dict[str, Any]:
    a = tasks.parse_args("pas.cancel", tasks.TaskOnlyArgs, args)
    client = await ls.link.client()
    task = await client.cancel(a.task)
    return {"task_id": task.id, "state": task.state.value}


async def status(ls: PasServer, *args: Any) -> dict[str, Any]:
    tasks.parse_args("pas.status", tasks.NoArgs, args)
    try:
        client = await ls.link.client()
        pool = await client.status()
    except DaemonUnavailable:
        return {"daemon": "down", "idle": 0, "busy": 0, "failed": 0, "queued": 0, "running": 0, "review": 0,
                "programmers": []}
    return {**status_counts(pool), "programmers": [
        {"id": prog.id, "state": prog.state.value, "task_id": prog.task_id, "model": prog.model}
        for prog in pool.programmers]}


async def models(ls: PasServer, *args: Any) -> dict[str, Any]:
    """The models to offer: the client's `pas.models`, else the daemon's `models.choices` for the workspace;
    and the engines installed where the daemon runs (native alone when it cannot say)."""
    a = tasks.parse_args("pas.models", tasks.ModelsArgs, args)
    root = ls.locate(a.uri)[0] if a.uri else next(iter(ls.roots()), None)
    offered, source = ls.effective(root), "settings"
    engines = ["native"]
    if not ls.settings.models:
        source = "config"  # unless the daemon answers: the config file as this server reads it
    try:
        client = await ls.link.client()
        if not ls.settings.models:
            answer = await client.models(str(root) if root else None)
            offered, source = combine(ls.settings, answer.choices, answer.default), "daemon"
        engines = [e.name for e in await client.engines() if e.installed] or engines
    except PasError as exc:
        log.info("models.list: %s", exc)
    return {"models": offered.models, "default": offered.default_model, "source": source, "engines": engines}


async def list_tasks(ls: PasServer, *args: Any) -> dict[str, Any]:
    a = tasks.parse_args("pas.tasks", tasks.TasksArgs, args)
    client = await ls.link.client()
    found = [t for t in await client.list(p.TaskListParams(states=a.states)) if ls.owns(t.workspace)]
    if a.uri:
        root, rel = ls.locate(a.uri)
        found = [t for t in found if Path(t.workspace).resolve() == root and rel in t.files]
    return {"tasks": [tasks.task_summary(t) for t in found]}


def _text_lines(ls: PasServer, uri: str, path: Path) -> list[str]:
    if uri in ls.workspace.text_documents:
        return ls.lines(uri)
    try:
        return path.read_text().splitlines()
    except OSError as exc:
        raise InvalidParams(f"pas.delegate: cannot read {path}: {exc.strerror}") from exc


def _lsp_range(r: tasks.Range) -> lsp.Range:
    return lsp.Range(lsp.Position(r.start.line, r.start.character), lsp.Position(r.end.line, r.end.character))


COMMANDS: dict[str, Command] = {
    "pas.delegate": delegate,
    "pas.delegateJob": delegate_job,
    "pas.approve": approve,
    "pas.reject": reject,
    "pas.revise": revise,
    "pas.approveJob": approve_job,
    "pas.rejectJob": reject_job,
    "pas.showDiff": show_diff,
    "pas.diffContents": diff_contents,
    "pas.cancel": cancel,
    "pas.status": status,
    "pas.models": models,
    "pas.tasks": list_tasks,
}
