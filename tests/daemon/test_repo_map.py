"""The repo map: what of the workspace the model sees besides the task's files, on the real daemon."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.programmer.repomap import index, tags
from daemon.programmer.repomap.index import RepoMaps, Watch
from daemon.programmer.repomap.rank import HEADER, build_graph, estimate_tokens, rank_definitions
from daemon.testing import DaemonFactory, make_repo, write_config, write_files

APP = """from shop.helpers import slugify
from shop.other import ping


def title(text):
    head = slugify(text)
    tail = slugify(text[::-1])
    ping()
    return slugify(head + tail) + generated_thing() + leaked_secret()
"""

FILES = {
    "shop/app.py": APP,
    "shop/helpers.py": "def slugify(text: str) -> str:\n    return text.lower()\n\n\ndef unused_helper():\n    pass\n",
    "shop/other.py": "def ping() -> None:\n    return None\n",
    "shop/unrelated.py": "def launch_rockets(count: int) -> int:\n    return count\n",
    ".env.js": "function leaked_secret() { return 'hunter2'; }\n",
    "build/gen.py": "def generated_thing():\n    return 1\n",
    ".gitignore": "build/\n",
}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "shop-ws", FILES)


def map_of(request: dict[str, Any]) -> str:
    """The repo map a recorded model request carried ("" for none)."""
    found = [m["content"] for m in request["messages"] if m["role"] == "user"
             and m["content"].startswith("### REPO MAP\n")]
    assert len(found) <= 1
    return found[0].removeprefix("### REPO MAP\n") if found else ""


def submit(repo: Path, instruction: str = "tidy title") -> p.SubmitParams:
    return p.SubmitParams(workspace=str(repo), instruction=instruction, files=["shop/app.py"])


async def test_the_map_lists_what_the_task_file_calls_and_follows_edits(
        make_daemon: DaemonFactory, offline: OfflineModel, shop: Path) -> None:
    d = make_daemon(workers=1)
    async with d.client() as c:
        task = await c.wait((await c.submit(submit(shop))).id)
        assert task.state is p.TaskState.REVIEW
        first = map_of(offline.requests[-1])
        assert "shop/helpers.py:\n" in first and "│def slugify(text: str) -> str:" in first
        assert "│def ping() -> None:" in first
        # the map comes between the system prompt and the files; the files' own definitions are not in it
        roles = [m["role"] for m in offline.requests[-1]["messages"]]
        assert roles == ["system", "user", "assistant", "user"]
        assert "def title" not in first and "shop/app.py" not in first
        # nothing the task's file does not lead to; never an ignored or secret-looking file, though called
        for absent in ("launch_rockets", "unused_helper", "generated_thing", "build/gen.py",
                       "leaked_secret", ".env.js", "hunter2"):
            assert absent not in first
        assert not any("hunter2" in json.dumps(r["messages"]) for r in offline.requests)
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert receipt.map_tokens == estimate_tokens(first) > 0

        # the user edits two files: the next task's map shows the new definition
        write_files(shop, {"shop/helpers.py": FILES["shop/helpers.py"] + "\n\ndef titlecase(text: str) -> str:\n"
                                                                          "    return text.title()\n",
                           "shop/app.py": APP + "\n\ndef shout(text):\n    return titlecase(text)\n"})
        task2 = await c.wait((await c.submit(submit(shop))).id)
        assert task2.state is p.TaskState.REVIEW
        second = map_of(offline.requests[-1])
        assert "│def titlecase(text: str) -> str:" in second and "│def slugify(text: str) -> str:" in second


async def test_the_daemon_follows_edits_and_new_files_by_file_events(
        make_daemon: DaemonFactory, offline: OfflineModel, shop: Path) -> None:
    d = make_daemon(workers=1)
    async with d.client() as c:
        task = await c.wait((await c.submit(submit(shop))).id)
        assert task.state is p.TaskState.REVIEW and "def titlecase" not in map_of(offline.requests[-1])
        await until(lambda: f"repo map: watching {shop}" in d.log.read_text(), "the watch runs")
        task = await c.wait((await c.submit(submit(shop))).id)  # its look walks once under the watch
        assert f"repo map of {shop}: following file-system events" in d.log.read_text()

        write_files(shop, {"shop/helpers.py": FILES["shop/helpers.py"] + "\n\ndef titlecase(text: str) -> str:\n"
                                                                          "    return text.title()\n",
                           "shop/fresh.py": "def brand_new(x: int) -> int:\n    return x\n"})
        seen = ""
        for _ in range(50):  # the next task after the events arrive (each look reads only what they name)
            task = await c.wait((await c.submit(submit(shop, "call brand_new and titlecase"))).id)
            assert task.state is p.TaskState.REVIEW
            seen = map_of(offline.requests[-1])
            if "brand_new" in seen and "titlecase" in seen:
                break
        assert "│def titlecase(text: str) -> str:" in seen and "│def brand_new(x: int) -> int:" in seen
        assert "cannot watch" not in d.log.read_text()


async def test_map_tokens_zero_puts_no_map_in_the_prompt(make_daemon: DaemonFactory, offline: OfflineModel,
                                                         shop: Path) -> None:
    d = make_daemon(workers=1, context={"map_tokens": 0})
    async with d.client() as c:
        task = await c.wait((await c.submit(submit(shop))).id)
        assert task.state is p.TaskState.REVIEW
        [request] = offline.requests
        assert [m["role"] for m in request["messages"]] == ["system", "user"]
        assert "slugify(text: str)" not in json.dumps(request["messages"])
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert receipt.map_tokens == 0


async def test_a_workspace_file_may_lower_map_tokens_but_not_raise_them(
        make_daemon: DaemonFactory, offline: OfflineModel, shop: Path) -> None:
    # 44 tokens hold one definition: the one the task's file calls most
    d = make_daemon(workers=1, context={"map_tokens": 44})
    write_config(shop / ".pas.toml", {"context": {"map_tokens": 4000}})
    async with d.client() as c:
        task = await c.wait((await c.submit(submit(shop))).id)
        assert task.state is p.TaskState.REVIEW
        small = map_of(offline.requests[-1])
        assert "slugify" in small and "ping" not in small  # called three times, against once
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert 0 < receipt.map_tokens <= 44

        write_config(shop / ".pas.toml", {"context": {"map_tokens": 0}})
        task2 = await c.wait((await c.submit(submit(shop))).id)
        assert task2.state is p.TaskState.REVIEW
        assert map_of(offline.requests[-1]) == ""


# ---------------------------------------------------------------- the index, in process


async def test_an_edit_reparses_only_that_file(shop: Path) -> None:
    (shop / "shop/link.py").symlink_to(shop / "shop/helpers.py")
    write_files(shop, {"shop/big.py": "def huge():\n    pass\n" + "# padding\n" * 40_000,
                       "shop/blob.py": "def blob():\n    pass\n\0\0\0"})
    maps = RepoMaps()
    try:
        first = await maps.map_for(str(shop), ["shop/app.py"], None, "tidy title", 1000)
        stats = maps.index(str(shop)).stats()
        # app, helpers, other, unrelated, blob (read, found binary); not the link, the big file,
        # the ignored build/gen.py or the secret-looking .env.js
        assert (stats.files, stats.parses, stats.last_parsed) == (5, 5, 5)
        assert "slugify" in first and "huge" not in first and "blob" not in first

        again = await maps.map_for(str(shop), ["shop/app.py"], None, "tidy title", 1000)
        assert again == first and maps.index(str(shop)).stats().last_parsed == 0

        write_files(shop, {"shop/other.py": "def ping(retries: int) -> None:\n    return None\n"})
        os.utime(shop / "shop/other.py", ns=(1, 1))  # a new mtime, whatever the clock's resolution
        third = await maps.map_for(str(shop), ["shop/app.py"], None, "tidy title", 1000)
        stats = maps.index(str(shop)).stats()
        assert (stats.last_parsed, stats.parses) == (1, 6)
        assert "│def ping(retries: int) -> None:" in third
    finally:
        await maps.close()


async def test_the_selection_and_instruction_steer_the_ranking(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", {
        "main.py": "def run():\n    alpha()\n    alpha()\n    alpha()\n\n\ndef other():\n    beta()\n",
        "a.py": "def alpha():\n    pass\n",
        "b.py": "def beta():\n    pass\n",
        "c.py": "def gamma():\n    pass\n",
    })
    maps = RepoMaps()
    try:
        idx = maps.index(str(repo))
        await maps.map_for(str(repo), ["main.py"], None, "x", 1000)
        one = estimate_tokens(HEADER) + 10  # room for one of these short definitions
        plain = idx.render(["main.py"], None, "x", one)
        assert "alpha" in plain and "beta" not in plain
        chosen = idx.render(["main.py"], p.Selection(path="main.py", start_line=7, end_line=8), "x", one)
        assert "beta" in chosen and "alpha" not in chosen
        named = idx.render(["main.py"], None, "call gamma from run", 1000)
        assert "gamma" in named
    finally:
        await maps.close()


async def test_no_map_outside_git(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    write_files(tmp_path / "plain", {"a.py": "import b\nb.f()\n", "b.py": "def f():\n    pass\n"})
    maps = RepoMaps()
    try:
        assert await maps.map_for(str(tmp_path / "plain"), ["a.py"], None, "x", 1000) == ""
    finally:
        await maps.close()


# ---------------------------------------------------------------- every language yields its definitions

SOURCES = {
    "shop.py": ("LIMIT = 3\n\nclass Cart:\n    def add(self, item):\n        total(item)\n\n"
                "def total(x):\n    return x\n", {"LIMIT", "Cart", "add", "total"}, {"total"}),
    "shop.ts": ("export interface Point { x: number }\nexport class Circle {\n  area(): number { return 1; }\n}\n"
                "export function makeCircle(r: number): Circle { return scale(r); }\n"
                "export const double = (n: number) => n * 2;\ntype Id = string;\n",
                {"Point", "Circle", "area", "makeCircle", "double", "Id"}, {"scale"}),
    "shop.tsx": ("export function Button(props: Props) { return render(props); }\n",
                 {"Button"}, {"render"}),
    "shop.js": ("class Dog {\n  bark() { return 1; }\n}\nfunction feed(d) { d.bark(); }\n"
                "const walk = () => feed(new Dog());\n", {"Dog", "bark", "feed", "walk"}, {"feed", "bark", "Dog"}),
    "shop.go": ("package shop\n\ntype Cart struct{ n int }\n\nfunc (c *Cart) Add(x int) { helper(x) }\n\n"
                "func NewCart() *Cart { return &Cart{} }\n", {"Cart", "Add", "NewCart"}, {"helper"}),
    "shop.rs": ("pub struct Cart { n: i32 }\npub trait Payer { fn pay(&self); }\n"
                "impl Cart {\n    pub fn add(&mut self, x: i32) { helper(x); }\n}\n"
                "pub fn new_cart() -> Cart { Cart { n: 0 } }\n", {"Cart", "Payer", "add", "new_cart"}, {"helper"}),
    "Shop.java": ("public class Cart {\n    public void add(int x) { helper(x); }\n}\n"
                  "interface Payer { void pay(); }\n", {"Cart", "add", "Payer", "pay"}, {"helper"}),
    "shop.c": ("struct cart { int n; };\ntypedef int money;\n"
               "int add_item(struct cart *c, int x) { return helper(x); }\n", {"cart", "money", "add_item"},
               {"helper"}),
    "shop.cpp": ("class Cart {\n public:\n  void add(int x);\n};\nvoid Cart::add(int x) { helper(x); }\n"
                 "int total(int a) { return a; }\n", {"Cart", "add", "total"}, {"helper"}),
    "shop.lua": ("local M = {}\nfunction M.add(x) return helper(x) end\nfunction M:pay() end\n"
                 "local function total(a) return a end\nreturn M\n", {"add", "pay", "total"}, {"helper"}),
}


@pytest.mark.parametrize("path", sorted(SOURCES))
def test_each_language_yields_its_definitions_and_references(path: str) -> None:
    source, defs, refs = SOURCES[path]
    found = tags.parse(path, source.encode())
    assert found is not None
    assert {d.name for d in found.defs} >= defs
    assert set(found.refs) >= refs


def test_a_go_caller_ranks_the_go_function_it_calls() -> None:
    files = {"cmd/main.go": "package main\n\nfunc main() { Serve(); Serve(); Log() }\n",
             "srv/serve.go": "package srv\n\nfunc Serve() error { return nil }\n",
             "srv/log.go": "package srv\n\nfunc Log() {}\n",
             "srv/idle.go": "package srv\n\nfunc Idle() {}\n"}
    parsed = {path: tags.parse(path, text.encode()) for path, text in files.items()}
    known = {k: v for k, v in parsed.items() if v is not None}
    ranked = rank_definitions(build_graph(known), ["cmd/main.go"])
    names = [name for _, _, name in ranked]
    assert names[:2] == ["Serve", "Log"] and "Idle" not in names and "main" not in names


def test_an_old_receipt_without_map_tokens_still_loads() -> None:
    old = {"task_id": "t", "run_id": "r", "attempt": 1, "programmer": "Programmer-01",
           "provider": {"provider": "openai", "model": "openai/x"}, "tokens": {"input": 1, "output": 1},
           "cost_usd": 0.0, "priced": False, "wall_s": 1.0, "llm_s": 1.0, "outcome": "review", "created_at": 1.0}
    assert p.Receipt.model_validate(old).map_tokens == 0



def test_the_graph_kept_file_by_file_matches_one_built_afresh() -> None:
    def parse(path: str, text: str) -> tags.FileTags:
        found = tags.parse(path, text.encode())
        assert found is not None
        return found

    files = {"a.py": "def a():\n    b()\n    c()\n", "b.py": "def b():\n    c()\n", "c.py": "def c():\n    pass\n",
             "d.go": "package d\n\nfunc c() { b() }\n"}
    graph = build_graph({f: parse(f, t) for f, t in files.items()})
    for f in graph.tags:  # every file's edges worked out, so that stale ones would show
        graph.edges(f)
    edits = [("c.py", "def gone():\n    pass\n"), ("b.py", "def b():\n    pass\n\n\ndef c():\n    pass\n"),
             ("e.py", "def e():\n    a()\n"), ("c.py", None), ("a.py", "def a():\n    e()\n    c()\n")]
    for path, text in edits:
        if text is None:
            files.pop(path)
            graph.put(path, None)
        else:
            files[path] = text
            graph.put(path, parse(path, text))
        fresh = build_graph({f: parse(f, t) for f, t in files.items()})
        assert graph.defines == fresh.defines
        for f in files:
            assert graph.edges(f) == fresh.edges(f), (path, f)


def test_imported_names_are_references_and_a_name_after_a_dot_is_a_weak_one() -> None:
    found = tags.parse("a.py", b"from shop.helpers import slugify, titlecase as tc\n\nitems.get(1)\nslugify(2)\n")
    assert found is not None
    assert set(found.refs) >= {"slugify", "titlecase", "get"}
    assert "get" in found.members and "slugify" not in found.members


async def test_a_submitted_task_warms_the_index_and_its_dispatch_reuses_it(shop: Path) -> None:
    maps = RepoMaps()
    try:
        maps.warm(str(shop))
        maps.warm(str(shop))  # a second submit while the first build runs starts nothing new
        text = await maps.map_for(str(shop), ["shop/app.py"], None, "tidy title", 1000)
        stats = maps.index(str(shop)).stats()
        # one build parsed the four files, and the dispatch that came while it ran took its result
        assert (stats.parses, stats.updates) == (4, 1)
        assert "slugify" in text
    finally:
        await maps.close()


# ---------------------------------------------------------------- following file-system events

async def until(check: Any, what: str) -> None:
    """Wait for observable state (the bound only turns a hang into a failure)."""
    for _ in range(1_000):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")


async def followed(maps: RepoMaps, ws: str) -> str:
    """Look until the index follows events (its watch runs and one walk was made under it)."""
    text = ""
    for _ in range(1_000):
        text = await maps.map_for(ws, ["shop/app.py"], None, "tidy title", 1000)
        if maps.following(ws):
            return text
        await asyncio.sleep(0.02)
    raise AssertionError("the watch never ran")


async def watching(maps: RepoMaps, ws: str) -> Watch:
    """The workspace's watch, once the index follows it."""
    await followed(maps, ws)
    w = maps.watch(ws)
    assert w is not None
    return w


