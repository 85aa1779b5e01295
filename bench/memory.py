"""Memory of the daemon and every process it starts: idle, with 100 programmers running 100 tasks
(the direct provider path and, in the same run, every call through litellm.acompletion as before),
and the daemon's growth from 500 to 2,000 tasks.

The figure held against the target is the process tree's summed PSS (/proc/PID/smaps_rollup):
each page shared between the daemon and a child (git, a check, a sandbox) counts once, divided
among them; summed RSS, which counts it once per process, is given beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from common import (
    LITELLM_CLIENT,
    Bench,
    Report,
    TreeMemory,
    bench_daemon,
    failures,
    rss_mb,
    run_script,
    run_tasks,
    tree_memory,
)

TARGET_MB = 250.0
MANY = 100
CHECK = "true"  # every task runs a check: its process (and the sandbox's) count in the tree


def growth(r: Report, b: Bench, first: int, last: int, batch: int, pool: int) -> None:
    """RSS after `first` and after `last` tasks: growth after warm-up shows a leak."""
    ws, files = b.workspace(10)
    done, at_first = 0, 0.0
    while done < last:
        _, traces = asyncio.run(run_tasks(b.daemon.socket, ws, files, batch))
        failures(traces)
        b.model.requests.clear()
        done += batch
        if done == first:
            at_first = rss_mb(b.pid)
    at_last = rss_mb(b.pid)
    r.add(f"daemon RSS after {first} tasks, pool {pool}", at_first, "MB")
    r.add(f"daemon RSS after {last} tasks, pool {pool}", at_last, "MB")
    r.add(f"daemon RSS growth from {first} to {last} tasks", 100 * (at_last - at_first) / at_first, "%", ("<", 5))


def peak_while_busy(b: Bench) -> tuple[TreeMemory, TreeMemory, float, int]:
    """(tree at its PSS peak, tree at its RSS peak, the daemon's own peak RSS, most processes in the
    tree at one sample) while MANY tasks run."""
    ws, files = b.workspace(10)
    by_pss = by_rss = TreeMemory(0.0, 0.0, 0)
    daemon_peak = 0.0
    most = 0

    async def busy() -> None:
        nonlocal by_pss, by_rss, daemon_peak, most
        job = asyncio.create_task(run_tasks(b.daemon.socket, ws, files, MANY, check=CHECK))
        while not job.done():
            now = tree_memory(b.pid)
            by_pss = now if now.pss_mb > by_pss.pss_mb else by_pss
            by_rss = now if now.rss_mb > by_rss.rss_mb else by_rss
            most = max(most, now.processes)
            daemon_peak = max(daemon_peak, rss_mb(b.pid))
            await asyncio.sleep(0.05)
        failures((await job)[1])

    asyncio.run(busy())
    b.model.requests.clear()
    return by_pss, by_rss, daemon_peak, most


def busy_figures(r: Report, b: Bench, label: str, target: bool) -> float:
    ws, files = b.workspace(10)
    asyncio.run(run_tasks(b.daemon.socket, ws, files, 1))
    loaded = tree_memory(b.pid)
    r.add(f"PSS, {MANY} programmers, litellm loaded, one task done{label}", loaded.pss_mb, "MB",
          note=f"RSS {loaded.rss_mb:.0f} MB")
    by_pss, by_rss, daemon_peak, most = peak_while_busy(b)
    load = os.getloadavg()[0]
    r.add(f"PSS peak, daemon and every process it starts, {MANY} programmers running {MANY} tasks "
          f"with a check{label}",
          by_pss.pss_mb, "MB", ("<=", TARGET_MB) if target else None,
          note=f"{by_pss.processes} processes at that moment, at most {most} in one sample; load {load:.2f}")
    r.add(f"RSS peak summed over the same tree{label}", by_rss.rss_mb, "MB",
          note=f"{by_rss.processes} processes; shared pages counted once per process")
    r.add(f"daemon's own RSS peak{label}", daemon_peak, "MB")
    return by_pss.pss_mb


def main(args: argparse.Namespace) -> Report:
    quick = args.quick
    r = Report("memory: the daemon and the processes it starts (PSS, RSS)")
    with bench_daemon(4, warm=False) as b:
        r.add("daemon RSS idle, 4 programmers, before the first task", rss_mb(b.pid), "MB")

    with bench_daemon(MANY, warm=False, latency=0.5) as b:
        r.add(f"daemon RSS idle, {MANY} programmers", rss_mb(b.pid), "MB")
        direct = busy_figures(r, b, "", target=True)
        if quick:  # CI time: the growth check reuses this daemon
            b.model.set_latency(0.0)
            growth(r, b, 50, 200, 50, MANY)
    if not quick:
        with bench_daemon(MANY, warm=False, latency=0.5, env=LITELLM_CLIENT) as b:
            before = busy_figures(r, b, ", every call through litellm (before)", target=False)
        r.add("PSS peak through litellm / direct", before / direct, "x", note="the same run")
        with bench_daemon(8) as b:
            growth(r, b, 500, 2000, 250, 8)
    return r


if __name__ == "__main__":
    run_script(__doc__.splitlines()[0], main)
