"""Replies may be far longer than a request may be: a task whose diff is over 8 MiB is shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess

FILES = [f"big{n}.txt" for n in range(3)]
EDITS = "".join(f"{name}\n```\n<<<<<<< SEARCH\ntail\n=======\ntail, edited\n>>>>>>> REPLACE\n```\n" for name in FILES)


async def test_a_diff_over_eight_mib_is_shown(daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    # three files (each under the 4 MiB a task file may have), each with three 1 MiB lines of context
    # above its one changed line: the diff is over 9 MiB
    lines = [chr(ord("a") + i) * 2**20 for i in range(3)]
    for name in FILES:
        (repo / name).write_text("\n".join([*lines, "tail"]) + "\n")
    offline.script([{"content": EDITS}])
    async with daemon.client() as c:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="edit the tail", files=FILES))
        assert (await c.wait(task.id)).state is p.TaskState.REVIEW
        diff = await c.diff(task.id)
        assert len(diff.diff) > p.MAX_LINE_BYTES and "+tail, edited\n" in diff.diff
        assert (await c.status()).review == 1  # the connection is still up after the long reply
    r = subprocess.run([sys.executable, "-m", "daemon", "diff", task.id], env=daemon.env, capture_output=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(r.stdout) > p.MAX_LINE_BYTES and b"+tail, edited\n" in r.stdout
    assert lines[2].encode() in r.stdout