async def test_a_warm_lookup_follows_events_and_walks_no_more(shop: Path) -> None:
    ws = str(shop)
    maps = RepoMaps()
    try:
        first = await followed(maps, ws)
        assert "│def slugify(text: str) -> str:" in first
        before = maps.index(ws).stats()
        # nothing changed: no walk, no parse
        again = await maps.map_for(ws, ["shop/app.py"], None, "tidy title", 1000)
        after = maps.index(ws).stats()
        assert again == first
        assert (after.walks, after.parses, after.updates) == (before.walks, before.parses, before.updates + 1)
        w = maps.watch(ws)
        assert w is not None

        # an edit arrives as an event: that file alone is parsed again, without a walk
        write_files(shop, {"shop/other.py": "def ping(retries: int) -> None:\n    return None\n"})
        await until(lambda: "shop/other.py" in w.changed, "the edit's event")
        edited = await maps.map_for(ws, ["shop/app.py"], None, "tidy title", 1000)
        stats = maps.index(ws).stats()
        assert "│def ping(retries: int) -> None:" in edited
        assert (stats.walks, stats.last_parsed, stats.parses) == (before.walks, 1, before.parses + 1)

        # a new untracked file: git lists it again, and only it is parsed
        write_files(shop, {"shop/fresh.py": "def brand_new(x: int) -> int:\n    return x\n"})
        await until(lambda: "shop/fresh.py" in w.changed, "the new file's event")
        fresh = await maps.map_for(ws, ["shop/app.py"], None, "call brand_new", 1000)
        stats = maps.index(ws).stats()
        assert "│def brand_new(x: int) -> int:" in fresh
        assert (stats.walks, stats.last_parsed, stats.files) == (before.walks, 1, before.files + 1)

        # ignored by a .gitignore edit, or deleted: gone from the map
        write_files(shop, {".gitignore": "build/\nshop/fresh.py\n"})
        (shop / "shop/other.py").unlink()
        await until(lambda: w.relist and "shop/other.py" in w.changed, "the deletion's event")
        gone = await maps.map_for(ws, ["shop/app.py"], None, "call brand_new", 1000)
        stats = maps.index(ws).stats()
        assert "brand_new" not in gone and "ping" not in gone and "slugify" in gone
        assert (stats.walks, stats.last_parsed, stats.files) == (before.walks, 0, before.files - 1)

        assert maps.index(ws).stats().walks == before.walks
        # only the directories of listed files are watched (not build/, which git ignores), each alone
        assert w.dirs == {"", "shop"}

        # a directory made, a dot in its name: it is watched too, and the look walks once under the new watch
        write_files(shop, {"lib.v1/tool.py": "def tool_one():\n    pass\n"})
        # (the file may be written before the new directory is watched: git's new listing finds it)
        await until(lambda: w.grew, "the new directory's event")
        assert "tool_one" in await maps.map_for(ws, ["shop/app.py"], None, "call tool_one", 1000)
        w = await watching(maps, ws)
        assert "lib.v1" in w.dirs
        # moved whole: its files leave the map under the old name, come under the new
        walks = maps.index(ws).stats().walks
        (shop / "lib.v1").rename(shop / "lib.v2")
        await until(lambda: w.grew, "the move's events")
        moved = await maps.map_for(ws, ["shop/app.py"], None, "call tool_one", 1000)
        assert "lib.v2/tool.py:" in moved and "lib.v1" not in moved
        assert maps.index(ws).stats().walks == walks + 1
        # and a file made in the moved directory arrives as an event once the new watch follows
        w = await watching(maps, ws)
        walks = maps.index(ws).stats().walks
        assert "lib.v2" in w.dirs
        write_files(shop, {"lib.v2/more.py": "def tool_two():\n    pass\n"})
        await until(lambda: "lib.v2/more.py" in w.changed, "the new file's event")
        assert "tool_two" in await maps.map_for(ws, ["shop/app.py"], None, "call tool_two", 1000)
        assert maps.index(ws).stats().walks == walks
    finally:
        await maps.close()
    assert not maps.following(ws)


