"""Parallel speedup: 64 tasks against a model that takes 1.0 s, pool sizes 1 to 32.

Speedup is over pool size 1 measured in the same run; efficiency is speedup / size.
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
    cpu: dict[int, tuple[float, float]] = {}
    for size in [] if shortcut else sizes:
        with bench_daemon(size, latency=latency, pool={**ray, "slots": size} if ray else None) as b:
            ws, files = b.workspace(10)
            wall, traces, cpu[size] = timed(b, ws, files, n_tasks)
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
        r.add(f"efficiency{on}, pool {size}", speedup / size, "", (">=", target) if target else None)
    if not quick and not ray:
        size = sizes[-1]
        own, children = cpu[size]
        r.add(f"daemon CPU per task, pool {size}", own / n_tasks * 1000, "ms",
              note=f"all its threads; its git and other children {children / n_tasks * 1000:.1f} ms more")
        # the same run, every call through litellm.acompletion as before the direct path: its
        # efficiency is against the pool-1 wall above (per task ~20 ms more CPU there: <2% of it)
        with bench_daemon(size, latency=latency, env=LITELLM_CLIENT) as b:
            ws, files = b.workspace(10)
            wall, traces, (own_l, children_l) = timed(b, ws, files, n_tasks)
            failures(traces)
        r.add(f"wall time, pool {size}, every call through litellm (before)", wall, "s",
              note=f"ideal {n_tasks * latency / size:.2f} s; load {os.getloadavg()[0]:.2f}")
        r.add(f"efficiency, pool {size}, every call through litellm (before)", walls[sizes[0]] / wall / size, "")
        r.add(f"daemon CPU per task, pool {size}, every call through litellm (before)", own_l / n_tasks * 1000, "ms",
              note=f"its children {children_l / n_tasks * 1000:.1f} ms more")
        r.add(f"wall time, pool {size}: through litellm / direct", wall / walls[size], "x")
        r.add(f"daemon CPU per task, pool {size}: through litellm / direct", own_l / own, "x")
    return r


def timed(b: Bench, ws: Path, files: list[str], n: int) -> tuple[float, dict[str, TaskTrace], tuple[float, float]]:
    """run_tasks, and the daemon's CPU seconds (own, children's) it took."""
    own0, children0 = cpu_seconds(b.pid)
    wall, traces = asyncio.run(run_tasks(b.daemon.socket, ws, files, n))
    own1, children1 = cpu_seconds(b.pid)
    return wall, traces, (own1 - own0, children1 - children0)


if __name__ == "__main__":
    run_script(__doc__.splitlines()[0], main, add_args)
