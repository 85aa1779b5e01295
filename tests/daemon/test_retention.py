"""Retention (`pasd gc`, `store.gc`): old reviewed tasks lose their stored diff, never their receipts or
summary; tasks in review, in conflict, queued or running are never touched; a dry run changes
nothing; a workspace's .pas.toml cannot set retention; a store made before all this still loads."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.client import EventStream, PasClient
from daemon.errors import PasError
from daemon.offline_model import OfflineModel
from daemon.receipts import summarize
from daemon.testing import DaemonFactory, DaemonProcess, block, occupy

LONG = "".join(f"line {i}\n" for i in range(1, 41))
DAY = 86400.0


def age(d: DaemonProcess, task_id: str, days: float) -> None:
    """Make a task's last change `days` older, as time would (the daemon keeps no copy of it)."""
    db = sqlite3.connect(d.state_dir / "pasd.db", isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        assert db.execute("UPDATE tasks SET updated_at = updated_at - ? WHERE id = ?",
                          (days * DAY, task_id)).rowcount == 1
    finally:
        db.close()


def pasd(d: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=d.env, capture_output=True, text=True,
                          timeout=60)


async def stored(c: PasClient, task_id: str) -> tuple[p.ContentsResult, list[tuple[int, p.HunkState]], str]:
    """What gc may remove of a task: its stored files, its hunks' review states, its diff text
    (not the live `stale` marks, which the file watcher sets when it gets to them)."""
    d = await c.diff(task_id)
    return await c.contents(task_id), [(h.id, h.state) for f in d.files for h in f.hunks], d.diff


async def reviewed(c: PasClient, repo: Path, path: str = "app.py") -> p.TaskInfo:
    task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="note", files=[path]))
    task = await c.wait(task.id)
    assert task.state is p.TaskState.REVIEW, task
    return task


