"""Streamed replies: the CPU a streamed chunk costs the engine (litellm's stream handling), and
how many progress events a pool of busy Programmers publishes while their replies stream.

The first figure runs the engine's own `llm.complete` in this process against the offline
model (server thread included); the second a real daemon with `--pool` Programmers whose
replies all stream at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from common import Report, bench_daemon, run_script

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPLY = "".join(f"line number {i:04d} of the reply\n" for i in range(125))  # 4,000 characters


async def cpu_per_reply(url: str, model: Any, extra: dict[str, Any], n: int) -> float:
    from daemon.programmer import llm
    from daemon.programmer.spec import ModelSpec

    spec = ModelSpec(model="openai/pasd-offline", api_base=url)
    messages = [{"role": "user", "content": "hello"}]
    model.set_rules([{"match": "", "content": REPLY, **extra}])
    for _ in range(3):
        await llm.complete(spec, messages, 10)
    started = time.process_time()
    for _ in range(n):
        await llm.complete(spec, messages, 10, lambda piece: None)
    return (time.process_time() - started) / n


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
    from daemon.offline_model import OfflineModel

    report = Report("Streaming")
    n = 5 if args.quick else 20
    with OfflineModel() as model:
        per_line = asyncio.run(cpu_per_reply(model.url, model, {}, n))
        per_token = asyncio.run(cpu_per_reply(model.url, model, {"chunk_chars": 4}, n))
    report.add("CPU per 4,000-character reply in 125 chunks (a line each)", per_line * 1000, "ms")
    report.add("CPU per 4,000-character reply in 1,000 chunks (about a token each)", per_token * 1000, "ms")
    report.add("CPU per streamed chunk (litellm + the offline model)", (per_token - per_line) / 875 * 1000, "ms")

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
