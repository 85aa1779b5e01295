"""The job path against plain tasks: a per-file job of 32 tasks on 8 programmers (model latency
1.0 s), and the same 32 files as 32 tasks submitted one by one, on one daemon, alternating, in the
same run. Efficiency is the ideal wall time (tasks x latency / programmers) over the measured one,
from the first submit to the last task's terminal event; the job's figure is held against the plain
tasks' of the same run. Also: the daemon's CPU per task, and the events a subscriber to every kind
receives (count and bytes), each way."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
from pathlib import Path
from typing import Any

from common import TERMINAL, Conn, Report, bench_daemon, failures, run_script, run_tasks

from daemon.config import OFFLINE_MODEL

KIND = re.compile(rb'"event":\{"kind":"(\w+)"')


def cpu_s(pid: int) -> float:
    """The process's user + system CPU seconds so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Tally:
    """A subscriber to every kind of event that only counts them and their bytes, by kind."""

    def __init__(self) -> None:
        self.events: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._conn: Conn | None = None

    async def start(self, socket: Path) -> None:
        self._conn = await Conn.open(socket)
        await self._conn.call("events.subscribe", {})
        self._task = asyncio.create_task(self._count(self._conn))

    async def _count(self, conn: Conn) -> None:
        while line := await conn.reader.readline():
            m = KIND.search(line)
            if m is not None:
                kind = m.group(1).decode()
                self.events[kind] = self.events.get(kind, 0) + 1
                self.bytes[kind] = self.bytes.get(kind, 0) + len(line)

    async def stop(self) -> None:
        await asyncio.sleep(0.2)  # the last events on their way
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._conn is not None:
            await self._conn.close()


async def run_job(socket: Path, workspace: Path, files: list[str]) -> float:
    """Submit a per-file job over `files`; seconds from the submit to its last task's terminal event."""
    events = await Conn.open(socket)
    await events.subscribe(["task"])
    conn = await Conn.open(socket)
    try:
        started = time.perf_counter()
        job = await conn.call("job.submit", {"workspace": str(workspace), "instruction": "note this file",
                                             "files": files, "split": "per-file", "model": OFFLINE_MODEL})
        done: set[str] = set()
        states: dict[str, str] = {}
        while len(done) < len(files):
            _, env = await events.event()
            task = env["event"]["task"]
            if task.get("job_id") == job["id"] and task["state"] in TERMINAL:
                done.add(task["id"])
                states[task["id"]] = task["state"]
        wall = time.perf_counter() - started
    finally:
        await conn.close()
        await events.close()
    bad = [f"{k}: {v}" for k, v in states.items() if v != "REVIEW"]
    if bad:
        print(f"  {len(bad)} job tasks did not reach REVIEW, e.g. {bad[0]}")
    return wall


async def measured(socket: Path, pid: int, what: Any) -> tuple[float, float, Tally]:
    """(wall s, daemon CPU s, events) of one run."""
    tally = Tally()
    await tally.start(socket)
    cpu = cpu_s(pid)
    wall = await what
    spent = cpu_s(pid) - cpu
    await tally.stop()
    return wall, spent, tally


async def plain(socket: Path, workspace: Path, files: list[str]) -> float:
    wall, traces = await run_tasks(socket, workspace, files, len(files))
    failures(traces)
    return wall


def main(args: argparse.Namespace) -> Report:
    quick = args.quick
    pool, n, latency, rounds = (4, 8, 0.25, 1) if quick else (8, 32, 1.0, 3)
    ideal = n * latency / pool
    r = Report(f"jobs: a per-file job of {n} tasks against {n} plain tasks, pool {pool}, model latency {latency} s")
    with bench_daemon(pool, latency=latency) as b:
        ws, files = b.workspace(100)
        files = files[:n]
        assert len(set(files)) == n
        walls: dict[str, list[float]] = {"plain": [], "job": []}
        cpus: dict[str, list[float]] = {"plain": [], "job": []}
        tallies: dict[str, Tally] = {}
        loads = []
        for _ in range(rounds):
            for way in ("plain", "job"):
                run = plain(b.daemon.socket, ws, files) if way == "plain" else run_job(b.daemon.socket, ws, files)
                wall, cpu, tally = asyncio.run(measured(b.daemon.socket, b.pid, run))
                walls[way].append(wall)
                cpus[way].append(cpu)
                tallies[way] = tally
                loads.append(os.getloadavg()[0])
        load = f"load {min(loads):.1f}-{max(loads):.1f}"
        eff = {}
        for way in ("plain", "job"):
            wall = statistics.median(walls[way])
            eff[way] = ideal / wall
            what = f"{n} tasks submitted one by one" if way == "plain" else f"one per-file job of {n} tasks"
            r.add(f"wall time, {what}", wall, "s",
                  note=f"median of {rounds}: {', '.join(f'{w:.2f}' for w in walls[way])}; ideal {ideal:.2f} s; {load}")
            r.add(f"efficiency, {way}", eff[way], "")
        r.add("efficiency, job / plain (same run)", eff["job"] / eff["plain"], "", (">=", 0.97))
        for way in ("plain", "job"):
            per_task = 1000 * statistics.median(cpus[way]) / n
            r.add(f"daemon CPU per task, {way}", per_task, "ms", note=f"median of {rounds}")
        for way in ("plain", "job"):
            t = tallies[way]
            kinds = ", ".join(f"{k} {t.events[k]} ({t.bytes[k] / 1e3:.0f} kB)" for k in sorted(t.events))
            r.add(f"events to one subscriber of every kind, {way}", sum(t.events.values()), "",
                  note=f"{sum(t.bytes.values()) / 1e6:.2f} MB: {kinds}")
    return r


if __name__ == "__main__":
    run_script(__doc__.splitlines()[0], main)
