"""The per-task diff cache: computed once, shared by concurrent callers, bounded, never stale."""

from __future__ import annotations

import asyncio

from daemon.diff_cache import DiffCache, diff_changes
from daemon.store import Change


def change(path: str, edit: str = "two") -> Change:
    base = "one\ntwo\nthree\n"
    return Change(path=path, base=base, proposed=base.replace("two", edit))


def test_hunk_ids_run_across_the_task() -> None:
    diffs = diff_changes([change("a", "2"), change("b", "II"), change("c")])
    assert [[h.id for h in fd.hunks] for fd, _ in diffs] == [[1], [2], []]


async def test_concurrent_loads_share_one_computation_and_then_hit() -> None:
    cache = DiffCache()
    changes = [change("a", "2"), change("b", "II")]
    first, second = await asyncio.gather(cache.load("t1", changes), cache.load("t1", changes))
    assert first is second and cache.misses == 2 and cache.hits == 0
    assert await cache.load("t1", [change("a", "2"), change("b", "II")]) is first
    assert cache.hits == 1


async def test_a_task_stored_again_with_other_changes_is_diffed_again() -> None:
    cache = DiffCache()
    old = await cache.load("t1", [change("a", "2")])
    new = await cache.load("t1", [change("a", "deux")])
    assert new is not old and new[0][0].hunks[0].new_lines == ["deux"]


def test_least_recently_used_tasks_go_first_past_the_bounds() -> None:
    cache = DiffCache(max_tasks=2)
    for task in ("t1", "t2"):
        cache.put(task, [change("a", task)], diff_changes([change("a", task)]))
    assert cache.get("t1", [change("a", "t1")]) is not None  # t1 is now the most recent
    cache.put("t3", [change("a", "t3")], diff_changes([change("a", "t3")]))
    assert cache.get("t2", [change("a", "t2")]) is None
    assert cache.get("t1", [change("a", "t1")]) is not None
    tiny = DiffCache(max_bytes=10)
    tiny.put("t1", [change("a", "x")], diff_changes([change("a", "x")]))
    assert tiny.get("t1", [change("a", "x")]) is None  # larger than the whole cache: not kept
