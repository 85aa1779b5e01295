"""Diffs on repeated lines: one 5,000-line file with difflib (before) and now; `pasd diff` of a
task changing 20 such files, cold (after a restart) and warm (cached), with pool.status p50/p99
meanwhile; and the watcher's staleness check after the user edits all 20 files."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

from common import Conn, Report, bench_daemon, pct, run_script

from daemon import protocol as p
from daemon.config import OFFLINE_MODEL
from daemon.programmer.diffs import file_diff, split_lines
from daemon.testing import DaemonProcess, make_repo, write_files

LINE = "    total = total + value\n"


def content(n: int, lines: int) -> str:
    """`lines` lines, all equal but two markers (the edits' anchors)."""
    third = lines // 3
    return (LINE * third + f"    # first {n}\n" + LINE * third + f"    # second {n}\n"
            + LINE * (lines - 2 * third - 2))


def edits(path: str, n: int) -> str:
    def block(search: str, replace: str) -> str:
        return f"{path}\n```\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"

    return (block(f"    # first {n}\n", f"    total = total - value\n    # first {n}\n")
            + block(f"    # second {n}\n", f"    log(total, {n})\n"))


def one_file(r: Report, lines: int) -> None:
    base = LINE * lines
    b = split_lines(base)
    b[lines // 4] = "    total = total - value\n"
    b.insert(3 * lines // 4, "    log(total)\n")
    new = "".join(b)
    a, b = split_lines(base), split_lines(new)
    t0 = time.perf_counter()
    difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    old = time.perf_counter() - t0
    r.add(f"one {lines:,}-line file of equal lines, two edits: difflib (before)", old, "s",
          note="one SequenceMatcher(autojunk=False); the old file_diff ran two")
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        file_diff("f", base, new, 1)
        runs.append(time.perf_counter() - t0)
    r.add("same file: file_diff now (hunks, text and counts)", 1000 * min(runs), "ms",
          note=f"best of 5; {old / min(runs):.0f}x faster")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "a").write_text(base)
        Path(tmp, "b").write_text(new)
        t0 = time.perf_counter()
        subprocess.run(["git", "diff", "--no-index", "a", "b"], cwd=tmp, capture_output=True)
        r.add("same file: `git diff --no-index` (reference)", 1000 * (time.perf_counter() - t0), "ms",
              note="includes starting git")


class Probe:
    """pool.status again and again on its own connection, each round trip timed (ms)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.times: list[float] = []
        self.stop = asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            await self.conn.call("pool.status")
            self.times.append(1000 * (time.perf_counter() - t0))


async def probed(socket: Path, work: Awaitable[float]) -> tuple[float, list[float]]:
    """Run `work` (a coroutine returning seconds) while pool.status is probed; (seconds, rtts)."""
    probe = Probe(await Conn.open(socket))
    runner = asyncio.create_task(probe.run())
    try:
        secs = await work
    finally:
        probe.stop.set()
        await runner
        await probe.conn.close()
    return secs, probe.times


async def rpc_diff(socket: Path, task_id: str) -> float:
    conn = await Conn.open(socket)
    try:
        t0 = time.perf_counter()
        await conn.call("task.diff", {"task_id": task_id})
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def cli_diff(daemon: DaemonProcess, task_id: str) -> float:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "daemon", "diff", task_id, env=daemon.env,
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and out.count(b"diff --git") > 0
    return time.perf_counter() - t0


async def stale_after_edit(socket: Path, repo: Path, files: dict[str, str], task_id: str, want: int) -> float:
    events = await Conn.open(socket)
    await events.subscribe(["task"])
    try:
        t0 = time.perf_counter()
        write_files(repo, files)
        while True:
            _, env = await events.event()
            task = env["event"].get("task") or {}
            if task.get("id") == task_id and len(task.get("stale_hunks", [])) == want:
                return time.perf_counter() - t0
    finally:
        await events.close()


def statuses(r: Report, what: str, rtts: list[float]) -> None:
    r.add(f"pool.status p50 during {what}", pct(rtts, 50), "ms", note=f"{len(rtts)} calls")
    r.add(f"pool.status p99 during {what}", pct(rtts, 99), "ms")


def task_figures(r: Report, n_files: int, lines: int) -> None:
    with bench_daemon(2, warm=False) as b:
        paths = [f"rep/f{n:02}.py" for n in range(n_files)]
        repo = make_repo(b.tmp / "ws", {path: content(n, lines) for n, path in enumerate(paths)})
        b.model.script([{"content": "".join(edits(path, n) for n, path in enumerate(paths))}])

        async def submit() -> str:
            async with b.daemon.client() as c:
                task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="edit", files=paths,
                                                     model=OFFLINE_MODEL))
                task = await c.wait(task.id)
                assert task.state is p.TaskState.REVIEW, task
                return task.id

        task_id = asyncio.run(submit())
        sock = b.daemon.socket
        _, idle = asyncio.run(probed(sock, asyncio.sleep(0.5, result=0.0)))
        statuses(r, "nothing (baseline)", idle)
        b.daemon.restart()  # an empty cache
        cold, rtts = asyncio.run(probed(sock, rpc_diff(sock, task_id)))
        r.add(f"task.diff of {n_files} files x {lines:,} lines, cold (after a restart)", cold, "s")
        statuses(r, "the cold task.diff", rtts)
        warm = min(asyncio.run(rpc_diff(sock, task_id)) for _ in range(5))
        r.add("same task.diff, warm (cached)", 1000 * warm, "ms", note="best of 5")
        b.daemon.restart()
        cold_cli, rtts = asyncio.run(probed(sock, cli_diff(b.daemon, task_id)))
        r.add("`pasd diff` of that task, cold (after a restart)", cold_cli, "s",
              note="includes the CLI's own start, ~0.4 s")
        statuses(r, "the cold `pasd diff`", rtts)
        r.add("`pasd diff`, warm (cached)", min(asyncio.run(cli_diff(b.daemon, task_id)) for _ in range(3)), "s",
              note="best of 3")
        mine = {path: content(n, lines).replace(f"    # second {n}\n", f"    # mine {n}\n")
                for n, path in enumerate(paths)}
        secs, rtts = asyncio.run(probed(sock, stale_after_edit(sock, repo, mine, task_id, n_files)))
        r.add(f"user edits all {n_files} files: their hunks marked stale after", secs, "s",
              note="includes the watcher's 50 ms debounce")
        statuses(r, "the watcher's staleness check", rtts)


def main(args: argparse.Namespace) -> Report:
    n_files, lines = (5, 2000) if args.quick else (20, 5000)
    r = Report(f"diffs: files of {lines:,} equal lines; a task changing {n_files} of them")
    one_file(r, lines)
    task_figures(r, n_files, lines)
    return r


if __name__ == "__main__":
    run_script(__doc__.splitlines()[0], main)
