"""Start-up: the CLI round trip (`pasd status --json`, `pasd submit`, `pasd submit --wait`
against a warm daemon), `pasd start` until the socket answers, `pas-lsp` initialize round trip
and `pas-tui` first paint (headless); the latter two only where those packages are installed.

The packages' bytecode is compiled first, as `pip install` leaves it: with
PYTHONDONTWRITEBYTECODE set (CI images often set it) an editable checkout would otherwise
recompile every module on every start and measure the compiler.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import importlib.util
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Report, bench_daemon, env_with_path, run_script, run_tasks

# The CLI as a user's script calls it: a new interpreter per command (`python -m daemon` is what
# the `pasd` console script runs, without the launcher's own start-up).
PASD = [sys.executable, "-m", "daemon"]

TUI_PROBE = r"""
import asyncio, sys, time
t0 = time.perf_counter()
from pas_tui.app import PasApp

async def main():
    app = PasApp(sys.argv[1])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        print(time.perf_counter() - t0)

asyncio.run(main())
"""


def pasd_env(tmp: Path) -> dict[str, str]:
    env = env_with_path()
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "config.toml").touch()  # a config that exists: a missing $PASD_CONFIG is warned about
    env.update(PASD_SOCKET=str(tmp / "pasd.sock"), PASD_STATE_DIR=str(tmp / "state"),
               PASD_CONFIG=str(tmp / "config.toml"))
    return env


def pasd(env: dict[str, str], *args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "daemon", *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def lsp_initialize(env: dict[str, str], root: Path) -> tuple[float, float]:
    """(spawn to initialize answered, the initialize round trip alone), in seconds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pas_lsp"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None

    def send(msg: dict[str, object]) -> None:
        body = json.dumps(msg).encode()
        proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    def read() -> dict[str, object]:
        length = 0
        while (line := proc.stdout.readline().strip()):  # type: ignore[union-attr]
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return json.loads(proc.stdout.read(length))  # type: ignore[union-attr]

    try:
        sent = time.perf_counter()
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"processId": None, "rootUri": root.as_uri(), "capabilities": {}}})
        while read().get("id") != 1:
            pass
        done = time.perf_counter()
        send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        send({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
        send({"jsonrpc": "2.0", "method": "exit"})
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return done - t0, done - sent


def compile_bytecode() -> None:
    for name in ("daemon", "pas_lsp", "pas_tui"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                compileall.compile_dir(location, quiet=1)


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one command. The CPU time (user + system) is what the command costs
    by itself: on a loaded machine the wall time adds the wait for a core, on an idle one it does not."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cli_round_trips(r: Report, runs: int) -> None:
    """The three CLI figures against a warm daemon (litellm already loaded, the offline model at zero
    latency): each the median of `runs` calls, interleaved so a burst of load hits all three alike."""
    floor: list[tuple[float, float]] = []
    times: dict[str, list[tuple[float, float]]] = {"status": [], "submit": [], "wait": []}
    daemon_s: list[float] = []
    loads = [load()]
    with bench_daemon(2, latency=0.0) as b:
        ws, files = b.workspace(10)
        env = {**env_with_path(), "PASD_SOCKET": str(b.daemon.socket), "NO_COLOR": "1"}
        env.pop("PASD_CONFIG", None)
        commands = {
            "status": [*PASD, "status", "--json"],
            "submit": [*PASD, "submit", "note the module", "--file", files[2]],
            "wait": [*PASD, "submit", "note the module", "--file", files[3], "--wait"],
        }
        for argv in commands.values():  # once each first: the files' bytecode, the daemon's first calls
            timed(argv, env, ws)
        for i in range(runs):
            floor.append(timed([sys.executable, "-c", "pass"], env, ws))
            for name, argv in commands.items():
                times[name].append(timed(argv, env, ws))
            # the daemon's own part of `--wait`: submit to the task's REVIEW event, on a bare socket
            daemon_s.append(asyncio.run(run_tasks(b.daemon.socket, ws, [files[4 + i % 4]]))[0])
        loads.append(load())

    def ms(values: list[float]) -> float:
        return 1000 * statistics.median(values)

    base = statistics.median(w for w, _ in floor)
    r.info(f"load average before and after: {loads[0]} / {loads[1]}")
    r.add("python -c pass (the floor of any command)", ms([w for w, _ in floor]), "ms",
          note=f"CPU {ms([c for _, c in floor]):.0f} ms")
    for name, label, target in (("status", "`pasd status --json`", 100), ("submit", "`pasd submit`", 100),
                                ("wait", "`pasd submit --wait`, one task, model latency 0", 150)):
        wall = [w for w, _ in times[name]]
        r.add(label, ms(wall), "ms", ("<=", target),
              note=f"CPU {ms([c for _, c in times[name]]):.0f} ms; min {1000 * min(wall):.0f}; "
                   f"{statistics.median(wall) / base:.1f}x the floor; load {loads[1]}")
    r.add("the daemon's time for that task (submit to REVIEW event)", ms(daemon_s), "ms")


def main(args: argparse.Namespace) -> Report:
    runs = 3 if args.quick else 10
    r = Report(f"startup: median of {runs} runs, bytecode compiled")
    compile_bytecode()
    cli_round_trips(r, 3 if args.quick else 21)
    if args.cli_only:
        return r
    tmp = Path(tempfile.mkdtemp(prefix="pasd-su-", dir="/tmp"))
    env = pasd_env(tmp)
    try:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import daemon.client"], env=env, check=True)
        r.add("python + `import daemon.client` (the floor of a command on PasClient)", time.perf_counter() - t0, "s")
        starts = []
        for _ in range(runs):
            starts.append(pasd(env, "start"))
            pasd(env, "stop")
            while (tmp / "pasd.sock").exists():
                time.sleep(0.01)
        r.add("`pasd start` to socket ready", statistics.median(starts), "s", ("<=", 0.5),
              note=f"min {min(starts):.3f}, max {max(starts):.3f}")
        pasd(env, "start")
        try:
            if importlib.util.find_spec("pas_lsp") is None:
                r.add("pas-lsp initialize", None, note="pas_lsp is not installed")
            else:
                try:
                    results = [lsp_initialize(env, tmp) for _ in range(runs)]
                    r.add("pas-lsp spawn to initialize answered", statistics.median(x[0] for x in results), "s")
                    r.add("pas-lsp initialize round trip", 1000 * statistics.median(x[1] for x in results), "ms")
                except Exception as exc:
                    r.add("pas-lsp initialize", None, note=f"failed: {type(exc).__name__}: {exc}")
            if importlib.util.find_spec("pas_tui") is None:
                r.add("pas-tui first paint", None, note="pas_tui is not installed")
            else:
                try:
                    paints = []
                    for _ in range(runs):
                        out = subprocess.run([sys.executable, "-c", TUI_PROBE, str(tmp / "pasd.sock")], env=env,
                                             check=True, capture_output=True, text=True, timeout=60)
                        paints.append(float(out.stdout.strip().splitlines()[-1]))
                    r.add("pas-tui start to first paint (headless)", statistics.median(paints), "s")
                except Exception as exc:
                    detail = getattr(exc, "stderr", "") or str(exc)
                    r.add("pas-tui first paint", None, note=f"failed: {detail.strip().splitlines()[-1][:120]}")
        finally:
            pasd(env, "stop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return r


if __name__ == "__main__":
    run_script(__doc__.splitlines()[0], main,
               lambda ap: ap.add_argument("--cli-only", action="store_true", help="only the CLI round trips"))
