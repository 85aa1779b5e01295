"""Streamed replies: the CPU a streamed reply and a streamed chunk cost the engine, on the direct
path (daemon/programmer/openai_wire.py) and through litellm.acompletion in the same run, and how many
progress events a pool of busy Programmers publishes while their replies stream.

The CPU figures run the engine's own `llm.complete` in this process against the offline model,
which runs in a process of its own (its CPU is not counted); the events figure a real daemon with
`--pool` Programmers whose replies all stream at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from common import Report, bench_daemon, env_with_path, run_script

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPLY = "".join(f"line number {i:04d} of the reply\n" for i in range(125))  # 4,000 characters


async def cpu_per_reply(url: str, n: int, client: str) -> float:
    """CPU seconds of this process per reply, after a warm-up; `client`: "direct" or "litellm"."""
    from daemon.programmer import llm
    from daemon.programmer.spec import ModelSpec

    os.environ[llm.CLIENT_ENV] = client
    spec = ModelSpec(model="openai/pasd-offline", api_base=url)
    messages = [{"role": "user", "content": "hello"}]
    try:
        for _ in range(2):
            await llm.complete(spec, messages, 10)
        started = time.process_time()
        for _ in range(n):
            await llm.complete(spec, messages, 10, lambda piece: None)
        return (time.process_time() - started) / n
    finally:
        os.environ.pop(llm.CLIENT_ENV, None)
        await llm.aclose()


@contextlib.contextmanager
def model_process() -> Iterator[str]:
    """The offline model in a process of its own: its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "daemon.offline_model", "--port", "0"], env=env_with_path(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(10)


def set_rules(url: str, rules: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(url.removesuffix("/v1") + "/control/rules", data=json.dumps(rules).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


async def events_while_streaming(socket: Any, workspace: str, files: list[str], pool: int) -> tuple[int, float]:
    """Submit `pool` tasks whose replies stream; count the progress events carrying counts."""
    from daemon import protocol as p
    from daemon.client import EventStream, PasClient

    counted = 0
    started = time.monotonic()
    async with PasClient(socket) as c, EventStream(socket, kinds=["task", "progress"]) as events:
        ids = {(await c.submit(p.SubmitParams(workspace=workspace, instruction=f"note {i}", files=files[:1]))).id
               for i in range(pool)}
        done: set[str] = set()
        async for env in events:
            ev = env.event
            if isinstance(ev, p.ProgressEvent) and ev.task_id in ids and ev.tokens is not None:
                counted += 1
            elif isinstance(ev, p.TaskEvent) and ev.task.id in ids and not ev.task.state.active:
                done.add(ev.task.id)
                if done == ids:
                    break
    return counted, time.monotonic() - started


def main(args: argparse.Namespace) -> Report:
    report = Report("streaming: CPU per streamed reply, direct and through litellm; progress events")
    n = 3 if args.quick else 40
    per: dict[tuple[str, int], float] = {}
    with model_process() as url:
        for chunks, extra in ((125, {}), (1000, {"chunk_chars": 4})):
            set_rules(url, [{"match": "", "content": REPLY, **extra}])
            for client in ("direct", "litellm"):  # the same run, one after the other: a ratio on a shared machine
                per[client, chunks] = asyncio.run(cpu_per_reply(url, n, client))
    load = os.getloadavg()[0]
    for client, how in (("direct", "direct path"), ("litellm", "through litellm.acompletion (before)")):
        report.add(f"CPU per 4,000-character reply in 125 chunks (a line each), {how}",
                   per[client, 125] * 1000, "ms", note=f"mean of {n}; load {load:.2f}")
        report.add(f"CPU per 4,000-character reply in 1,000 chunks (about a token each), {how}",
                   per[client, 1000] * 1000, "ms")
        report.add(f"CPU per streamed chunk, {how}", (per[client, 1000] - per[client, 125]) / 875 * 1000, "ms")
    report.add("CPU per reply in 125 chunks: litellm / direct", per["litellm", 125] / per["direct", 125], "x")
    report.add("CPU per reply in 1,000 chunks: litellm / direct", per["litellm", 1000] / per["direct", 1000], "x")

    pool = 4 if args.quick else args.pool
    seconds = 1.5 if args.quick else 4.0
    with bench_daemon(pool) as b:
        ws, files = b.workspace(10)
        # each reply streams for about `seconds`: one chunk per line of the default answer's prose
        prose = "".join(f"step {i}\n" for i in range(200))
        b.model.set_rules([{"match": "", "content": prose, "chunk_latency": seconds / 200}])
        counted, took = asyncio.run(events_while_streaming(b.daemon.socket, str(ws), files, pool))
    report.add(f"progress events with counts, {pool} replies streaming at once", counted / took, "events/s")
    report.info(f"{counted} events over {took:.1f} s; at most 4 a second per task (STREAM_EVERY_S = 0.25)")
    return report


def add_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--pool", type=int, default=32, help="Programmers streaming at once")


if __name__ == "__main__":
    run_script("Streaming", main, add_args)