async def test_gc_removes_old_reviewed_diffs_and_keeps_receipts_summaries_and_open_tasks(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(workers=1)
    (repo / "long.txt").write_text(LONG)
    async with d.client() as c, EventStream(d.socket, kinds=["task"]) as events:
        applied = (await c.approve(p.ReviewParams(task_id=(await reviewed(c, repo)).id))).task
        rejected = (await c.reject(p.ReviewParams(task_id=(await reviewed(c, repo, "util.py")).id))).task
        in_review = await reviewed(c, repo)
        offline.script([{"content": block("long.txt", "line 5\n", "line five\n")}])
        conflict = await reviewed(c, repo, "long.txt")
        (repo / "long.txt").write_text(LONG.replace("line 5\n", "line 5 (mine)\n"))
        conflict = (await c.approve(p.ReviewParams(task_id=conflict.id))).task
        assert (applied.state, rejected.state, conflict.state) == \
            (p.TaskState.APPLIED, p.TaskState.REJECTED, p.TaskState.CONFLICT)
        # a rule, not a script entry: the blocker may be cancelled before its request reaches the model
        offline.set_rules([{"match": r"### INSTRUCTION\nhang\b", "fault": "hang", "latency": 120}])
        running = await occupy(c, events, repo)
        queued = (await c.submit(p.SubmitParams(workspace=str(repo), instruction="later", files=["util.py"]))).id
        every = [applied.id, rejected.id, in_review.id, conflict.id, running, queued]
        diffs = {t: await c.diff(t) for t in every}
        kept_before = {t: await stored(c, t) for t in every}
        receipts = {t: await c.receipts(p.ReceiptsParams(task_id=t)) for t in every}
        assert diffs[applied.id].files and diffs[in_review.id].files and diffs[conflict.id].files
        for task_id in every:
            age(d, task_id, 400)
        age(d, rejected.id, -399)  # reviewed a day ago

        dry = await c.gc(p.GcParams(keep_days=30, dry_run=True))
        assert (dry.dry_run, dry.tasks) == (True, 1) and dry.files == 1 and dry.text_bytes > 0
        assert await stored(c, applied.id) == kept_before[applied.id]  # nothing changed
        assert (await c.get(applied.id)).pruned_at is None

        done = await c.gc(p.GcParams(keep_days=30))
        assert (done.dry_run, done.tasks, done.files) == (False, 1, 1)
        assert done.hunk_states == len(diffs[applied.id].files[0].hunks)
        gone = await c.diff(applied.id)
        assert gone.files == [] and gone.diff == "" and gone.pruned_at is not None
        assert (await c.contents(applied.id)).files == []
        kept = await c.get(applied.id)
        assert kept.pruned_at == gone.pruned_at and kept.state is p.TaskState.APPLIED
        assert kept.model_copy(update={"pruned_at": None}) == applied  # its summary: files, lines, cost
        assert await c.receipts(p.ReceiptsParams(task_id=applied.id)) == receipts[applied.id] != []
        assert await stored(c, rejected.id) == kept_before[rejected.id]  # younger than 30 days

        # with no days kept every reviewed task goes; the open ones stay, however old
        assert (await c.gc(p.GcParams(keep_days=0))).tasks == 1
        assert (await c.diff(rejected.id)).pruned_at is not None
        for task_id in (in_review.id, conflict.id, running, queued):
            assert await stored(c, task_id) == kept_before[task_id]
            assert (await c.get(task_id)).pruned_at is None
        assert (await c.gc(p.GcParams(keep_days=0))).tasks == 0  # nothing left to remove
        for task_id in every:
            assert await c.receipts(p.ReceiptsParams(task_id=task_id)) == receipts[task_id]
        await c.cancel(running)
    jsonl = "".join(f.read_text() for f in (d.state_dir / "receipts").glob("*.jsonl"))
    assert f'"task_id":"{applied.id}"' in jsonl and f'"task_id":"{rejected.id}"' in jsonl

    shown, diff = pasd(d, "show", applied.id), pasd(d, "diff", applied.id)
    assert shown.returncode == 0 and "removed by retention" in shown.stdout, shown
    assert diff.returncode == 0 and "removed by retention" in diff.stdout and "Traceback" not in diff.stderr, diff


async def test_gc_cli_dry_run_and_a_missing_retention(make_daemon: DaemonFactory, repo: Path) -> None:
    d = make_daemon(workers=1)
    async with d.client() as c:
        task = (await c.reject(p.ReviewParams(task_id=(await reviewed(c, repo)).id))).task
        before = await c.diff(task.id)
    missing = pasd(d, "gc")
    assert missing.returncode == 1 and "no retention is set" in missing.stderr, missing
    dry = pasd(d, "gc", "--keep-days", "0", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith("would remove the diffs of 1 task "), dry
    async with d.client() as c:
        assert await c.diff(task.id) == before
    bad = pasd(d, "gc", "--keep-days", "-1")
    assert bad.returncode == 2 and "days must be between" in bad.stderr
    done = pasd(d, "gc", "--keep-days", "0")
    assert done.returncode == 0 and done.stdout.startswith("removed the diffs of 1 task "), done


async def test_keep_days_comes_from_the_user_config_never_a_workspace_file(make_daemon: DaemonFactory,
                                                                         repo: Path) -> None:
    (repo / ".pas.toml").write_text("[store]\nkeep_days = 0\n")
    d = make_daemon(workers=1)
    async with d.client() as c:
        task = (await c.reject(p.ReviewParams(task_id=(await reviewed(c, repo)).id))).task
        status = await c.status()
        assert any("store" in key for u in status.untrusted for key in u.ignored), status.untrusted
        await c.trust(p.TrustParams(workspace=str(repo)))
        with pytest.raises(PasError, match="no retention is set"):  # even trusted, the file sets no retention
            await c.gc(p.GcParams())
        assert (await c.diff(task.id)).files
    user = make_daemon(workers=1, store={"keep_days": 0})
    async with user.client() as c:
        task = (await c.reject(p.ReviewParams(task_id=(await reviewed(c, repo)).id))).task
        result = await c.gc(p.GcParams())
        assert (result.keep_days, result.tasks) == (0, 1)
        assert (await c.diff(task.id)).pruned_at is not None


def make_old(db_path: Path) -> None:
    """Take the store back to how the daemon left it before retention and the history indexes."""
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        for name in ("tasks_seq", "tasks_state_seq", "tasks_workspace_seq", "receipts_run", "receipts_id",
                     "tasks_job", "receipts_groups", "receipts_series"):
            db.execute(f"DROP INDEX IF EXISTS {name}")
        for (column,) in db.execute("SELECT name FROM pragma_table_xinfo('receipts') WHERE name LIKE 'r\\_%' "
                                    "ESCAPE '\\'").fetchall():
            db.execute(f"ALTER TABLE receipts DROP COLUMN {column}")
        db.execute("DROP TABLE IF EXISTS store_meta")
        db.execute("PRAGMA auto_vacuum=NONE")
        db.execute("VACUUM")
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    finally:
        db.close()


async def test_a_store_from_before_still_loads(make_daemon: DaemonFactory, repo: Path) -> None:
    d = make_daemon(workers=2)
    async with d.client() as c:
        tasks = [await reviewed(c, repo) for _ in range(3)]
        await c.approve(p.ReviewParams(task_id=tasks[0].id))
        listed = await c.list()
        receipts = await c.receipts()
    d.stop()
    make_old(d.state_dir / "pasd.db")
    d.start()
    async with d.client() as c:
        assert await c.list() == listed
        assert await c.receipts() == receipts
        for by in ("model", "day", "job", "tier"):
            assert await c.receipts_summary(p.ReceiptsSummaryParams(by=by)) == summarize(receipts, by)
        new = await reviewed(c, repo, "util.py")
        assert [t.id for t in await c.list()][:1] == [new.id]
        assert (await c.gc(p.GcParams(keep_days=0))).tasks == 1
        assert (await c.diff(tasks[0].id)).pruned_at is not None
    db = sqlite3.connect(d.state_dir / "pasd.db")
    try:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"tasks_seq", "tasks_state_seq", "receipts_groups"} <= names
    finally:
        db.close()


# the receipt columns and index a store had before the quality columns (the summary then read the
# quality fields from each record)
SUMS_COLUMNS = {"r_model": "$.provider.model", "r_job": "$.job_id", "r_tier": "$.tier",
                "r_tokens_in": "$.tokens.input", "r_tokens_out": "$.tokens.output", "r_priced": "$.priced"}
SUMS_INDEX = ("CREATE INDEX receipts_sums ON receipts(r_model, r_job, r_tier, created_at, task_id, cost_usd, "
              "r_tokens_in, r_tokens_out, r_priced)")


def make_before_quality(db_path: Path) -> None:
    """Take the store back to how the daemon left it before the quality columns: the sums' columns only."""
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        db.execute("DROP INDEX receipts_groups")
        db.execute("DROP INDEX receipts_series")  # the web charts' index, on columns of both kinds
        for (column,) in db.execute("SELECT name FROM pragma_table_xinfo('receipts') WHERE name LIKE 'r\\_%' "
                                    "ESCAPE '\\'").fetchall():
            if column not in SUMS_COLUMNS:
                db.execute(f"ALTER TABLE receipts DROP COLUMN {column}")
        db.execute(SUMS_INDEX)
    finally:
        db.close()


async def test_a_store_from_before_the_quality_columns_gains_them(make_daemon: DaemonFactory, repo: Path) -> None:
    d = make_daemon(workers=2)
    async with d.client() as c:
        tasks = [await reviewed(c, repo) for _ in range(3)]
        await c.approve(p.ReviewParams(task_id=tasks[0].id))
        await c.reject(p.ReviewParams(task_id=tasks[1].id))
        receipts = await c.receipts()
    d.stop()
    make_before_quality(d.state_dir / "pasd.db")
    db = sqlite3.connect(d.state_dir / "pasd.db")
    try:
        assert {r[1] for r in db.execute("PRAGMA table_xinfo(receipts)") if r[1].startswith("r_")} == set(SUMS_COLUMNS)
    finally:
        db.close()
    d.start()
    async with d.client() as c:
        assert await c.receipts() == receipts
        for by in ("model", "day", "job", "tier"):
            assert await c.receipts_summary(p.ReceiptsSummaryParams(by=by)) == summarize(receipts, by)
        [g] = (await c.receipts_summary(p.ReceiptsSummaryParams(by="model"))).groups
        assert (g.approved_tasks, g.approval_rate) == (1, 0.5)
        await c.approve(p.ReviewParams(task_id=tasks[2].id))  # a receipt updated after the migration
        [g] = (await c.receipts_summary(p.ReceiptsSummaryParams(by="model"))).groups
        assert g.approved_tasks == 2 and g == summarize(await c.receipts(), "model").groups[0]
    db = sqlite3.connect(d.state_dir / "pasd.db")
    try:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "receipts_groups" in names and "receipts_sums" not in names
    finally:
        db.close()


async def test_the_daemon_runs_gc_itself_when_keep_days_is_set(make_daemon: DaemonFactory, repo: Path) -> None:
    d = make_daemon(workers=1, store={"keep_days": 0})
    async with d.client() as c:
        done = (await c.reject(p.ReviewParams(task_id=(await reviewed(c, repo)).id))).task
        waiting = await reviewed(c, repo, "util.py")
        before = await stored(c, waiting.id)
    d.stop()
    d.env["PASD_GC_FIRST_S"] = "0"  # the daily run, at once instead of two minutes after the start
    d.start()
    async with d.client() as c:
        for _ in range(3000):  # until the run has been (a few seconds at most)
            if (await c.get(done.id)).pruned_at is not None:
                break
            await asyncio.sleep(0.01)
        assert (await c.diff(done.id)).pruned_at is not None
        assert await stored(c, waiting.id) == before and (await c.get(waiting.id)).pruned_at is None
    assert "gc: removed the stored diffs of 1 tasks" in d.log.read_text()
