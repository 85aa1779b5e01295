"""Start-up: `pasd start` until the socket answers, `pas-lsp` initialize round trip and
`pas-tui` first paint (headless); the latter two only where those packages are installed.

The packages' bytecode is compiled first, as `pip install` leaves it: with
PYTHONDONTWRITEBYTECODE set (CI images often set it) an editable checkout would otherwise
recompile every module on every start and measure the compiler.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Report, env_with_path, run_script

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


def main(args: argparse.Namespace) -> Report:
    runs = 3 if args.quick else 10
    r = Report(f"startup: median of {runs} runs, bytecode compiled")
    compile_bytecode()
    tmp = Path(tempfile.mkdtemp(prefix="pasd-su-", dir="/tmp"))
    env = pasd_env(tmp)
    try:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import daemon.client"], env=env, check=True)
        r.add("python + `import daemon.client` (floor of any CLI call)", time.perf_counter() - t0, "s")
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
    run_script(__doc__.splitlines()[0], main)
