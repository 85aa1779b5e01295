"""The pas-lsp handlers: thin functions registered on a `PasServer` by `create_server()`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types as lsp

from pas_lsp import commands, jobs, review, tasks
from pas_lsp.config import MAX_ACTION_MODELS
from pas_lsp.errors import InvalidParams, to_lsp
from pas_lsp.state import PasServer

log = logging.getLogger(__name__)


def create_server() -> PasServer:
    """Build the server and register its handlers; nothing runs until `start_io()`."""
    server = PasServer()

    @server.feature(lsp.INITIALIZE)
    async def initialize(ls: PasServer, params: lsp.InitializeParams) -> None:
        await ls.use_settings(params.initialization_options)

    @server.feature(lsp.INITIALIZED)
    async def initialized(ls: PasServer, params: lsp.InitializedParams) -> None:
        caps = ls.client_capabilities.workspace
        if caps and caps.configuration:
            await pull_configuration(ls)
        ls.follower = asyncio.get_running_loop().create_task(
            ls.link.follow(ls.on_up, ls.on_event, ls.on_down), name="pas-lsp-follower")

    @server.feature(lsp.SHUTDOWN)
    async def shutdown(ls: PasServer, params: None) -> None:
        await ls.stop()

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: PasServer, params: lsp.DidChangeConfigurationParams) -> None:
        caps = ls.client_capabilities.workspace
        if caps and caps.configuration:
            await pull_configuration(ls)
        elif isinstance(params.settings, dict) and "pas" in params.settings:
            await ls.use_settings(params.settings["pas"])

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: PasServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.publish_review()

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: PasServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        if uri in ls._published:
            ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
            ls._published.discard(uri)

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(
        code_action_kinds=[lsp.CodeActionKind.RefactorRewrite, lsp.CodeActionKind.QuickFix]))
    def code_action(ls: PasServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        uri = params.text_document.uri
        try:
            root, _ = ls.locate(uri)
        except InvalidParams:
            return []
        lines = ls.lines(uri)
        models = ls.effective(root).models[:MAX_ACTION_MODELS]
        actions = [a for t, h in ls.hunks_at(uri) if review.overlaps(review.hunk_range(h, lines), params.range)
                   for a in review.hunk_actions(t, h)]
        return actions + tasks.delegate_actions(uri, params.range, lines, models) + jobs.folder_actions(uri, models)

    @server.feature(lsp.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(ls: PasServer, params: lsp.CodeLensParams) -> list[lsp.CodeLens]:
        uri = params.text_document.uri
        lines = ls.lines(uri)
        return [lens for t, h in ls.hunks_at(uri) for lens in review.code_lenses(t, h, lines)]

    for name, run in commands.COMMANDS.items():
        _register(server, name, run)
    return server


async def pull_configuration(ls: PasServer) -> None:
    try:
        result = await ls.workspace_configuration_async(
            lsp.ConfigurationParams(items=[lsp.ConfigurationItem(section="pas")]))
    except Exception as exc:
        log.info("workspace/configuration failed: %s", exc)
        return
    if result and isinstance(result[0], dict):
        await ls.use_settings(result[0])


def _register(server: PasServer, name: str, run: commands.Command) -> None:
    async def handler(ls: PasServer, *args: Any) -> Any:
        try:
            return await run(ls, *args)
        except Exception as exc:
            err = to_lsp(exc)
            ls.tell(f"PAS: {err.message}", lsp.MessageType.Error)
            raise err from exc

    handler.__name__ = name.replace(".", "_")
    server.command(name)(handler)
