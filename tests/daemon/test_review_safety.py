"""Review safety: 3-way approve, conflicts leave files untouched, hunk review, live staleness."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

from daemon import protocol as p
from daemon.client import EventStream, PasClient
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, block, inotify_watches, make_repo

LONG = "".join(f"line {i}\n" for i in range(1, 41))


async def review_task(c: PasClient, repo: Path, path: str = "long.txt") -> p.TaskInfo:
    task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="edit", files=[path]))
    task = await c.wait(task.id)
    assert task.state is p.TaskState.REVIEW, task
    return task


async def test_user_edit_on_the_same_lines_gives_conflict_and_file_untouched(
        daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    (repo / "long.txt").write_text(LONG)
    offline.script([{"content": block("long.txt", "line 5\n", "line five\n")}])
    async with daemon.client() as c:
        task = await review_task(c, repo)
        user = LONG.replace("line 5\n", "line 5 (mine)\n")
        (repo / "long.txt").write_text(user)
        res = await c.approve(p.ReviewParams(task_id=task.id))
        assert res.task.state is p.TaskState.CONFLICT and res.applied == []
        assert [(cf.hunk_id, cf.path) for cf in res.conflicts] == [(1, "long.txt")]
        assert (repo / "long.txt").read_bytes() == user.encode()
    show = subprocess.run([sys.executable, "-m", "daemon", "show", task.id], env=daemon.env,
                          capture_output=True, text=True)
    assert "conflict: hunk 1 in long.txt: the file changed under this hunk" in show.stdout
    approve = subprocess.run([sys.executable, "-m", "daemon", "approve", task.id], env=daemon.env,
                             capture_output=True, text=True)
    assert approve.returncode == 1 and "nothing was written" in approve.stdout
    async with daemon.client() as c:  # a conflicted task can still be discarded
        assert (await c.reject(p.ReviewParams(task_id=task.id))).task.state is p.TaskState.REJECTED


async def test_user_edit_elsewhere_merges_cleanly(daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    (repo / "long.txt").write_text(LONG)
    offline.script([{"content": block("long.txt", "line 5\n", "line five\n")}])
    async with daemon.client() as c:
        task = await review_task(c, repo)
        (repo / "long.txt").write_text(LONG.replace("line 30\n", "line 30 (mine)\n"))
        res = await c.approve(p.ReviewParams(task_id=task.id))
        assert res.task.state is p.TaskState.APPLIED
    text = (repo / "long.txt").read_text()
    assert "line five\n" in text and "line 30 (mine)\n" in text


async def test_hunk_level_approve_and_reject(daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    (repo / "long.txt").write_text(LONG)
    offline.script([{"content": block("long.txt", "line 3\n", "line three\n")
                     + block("long.txt", "line 20\n", "line twenty\n")
                     + block("long.txt", "line 37\n", "line thirty-seven\n")}])
    async with daemon.client() as c:
        task = await review_task(c, repo)
        d = await c.diff(task.id)
        assert [h.id for h in d.files[0].hunks] == [1, 2, 3]
        res = await c.approve(p.ReviewParams(task_id=task.id, hunks=[1, 3]))
        assert res.applied == [1, 3] and res.task.state is p.TaskState.REVIEW
        text = (repo / "long.txt").read_text()
        assert "line three\n" in text and "line thirty-seven\n" in text and "line twenty" not in text
        states = [h.state for h in (await c.diff(task.id)).files[0].hunks]
        assert states == [p.HunkState.APPLIED, p.HunkState.PENDING, p.HunkState.APPLIED]
        res = await c.reject(p.ReviewParams(task_id=task.id, hunks=[2]))
        assert res.task.state is p.TaskState.APPLIED
    assert "line twenty" not in (repo / "long.txt").read_text()


async def test_two_tasks_on_one_file(daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    (repo / "long.txt").write_text(LONG)
    offline.script([
        {"content": block("long.txt", "line 2\n", "line two\n")},
        {"content": block("long.txt", "line 30\n", "line thirty\n")},
        {"content": block("long.txt", "line 2\n", "line TWO\n")},
    ])
    async with daemon.client() as c:
        t1, t2, t3 = [await review_task(c, repo) for _ in range(3)]
        assert (await c.approve(p.ReviewParams(task_id=t1.id))).task.state is p.TaskState.APPLIED
        assert (await c.approve(p.ReviewParams(task_id=t2.id))).task.state is p.TaskState.APPLIED
        before = (repo / "long.txt").read_bytes()
        res = await c.approve(p.ReviewParams(task_id=t3.id))
        assert res.task.state is p.TaskState.CONFLICT
        assert (repo / "long.txt").read_bytes() == before
    text = (repo / "long.txt").read_text()
    assert "line two\n" in text and "line thirty\n" in text and "TWO" not in text


async def test_editing_a_file_under_review_marks_its_hunks_stale_live(
        daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    (repo / "long.txt").write_text(LONG)
    offline.script([{"content": block("long.txt", "line 3\n", "line three\n")
                     + block("long.txt", "line 30\n", "line thirty\n")}])
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["task"]) as events:
        task = await review_task(c, repo)
        # an edit away from both hunks: nothing stale
        (repo / "long.txt").write_text(LONG.replace("line 15\n", "line 15!\n"))
        (repo / "long.txt").write_text(LONG.replace("line 15\n", "line 15!\n").replace("line 30\n", "mine\n"))
        async for env in events:
            ev = env.event
            # (a save can be seen half-written; the state settles on the finished file)
            if isinstance(ev, p.TaskEvent) and ev.task.id == task.id and ev.task.stale_hunks == [2]:
                break
        d = await c.diff(task.id)
        assert [h.stale for h in d.files[0].hunks] == [False, True]
        show = subprocess.run([sys.executable, "-m", "daemon", "show", task.id], env=daemon.env,
                              capture_output=True, text=True).stdout
        assert "stale hunks (file changed since): 2" in show
        # putting the line back clears it
        (repo / "long.txt").write_text(LONG)
        async for env in events:
            ev = env.event
            if isinstance(ev, p.TaskEvent) and ev.task.id == task.id and not ev.task.stale_hunks:
                break


async def stale_event(events: EventStream, task_id: str, stale: list[int]) -> None:
    async with asyncio.timeout(15):
        async for env in events:
            ev = env.event
            if isinstance(ev, p.TaskEvent) and ev.task.id == task_id and ev.task.stale_hunks == stale:
                return


async def test_an_edit_while_the_watch_starts_or_moves_is_not_missed(
        daemon: DaemonProcess, offline: OfflineModel, repo: Path, tmp_path: Path) -> None:
    """The watch (re)starts when a workspace gains its first task in review; an edit made at that
    moment, before the new watch is in place, still marks the hunk stale."""
    other = make_repo(tmp_path / "ws2", {"long.txt": LONG})
    (repo / "long.txt").write_text(LONG)
    offline.script([{"content": block("long.txt", "line 3\n", "line three\n")
                     + block("long.txt", "line 30\n", "line thirty\n")},
                    {"content": block("long.txt", "line 9\n", "line nine\n")}])
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["task"]) as events:
        first = await c.submit(p.SubmitParams(workspace=str(repo), instruction="edit", files=["long.txt"]))
        async for env in events:  # the user saves the moment the task is ready for review
            if isinstance(env.event, p.TaskEvent) and env.event.task.id == first.id:
                if env.event.task.state is p.TaskState.REVIEW:
                    (repo / "long.txt").write_text(LONG.replace("line 30\n", "mine\n"))
                    break
        await stale_event(events, first.id, [2])
        second = await c.submit(p.SubmitParams(workspace=str(other), instruction="edit", files=["long.txt"]))
        async for env in events:  # the watch moves to take in a second workspace
            if isinstance(env.event, p.TaskEvent) and env.event.task.id == second.id:
                if env.event.task.state is p.TaskState.REVIEW:
                    (repo / "long.txt").write_text(LONG.replace("line 3\n", "mine\n").replace("line 30\n", "mine\n"))
                    break
        await stale_event(events, first.id, [1, 2])
        assert [h.stale for h in (await c.diff(first.id)).files[0].hunks] == [True, True]


async def test_the_watch_holds_only_the_directories_in_review_and_follows_them_back(
        make_daemon: DaemonFactory, offline: OfflineModel, tmp_path: Path) -> None:
    """Watching for stale hunks in a big workspace costs a handful of watches, not one per
    directory (inotify's watches are shared with the user's editor); a file's directory removed
    and made again (a branch switch) is still followed."""
    daemon = make_daemon(context={"map_tokens": 0})  # the repo map's own watch is not counted here
    repo = make_repo(tmp_path / "big", {"deep/er/long.txt": LONG,
                                        **{f"pkg{i}/sub/m.py": "x = 1\n" for i in range(300)}})
    offline.script([{"content": block("deep/er/long.txt", "line 3\n", "line three\n")}])
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["task"]) as events:
        task = await review_task(c, repo, "deep/er/long.txt")
        assert daemon.proc is not None
        assert inotify_watches(daemon.proc.pid) <= 4  # the file's directory, the workspace, the config's
        target = repo / "deep/er/long.txt"
        target.write_text(LONG.replace("line 3\n", "mine\n"))
        await stale_event(events, task.id, [1])
        target.write_text(LONG)
        await stale_event(events, task.id, [])
        shutil.rmtree(repo / "deep")  # gone: the hunk cannot apply
        await stale_event(events, task.id, [1])
        target.parent.mkdir(parents=True)
        target.write_text(LONG)  # back as it was
        await stale_event(events, task.id, [])
        target.write_text(LONG.replace("line 3\n", "mine again\n"))  # and watched again
        await stale_event(events, task.id, [1])


async def test_project_config_reloads_without_restart_and_bad_edit_keeps_last_good(
        daemon: DaemonProcess, repo: Path) -> None:
    check = f"{sys.executable} -c pass"
    async with daemon.client() as c:
        (repo / ".pas.toml").write_text(f'[guardrails]\nallow_commands = ["{sys.executable} -c *"]\n')
        await c.trust(p.TrustParams(workspace=str(repo)))  # widening the allowlist needs the user's trust
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["app.py"], check=check))
        assert task.check == check
        (repo / ".pas.toml").write_text("[guardrails\nallow_commands = 3\n")
        # the bad file is reported where a user looks, and the last good settings still apply
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="y", files=["app.py"], check=check))
        assert task.check == check
        errors = (await c.status()).config_errors
        assert len(errors) == 1 and ".pas.toml" in errors[0] and "invalid TOML" in errors[0]
        (repo / ".pas.toml").write_text("[guardrails]\nmax_rounds = 1\n")
        assert (await c.status()).config_errors == []
