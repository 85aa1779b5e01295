"""`pasd demo` as a new user runs it: every task's end shown, the repository kept and the daemon
left running, both said plainly; `--clean` leaves nothing behind, not even a task in review."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.testing import DaemonProcess


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[DaemonProcess]:
    """An isolated socket and state dir that no daemon serves yet: the demo has to start one."""
    d = DaemonProcess(tmp_path / "pasd")
    d.root.mkdir()
    d.env.pop("PASD_CONFIG")
    d.env["TMPDIR"] = str(tmp_path)
    yield d
    subprocess.run([sys.executable, "-m", "daemon", "stop"], env=d.env, capture_output=True, timeout=60)


def pasd(d: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=d.env, capture_output=True, text=True,
                          timeout=300)


def test_the_demo_shows_every_task_end_and_keeps_its_repository(fresh: DaemonProcess) -> None:
    r = pasd(fresh, "demo")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "pasd started (pid" in out
    submitted = re.findall(r"^submitted (\w+):", out, flags=re.M)
    assert len(submitted) == 4
    for task_id in submitted:  # each task's last progress line, not three of the four
        assert re.search(rf"^  {task_id} done\s+ready for review", out, flags=re.M), task_id
    repo = Path(re.search(r"^demo repository: (.+)$", out, flags=re.M).group(1))  # type: ignore[union-attr]
    assert (repo / "shop/cart.py").is_file() and f"stays at {repo}" in out
    assert "The daemon keeps running (pid" in out and fresh.answers()
    tasks = json.loads(pasd(fresh, "tasks", "--json").stdout)
    left = [t["id"] for t in tasks if t["state"] == "REVIEW"]
    assert len(left) == 1 and f"Task {left[0]} is still in review" in out
    assert pasd(fresh, "approve", left[0]).returncode == 0  # its repository is still there to apply to

    r = pasd(fresh, "demo", "--clean")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pasd was already running" in r.stdout
    repo = Path(re.search(r"^demo repository: (.+)$", r.stdout, flags=re.M).group(1))  # type: ignore[union-attr]
    assert not repo.exists() and "removed the demo repository" in r.stdout
    tasks = json.loads(pasd(fresh, "tasks", "--json").stdout)
    assert [t for t in tasks if t["state"] == "REVIEW"] == []


def test_the_offline_model_verb_says_how_to_use_it(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "offline-model", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url)
        usage = "".join(proc.stderr.readline() for _ in range(3))
        assert f"--model openai/pasd-offline --api-base {url}" in usage
    finally:
        proc.terminate()
    assert proc.wait(10) == 0
