"""`pasd web` as a separate process, for the tests and the benchmark."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

URL = re.compile(r"(http://\S+/\?token=\S+)")


class WebProcess:
    """Run `pasd web --port 0` against a daemon's socket; `url` carries the token."""

    def __init__(self, socket: str | os.PathLike[str], log: Path, *, host: str = "127.0.0.1") -> None:
        self.socket = str(socket)
        self.host = host
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> WebProcess:
        env = {**os.environ, "PASD_SOCKET": self.socket}
        with self.log.open("wb") as out:
            argv = [sys.executable, "-m", "daemon", "web", "--port", "0", "--host", self.host]
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (found := URL.search(self.log.read_text())) is not None:
                self.url = found.group(1)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"pasd web exited with {self.proc.returncode}:\n{self.log.read_text()}")
            time.sleep(0.02)
        raise RuntimeError(f"pasd web printed no URL in {timeout} s:\n{self.log.read_text()}")

    @property
    def base(self) -> str:
        return self.url.split("/?", 1)[0]

    @property
    def token(self) -> str:
        return self.url.rsplit("=", 1)[1]

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        code, self.proc = self.proc.returncode, None
        return code
