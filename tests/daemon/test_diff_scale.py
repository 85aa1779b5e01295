"""Diffs of many long files of repeated lines: correct, and the daemon keeps answering meanwhile.

difflib (autojunk off) is quadratic on repeated lines: 20 files of 5,000 nearly identical lines
once held the event loop for minutes, so `pool.status` waited as long as `task.diff` did.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from daemon import protocol as p
from daemon.client import EventStream, PasClient
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, block, commit_all, write_files

FILES = 20
LINE = "    total = total + value\n"


def content(n: int) -> str:
    """5,000 lines, all equal but two markers (the edits' anchors)."""
    return LINE * 1500 + f"    # first {n}\n" + LINE * 2000 + f"    # second {n}\n" + LINE * 1498


def proposed(n: int) -> str:
    return (content(n).replace(f"    # first {n}\n", f"    total = total - value\n    # first {n}\n")
            .replace(f"    # second {n}\n", f"    log(total, {n})\n"))


class StatusProbe:
    """pool.status sent again and again on its own connection; counts the replies."""

    def __init__(self, client: PasClient) -> None:
        self.client = client
        self.replies = 0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            await self.client.status()
            self.replies += 1


async def test_diff_of_long_repeated_files_is_right_and_pool_status_keeps_answering(
        daemon: DaemonProcess, offline: OfflineModel, repo: Path, tmp_path: Path) -> None:
    paths = [f"rep/f{n:02}.py" for n in range(FILES)]
    write_files(repo, {path: content(n) for n, path in enumerate(paths)})
    commit_all(repo, "long files of repeated lines")
    offline.script([{"content": "".join(
        block(path, f"    # first {n}\n", f"    total = total - value\n    # first {n}\n")
        + block(path, f"    # second {n}\n", f"    log(total, {n})\n")
        for n, path in enumerate(paths))}])
    async with daemon.client() as c:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="edit", files=paths))
        task = await c.wait(task.id)
        assert task.state is p.TaskState.REVIEW, task
    daemon.restart()  # nothing cached: the diff below is computed on request

    async with daemon.client() as c, daemon.client() as probe_client:
        probe = StatusProbe(probe_client)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(probe.run())
            before = probe.replies
            d = await c.diff(task.id)
            during = probe.replies - before
            # The diff runs off the event loop: status replies arrive while it is outstanding,
            # unless it was done before the first reply could come back.
            assert during > 0 or len(d.files) == FILES

            # The whole diff is right: two one-line hunks per file, where the edits are, and
            # git turns the base into the proposed text with it.
            assert [f.path for f in d.files] == paths
            for n, f in enumerate(d.files):
                assert (f.added, f.removed) == (2, 1)
                first, second = f.hunks
                assert (first.old_start, first.old_count, first.new_lines) == (1501, 0, ["    total = total - value"])
                assert (second.old_start, second.old_count) == (3502, 1)
                assert (second.old_lines, second.new_lines) == ([f"    # second {n}"], [f"    log(total, {n})"])
            assert [h.id for f in d.files for h in f.hunks] == list(range(1, 2 * FILES + 1))
            check = tmp_path / "check"
            write_files(check, {path: content(n) for n, path in enumerate(paths)})
            (check / "all.diff").write_text(d.diff)
            subprocess.run(["git", "apply", "all.diff"], cwd=check, check=True)
            assert all((check / path).read_text() == proposed(n) for n, path in enumerate(paths))

            # The user edits the line under each file's second hunk: the watcher marks exactly
            # those 20 hunks stale, and pool.status goes on answering while it works.
            async with EventStream(daemon.socket, kinds=["task"]) as events:
                before = probe.replies
                write_files(repo, {path: content(n).replace(f"    # second {n}\n", f"    # mine {n}\n")
                                   for n, path in enumerate(paths)})
                stale = list(range(2, 2 * FILES + 1, 2))
                async for env in events:
                    ev = env.event
                    if isinstance(ev, p.TaskEvent) and ev.task.id == task.id and ev.task.stale_hunks == stale:
                        break
                assert probe.replies > before
            d = await c.diff(task.id)
            assert [h.id for f in d.files for h in f.hunks if h.stale] == stale
            probe.stop.set()
        assert probe.replies > 0