async def test_new_directories_are_watched_even_empty_unless_git_ignores_them(shop: Path) -> None:
    ws = str(shop)
    maps = RepoMaps()
    try:
        w = await watching(maps, ws)
        # `mkdir -p` reports only its first directory; nothing is in them yet, so git lists nothing there
        (shop / "pkg/deep/er").mkdir(parents=True)
        (shop / "build/more/out").mkdir(parents=True)  # under build/, which git ignores
        (shop / "node_modules/a/b").mkdir(parents=True)
        write_files(shop, {".gitignore": "build/\nnode_modules/\n"})
        await until(lambda: w.grew and {"pkg", "node_modules"} <= w.made, "the new directories' events")
        w = await watching(maps, ws)
        assert {"pkg", "pkg/deep", "pkg/deep/er"} <= w.dirs
        assert not any(d.startswith(("build", "node_modules")) for d in w.dirs), w.dirs
        walks = maps.index(ws).stats().walks
        # a file made later in the empty directory arrives as an event: no walk
        write_files(shop, {"pkg/deep/er/late.py": "def arrived_late():\n    pass\n"})
        await until(lambda: "pkg/deep/er/late.py" in w.changed, "the late file's event")
        assert "arrived_late" in await maps.map_for(ws, ["shop/app.py"], None, "call arrived_late", 1000)
        assert maps.index(ws).stats().walks == walks
        # an ignored directory made again (a fresh `npm install`) changes nothing
        shutil.rmtree(shop / "node_modules")
        (shop / "node_modules/c").mkdir(parents=True)
        write_files(shop, {"shop/other.py": "def ping(retries: int) -> None:\n    return None\n"})
        await until(lambda: "shop/other.py" in w.changed, "the edit's event, after the directory's")
        assert not w.grew
        assert "ping" in await maps.map_for(ws, ["shop/app.py"], None, "call ping", 1000)
        assert maps.index(ws).stats().walks == walks
    finally:
        await maps.close()


