"""`pas-lsp` as a user runs it by hand: --help and --version answer and exit; a signal ends it cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from lsp_helpers import server_env

from daemon.testing import DaemonProcess
from daemon.version import version


def test_help_and_version_answer_without_starting_the_server(pasd: DaemonProcess) -> None:
    for argv, expect in ((["--version"], f"pas-lsp {version()}\n"), (["--help"], "usage: pas-lsp")):
        # stdin stays open: a server reading it would never exit
        r = subprocess.run([sys.executable, "-m", "pas_lsp", *argv], env=server_env(pasd), stdin=subprocess.PIPE,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.startswith(expect) and r.stderr == "", (argv, r)
    assert "--stdio" in r.stdout
    r = subprocess.run([sys.executable, "-m", "pas_lsp", "--nope"], env=server_env(pasd), stdin=subprocess.PIPE,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "unrecognized arguments: --nope" in r.stderr


def _message(stream: IO[bytes]) -> dict[str, object]:
    length = 0
    while (line := stream.readline().strip()):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    reply: dict[str, object] = json.loads(stream.read(length))
    return reply


def test_sigint_and_sigterm_end_a_running_server_cleanly(pasd: DaemonProcess, tmp_path: Path) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen([sys.executable, "-m", "pas_lsp", "--stdio"], env=server_env(pasd),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                           "params": {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}}}).encode()
        proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        proc.stdin.flush()
        assert _message(proc.stdout).get("id") == 1  # the server is up and serving
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, (sig, proc.returncode, err)
        assert b"Traceback" not in err and b"Fatal Python error" not in err, err
