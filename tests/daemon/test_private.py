"""The daemon's state is private: a 0700 state dir of 0600 files, and a process that is not dumpable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, block, offline_config

# Root reads any process's memory (CAP_SYS_PTRACE): a process without capabilities is what an
# ordinary same-user process is.
NO_CAPS = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"] if os.getuid() == 0 else []


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


async def test_the_state_dir_is_private_and_the_users_files_are_not(make_daemon: DaemonFactory,
                                                                    offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(start=False, guardrails={"allow_commands": ["true"]})
    # what an older daemon left: everything readable by everyone
    (d.state_dir / "receipts").mkdir(parents=True)
    (d.state_dir / "logs").mkdir()
    for path in (d.state_dir / "pasd.db", d.state_dir / "receipts" / "old.jsonl", d.state_dir / "logs" / "pasd.log"):
        path.touch()
    for path in d.state_dir.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    d.state_dir.chmod(0o755)
    d.start()
    offline.script([{"content": block("app.py", "def add(a, b):\n", "def add(a, b):  # x\n")
                                + block("new.py", "", "X = 1\n")}])
    async with d.client() as c:
        task = await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction="change it",
                                                           files=["app.py", "new.py"], check="true"))).id)
        assert task.state is p.TaskState.REVIEW, task.error
        top = {path.name: mode(path) for path in d.state_dir.iterdir()}
        await c.approve(p.ReviewParams(task_id=task.id))
    assert mode(d.state_dir) == 0o700
    for name in ("receipts", "logs", "worktrees"):
        assert top.pop(name) == 0o700, name
    assert {"pasd.db", "pasd.db-wal", "pasd.db-shm"} <= set(top)
    assert all(m == 0o600 for m in top.values()), top  # the databases (and their -wal, -shm), the lock
    jsonl = list((d.state_dir / "receipts").iterdir())
    assert len(jsonl) == 2 and all(mode(path) == 0o600 for path in jsonl)
    assert mode(d.state_dir / "logs" / "pasd.log") == 0o600
    # the daemon's umask is the user's: approve gives a new file the user's usual mode
    umask = os.umask(0)
    os.umask(umask)
    assert mode(repo / "new.py") == 0o666 & ~umask and mode(repo / "app.py") == 0o644


def test_a_same_user_process_cannot_read_the_daemons_environment(tmp_path: Path, offline: OfflineModel) -> None:
    planted = "planted-" + uuid.uuid4().hex
    (tmp_path / "d").mkdir()
    d = DaemonProcess(tmp_path / "d", config=offline_config(offline.url), env={"PASD_TEST_PLANTED": planted},
                      wrap=NO_CAPS)
    other = subprocess.Popen([*NO_CAPS, sys.executable, "-c", "import time; time.sleep(120)"],
                             env={**os.environ, "PASD_TEST_PLANTED": planted})
    try:
        d.start()
        assert d.proc is not None

        def environ(pid: int) -> subprocess.CompletedProcess[bytes]:
            return subprocess.run([*NO_CAPS, "cat", f"/proc/{pid}/environ"], capture_output=True)

        assert planted.encode() in environ(other.pid).stdout  # an ordinary process of the same user: readable
        seen = environ(d.proc.pid)
        assert seen.returncode != 0 and planted.encode() not in seen.stdout
    finally:
        other.kill()
        other.wait()
        d.cleanup()
