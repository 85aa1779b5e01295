"""`task.list` paging and filters: a `before` cursor (keyset on the list's order), `model`, `text`, and
the total; bad values get one clear error and the daemon keeps serving."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from daemon import protocol as p
from daemon.client import PasClient
from daemon.config import OFFLINE_MODEL
from daemon.testing import DaemonProcess

OTHER = "openai/pasd-offline-b"


async def submit(c: PasClient, repo: Path, instruction: str, model: str | None = None,
                 files: list[str] | None = None) -> p.TaskInfo:
    return await c.submit(p.SubmitParams(workspace=str(repo), instruction=instruction, files=files or ["app.py"],
                                         model=model))


async def test_cursor_pages_return_every_task_once_while_new_tasks_arrive(daemon: DaemonProcess, repo: Path) -> None:
    async with PasClient(daemon.socket) as c:
        first = [await submit(c, repo, f"document function number {i}") for i in range(11)]
        seen: list[str] = []
        arrived: list[str] = []
        before = None
        while True:
            page = await c.task_page(p.TaskListParams(limit=3, before=before, count=True))
            assert page.total == len(first) + len(arrived)  # the total counts the newcomers too
            seen += [t.id for t in page.tasks]
            if len(arrived) < 4:  # a task queued between pages lands on the first page, not this one
                arrived.append((await submit(c, repo, f"late arrival {len(arrived)}")).id)
            if page.next is None:
                break
            assert page.next == page.tasks[-1].id
            before = page.next
        assert seen == [t.id for t in reversed(first)]  # each once, newest first
        newest = await c.task_page(p.TaskListParams(limit=4))
        assert [t.id for t in newest.tasks] == arrived[::-1] and newest.total is None


async def test_filters_by_model_and_words_with_paging(daemon: DaemonProcess, repo: Path) -> None:
    async with PasClient(daemon.socket) as c:
        a = [await submit(c, repo, f"rename helper alpha{i}") for i in range(4)]
        b = [await submit(c, repo, f"rename helper beta{i}", OTHER, ["util.py"]) for i in range(3)]
        on_b = await c.task_page(p.TaskListParams(model=OTHER, count=True))
        assert [t.id for t in on_b.tasks] == [t.id for t in reversed(b)] and on_b.total == 3
        assert (await c.task_page(p.TaskListParams(model=OFFLINE_MODEL, count=True))).total == 4
        assert (await c.task_page(p.TaskListParams(model="openai/none"))).tasks == []
        # words: each must begin a word of the id, the instruction, a file or the job id, in any case
        assert [t.id for t in await c.list(p.TaskListParams(text="ALPHA2"))] == [a[2].id]
        assert [t.id for t in await c.list(p.TaskListParams(text="util.py rename"))] == [t.id for t in reversed(b)]
        assert [t.id for t in await c.list(p.TaskListParams(text=b[1].id[:4]))] == [b[1].id]
        assert await c.list(p.TaskListParams(text="lpha")) == []  # the start of a word, not its middle
        assert await c.list(p.TaskListParams(text='"alpha0 OR NEAR(')) == []  # no word is an operator
        paged = await c.task_page(p.TaskListParams(text="helper", model=OFFLINE_MODEL, limit=3, count=True))
        rest = await c.task_page(p.TaskListParams(text="helper", model=OFFLINE_MODEL, limit=3, before=paged.next))
        assert [t.id for t in paged.tasks + rest.tasks] == [t.id for t in reversed(a)] and paged.total == 4
        assert rest.next is None
        states = {t.state for t in await c.list()}
        mixed = await c.task_page(p.TaskListParams(text="rename", states=list(states), model=OTHER, count=True))
        assert mixed.total == 3


async def raw(socket: Path, params: dict[str, Any]) -> dict[str, Any]:
    """task.list with params as plain JSON (as `daemon/cli/quick.py` sends them)."""
    reader, writer = await asyncio.open_unix_connection(str(socket))
    try:
        writer.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "task.list", "params": params}).encode() + b"\n")
        await writer.drain()
        reply: dict[str, Any] = json.loads(await reader.readline())
        return reply
    finally:
        writer.close()


async def test_bad_list_params_get_a_clear_error(daemon: DaemonProcess, repo: Path) -> None:
    async with PasClient(daemon.socket) as c:
        task = await submit(c, repo, "document add")
        for params, words in (({"before": "nosuch"}, "no task 'nosuch' to page from"),
                              ({"before": ""}, "before"), ({"model": "x" * 301}, "model"),
                              ({"text": "w " * 300}, "text"), ({"count": "many"}, "count"),
                              ({"limit": 0}, "limit")):
            reply = await raw(daemon.socket, params)
            error = reply.get("error")
            assert error is not None and error["code"] == -32602, (params, reply)
            assert words in error["message"] and "\n" not in error["message"], (params, error["message"])
        plain = await raw(daemon.socket, {"limit": 5, "states": None, "text": "document", "model": OFFLINE_MODEL})
        assert [t["id"] for t in plain["result"]["tasks"]] == [task.id] and plain["result"]["next"] is None
        assert [t.id for t in await c.list(p.TaskListParams(before=task.id))] == []  # the daemon still serves
        assert [t.id for t in await c.list()] == [task.id]
