"""External engines against the native one: per-task time at zero model latency (submit to
REVIEW, one task at a time), as a ratio in one run, and the peak memory of a running engine.

An external engine's cost is mostly its own start-up (aider imports its Python stack on every
run; Claude Code starts a 370 MB binary and takes three model turns to read, edit and answer);
pasd's part around it (snapshot, sandbox, scan, diff, receipt) is the same as native's.
Engines that are not installed are reported as not available.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import Conn, Report, make_workspace, rss_mb, run_script

from daemon.config import OFFLINE_MODEL
from daemon.offline_model import OfflineModel
from daemon.programmer.engines.claude import VERSION as CLAUDE_VERSION
from daemon.testing import DaemonProcess, block, offline_config

VENV = Path(os.environ.get("PASD_AIDER_VENV") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
            / "pasd-ci" / "aider-0.86.2")
CLAUDE = (Path(os.environ.get("PASD_AGENT_CACHE")  # where scripts/install-agent-cli.sh puts it
               or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pasd-ci")
          / f"claude-code-{CLAUDE_VERSION}" / "node_modules" / ".bin" / "claude")
INSTALL = {"aider": "scripts/install-aider.sh", "claude": "scripts/install-agent-cli.sh"}


def rules(ws: Path, files: list[str]) -> list[dict[str, object]]:
    """One scripted answer per file, in the edit format native and aider's "diff" share."""
    out: list[dict[str, object]] = []
    for rel in files:
        first = ((ws / rel).read_text().splitlines(keepends=True) or ["\n"])[0]
        out.append({"match": f"note {Path(rel).name}", "content": block(rel, first, "# pas: noted\n" + first)})
    return out


class Peak:
    """The peak summed RSS of the processes whose command line names `needle`, sampled every 20 ms."""

    def __init__(self, needle: str) -> None:
        self.needle = needle.encode()
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            total = 0.0
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    if self.needle in Path(f"/proc/{entry}/cmdline").read_bytes():
                        total += rss_mb(int(entry))
                except (OSError, ValueError):
                    continue
            self.peak_mb = max(self.peak_mb, total)


async def one(socket: Path, ws: Path, rel: str, engine: str) -> float:
    """Seconds from submit to the task's terminal state."""
    events = await Conn.open(socket)
    await events.subscribe(["task"])
    c = await Conn.open(socket)
    try:
        t0 = time.perf_counter()
        # Claude Code edits with its own tools: the offline model's default answers drive it, not a rule
        word = "annotate" if engine == "claude" else "note"
        task = await c.call("task.submit", {"workspace": str(ws), "instruction": f"{word} {Path(rel).name}",
                                            "files": [rel], "model": OFFLINE_MODEL, "engine": engine})
        while True:
            _, env = await events.event()
            ev = env["event"]
            if ev["kind"] == "task" and ev["task"]["id"] == task["id"] and ev["task"]["state"] not in (
                    "QUEUED", "RUNNING"):
                if ev["task"]["state"] != "REVIEW":
                    raise RuntimeError(f"{engine}: {ev['task']['state']} {ev['task'].get('error')}")
                return time.perf_counter() - t0
    finally:
        await c.close()
        await events.close()


def main(quick: bool) -> Report:
    n = 3 if quick else 10
    n_tool = 1 if quick else n  # an aider run takes seconds: CI's quick run times one
    r = Report(f"engines: per-task time at zero model latency, {n} tasks each, one at a time")
    aider = VENV / "bin" / "aider"
    tmp = Path(tempfile.mkdtemp(prefix="pasd-bench-engines-"))
    ws, files = make_workspace(tmp, 10)
    model = OfflineModel(latency=0.0, seed_rules=rules(ws, files)).start()
    sections = offline_config(model.url, pool={"workers": 1})
    sections["engines.aider"] = {"path": str(aider)}
    sections["engines.claude"] = {"path": str(CLAUDE)}
    tools = {"aider": aider, "claude": CLAUDE}
    d = DaemonProcess(tmp, workers=1, config=sections)
    try:
        d.start()
        times: dict[str, list[float]] = {}
        engines = ["native"] + [name for name, exe in tools.items() if exe.exists()]
        for engine in engines:
            runs = n if engine == "native" else n_tool
            if engine == "native" or not quick:  # warm: litellm's import in the daemon, the tool's caches
                asyncio.run(one(d.socket, ws, files[0], engine))
            with Peak(str(tools.get(engine, aider))) as peak:
                base_rss = rss_mb(d.proc.pid) if d.proc else 0.0
                times[engine] = [asyncio.run(one(d.socket, ws, files[(i + 1) % len(files)], engine))
                                 for i in range(runs)]
            med = statistics.median(times[engine])
            r.add(f"per-task time, {engine}", 1000 * med, "ms",
                  note=f"median of {runs}; max {1000 * max(times[engine]):.0f}")
            if engine == "native":
                r.add("daemon RSS while native tasks run", base_rss, "MB", note="the engine runs inside the daemon")
            else:
                r.add(f"peak RSS of the running {engine} (its processes)", peak.peak_mb, "MB")
        r.info(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        why = {"aider": "aider starts its Python stack for every run",
               "claude": "Claude Code starts for every run, then takes three model turns"}
        for name, exe in tools.items():
            if name in times:
                ratio = statistics.median(times[name]) / statistics.median(times["native"])
                r.add(f"per-task time, {name} / native", ratio, "x", note=why[name])
            else:
                r.add(f"per-task time, {name} / native", None, "x",
                      note=f"{name} is not installed at {exe} ({INSTALL[name]})")
    finally:
        d.stop()
        d.cleanup()
        model.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return r


if __name__ == "__main__":
    run_script(__doc__.splitlines()[0], lambda a: main(a.quick))
