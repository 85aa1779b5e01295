"""Parallel speedup: 64 tasks against a model that takes 1.0 s, pool sizes 1 to 32.

Speedup is over pool size 1 measured in the same run; efficiency is speedup / size. Then the
largest pool runs `--rounds` batches on two daemons side by side, alternating: the direct path to
the model and every call through litellm.acompletion (as before it), each with the daemon's CPU
per task (a figure the machine's load moves far less than wall time).
`--backend ray` runs the same on the Ray backend: on the cluster at `--address` (with
RAY_AUTH_TOKEN set), else on a two-node cluster it starts on this machine, which must run inside
a private network namespace (scripts/bench-ray.sh does both).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import LITELLM_CLIENT, Bench, Report, TaskTrace, bench_daemon, cpu_seconds, failures, run_script, run_tasks

from daemon.testing import ray_cluster

TARGETS = {8: 0.95, 32: 0.90}


def add_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--backend", choices=["local", "ray"], default="local", help="where the programmers run")
    ap.add_argument("--address", help="with --backend ray: the cluster's address (default: start one here)")
    ap.add_argument("--sizes", help="pool sizes to measure, e.g. 1,32 (default: 1,2,4,8,16,32)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating batches of the largest pool, direct and through litellm (0: none)")


@contextlib.contextmanager
def ray_pool(address: str | None) -> Iterator[dict[str, Any]]:
    """The [pool] settings of a daemon on Ray; starts a local two-node cluster unless given an address."""
    if address:
        yield {"backend": "ray", "address": address}
        return
    tmp = Path(tempfile.mkdtemp(prefix="pb-", dir="/tmp"))  # short: Ray's socket paths are length-limited
    try:
        with ray_cluster(tmp) as (cluster, _):
            yield {"backend": "ray", "address": cluster.address}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(args: argparse.Namespace) -> Report:
    if args.backend == "ray":
        with ray_pool(args.address) as pool:
            return measure(args, pool)
    return measure(args, None)


def measure(args: argparse.Namespace, ray: dict[str, Any] | None) -> Report:
    """Wall time per pool size; on Ray one actor on the worker node holds all the pool's programmers."""
    quick = args.quick
    sizes, n_tasks, latency = ([1, 4], 8, 0.25) if quick else ([1, 2, 4, 8, 16, 32], 64, 1.0)
    if args.sizes and not quick:
        sizes = sorted({int(x) for x in args.sizes.split(",")})
    on = " on Ray" if ray else ""
    r = Report(f"parallel{on}: {n_tasks} tasks, model latency {latency} s, pool sizes {sizes}"
               + (", one worker node" if ray else ""))
    walls: dict[int, float] = {}
    shortcut = quick and not ray
    if shortcut:
        # CI time: one daemon; the pool-1 baseline runs the same tasks one at a time on it.
        with bench_daemon(sizes[-1], latency=latency) as b:
            ws, files = b.workspace(10)
            walls[1] = sum(asyncio.run(run_tasks(b.daemon.socket, ws, files[i:i + 1], 1))[0]
                           for i in range(n_tasks))
            r.add("wall time, one task at a time", walls[1], "s", note=f"ideal {n_tasks * latency:.2f} s")
            wall, traces = asyncio.run(run_tasks(b.daemon.socket, ws, files, n_tasks))
            failures(traces)
            walls[sizes[-1]] = wall
            r.add(f"wall time, pool {sizes[-1]}", wall, "s", note=f"ideal {n_tasks * latency / sizes[-1]:.2f} s")
    for size in [] if shortcut else sizes:
        with bench_daemon(size, latency=latency, pool={**ray, "slots": size} if ray else None) as b:
            ws, files = b.workspace(10)
            wall, traces, _ = timed(b, ws, files, n_tasks)
            failures(traces)
        walls[size] = wall
        ideal = n_tasks * latency / size
        r.add(f"wall time{on}, pool {size}", wall, "s",
              note=f"ideal {ideal:.2f} s, litellm warm-up {b.warmup_s:.1f} s; load {os.getloadavg()[0]:.2f}")
    for size in sizes[1:]:
        speedup = walls[sizes[0]] / walls[size]
        r.add(f"speedup{on}, pool {size}", speedup, "x")
        # the targets are this machine's; on a cluster the figures are context
        target = None if ray else TARGETS.get(size) or (0.90 if quick else None)  # quick: the pool-32 bar
        if size == 32 and args.rounds and not quick and not ray:
            target = None  # held against the median of the alternating rounds below
        r.add(f"efficiency{on}, pool {size}", speedup / size, "", (">=", target) if target else None)
    if not quick and not ray and args.rounds:
        compare(r, sizes[-1], n_tasks, latency, walls[sizes[0]], args.rounds)
    return r


def compare(r: Report, size: int, n_tasks: int, latency: float, pool1: float, rounds: int) -> None:
    """The direct path against every call through litellm.acompletion (as before it), on two daemons
    alive side by side, their batches alternating: on a shared machine the load moves between
    batches, so each figure is a median of `rounds` and the ratio is taken round by round.
    Efficiency is against the pool-1 wall above, for both (litellm's ~25 ms more CPU a task would
    add <3% to pool 1's 64 s)."""
    runs: dict[str, list[tuple[float, float, float]]] = {"direct": [], "litellm": []}  # (wall, cpu ms, load)
    with bench_daemon(size, latency=latency) as direct, bench_daemon(size, latency=latency, env=LITELLM_CLIENT) as lite:
        for _ in range(rounds):
            for name, b in (("direct", direct), ("litellm", lite)):
                ws, files = b.workspace(10)
                wall, traces, (own, _) = timed(b, ws, files, n_tasks)
                failures(traces)
                runs[name].append((wall, own / n_tasks * 1000, os.getloadavg()[0]))
    for name, how in (("direct", ""), ("litellm", ", every call through litellm (before)")):
        walls = [w for w, _, _ in runs[name]]
        loads = ", ".join(f"{x:.1f}" for _, _, x in runs[name])
        r.add(f"wall time, pool {size}{how}, median of {rounds}", statistics.median(walls), "s",
              note=f"{', '.join(f'{w:.2f}' for w in walls)} s at load {loads}")
        r.add(f"efficiency, pool {size}{how}, median of {rounds}", pool1 / statistics.median(walls) / size, "",
              (">=", TARGETS[32]) if name == "direct" and size == 32 else None)
        r.add(f"daemon CPU per task, pool {size}{how}, median of {rounds}",
              statistics.median(c for _, c, _ in runs[name]), "ms", note="all its threads")
    ratios = [lw / dw for (dw, _, _), (lw, _, _) in zip(runs["direct"], runs["litellm"], strict=True)]
    r.add(f"wall time, pool {size}: through litellm / direct, median of the rounds' ratios",
          statistics.median(ratios), "x")
    cpu_ratios = [lc / dc for (_, dc, _), (_, lc, _) in zip(runs["direct"], runs["litellm"], strict=True)]
    r.add(f"daemon CPU per task, pool {size}: through litellm / direct", statistics.median(cpu_ratios), "x")


def timed(b: Bench, ws: Path, files: list[str], n: int) -> tuple[float, dict[str, TaskTrace], tuple[float, float]]:
    """run_tasks, and the daemon's CPU seconds (own, children's) it took."""
    own0, children0 = cpu_seconds(b.pid)
    wall, traces = asyncio.run(run_tasks(b.daemon.socket, ws, files, n))
    own1, children1 = cpu_seconds(b.pid)
    return wall, traces, (own1 - own0, children1 - children0)


if __name__ == "__main__":
    run_script(__doc__.splitlines()[0], main, add_args)
