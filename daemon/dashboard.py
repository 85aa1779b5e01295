"""`[web] enabled = true`: the daemon keeps `pasd web` running beside it.

The dashboard runs as a child process, not in the daemon: its HTTP serving, page rendering and
event fan-out to browsers never take the daemon's event loop, and a dashboard that fails cannot
take the daemon with it (it is started again, waiting longer each time). It is a front end like
any other, talking to the daemon over its socket. The child gets only the environment a tool
needs (daemon/programmer/sandbox.py's allowlist): never the provider keys the daemon holds.

Its URL, with the token that opens it, is kept in the state directory's `web-url` (0600) while it
runs: `pasd web --url` prints it, `pool.status` names the address without the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from pathlib import Path

from daemon.cli.web import PARENT_VAR
from daemon.programmer.sandbox import check_env

log = logging.getLogger(__name__)

URL_FILE = "web-url"
URL_LINE = re.compile(r"the dashboard is at (http://\S+)")
ENV_EXTRA = ("PYTHONPATH", "VIRTUAL_ENV", "PASD_STATE_DIR", "PASD_CONFIG", "XDG_RUNTIME_DIR", "XDG_STATE_HOME")
MAX_BACKOFF_S = 60.0


def read_url(state_dir: Path) -> str | None:
    """The running dashboard's URL with its token, or None."""
    try:
        return (state_dir / URL_FILE).read_text().strip() or None
    except OSError:
        return None


class Dashboard:
    """The dashboard child: started, watched, restarted, stopped with the daemon."""

    def __init__(self, socket: Path, state_dir: Path, port: int) -> None:
        self.socket = socket
        self.url_file = state_dir / URL_FILE
        self.port = port
        self.address: str | None = None  # the URL without its token, while it runs
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="pasd-dashboard")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._stop_child()
        self._forget()

    async def _supervise(self) -> None:
        backoff = 1.0
        while True:
            started = asyncio.get_running_loop().time()
            code, said = await self._run_once()
            self._forget()
            if asyncio.get_running_loop().time() - started > 60:
                backoff = 1.0  # it ran a while: this failure is new
            log.warning("the web dashboard stopped (exit %s)%s; starting it again in %.0f s", code,
                        f": {said}" if said else "", backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _run_once(self) -> tuple[int | None, str]:
        env = {**check_env(ENV_EXTRA), "PASD_SOCKET": str(self.socket), PARENT_VAR: str(os.getpid())}
        try:
            self._proc = proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "daemon", "web", "--port", str(self.port), env=env,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                start_new_session=True)
        except OSError as exc:  # cannot start a process now (too many, no memory): try again later
            return None, str(exc)
        assert proc.stdout is not None and proc.stderr is not None
        errors = asyncio.create_task(proc.stderr.read())
        async for raw in proc.stdout:
            if (m := URL_LINE.search(raw.decode(errors="replace"))) is not None:
                self._publish(m.group(1))
        code = await proc.wait()
        said = (await errors).decode(errors="replace").strip().splitlines()
        self._proc = None
        return code, said[-1] if said else ""

    def _publish(self, url: str) -> None:
        self.address = url.split("?", 1)[0]
        tmp = self.url_file.with_name(URL_FILE + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(url + "\n")
            os.replace(tmp, self.url_file)
        except OSError as exc:  # the dashboard runs all the same; only `pasd web --url` cannot tell
            log.error("cannot record the web dashboard's URL in %s: %s", self.url_file, exc)
        log.info("the web dashboard is at %s (`pasd web --url` prints it with its token)", self.address)

    def _forget(self) -> None:
        self.address = None
        with contextlib.suppress(FileNotFoundError):
            self.url_file.unlink()

    async def _stop_child(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
