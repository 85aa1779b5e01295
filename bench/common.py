"""Shared pieces of the benchmarks: a daemon with the offline model, repositories, task
streams, percentiles and figures against targets.

Every benchmark is a script with `main(quick) -> list[Figure]`; run alone it prints its
figures, and `run_all.py` collects them (as JSON through `--json`) into RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from daemon import protocol as p
from daemon.config import OFFLINE_MODEL
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, make_repo, offline_config, write_config

TERMINAL = {s.value for s in p.TaskState if not s.active}


# ---------------------------------------------------------------- figures


@dataclass
class Figure:
    """One measured number; `target` is e.g. (">=", 0.95) or None for context figures."""

    name: str
    value: float | None
    unit: str = ""
    target: tuple[str, float] | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        if self.value is None:
            return "n/a"
        op, limit = self.target
        ok = self.value >= limit if op == ">=" else self.value <= limit if op == "<=" else self.value < limit
        return "PASS" if ok else "MISS"

    def target_text(self) -> str:
        return f"{self.target[0]} {fmt(self.target[1])} {self.unit}".strip() if self.target else ""

    def ratio(self) -> str:
        """How far from the target: > 1 is better than the target, whichever the direction."""
        if self.target is None or self.value is None:
            return ""
        op, limit = self.target
        if op == ">=":
            r = self.value / limit if limit else math.inf
        else:
            r = limit / self.value if self.value else math.inf
        return f"{r:.2f}x"

    def line(self) -> str:
        value = "not available" if self.value is None else f"{fmt(self.value)} {self.unit}".strip()
        out = f"  {self.name:<52} {value:>14}"
        if self.target:
            out += f"   target {self.target_text():<14} {self.ratio():>7} {self.verdict}"
        if self.note:
            out += f"   ({self.note})"
        return out


def fmt(v: float) -> str:
    if v == int(v) and abs(v) >= 10:
        return f"{int(v)}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"


class Report:
    """Collects figures and prints each as it is measured."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.figures: list[Figure] = []
        print(f"\n## {title}", flush=True)

    def add(self, name: str, value: float | None, unit: str = "", target: tuple[str, float] | None = None,
            note: str = "") -> Figure:
        fig = Figure(f"{name}", value, unit, target, note)
        self.figures.append(fig)
        print(fig.line(), flush=True)
        return fig

    def info(self, text: str) -> None:
        print(f"  {text}", flush=True)


