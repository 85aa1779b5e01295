"""Repo map: a generated git repository of mixed languages (1,000 and 10,000 files); the daemon's
index builds cold, serves the map for a task warm (following file events, and by the old walk),
and updates after one edit."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import Report, run_script

from daemon.programmer.repomap import index
from daemon.programmer.repomap.index import RepoMaps
from daemon.programmer.repomap.rank import estimate_tokens
from daemon.testing import make_repo

TASKS = 20  # warm lookups, each for another task file


def _source(lang: str, i: int, calls: list[str]) -> tuple[str, str]:
    """(path, text) of module i: five functions, the first calling functions of other modules."""
    names = [f"m{i}_f{k}" for k in range(5)]
    body_calls = calls or ["noop"]
    if lang == "py":
        text = "".join(f"def {n}(x: int) -> int:\n    return x + {k}\n\n\n" for k, n in enumerate(names))
        text += "def run(x):\n" + "".join(f"    {c}(x)\n" for c in body_calls)
        return f"py/pkg{i % 50}/mod{i}.py", text
    if lang == "ts":
        text = "".join(f"export function {n}(x: number): number {{ return x + {k}; }}\n" for k, n in enumerate(names))
        text += "export function run(x: number) {\n" + "".join(f"  {c}(x);\n" for c in body_calls) + "}\n"
        return f"ts/pkg{i % 50}/mod{i}.ts", text
    if lang == "go":
        text = f"package pkg{i % 50}\n\n" + "".join(f"func {n}(x int) int {{ return x + {k} }}\n"
                                                   for k, n in enumerate(names))
        text += "func Run(x int) {\n" + "".join(f"\t{c}(x)\n" for c in body_calls) + "}\n"
        return f"go/pkg{i % 50}/mod{i}.go", text
    if lang == "rs":
        text = "".join(f"pub fn {n}(x: i64) -> i64 {{ x + {k} }}\n" for k, n in enumerate(names))
        text += "pub fn run(x: i64) {\n" + "".join(f"    {c}(x);\n" for c in body_calls) + "}\n"
        return f"rs/pkg{i % 50}/mod{i}.rs", text
    if lang == "java":
        text = f"public class Mod{i} {{\n" + "".join(f"    static int {n}(int x) {{ return x + {k}; }}\n"
                                                     for k, n in enumerate(names))
        text += "    static void run(int x) {\n" + "".join(f"        {c}(x);\n" for c in body_calls) + "    }\n}\n"
        return f"java/pkg{i % 50}/Mod{i}.java", text
    if lang == "c":
        text = "".join(f"int {n}(int x) {{ return x + {k}; }}\n" for k, n in enumerate(names))
        text += "void run(int x) {\n" + "".join(f"    {c}(x);\n" for c in body_calls) + "}\n"
        return f"c/pkg{i % 50}/mod{i}.c", text
    text = "local M = {}\n" + "".join(f"function M.{n}(x) return x + {k} end\n" for k, n in enumerate(names))
    text += "function M.run(x)\n" + "".join(f"  {c}(x)\n" for c in body_calls) + "end\nreturn M\n"
    return f"lua/pkg{i % 50}/mod{i}.lua", text


LANGS = ["py", "ts", "go", "rs", "java", "c", "lua"]


def generate(root: Path, n: int) -> list[str]:
    """n modules round-robin over the languages, each calling three functions of others of its language."""
    rng = random.Random(n)
    files: dict[str, str] = {}
    for i in range(n):
        lang = LANGS[i % len(LANGS)]
        same = range(i % len(LANGS), n, len(LANGS))
        calls = [f"m{j}_f{rng.randrange(5)}" for j in rng.sample(same, 3) if j != i]
        path, text = _source(lang, i, calls)
        files[path] = text
    make_repo(root, files)
    return list(files)


async def measure(r: Report, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "ws"
        t0 = time.perf_counter()
        paths = generate(repo, n)
        r.info(f"{n:,} files generated and committed in {time.perf_counter() - t0:.1f} s")
        ws = str(repo)
        t0 = time.perf_counter()
        subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=repo, capture_output=True,
                       check=True)
        listing = time.perf_counter() - t0

        maps = RepoMaps()
        try:
            t0 = time.perf_counter()
            text = await maps.map_for(ws, [paths[0]], None, "tidy run", 1024)
            cold = time.perf_counter() - t0
            stats = maps.index(ws).stats()
            assert text and stats.parses == n, (stats, text[:200])
            r.add(f"{n:,} files: cold build (list, parse all, rank, render)", cold, "s",
                  note=f"{stats.parses:,} parses; map of {estimate_tokens(text)} tokens")

            idx = maps.index(ws)
            while not maps.following(ws):  # the watch runs, and one walk was made under it
                await asyncio.sleep(0.05)
                await maps.map_for(ws, [paths[0]], None, "tidy run", 1024)
            rng = random.Random(1)
            walks = idx.stats().walks
            events = await _lookups(maps, ws, rng.sample(paths, TASKS))
            assert idx.stats().last_parsed == 0 and idx.stats().walks == walks
            warm = statistics.median(events)
            r.add(f"{n:,} files: warm lookup per task, following file events (rank, render)", 1000 * warm, "ms",
                  note=f"median of {TASKS} tasks on other files, no event between them; "
                       f"max {1000 * max(events):.0f} ms; cold / warm = {cold / warm:.0f}x; no listing, no stat")
            p95 = statistics.quantiles(events, n=20, method="inclusive")[-1]
            r.add(f"{n:,} files: warm lookup per task, following file events, p95", 1000 * p95, "ms", ("<=", 150),
                  note=f"of {TASKS} lookups, interpolated; the per-task overhead budget")

            walked = await _lookups(maps, ws, rng.sample(paths, TASKS), walk=True)
            assert idx.stats().walks == walks + TASKS
            r.add(f"{n:,} files: warm lookup per task, by the walk (list, stat, rank, render)",
                  1000 * statistics.median(walked), "ms",
                  note=f"as before file events, and when the watch cannot run; max {1000 * max(walked):.0f} ms; "
                       f"git ls-files alone {1000 * listing:.0f} ms")
            await maps.map_for(ws, [paths[0]], None, "tidy run", 1024)  # following events again
            assert maps.following(ws)

            stat_walk = statistics.median(_timed(lambda: idx.update(paths)) for _ in range(5))
            ranking = statistics.median(_timed(lambda p=p: idx.render([p], None, "tidy run", 1024))
                                        for p in rng.sample(paths, 5))
            r.info(f"of which: stat of every file {1000 * stat_walk:.0f} ms, rank and render {1000 * ranking:.0f} ms")

            watch = maps.watch(ws)
            assert watch is not None
            target = repo / paths[1]
            target.write_text(target.read_text() + "\n// edited\n" if not paths[1].endswith(".py")
                              else target.read_text() + "\n# edited\n")
            os.utime(target, ns=(1, 1))
            while paths[1] not in watch.changed:  # the event has arrived (within the watch's 50 ms debounce)
                await asyncio.sleep(0.01)
            t0 = time.perf_counter()
            await maps.map_for(ws, [paths[0]], None, "tidy run", 1024)
            edited = time.perf_counter() - t0
            assert idx.stats().last_parsed == 1 and idx.stats().walks == walks + TASKS + 5
            r.add(f"{n:,} files: warm lookup after one file's edit (its event: 1 stat, 1 parse)", 1000 * edited, "ms",
                  note=f"cold / this = {cold / edited:.0f}x")
        finally:
            await maps.close()


async def _lookups(maps: RepoMaps, ws: str, files: list[str], walk: bool = False) -> list[float]:
    """The time of each task's lookup; `walk` makes each one list and stat every file, as without a watch."""
    idx = maps.index(ws)
    times = []
    for path in files:
        if walk:
            idx.synced_with = None  # as if the watch had just started: this look walks
        t0 = time.perf_counter()
        text = await maps.map_for(ws, [path], None, "tidy run", 1024)
        times.append(time.perf_counter() - t0)
        assert text
    return times


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(args: argparse.Namespace) -> Report:
    sizes = [1_000] if args.quick else [1_000, 10_000]
    r = Report("repomap: the daemon's index over a generated repository of 7 languages")
    index.BUILD_WAIT_S = 3600.0  # measure the cold build whole (a task would go on without the map)
    for n in sizes:
        asyncio.run(measure(r, n))
    return r


if __name__ == "__main__":
    run_script(__doc__.splitlines()[0], main)
