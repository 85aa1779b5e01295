"""Review decisions racing each other or the user: one winner, and no byte the user saved is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

from daemon import protocol as p
from daemon.client import PasClient
from daemon.errors import InvalidState
from daemon.offline_model import OfflineModel
from daemon.store import Store
from daemon.testing import DaemonFactory, block, commit_all, paused, write_files

LONG = "".join(f"line {i}\n" for i in range(1, 41))
ORIGINAL = "one\ntwo\nthree\n"
NOTE = "# pas: edit\n"  # the offline model's default answer puts this on top of the file


async def tasks_in_review(c: PasClient, repo: Path, files: list[str]) -> list[p.TaskInfo]:
    tasks = [await c.submit(p.SubmitParams(workspace=str(repo), instruction="edit", files=[f])) for f in files]
    done = [await c.wait(t.id) for t in tasks]
    assert all(t.state is p.TaskState.REVIEW for t in done), done
    return done


async def test_a_user_save_between_merge_and_switch_is_merged_again_or_conflicts(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    write_files(repo, {"long.txt": LONG})
    commit_all(repo, "long")
    offline.script([{"content": block("long.txt", "line 5\n", "line five\n")},
                    {"content": block("long.txt", "line 10\n", "line ten\n")}])
    d = make_daemon(workers=1, env={"PASD_PAUSE_AT": "approve.staged"})
    async with d.client() as c:
        t1, t2 = await tasks_in_review(c, repo, ["long.txt", "long.txt"])

        # merged and staged; the user saves a line elsewhere before the switch: merged again, both kept
        approving = asyncio.create_task(c.approve(p.ReviewParams(task_id=t1.id)))
        held = await paused(d, "approve.staged", approving)
        (repo / "long.txt").write_text(LONG.replace("line 30\n", "line 30 (mine)\n"))
        held.unlink()
        res = await approving
        assert res.task.state is p.TaskState.APPLIED and res.applied == [1]
        assert (repo / "long.txt").read_text() == LONG.replace("line 5\n", "line five\n").replace(
            "line 30\n", "line 30 (mine)\n")

        # again, but now the user saves the very line the task changes: CONFLICT, their file as they saved it
        (d.state_dir / "pause-approve.staged.passed").unlink()
        approving = asyncio.create_task(c.approve(p.ReviewParams(task_id=t2.id)))
        held = await paused(d, "approve.staged", approving)
        mine = (repo / "long.txt").read_bytes().replace(b"line 10\n", b"line 10 (mine)\n")
        (repo / "long.txt").write_bytes(mine)
        held.unlink()
        res = await approving
        assert res.task.state is p.TaskState.CONFLICT and res.applied == []
        assert [(cf.hunk_id, cf.path) for cf in res.conflicts] == [(1, "long.txt")]
        assert (repo / "long.txt").read_bytes() == mine
    assert not list(repo.glob("*pasd-tmp*"))


async def test_approve_and_reject_at_the_same_moment_have_exactly_one_winner(
        make_daemon: DaemonFactory, repo: Path) -> None:
    files = [f"f{i}.txt" for i in range(12)]
    write_files(repo, dict.fromkeys(files, ORIGINAL))
    commit_all(repo, "files")
    d = make_daemon(workers=4)
    async with d.client() as a, d.client() as b:
        tasks = await tasks_in_review(a, repo, files)
        wins = {"approve": 0, "reject": 0}
        for n, task in enumerate(tasks):
            ref = p.ReviewParams(task_id=task.id)
            calls = [a.approve(ref), b.reject(ref)] if n % 2 else [b.reject(ref), a.approve(ref)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            won = [r for r in results if isinstance(r, p.ReviewResult)]
            lost = [r for r in results if not isinstance(r, p.ReviewResult)]
            assert len(won) == 1 and len(lost) == 1, results
            final = won[0].task.state
            assert isinstance(lost[0], InvalidState)
            assert lost[0].message == f"task {task.id} is {final.value}, not awaiting review"
            assert (await a.get(task.id)).state is final
            text = (repo / task.files[0]).read_text()
            if final is p.TaskState.APPLIED:
                wins["approve"] += 1
                assert text == NOTE + ORIGINAL
            else:
                assert final is p.TaskState.REJECTED
                wins["reject"] += 1
                assert text == ORIGINAL
        assert sum(wins.values()) == len(files)


async def test_a_job_approve_and_a_job_reject_at_once_never_both_succeed(
        make_daemon: DaemonFactory, repo: Path) -> None:
    files = [f"g{i}.txt" for i in range(3)]
    write_files(repo, dict.fromkeys(files, ORIGINAL))
    commit_all(repo, "files")
    d = make_daemon(workers=3)
    async with d.client() as a, d.client() as b:
        for _ in range(2):
            job = await a.submit_job(p.JobSubmitParams(workspace=str(repo), instruction="edit", files=files))
            job = await a.wait_job(job.id)
            assert job.state is p.JobState.REVIEW
            results = await asyncio.gather(a.approve_job(p.JobReviewParams(job_id=job.id)),
                                           b.reject_job(p.JobReviewParams(job_id=job.id)), return_exceptions=True)
            won = [r for r in results if isinstance(r, p.JobReviewResult)]
            assert len(won) == 1 and isinstance(next(r for r in results if r not in won), InvalidState), results
            final = won[0].job.state
            assert final in (p.JobState.APPLIED, p.JobState.REJECTED)
            assert {t.state.value for t in won[0].job.tasks} == {final.value}
            expect = NOTE + ORIGINAL if final is p.JobState.APPLIED else ORIGINAL
            assert all((repo / f).read_text() == expect for f in files)
            write_files(repo, dict.fromkeys(files, ORIGINAL))


def test_a_stale_hunk_update_never_brings_a_decided_task_back(tmp_path: Path) -> None:
    store = Store(tmp_path)
    task = p.TaskInfo(id="t1", state=p.TaskState.REVIEW, workspace=str(tmp_path), instruction="x", files=["a"],
                      model="m", timeout_s=1, created_at=0)
    store.save_task(task, seq=1)
    updated = store.set_stale_hunks("t1", [2])
    assert updated is not None and updated.stale_hunks == [2] and updated.state is p.TaskState.REVIEW
    assert store.set_stale_hunks("t1", [2]) is None  # unchanged: nothing written, no event
    # a review decision lands between the watcher's read and its write
    store.save_task(updated.model_copy(update={"state": p.TaskState.APPLIED}))
    assert store.set_stale_hunks("t1", [1, 2]) is None
    after = store.get_task("t1")
    assert after is not None and after.state is p.TaskState.APPLIED and after.stale_hunks == [2]
    store.close()
