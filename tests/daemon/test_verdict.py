"""Honest verdicts: a task whose check still fails, or some of whose edits did not apply, is flagged
on the task and its receipt (or FAILED with `on_check_failure = "fail"`); and review decisions are
counted on the receipt, whose outcome follows them."""

from __future__ import annotations

import json
from pathlib import Path

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, block, write_files

EDIT = block("app.py", "def add(a, b):\n", "def add(a: int, b: int) -> int:\n")
LONG = "def add(a, b):\n    return a + b\n" + "\n" * 10 + "def sub(a, b):\n    return a - b\n"
TWO_HUNKS = EDIT + block("app.py", "def sub(a, b):\n", "def sub(a: int, b: int) -> int:\n")  # apart in LONG
FAILING = {"allow_commands": ["sh -c *"], "max_rounds": 0}


def params(repo: Path, **kw: object) -> p.SubmitParams:
    return p.SubmitParams.model_validate({"workspace": str(repo), "instruction": "type add", "files": ["app.py"],
                                          **kw})


async def test_a_failing_check_reaches_review_flagged_on_task_and_receipt(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(guardrails={**FAILING, "max_rounds": 1})
    offline.script([{"content": EDIT}, {"content": "It should pass now; no further edits."}])
    async with d.client() as c:
        task = await c.wait((await c.submit(params(repo, check="sh -c 'exit 3'"))).id)
        assert task.state is p.TaskState.REVIEW
        assert task.warnings == [p.CHECK_FAILED] and task.unapplied == []
        [r] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert r.warnings == [p.CHECK_FAILED] and r.check == "failed"
        assert (r.check_rounds, r.repair_rounds, r.hunks_proposed) == (2, 1, 1)
        assert p.warning_text(task.warnings) == "check failed"


async def test_a_passing_check_leaves_no_warning(make_daemon: DaemonFactory, offline: OfflineModel,
                                                 repo: Path) -> None:
    d = make_daemon(guardrails=FAILING)
    offline.script([{"content": EDIT}])
    async with d.client() as c:
        task = await c.wait((await c.submit(params(repo, check="sh -c 'exit 0'"))).id)
        assert task.state is p.TaskState.REVIEW and task.warnings == []


async def test_refused_and_unapplied_edits_of_the_last_round_are_flagged(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(guardrails={"max_rounds": 0})
    offline.script([{"content": EDIT + block("util.py", "def mul(a, b):\n", "def mul(a, b):  # x\n")
                     + block("app.py", "def nowhere():\n", "def here():\n")}])
    async with d.client() as c:
        task = await c.wait((await c.submit(params(repo))).id)
        assert task.state is p.TaskState.REVIEW
        assert task.warnings == [p.EDITS_REFUSED, p.EDITS_UNAPPLIED]
        assert len(task.unapplied) == 1 and "def nowhere" in task.unapplied[0]
        [r] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert r.warnings == task.warnings


async def test_an_edit_refused_then_repaired_leaves_no_warning(make_daemon: DaemonFactory, offline: OfflineModel,
                                                               repo: Path) -> None:
    d = make_daemon(guardrails={"max_rounds": 1})
    offline.script([{"content": block("util.py", "def mul(a, b):\n", "def mul(a, b):  # x\n")},
                    {"content": EDIT}])
    async with d.client() as c:
        task = await c.wait((await c.submit(params(repo))).id)
        assert task.state is p.TaskState.REVIEW and task.warnings == []
        assert [x.path for x in task.refused] == ["util.py"]  # still on record


async def test_on_check_failure_fail_makes_the_task_failed(make_daemon: DaemonFactory, offline: OfflineModel,
                                                           repo: Path) -> None:
    d = make_daemon(guardrails={**FAILING, "on_check_failure": "fail"})
    offline.script([{"content": EDIT}])
    async with d.client() as c:
        task = await c.wait((await c.submit(params(repo, check="sh -c 'exit 3'"))).id)
        assert task.state is p.TaskState.FAILED and task.reason == p.CHECK_FAILED
        assert task.error == "the check still fails after 1 run (exit code 3): sh -c 'exit 3'"
        [r] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert r.outcome == "failed: check_failed" and r.warnings == [p.CHECK_FAILED]
        assert "def add(a: int, b: int)" in (await c.diff(task.id)).diff  # what failed can still be read


async def test_a_workspace_cannot_relax_on_check_failure_but_can_tighten_it(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path, tmp_path: Path) -> None:
    strict = make_daemon(guardrails={**FAILING, "on_check_failure": "fail"})
    write_files(repo, {".pas.toml": '[guardrails]\non_check_failure = "review"\n'})
    offline.script([{"content": EDIT}])
    async with strict.client() as c:
        task = await c.wait((await c.submit(params(repo, check="sh -c 'exit 3'"))).id)
        assert task.state is p.TaskState.FAILED and task.reason == p.CHECK_FAILED
    strict.stop()

    lenient = make_daemon(guardrails=FAILING)
    write_files(repo, {".pas.toml": '[guardrails]\non_check_failure = "fail"\n'})
    offline.script([{"content": EDIT}])
    async with lenient.client() as c:
        task = await c.wait((await c.submit(params(repo, check="sh -c 'exit 3'"))).id)
        assert task.state is p.TaskState.FAILED and task.reason == p.CHECK_FAILED


async def test_review_by_hunk_is_counted_on_the_receipt_and_sets_its_outcome(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    d = make_daemon()
    write_files(repo, {"app.py": LONG})
    offline.script([{"content": TWO_HUNKS}])
    async with d.client() as c:
        task = await c.wait((await c.submit(params(repo))).id)
        [r] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert (r.outcome, r.hunks_proposed, r.hunks_approved) == ("review", 2, 0)

        await c.approve(p.ReviewParams(task_id=task.id, hunks=[1]))
        [r] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert (r.outcome, r.hunks_proposed, r.hunks_approved, r.hunks_rejected) == ("review", 2, 1, 0)

        await c.reject(p.ReviewParams(task_id=task.id, hunks=[2]))
        [r] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert (r.outcome, r.hunks_approved, r.hunks_rejected) == ("partial", 1, 1) and r.reviewed_at

        summary = await c.receipts_summary(p.ReceiptsSummaryParams(by="model"))
        [g] = summary.groups
        assert (g.hunks_proposed, g.hunks_approved, g.approval_rate, g.approved_tasks) == (2, 1, 0.5, 1)
        assert g.median_cost_usd == r.cost_usd and g.median_wall_s == round(r.wall_s, 3)

        # the receipts file has the decided receipt as the task attempt's last line
        hello = await c.hello()
        lines = [json.loads(x) for x in (Path(hello.state_dir) / "receipts" / f"{hello.run_id}.jsonl")
                 .read_text().splitlines()]
        mine = [x for x in lines if x["task_id"] == task.id]
        assert [x["outcome"] for x in mine] == ["review", "review", "partial"]


async def test_approve_and_reject_whole_tasks_set_approved_and_rejected(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    d = make_daemon()
    offline.script([{"content": EDIT}, {"content": EDIT}])
    async with d.client() as c:
        first = await c.wait((await c.submit(params(repo))).id)
        second = await c.wait((await c.submit(params(repo))).id)
        await c.approve(p.ReviewParams(task_id=first.id))
        await c.reject(p.ReviewParams(task_id=second.id))
        [a] = await c.receipts(p.ReceiptsParams(task_id=first.id))
        [b] = await c.receipts(p.ReceiptsParams(task_id=second.id))
        assert (a.outcome, a.hunks_approved) == ("approved", 1)
        assert (b.outcome, b.hunks_rejected) == ("rejected", 1)


def test_a_store_from_before_the_quality_fields_loads_and_its_review_is_counted(tmp_path: Path) -> None:
    """A task and a receipt written without warnings or hunk counts load with their defaults; deciding
    the task's hunks counts them (every decided hunk was proposed) and sets the receipt's outcome."""
    from daemon.store import Store

    old_receipt = {"task_id": "t1", "run_id": "r", "attempt": 1, "programmer": "Programmer-01",
                   "provider": {"provider": "openai", "model": "openai/x"}, "tokens": {"input": 1, "output": 2},
                   "cost_usd": 0.25, "priced": True, "wall_s": 3.0, "llm_s": 1.0, "outcome": "review",
                   "created_at": 1.0}
    old_task = {"id": "t1", "state": "REVIEW", "workspace": str(tmp_path), "instruction": "x", "files": ["a.py"],
                "model": "openai/x", "timeout_s": 60.0, "created_at": 1.0}
    store = Store(tmp_path / "state")
    store.db.execute("INSERT INTO receipts (task_id, run_id, attempt, created_at, cost_usd, data) "
                     "VALUES ('t1', 'r', 1, 1.0, 0.25, ?)", (json.dumps(old_receipt),))
    store.db.execute("INSERT INTO tasks (id, seq, state, workspace, info, updated_at) "
                     "VALUES ('t1', 1, 'REVIEW', ?, ?, 1.0)", (str(tmp_path), json.dumps(old_task)))
    task = store.get_task("t1")
    assert task is not None and task.warnings == [] and task.unapplied == []
    [r] = store.receipts("t1")
    assert (r.warnings, r.hunks_proposed, r.repair_rounds, r.reviewed_at) == ([], 0, 0, None)

    store.set_hunk_states(task.model_copy(update={"state": p.TaskState.REVIEW}), {1: p.HunkState.APPLIED})
    [r] = store.receipts("t1")
    assert (r.outcome, r.hunks_approved, r.hunks_proposed) == ("review", 1, 0)  # hunk 2 may still be pending

    store.set_hunk_states(task.model_copy(update={"state": p.TaskState.APPLIED}), {2: p.HunkState.REJECTED})
    [r] = store.receipts("t1")
    assert (r.outcome, r.hunks_approved, r.hunks_rejected, r.hunks_proposed) == ("partial", 1, 1, 2)
    jsonl = [json.loads(line) for line in (tmp_path / "state" / "receipts" / "r.jsonl").read_text().splitlines()]
    assert [x["outcome"] for x in jsonl] == ["review", "partial"]  # appended once each decision commits
    store.close()
