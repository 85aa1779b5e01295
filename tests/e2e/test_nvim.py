"""A real Neovim (headless) with editors/nvim: code actions, delegate, review, approve."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.testing import DaemonProcess

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(shutil.which("nvim") is None, reason="nvim is not installed (apt-get install neovim)")


def test_nvim_delegate_review_approve(daemon: DaemonProcess, repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "nvim.log"
    env = {**daemon.env, "PYTHONPATH": str(REPO), "PAS_NVIM_RTP": str(REPO / "editors" / "nvim"),
           "PAS_PYTHON": sys.executable, "PAS_TEST_FILE": str(repo / "app.py"), "PAS_TEST_LOG": str(log),
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_DATA_HOME": str(tmp_path / "data")}
    started = time.monotonic()
    proc = subprocess.run(["nvim", "--headless", "-u", str(HERE / "nvim" / "delegate_approve.lua")],
                          env=env, cwd=repo, capture_output=True, text=True, timeout=180, check=False)
    out = log.read_text() if log.exists() else "(no log)"
    print(out)
    print(f"nvim flow: {time.monotonic() - started:.1f} s")
    assert proc.returncode == 0, f"nvim exited {proc.returncode}\n{out}\n{proc.stderr[-3000:]}"
    assert out.splitlines()[-1] == "ok"
    assert (repo / "app.py").read_text().startswith("# pas: explain add\ndef add(a, b):\n")
