"""Daemon memory: RSS idle, with 100 programmers, and its growth from 500 to 2,000 tasks."""

from __future__ import annotations

import argparse
import asyncio

from common import Bench, Report, bench_daemon, failures, rss_mb, run_script, run_tasks


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
    r.add(f"RSS after {first} tasks, pool {pool}", at_first, "MB")
    r.add(f"RSS after {last} tasks, pool {pool}", at_last, "MB")
    r.add(f"RSS growth from {first} to {last} tasks", 100 * (at_last - at_first) / at_first, "%", ("<", 5))


def main(args: argparse.Namespace) -> Report:
    quick = args.quick
    r = Report("memory: daemon RSS (VmRSS)")
    with bench_daemon(4, warm=False) as b:
        r.add("RSS idle, 4 programmers, before the first task", rss_mb(b.pid), "MB")

    many = 100
    with bench_daemon(many, warm=False, latency=0.5) as b:
        r.add(f"RSS idle, {many} programmers", rss_mb(b.pid), "MB")
        ws, files = b.workspace(10)
        asyncio.run(run_tasks(b.daemon.socket, ws, files, 1))
        r.add(f"RSS, {many} programmers, litellm loaded", rss_mb(b.pid), "MB")
        peak = 0.0

        async def busy() -> None:
            nonlocal peak
            job = asyncio.create_task(run_tasks(b.daemon.socket, ws, files, many))
            while not job.done():
                peak = max(peak, rss_mb(b.pid))
                await asyncio.sleep(0.05)
            failures((await job)[1])

        asyncio.run(busy())
        b.model.requests.clear()
        r.add(f"RSS peak, {many} programmers running {many} tasks", peak, "MB", ("<=", 200))
        if quick:  # CI time: the growth check reuses this daemon
            b.model.set_latency(0.0)
            growth(r, b, 50, 200, 50, many)
    if not quick:
        with bench_daemon(8) as b:
            growth(r, b, 500, 2000, 250, 8)

    return r


if __name__ == "__main__":
    run_script(__doc__.splitlines()[0], main)
