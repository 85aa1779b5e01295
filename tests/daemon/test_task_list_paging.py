"""`task.list` paging and filters: a `before` cursor (keyset on the list's order), `model`, `text`, and
the total; bad values get one clear error and the daemon keeps serving.

One daemon serves the module (CI time); each test works in its own workspace and lists by it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon import protocol as p
from daemon.client import PasClient
from daemon.config import OFFLINE_MODEL
from daemon.offline_model import OfflineModel
from daemon.store import Store
from daemon.testing import DaemonProcess, make_repo, offline_config

OTHER = "openai/pasd-offline-b"
FILES = {"app.py": "def add(a, b):\n    return a + b\n", "util.py": "def mul(a, b):\n    return a * b\n"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    tmp = tmp_path_factory.mktemp("list")
    with OfflineModel() as model:
        d = DaemonProcess(tmp, workers=4, config=offline_config(model.url)).start()
        try:
            yield d
        finally:
            d.cleanup()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "ws", FILES).resolve()


def ours(repo: Path, **params: Any) -> p.TaskListParams:
    """List params for this test's workspace alone."""
    return p.TaskListParams(workspace=str(repo), **params)


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
            page = await c.task_page(ours(repo, limit=3, before=before, count=True))
            assert page.total == len(first) + len(arrived)  # the total counts the newcomers too
            seen += [t.id for t in page.tasks]
            if len(arrived) < 4:  # a task queued between pages lands on the first page, not this one
                arrived.append((await submit(c, repo, f"late arrival {len(arrived)}")).id)
            if page.next is None:
                break
            assert page.next == page.tasks[-1].id
            before = page.next
        assert seen == [t.id for t in reversed(first)]  # each once, newest first
        newest = await c.task_page(ours(repo, limit=4))
        assert [t.id for t in newest.tasks] == arrived[::-1] and newest.total is None


async def test_filters_by_model_and_words_with_paging(daemon: DaemonProcess, repo: Path) -> None:
    async with PasClient(daemon.socket) as c:
        a = [await submit(c, repo, f"rename helper alpha{i}") for i in range(4)]
        b = [await submit(c, repo, f"rename helper beta{i}", OTHER, ["util.py"]) for i in range(3)]
        on_b = await c.task_page(ours(repo, model=OTHER, count=True))
        assert [t.id for t in on_b.tasks] == [t.id for t in reversed(b)] and on_b.total == 3
        assert (await c.task_page(ours(repo, model=OFFLINE_MODEL, count=True))).total == 4
        assert (await c.task_page(ours(repo, model="openai/none"))).tasks == []
        # words: each must begin a word of the id, the instruction, a file or the job id, in any case
        assert [t.id for t in await c.list(ours(repo, text="ALPHA2"))] == [a[2].id]
        assert [t.id for t in await c.list(ours(repo, text="util.py rename"))] == [t.id for t in reversed(b)]
        assert [t.id for t in await c.list(ours(repo, text=b[1].id[:4]))] == [b[1].id]
        assert await c.list(ours(repo, text="lpha")) == []  # the start of a word, not its middle
        assert await c.list(ours(repo, text='"alpha0 OR NEAR(')) == []  # no word is an operator
        paged = await c.task_page(ours(repo, text="helper", model=OFFLINE_MODEL, limit=3, count=True))
        rest = await c.task_page(ours(repo, text="helper", model=OFFLINE_MODEL, limit=3, before=paged.next))
        assert [t.id for t in paged.tasks + rest.tasks] == [t.id for t in reversed(a)] and paged.total == 4
        assert rest.next is None
        states = {t.state for t in await c.list(ours(repo))}
        mixed = await c.task_page(ours(repo, text="rename", states=list(states), model=OTHER, count=True))
        assert mixed.total == 3
        # the receipts charts' sums, by the daemon, agree with the receipts themselves
        for t in await c.list(p.TaskListParams(states=[p.TaskState.QUEUED, p.TaskState.RUNNING])):
            await c.wait(t.id)  # every task of the daemon: no receipt arrives between the two reads
        receipts = await c.receipts(p.ReceiptsParams(limit=1000))
        series = await c.receipt_series()
        assert series.receipts == len(receipts) > 0
        assert {m.model for m in series.models} == {r.provider.model for r in receipts}
        for m in series.models:
            mine = [r for r in receipts if r.provider.model == m.model]
            assert sum(m.wall) == m.receipts == len(mine) and len(m.wall) == len(series.wall_edges) - 1
            for r in mine:  # each attempt counted in the bin of its time
                i = min(sum(1 for e in series.wall_edges[1:-1] if r.wall_s >= e), len(m.wall) - 1)
                assert m.wall[i] > 0
            assert m.tokens_input == sum(r.tokens.input for r in mine)
            assert abs(m.cost_usd - sum(r.cost_usd for r in mine)) < 1e-6
        assert abs(sum(d.cost_usd for d in series.days) - series.total_usd) < 1e-6
        assert max(r.wall_s for r in receipts) == pytest.approx(series.wall_edges[-1], abs=1e-3)


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
        plain = await raw(daemon.socket, {"limit": 5, "states": None, "text": "document", "model": OFFLINE_MODEL,
                                          "workspace": str(repo)})
        assert [t["id"] for t in plain["result"]["tasks"]] == [task.id] and plain["result"]["next"] is None
        assert [t.id for t in await c.list(ours(repo, before=task.id))] == []  # the daemon still serves
        assert [t.id for t in await c.list(ours(repo))] == [task.id]


def test_a_store_made_before_the_word_index_gains_it_with_its_tasks(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for i in range(3):
        task = p.TaskInfo(id=f"t{i}", state=p.TaskState.QUEUED, workspace="/ws", instruction=f"tidy module{i}",
                          files=[f"src/m{i}.py"], model=OFFLINE_MODEL, timeout_s=60, created_at=float(i), job_id="jq")
        store.save_task(task, seq=store.next_seq())
    store.db.executescript("DROP TRIGGER task_words_insert; DROP TRIGGER task_words_update; "
                           "DROP TRIGGER task_words_delete; DROP TABLE task_words; DROP INDEX tasks_model_seq;")
    store.close()
    store = Store(tmp_path)  # as the next start of a daemon of the version before finds it
    try:
        assert [t.id for t in store.list_tasks(text="module1")] == ["t1"]
        assert [t.id for t in store.list_tasks(text="jq src/m2")] == ["t2"]
        assert store.count_matching(model=OFFLINE_MODEL, text="tidy") == 3
        assert store.count_matching(text="tidy", cap=1) == 2  # stops past the cap: "more than 1"
        store.save_task(store.list_tasks(text="module0")[0].model_copy(update={"instruction": "other words"}))
        assert store.list_tasks(text="module0") == [] and [t.id for t in store.list_tasks(text="other")] == ["t0"]
    finally:
        store.close()