async def test_without_a_watch_every_lookup_walks_and_finds_edits(shop: Path) -> None:
    ws = str(shop)
    maps = RepoMaps(watch=False)  # as when the watch cannot start (an inotify limit) or dies
    try:
        first = await maps.map_for(ws, ["shop/app.py"], None, "tidy title", 1000)
        assert "slugify" in first and maps.watch(ws) is None and not maps.following(ws)
        write_files(shop, {"shop/other.py": "def ping(retries: int) -> None:\n    return None\n"})
        os.utime(shop / "shop/other.py", ns=(1, 1))
        second = await maps.map_for(ws, ["shop/app.py"], None, "tidy title", 1000)
        stats = maps.index(ws).stats()
        assert "│def ping(retries: int) -> None:" in second
        assert (stats.walks, stats.updates, stats.last_parsed) == (2, 2, 1)
    finally:
        await maps.close()


async def test_a_dead_watch_falls_back_to_the_walk(shop: Path) -> None:
    ws = str(shop)
    maps = RepoMaps()
    try:
        w = await watching(maps, ws)
        await w.stop()  # the watch ends (as when watchfiles fails): the next look walks
        assert not maps.following(ws)
        walks = maps.index(ws).stats().walks
        write_files(shop, {"shop/other.py": "def ping(retries: int) -> None:\n    return None\n"})
        os.utime(shop / "shop/other.py", ns=(1, 1))
        text = await maps.map_for(ws, ["shop/app.py"], None, "tidy title", 1000)
        assert "│def ping(retries: int) -> None:" in text
        assert maps.index(ws).stats().walks == walks + 1
    finally:
        await maps.close()


async def test_an_evicted_workspace_stops_being_watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "MAX_WORKSPACES", 1)
    one, two = (str(make_repo(tmp_path / name, {"a.py": "def a():\n    pass\n"})) for name in ("one", "two"))
    maps = RepoMaps()
    try:
        await maps.map_for(one, ["a.py"], None, "x", 1000)
        first = maps.watch(one)
        assert first is not None
        await maps.map_for(two, ["a.py"], None, "x", 1000)
        await until(first.task.done, "the evicted workspace's watch stops")
        assert maps.watch(one) is None and maps.watch(two) is not None and not first.failed
    finally:
        await maps.close()

