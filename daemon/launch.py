"""Start the daemon in the background: standard library only, so `pasd start` spawns the daemon
before anything heavy is imported, and the two processes start up side by side.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon import paths

if TYPE_CHECKING:
    import subprocess


class LaunchError(Exception):
    pass


def hello(sock_path: Path, timeout: float = 2.0) -> dict[str, Any] | None:
    """The daemon's `hello` result, or None when nothing answers on the socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(sock_path))
            s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"hello","params":{"client":"launch"}}\n')
            line = s.makefile("rb").readline()
        result = json.loads(line).get("result")
        return result if isinstance(result, dict) else None
    except (OSError, ValueError):
        return None


def start(workers: int | None = None, quiet: bool = False, timeout: float = 30.0,
          extra: list[str] | None = None, fork: bool = False) -> dict[str, Any]:
    """Start `pasd serve` unless a daemon answers; returns its hello once the socket is ready.

    `fork`: the daemon is this process's child by `fork()` rather than a new interpreter, which
    saves a Python start-up. Only for a process with one thread and nothing else to do (the
    `pasd start` command); a library caller gets a fresh `python -m daemon serve`.
    """
    import subprocess  # here: every command passes through this module (main below), few start a daemon

    sock_path = paths.socket_path()
    found = hello(sock_path)
    if found is not None:
        _say(quiet, f"pasd is already running (pid {found['pid']}) on {found['socket']}")
        return found
    state = paths.state_dir()
    for folder in (state, state / "logs"):  # private: the log names workspaces, files and tasks
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    log_path = state / "logs" / "pasd.log"
    env = {**os.environ, "PASD_SOCKET": str(sock_path), "PASD_STATE_DIR": str(state)}
    argv = [sys.executable, "-m", "daemon", "serve"] + (["--workers", str(workers)] if workers is not None else [])
    argv += extra or []  # more `serve` flags (--backend, --address, ...)
    proc: subprocess.Popen[bytes] | None = None
    if fork and not extra:
        pid = os.fork()
        if pid == 0:
            _serve_here(log_path, env, workers)
    else:
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True, env=env)
        finally:
            os.close(log)
        pid = proc.pid

    gone = False

    def exited() -> bool:
        nonlocal gone  # a forked child can be reaped once only
        gone = gone or (proc.poll() is not None if proc is not None else os.waitpid(pid, os.WNOHANG)[0] != 0)
        return gone

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = hello(sock_path)
        if found is not None:
            # another `pasd start` may have won the race for the lock
            verb = "started" if found.get("pid") == pid else "is already running"
            _say(quiet, f"pasd {verb} (pid {found['pid']}) on {found['socket']}")
            return found
        if exited():
            found = hello(sock_path)
            if found is not None:
                _say(quiet, f"pasd is already running (pid {found['pid']}) on {found['socket']}")
                return found
            if _starting(state / "pasd.lock", pid):
                # another `pasd start` won the lock and is still starting: its socket answers soon
                time.sleep(0.02)
                continue
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise LaunchError(f"the daemon exited during start-up: {tail[0]} (log: {log_path})")
        time.sleep(0.01)
    raise LaunchError(f"the daemon did not answer within {timeout:g} s (log: {log_path})")


def _starting(lock: Path, ours: int) -> bool:
    """Whether the daemon's lock file names a live process other than the one we started (read
    only: taking the lock, even shared for a moment, could fail that process's own start)."""
    try:
        holder = int(lock.read_text().strip())
    except (OSError, ValueError):
        return False
    if holder == ours:
        return False
    try:
        os.kill(holder, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _serve_here(log_path: Path, env: dict[str, str], workers: int | None) -> None:
    """In the forked child: detach from the terminal, log to the file, serve, and never return."""
    code = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        # What a spawned process would not inherit: pipes of whoever ran `pasd start` stay
        # open otherwise, and a caller reading one to its end would wait for the daemon to exit.
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.environ.update(env)
        sys.argv = [sys.argv[0], "serve"] + (["--workers", str(workers)] if workers is not None else [])
        from daemon.app import serve
        from daemon.errors import PasError

        try:
            code = serve(None, None, workers, {})
        except PasError as exc:
            print(f"pasd: {exc.message}", file=sys.stderr)
            code = 1
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, flush=True)


def main(argv: list[str]) -> int | None:
    """`pasd start [--workers N]` and `pasd --version` without importing the rest of pasd; None: not this
    fast path."""
    workers: int | None = None
    if argv == ["--version"]:
        from daemon.version import banner

        print(banner("pasd"))
        return 0
    if argv[:1] != ["start"]:
        return None
    rest = argv[1:]
    # only values the pool takes (config.PoolConfig.workers: 1 to 512); the full CLI explains any other
    if rest[:1] == ["--workers"] and len(rest) == 2 and rest[1].isdigit() and 0 < int(rest[1]) <= 512:
        workers = int(rest[1])
    elif rest:
        return None  # anything else (--help, --foreground, a usage error) goes through argparse
    if missing := paths.missing_config():
        print(f"pasd: warning: {missing}", file=sys.stderr)
    try:
        start(workers, fork=hasattr(os, "fork"))
    except LaunchError as exc:
        print(f"pasd: {exc}", file=sys.stderr)
        return 1
    return 0