def run_script(title: str, main: Callable[[argparse.Namespace], Report],
               add_args: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """The command line every benchmark shares: --quick and --json PATH (plus its own)."""
    ap = argparse.ArgumentParser(description=title)
    ap.add_argument("--quick", action="store_true", help="small sizes, for CI")
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    if add_args is not None:
        add_args(ap)
    args = ap.parse_args()
    started = time.monotonic()
    report = main(args)
    print(f"  ({time.monotonic() - started:.1f} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"title": report.title, "figures": [asdict(f) for f in report.figures]}))


# ---------------------------------------------------------------- numbers


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return math.nan
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU seconds, all its threads; those of its children it has waited for)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / tick, (cutime + cstime) / tick


def process_tree(pid: int) -> list[int]:
    """`pid` and every process under it (git, checks, sandboxes), from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone since the listing
            continue
        fields = text[text.rindex(")") + 2:].split()  # after the command name, which may hold spaces
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        proc = todo.pop()
        out.append(proc)
        todo += children.get(proc, [])
    return out


@dataclass
class TreeMemory:
    rss_mb: float  # summed VmRSS: counts pages the processes share once per process
    pss_mb: float  # summed Pss: each shared page divided among the processes sharing it
    processes: int


def tree_memory(pid: int) -> TreeMemory:
    """Memory of the daemon and every process it started, now.

    A child still showing the daemon's command line has not exec'd its program yet: subprocess
    starts children with vfork, so until then it runs in the daemon's own memory, and its
    smaps_rollup reports all of the daemon's pages a second time. It is left out (it owns none)."""
    rss = pss = 0.0
    n = 0
    own = Path(f"/proc/{pid}/cmdline").read_bytes()
    for proc in process_tree(pid):
        try:
            if proc != pid and Path(f"/proc/{proc}/cmdline").read_bytes() == own:
                continue
            rollup = Path(f"/proc/{proc}/smaps_rollup").read_text().splitlines()
        except OSError:  # exited since the listing
            continue
        n += 1
        for line in rollup:
            if line.startswith("Rss:"):
                rss += int(line.split()[1]) / 1024
            elif line.startswith("Pss:"):
                pss += int(line.split()[1]) / 1024
    return TreeMemory(rss, pss, n)


# ---------------------------------------------------------------- repositories


def _module(i: int) -> str:
    return "".join(f"def f{i}_{k}(x):\n    return x * {k} + {i}\n\n" for k in range(10))


def make_workspace(parent: Path, n_files: int) -> tuple[Path, list[str]]:
    """A committed repo of n_files Python files, made dirty the way a user's tree is: one
    tracked file modified and one untracked file. Returns (root, files tasks may name)."""
    files = {f"pkg{i // 100:03d}/mod_{i:05d}.py": _module(i) for i in range(n_files)}
    root = make_repo(parent / f"repo-{n_files}", files)
    names = sorted(files)
    dirty = names[0]
    (root / dirty).write_text("# DIRTY-MARKER uncommitted edit\n" + files[dirty])
    (root / "untracked_task.py").write_text("# UNTRACKED-MARKER\ndef g(x):\n    return x\n")
    step = max(1, len(names) // 50)
    return root, [dirty, "untracked_task.py", *names[1::step]]


# ---------------------------------------------------------------- the daemon under test


@dataclass
class Bench:
    model: OfflineModel
    daemon: DaemonProcess
    tmp: Path
    warmup_s: float = 0.0
    workspaces: dict[int, tuple[Path, list[str]]] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.daemon.proc is not None
        return self.daemon.proc.pid

    def workspace(self, n_files: int) -> tuple[Path, list[str]]:
        if n_files not in self.workspaces:
            self.workspaces[n_files] = make_workspace(self.tmp, n_files)
        return self.workspaces[n_files]


@contextmanager
def bench_daemon(workers: int, *, latency: float = 0.0, warm: bool = True,
                 pool: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                 config: dict[str, dict[str, Any]] | None = None) -> Iterator[Bench]:
    """A real daemon with `workers` programmers on a temp socket, talking to the offline model.

    With warm=True one task runs first, so litellm's lazy import is paid before timing;
    its cost is kept in `warmup_s`. `env`: more variables for the daemon (e.g. LITELLM_CLIENT);
    `config`: more config sections.
    """
    tmp = Path(tempfile.mkdtemp(prefix="pasd-bench-"))
    model = OfflineModel(latency=latency).start()
    sections = offline_config(model.url, pool={"workers": workers, **(pool or {})},
                              guardrails={"allow_commands": ["true", "git status*"]}, **(config or {}))
    # The config lives apart from the state dir, as in a real install: the daemon watches the
    # config's folder, and SQLite writes under it would wake the file watcher on every task.
    (tmp / "config").mkdir()
    config = write_config(tmp / "config" / "config.toml", sections)
    daemon = DaemonProcess(tmp, workers=workers, env={"PASD_CONFIG": str(config), **(env or {})})
    try:
        daemon.start(timeout=90 if (pool or {}).get("backend") == "ray" else 30)  # Ray: the actor starts too
        b = Bench(model, daemon, tmp)
        if warm:
            ws, files = b.workspace(10)
            model.set_latency(0.0)
            t0 = time.perf_counter()
            asyncio.run(run_tasks(daemon.socket, ws, files[:1]))
            b.warmup_s = time.perf_counter() - t0
            model.set_latency(latency)
            model.requests.clear()
        yield b
    finally:
        daemon.stop()
        daemon.cleanup()
        model.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- raw socket access


class Conn:
    """A bare JSON-RPC connection: json.loads only, so the bench spends little CPU of its own."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._id = 0

    @classmethod
    async def open(cls, socket: Path) -> Conn:
        r, w = await asyncio.open_unix_connection(str(socket), limit=p.MAX_LINE_BYTES + 1)
        return cls(r, w)

    async def send(self, method: str, params: dict[str, Any] | None = None) -> int:
        self._id += 1
        msg = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or {}}
        self.writer.write((json.dumps(msg) + "\n").encode())
        await self.writer.drain()
        return self._id

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """One request, waiting for its reply (use only on connections without events)."""
        req = await self.send(method, params)
        while True:
            msg = json.loads(await self.reader.readline())
            if msg.get("id") == req:
                if "error" in msg:
                    raise RuntimeError(msg["error"]["message"])
                return msg["result"]

    async def subscribe(self, kinds: list[str]) -> None:
        await self.call("events.subscribe", {"kinds": kinds})

    async def event(self) -> tuple[float, dict[str, Any]]:
        """(arrival time, envelope) of the next event."""
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("the daemon closed the connection")
            now = time.time()
            msg = json.loads(line)
            if msg.get("method") == "event":
                return now, msg["params"]

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


@dataclass
class TaskTrace:
    """What the event stream told us about one task."""

    id: str
    state: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)  # phase -> first event time
    done_at: float = 0.0  # time of the event carrying the terminal state


async def run_tasks(socket: Path, workspace: Path, files: list[str], n: int | None = None, *,
                    progress: bool = False, check: str | None = None, concurrency: int = 64,
                    ) -> tuple[float, dict[str, TaskTrace]]:
    """Submit n tasks (round robin over files) and wait until all are terminal.

    Returns (wall seconds from the first submit to the last terminal event, traces).
    """
    n = len(files) if n is None else n
    events = await Conn.open(socket)
    await events.subscribe(["task", "progress"] if progress else ["task"])
    traces: dict[str, TaskTrace] = {}
    done: set[str] = set()
    finished = asyncio.Event()
    submitted: list[str] = []

    async def pump() -> None:
        while True:
            _, env = await events.event()
            ev = env["event"]
            if ev["kind"] == "task":
                task = ev["task"]
                tr = traces.setdefault(task["id"], TaskTrace(task["id"]))
                tr.state, tr.info = task["state"], task
                if task["state"] in TERMINAL and task["id"] not in done:
                    tr.done_at = env["time"]
                    done.add(task["id"])
                    if len(done) >= n:
                        finished.set()
            elif ev["kind"] == "progress" and ev.get("tokens") is None:  # not a streaming reply's counts
                tr = traces.setdefault(ev["task_id"], TaskTrace(ev["task_id"]))
                tr.phases[ev["phase"]] = env["time"]  # the last attempt's, if a task is retried

    pump_task = asyncio.create_task(pump())
    conns = [await Conn.open(socket) for _ in range(min(concurrency, n))]
    started = time.perf_counter()
    try:
        async def submit(conn: Conn, indices: range) -> None:
            for i in indices:
                params: dict[str, Any] = {"workspace": str(workspace), "instruction": f"note task {i}",
                                          "files": [files[i % len(files)]], "model": OFFLINE_MODEL}
                if check:
                    params["check"] = check
                submitted.append((await conn.call("task.submit", params))["id"])

        await asyncio.gather(*(submit(c, range(k, n, len(conns))) for k, c in enumerate(conns)))
        await asyncio.wait([pump_task, asyncio.create_task(finished.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if pump_task.done():
            pump_task.result()
        wall = time.perf_counter() - started
    finally:
        pump_task.cancel()
        await asyncio.gather(pump_task, return_exceptions=True)
        for c in [*conns, events]:
            await c.close()
    return wall, {k: traces[k] for k in submitted}


# the daemon's environment that sends every model call through litellm.acompletion, as before the
# direct path (daemon/programmer/openai_wire.py): the "before" of a comparison made in the same run
LITELLM_CLIENT = {"PASD_PROVIDER_CLIENT": "litellm"}


def env_with_path() -> dict[str, str]:
    """The environment for child scripts: this checkout first on the import path."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    return env


def failures(traces: dict[str, TaskTrace]) -> list[str]:
    bad = [f"{t.id}: {t.state} {t.info.get('reason')} {t.info.get('error')}" for t in traces.values()
           if t.state != "REVIEW"]
    if bad:
        print(f"  {len(bad)} tasks did not reach REVIEW, e.g. {bad[0]}", file=sys.stderr)
    return bad
