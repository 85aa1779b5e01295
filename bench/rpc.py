"""Socket round trips: `pool.status` p50/p99 over 2,000 calls, and the delay from an event's
publication to its arrival at each of 20 subscribers.

The subscribers run in a process of their own, as a TUI or an editor does: in the bench's own
process they would share one event loop and the GIL with the submitters and the offline model's
threads, and their wait for those would be counted as the daemon's."""

from __future__ import annotations

import argparse
import asyncio
import json
import selectors
import socket as sockets
import subprocess
import sys
import time
from pathlib import Path

from common import Conn, Report, bench_daemon, env_with_path, failures, pct, run_script, run_tasks

KINDS = ["task", "progress", "programmer", "receipt"]


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


def listen(path: str, n_subs: int) -> None:
    """The subscribers' process: subscribe n_subs connections, print "ready", note when each chunk
    arrives until stdin closes, then print every event's delay (ms, from its `time` to the arrival
    of its last byte) as JSON. Nothing is parsed while events arrive, so the subscribers' own
    work does not queue up behind a burst."""
    conns = []
    for i in range(n_subs):
        s = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
        s.connect(path)
        s.sendall((json.dumps({"jsonrpc": "2.0", "id": i, "method": "events.subscribe",
                               "params": {"kinds": KINDS}}) + "\n").encode())
        conns.append(s)
    chunks: list[list[tuple[float, bytes]]] = [[] for _ in conns]
    sel = selectors.DefaultSelector()
    for i, s in enumerate(conns):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    print("ready", flush=True)
    running = True
    while running:
        for key, _ in sel.select():
            if key.data is None:
                running = False
                continue
            data = key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
            chunks[key.data].append((time.time(), data))
    delays: list[float] = []
    for got in chunks:
        buf = b""
        for arrived, data in got:
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                msg = json.loads(line)
                if msg.get("method") == "event":
                    delays.append(1000 * (arrived - msg["params"]["time"]))
    print(json.dumps(delays), flush=True)


async def fan_out(socket: Path, ws: Path, files: list[str], n_subs: int, n_tasks: int) -> list[float]:
    """Delays (ms) from each event's `time` to its arrival, over every subscriber, while n_tasks run."""
    code = f"import rpc; rpc.listen({str(socket)!r}, {n_subs})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parent, env=env_with_path(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the subscribers' process did not start")
        _, traces = await run_tasks(socket, ws, files, n_tasks)
        failures(traces)
        await asyncio.sleep(0.2)  # let the last events reach every subscriber
        out, _ = proc.communicate("", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return [float(x) for x in json.loads(out)]


def load() -> str:
    return open("/proc/loadavg").read().split()[0]


def main(args: argparse.Namespace) -> Report:
    quick = args.quick
    calls, n_subs, fan_tasks, review = (500, 20, 8, 100) if quick else (2000, 20, 40, 1000)
    r = Report(f"rpc: pool.status over {calls} calls; event fan-out to {n_subs} subscribers")
    # warm: litellm's import (once per daemon, in a thread) would otherwise run during the fan-out
    with bench_daemon(4, warm=True, latency=0.02) as b:
        rtt = asyncio.run(status_round_trips(b.daemon.socket, calls))
        r.add("pool.status round trip p50, empty daemon", pct(rtt, 50), "ms")
        r.add("pool.status round trip p99, empty daemon", pct(rtt, 99), "ms", ("<=", 5), note=f"load {load()}")
        ws, files = b.workspace(10)
        delays = asyncio.run(fan_out(b.daemon.socket, ws, files, n_subs, fan_tasks))
        r.add(f"event fan-out delay p50, {n_subs} subscribers", pct(delays, 50), "ms",
              note=f"{len(delays)} deliveries, {fan_tasks} tasks on 4 programmers; subscribers in their own process")
        r.add(f"event fan-out delay p99, {n_subs} subscribers", pct(delays, 99), "ms", ("<=", 10),
              note=f"load {load()}")
        b.model.set_latency(0.0)
        _, traces = asyncio.run(run_tasks(b.daemon.socket, ws, files, review - fan_tasks))
        failures(traces)
        b.model.requests.clear()
        rtt = asyncio.run(status_round_trips(b.daemon.socket, calls))
        r.add(f"pool.status round trip p50, {review} tasks in review", pct(rtt, 50), "ms")
        r.add(f"pool.status round trip p99, {review} tasks in review", pct(rtt, 99), "ms", ("<=", 5),
              note=f"load {load()}")
    return r


if __name__ == "__main__":
    run_script(__doc__.splitlines()[0], main)
