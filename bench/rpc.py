"""Socket round trips: `pool.status` p50/p99 over 2,000 calls, and the delay from an event's
publication to its arrival at each of 20 subscribers."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from common import Conn, Report, bench_daemon, failures, pct, run_script, run_tasks


async def status_round_trips(socket: Path, n: int) -> list[float]:
    c = await Conn.open(socket)
    try:
        for _ in range(20):
            await c.call("pool.status")
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            await c.call("pool.status")
            out.append(1000 * (time.perf_counter() - t0))
        return out
    finally:
        await c.close()


async def fan_out(socket: Path, ws: Path, files: list[str], n_subs: int, n_tasks: int) -> list[float]:
    """Delays (ms) from each event's `time` to its arrival, over every subscriber."""
    subs = [await Conn.open(socket) for _ in range(n_subs)]
    for s in subs:
        await s.subscribe(["task", "progress", "programmer", "receipt"])
    delays: list[float] = []
    stop = asyncio.Event()

    async def listen(s: Conn) -> None:
        while not stop.is_set():
            arrived, env = await s.event()
            delays.append(1000 * (arrived - env["time"]))

    listeners = [asyncio.create_task(listen(s)) for s in subs]
    try:
        _, traces = await run_tasks(socket, ws, files, n_tasks)
        failures(traces)
        await asyncio.sleep(0.2)  # let the last events drain to every subscriber
    finally:
        stop.set()
        for t in listeners:
            t.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        for s in subs:
            await s.close()
    return delays


def main(args: argparse.Namespace) -> Report:
    quick = args.quick
    calls, n_subs, fan_tasks, review = (500, 20, 8, 100) if quick else (2000, 20, 40, 1000)
    r = Report(f"rpc: pool.status over {calls} calls; event fan-out to {n_subs} subscribers")
    with bench_daemon(4, warm=False, latency=0.02) as b:
        rtt = asyncio.run(status_round_trips(b.daemon.socket, calls))
        r.add("pool.status round trip p50, empty daemon", pct(rtt, 50), "ms")
        r.add("pool.status round trip p99, empty daemon", pct(rtt, 99), "ms", ("<=", 5))
        ws, files = b.workspace(10)
        delays = asyncio.run(fan_out(b.daemon.socket, ws, files, n_subs, fan_tasks))
        r.add(f"event fan-out delay p50, {n_subs} subscribers", pct(delays, 50), "ms",
              note=f"{len(delays)} deliveries")
        r.add(f"event fan-out delay p99, {n_subs} subscribers", pct(delays, 99), "ms")
        b.model.set_latency(0.0)
        _, traces = asyncio.run(run_tasks(b.daemon.socket, ws, files, review - fan_tasks))
        failures(traces)
        b.model.requests.clear()
        rtt = asyncio.run(status_round_trips(b.daemon.socket, calls))
        r.add(f"pool.status round trip p50, {review} tasks in review", pct(rtt, 50), "ms")
        r.add(f"pool.status round trip p99, {review} tasks in review", pct(rtt, 99), "ms", ("<=", 5))
    return r


if __name__ == "__main__":
    run_script(__doc__.splitlines()[0], main)
