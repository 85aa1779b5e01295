"""Helpers for the pas-lsp tests: start the server under pytest-lsp, open documents, wait, execute."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, Union

from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from daemon.testing import DaemonProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "openai/pasd-offline"
APP = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
T = TypeVar("T")

def server_env(d: DaemonProcess) -> dict[str, str]:
    return {**d.env, "PYTHONPATH": str(REPO_ROOT)}


class Client(LanguageClient):
    """pytest-lsp's client plus what pas-lsp sends besides the standard notifications."""

    statuses: list[dict[str, Any]]
    edits: list[lsp.ApplyWorkspaceEditParams]
    apply_result: bool


def make_client() -> LanguageClient:
    from pygls.protocol import default_converter
    from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

    create = lsp.WINDOW_WORK_DONE_PROGRESS_CREATE
    client = LanguageClient(converter_factory=default_converter)
    register_lsp_features(client, {k: v for k, v in DEFAULT_CLIENT_FEATURES.items() if k != create})
    client.statuses = []  # type: ignore[attr-defined]
    client.edits = []  # type: ignore[attr-defined]
    client.apply_result = True  # type: ignore[attr-defined]
    client.progress_gate = asyncio.Event()  # type: ignore[attr-defined]
    client.progress_gate.set()  # type: ignore[attr-defined]

    @client.feature(create)
    async def on_progress_create(ls: LanguageClient, params: lsp.WorkDoneProgressCreateParams) -> None:
        # A test may hold the answer back, as a busy editor does, to let the task run ahead of it.
        await ls.progress_gate.wait()  # type: ignore[attr-defined]
        DEFAULT_CLIENT_FEATURES[create](ls, params)

    @client.feature("pas/status")
    def on_status(ls: LanguageClient, params: Any) -> None:
        ls.statuses.append(params if isinstance(params, dict) else _plain(params))  # type: ignore[attr-defined]

    @client.feature(lsp.WORKSPACE_APPLY_EDIT)
    def on_apply(ls: LanguageClient, params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
        ls.edits.append(params)  # type: ignore[attr-defined]
        if not ls.apply_result:  # type: ignore[attr-defined]
            return lsp.ApplyWorkspaceEditResult(applied=False, failure_reason="refused by the test")
        for uri, edits in (params.edit.changes or {}).items():
            for edit in edits:  # keep the client's copy of the document in step, like an editor
                _apply(ls, uri, edit)
        return lsp.ApplyWorkspaceEditResult(applied=True)

    @client.feature(lsp.WORKSPACE_CODE_LENS_REFRESH)
    def on_lens_refresh(ls: LanguageClient, params: None) -> None:
        ls.lens_refreshes = getattr(ls, "lens_refreshes", 0) + 1  # type: ignore[attr-defined]

    # lsprotocol 2025.0.0 structures a CodeAction carrying a command as a Command (STACK.md).
    converter = client.protocol._converter
    union = Union[lsp.Command, lsp.CodeAction]  # noqa: UP007

    def structure(o: Any, _: Any) -> Any:
        if isinstance(o, dict) and not isinstance(o.get("command"), str):
            return converter.structure(o, lsp.CodeAction)
        return converter.structure(o, lsp.Command)

    converter.register_structure_hook(union, structure)
    return client


def _plain(obj: Any) -> Any:
    if hasattr(obj, "_asdict"):
        return {k: _plain(v) for k, v in obj._asdict().items()}
    return obj


def _apply(ls: LanguageClient, uri: str, edit: lsp.TextEdit) -> None:
    docs: dict[str, list[str]] = ls.__dict__.setdefault("texts", {})
    if uri not in docs:
        return
    text = docs[uri]
    lines = text[0].splitlines(keepends=True)
    offset = lambda pos: sum(len(x) for x in lines[: pos.line]) + pos.character
    s, e = offset(edit.range.start), offset(edit.range.end)
    text[0] = text[0][:s] + edit.new_text + text[0][e:]


async def start_client(d: DaemonProcess, workspace: Path, options: dict[str, Any] | None = None,
                       env: dict[str, str] | None = None, experimental: Any = None) -> LanguageClient:
    config = ClientServerConfig(server_command=[sys.executable, "-m", "pas_lsp"], client_factory=make_client,
                                server_env={**server_env(d), **(env or {})})
    client = await config.start()
    capabilities = client_capabilities("visual-studio-code")
    if experimental is not None:
        capabilities.experimental = experimental
    await client.initialize_session(lsp.InitializeParams(
        capabilities=capabilities,
        root_uri=workspace.as_uri(),
        workspace_folders=[lsp.WorkspaceFolder(uri=workspace.as_uri(), name="ws")],
        initialization_options=options if options is not None else {"models": [MODEL, "openai/pasd-offline-b"]},
    ))
    return client


def open_doc(client: LanguageClient, path: Path) -> str:
    uri = path.as_uri()
    text = path.read_text()
    client.__dict__.setdefault("texts", {})[uri] = [text]
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    return uri


def buffer_text(client: LanguageClient, uri: str) -> str:
    return client.__dict__["texts"][uri][0]


async def wait_until(check: Callable[[], T], what: str, timeout: float = 120.0) -> T:
    """Wait for a condition the server's messages make true (the client records each message)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
    return value


async def execute(client: LanguageClient, command: str, *args: Any) -> Any:
    return await client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command=command, arguments=list(args)))


def r(l1: int, c1: int, l2: int, c2: int) -> lsp.Range:
    return lsp.Range(lsp.Position(l1, c1), lsp.Position(l2, c2))


async def delegate_and_review(client: LanguageClient, uri: str, rng: lsp.Range, instruction: str) -> str:
    """Delegate a selection and wait until its diagnostics are published; returns the task id."""
    result = await execute(client, "pas.delegate", {"uri": uri, "range": _json_range(rng), "model": MODEL,
                                                      "instruction": instruction})
    task_id = result["task_id"] if isinstance(result, dict) else result.task_id
    await wait_until(lambda: any(d.code == task_id for d in client.diagnostics.get(uri, [])),
                     f"review diagnostics of task {task_id}")
    return task_id


def _json_range(rng: lsp.Range) -> dict[str, Any]:
    return {"start": {"line": rng.start.line, "character": rng.start.character},
            "end": {"line": rng.end.line, "character": rng.end.character}}
