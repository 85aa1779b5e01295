"""A real Neovim (headless) with editors/nvim: delegate a selection or a folder as a job, review, approve."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, block, commit_all, fake_aider, write_files

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@pytest.fixture
def nvim() -> str:
    found = shutil.which("nvim")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nvim is not installed (apt-get install neovim); CI must run the Neovim tests")
        pytest.skip("nvim is not installed (apt-get install neovim)")
    return found


def run_flow(nvim: str, script: str, daemon: DaemonProcess, repo: Path, tmp_path: Path,
             **extra: str) -> list[str]:
    """Run one Lua flow in a headless Neovim; returns its log lines after checking it ended with "ok"."""
    log = tmp_path / "nvim.log"
    env = {**daemon.env, "PYTHONPATH": str(REPO), "PAS_NVIM_RTP": str(REPO / "editors" / "nvim"),
           "PAS_PYTHON": sys.executable, "PAS_TEST_LOG": str(log),
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_DATA_HOME": str(tmp_path / "data"), **extra}
    started = time.monotonic()
    proc = subprocess.run([nvim, "--headless", "-u", str(HERE / "nvim" / script)],
                          env=env, cwd=repo, capture_output=True, text=True, timeout=180, check=False)
    out = log.read_text() if log.exists() else "(no log)"
    print(out)
    print(f"nvim flow {script}: {time.monotonic() - started:.1f} s")
    assert proc.returncode == 0, f"nvim exited {proc.returncode}\n{out}\n{proc.stderr[-3000:]}"
    lines = out.splitlines()
    assert lines[-1] == "ok"
    return lines


def test_nvim_delegate_review_approve(nvim: str, daemon: DaemonProcess, repo: Path, tmp_path: Path) -> None:
    run_flow(nvim, "delegate_approve.lua", daemon, repo, tmp_path, PAS_TEST_FILE=str(repo / "app.py"))
    assert (repo / "app.py").read_text().startswith("# pas: explain add\ndef add(a, b):\n")


def test_nvim_job_on_a_folder_review_approve_one_task(nvim: str, daemon: DaemonProcess, repo: Path,
                                                      tmp_path: Path) -> None:
    src = repo / "src"
    write_files(repo, {"src/a.py": "def a():\n    return 1\n", "src/b.py": "def b():\n    return 2\n"})
    commit_all(repo, "src")
    lines = run_flow(nvim, "job_approve.lua", daemon, repo, tmp_path, PAS_TEST_FOLDER=str(src))
    assert any(line.startswith("in review: job ") for line in lines)
    assert (src / "a.py").read_text() == "# pas: note the job\ndef a():\n    return 1\n"
    assert (src / "b.py").read_text() == "def b():\n    return 2\n"


def test_nvim_revise_lens_then_approve(nvim: str, daemon: DaemonProcess, repo: Path, tmp_path: Path) -> None:
    lines = run_flow(nvim, "revise_approve.lua", daemon, repo, tmp_path, PAS_TEST_FILE=str(repo / "app.py"))
    assert any(line.startswith("revise asked for task ") for line in lines)


def test_nvim_notifies_a_failed_and_a_flagged_task(nvim: str, make_daemon: DaemonFactory, offline: OfflineModel,
                                                   repo: Path, tmp_path: Path) -> None:
    daemon = make_daemon(guardrails={"max_rounds": 0})  # the refused edit is the last round's
    offline.script([{"content": "I would leave add as it is."},
                    {"content": block("app.py", "def add(a, b):\n", "def add(a, b):  # kept\n")
                     + block("util.py", "def mul(a, b):\n", "def mul(a, b):  # x\n")}])
    lines = run_flow(nvim, "notify_failure.lua", daemon, repo, tmp_path, PAS_TEST_FILE=str(repo / "app.py"))
    [note] = [line for line in lines if line.startswith("notified: ")]
    assert re.fullmatch(r"notified: PAS: task \w+ failed: the model answered without any SEARCH/REPLACE edit "
                        r"\(no_edits\)", note), note
    [flag] = [line for line in lines if line.startswith("flagged: ")]
    assert re.fullmatch(r"flagged: PAS: task \w+ is in review, but flagged: edits refused \(leave add alone\)",
                        flag), flag


async def test_nvim_engine_from_setup_and_from_the_model_pick(nvim: str, make_daemon: DaemonFactory, repo: Path,
                                                              tmp_path: Path) -> None:
    daemon = make_daemon(engines={"aider": {"path": str(fake_aider(tmp_path / "bin"))},
                                  "claude": {"path": str(tmp_path / "none")}})
    lines = run_flow(nvim, "pick_engine.lua", daemon, repo, tmp_path, PAS_TEST_FILE=str(repo / "app.py"))
    assert "select PAS: model: openai/pasd-offline, openai/pasd-offline-b" in lines
    assert "select PAS: engine for openai/pasd-offline-b: aider, native" in lines  # the configured engine first
    [setup] = [line.split(": ")[1] for line in lines if line.startswith("setup engine: ")]
    [picked] = [line.split(": ")[1] for line in lines if line.startswith("picked: ")]
    async with daemon.client() as c:
        first, second = await c.wait(setup), await c.wait(picked)
    assert (first.engine, first.model, first.state) == ("aider", "openai/pasd-offline", p.TaskState.REVIEW)
    assert (second.engine, second.model, second.state) == ("native", "openai/pasd-offline-b", p.TaskState.REVIEW)
