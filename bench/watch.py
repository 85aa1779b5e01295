"""File watches on a big workspace: how long the daemon's event loop is held, and how many
inotify watches it takes, while the first task in a workspace of many directories (an ignored
`vendor/` tree, as node_modules is) starts the repo map's watch and enters review.

`pool.status` is called every 5 ms throughout; its slowest answer is how long the daemon stopped
answering. The watches are counted from the daemon's /proc fdinfo (one line per inotify watch).
Run it with PYTHONPATH at another checkout to compare revisions."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from common import Conn, Report, bench_daemon, pct, run_script

from daemon.testing import inotify_watches, make_repo


def big_workspace(root: Path, dirs: int) -> Path:
    repo = make_repo(root, {".gitignore": "vendor/\n", "src/app.py": "def add(a, b):\n    return a + b\n"})
    for i in range(dirs // 100):
        for j in range(100):
            os.makedirs(root / "vendor" / f"p{i}" / f"d{j}", exist_ok=True)
    return repo


async def poll_while(socket: Path, work: asyncio.Task[None]) -> list[float]:
    c = await Conn.open(socket)
    times: list[float] = []
    try:
        while not work.done():
            t0 = time.perf_counter()
            await c.call("pool.status")
            times.append(1000 * (time.perf_counter() - t0))
            await asyncio.sleep(0.005)
    finally:
        await c.close()
    return times


async def first_task(socket: Path, ws: Path) -> None:
    c = await Conn.open(socket)
    try:
        await c.subscribe(["task"])
        task = await c.call("task.submit", {"workspace": str(ws), "instruction": "tidy", "files": ["src/app.py"]})
        while True:
            _, env = await c.event()
            t = env["event"]["task"]
            if t["id"] == task["id"] and t["state"] not in ("QUEUED", "RUNNING"):
                break
        await asyncio.sleep(2.0)  # the watches are set up and the stale check made
    finally:
        await c.close()


async def measure(socket: Path, ws: Path) -> list[float]:
    work = asyncio.create_task(first_task(socket, ws))
    times = await poll_while(socket, work)
    await work
    return times


def main(args: argparse.Namespace) -> Report:
    dirs = 10_000 if args.quick else 100_000
    r = Report(f"watch: the first task in a workspace of {dirs:,} directories")
    with bench_daemon(2, warm=True) as b:
        t0 = time.perf_counter()
        ws = big_workspace(b.tmp / "big", dirs)
        r.info(f"{dirs:,} directories made in {time.perf_counter() - t0:.1f} s")
        before = inotify_watches(b.pid)
        times = asyncio.run(measure(b.daemon.socket, ws))
        after = inotify_watches(b.pid)
        r.add("longest pool.status answer while the watches start", max(times), "ms",
              note=f"{len(times)} calls every 5 ms; p50 {pct(times, 50):.2f} ms; load {os.getloadavg()[0]:.1f}; "
                   "watches register with the GIL held, so this grows with what is watched")
        r.add("inotify watches the daemon holds (repo map and review)", after, "",
              note=f"{before} before the task; the repo map watches the directories of files git lists, "
                   "review those of files in review; the ignored tree none")
    return r


if __name__ == "__main__":
    run_script(__doc__.splitlines()[0], main)
