"""Jobs, model routing, tier fallback and budgets: a real daemon and the offline model."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon import protocol as p
from daemon.errors import BadModel, DaemonUnavailable, GuardrailRefused
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, add_modules, block

TIERS = {"local": "openai/tier-local", "fast": "openai/tier-fast", "strong": "openai/tier-strong"}


def tiered(url: str, **extra: Any) -> dict[str, Any]:
    """Three tiers on the offline model, priced so their costs differ."""
    sections: dict[str, Any] = {"models": {"tiers": TIERS}}
    for i, model in enumerate(TIERS.values()):
        sections[f'models.settings."{model}"'] = {"api_base": url, "input_cost_per_token": 1e-7 * 10 ** i,
                                                  "output_cost_per_token": 2e-7 * 10 ** i}
    return {**sections, **extra}


def add_sources(repo: Path, n: int = 6) -> list[str]:
    return add_modules(repo, n, commit=False)


def job_params(repo: Path, files: list[str], instruction: str = "add a note", **kw: Any) -> p.JobSubmitParams:
    return p.JobSubmitParams.model_validate({"workspace": str(repo), "instruction": instruction, "files": files, **kw})


def pasd(d: DaemonProcess, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=d.env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


# ------------------------------------------------------------ jobs


async def test_per_file_job_runs_in_parallel_and_its_receipt_sums_its_tasks(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    files = add_sources(repo)
    offline.set_latency(0.5)  # long enough that six tasks on six programmers must overlap
    d = make_daemon(workers=6)
    async with d.client() as c:
        job = await c.submit_job(job_params(repo, ["src/*.py"]))
        assert job.split == "per-file" and job.files == files and len(job.task_ids) == 6
        job = await c.wait_job(job.id)
        assert job.state is p.JobState.REVIEW
        assert [t.files for t in job.tasks] == [[f] for f in files]
        assert {t.state for t in job.tasks} == {p.TaskState.REVIEW}
        assert len({t.programmer for t in job.tasks}) == 6
        # every task started before any finished: all six ran at once
        assert max(t.started_at or 0 for t in job.tasks) < min(t.finished_at or 0 for t in job.tasks)

        receipts = [r for t in job.tasks for r in await c.receipts(p.ReceiptsParams(task_id=t.id))]
        assert len(receipts) == 6 and all(r.job_id == job.id for r in receipts)
        total = job.receipt
        assert total.receipts == 6
        assert total.cost_usd == round(sum(r.cost_usd for r in receipts), 6) and total.cost_usd > 0
        assert total.tokens.input == sum(r.tokens.input for r in receipts)
        assert total.tokens.output == sum(r.tokens.output for r in receipts)
        assert total.lines_added == sum(r.lines_added for r in receipts) == 6
        assert job.spent_usd == pytest.approx(sum(t.cost_usd for t in job.tasks), abs=1e-6)

        d_ = await c.job_diff(job.id)
        assert len(d_.tasks) == 6 and all(f"+++ b/{f}" in d_.diff for f in files)
        res = await c.approve_job(p.JobReviewParams(job_id=job.id))
        assert res.job.state is p.JobState.APPLIED and not res.conflicts
    for f in files:
        assert (repo / f).read_text().startswith("# pas: add a note\n")


async def test_a_task_queued_just_before_a_crash_stays_in_its_job(make_daemon: DaemonFactory,
                                                                  offline: OfflineModel, repo: Path) -> None:
    files = add_sources(repo, 3)
    d = make_daemon(workers=3, env={"PASD_CRASH_AT": "job.task-queued"})
    async with d.client() as c:
        with pytest.raises(DaemonUnavailable):  # killed right after queuing the job's first task
            await c.submit_job(job_params(repo, ["src/*.py"]))
    assert d.proc is not None and d.proc.wait(30) == -signal.SIGKILL
    del d.env["PASD_CRASH_AT"]
    d.start()
    async with d.client() as c:
        [job] = await c.jobs()
        job = await c.wait_job(job.id)
        assert job.state is p.JobState.REVIEW and job.pending == []
        # each file got one task: the one queued before the crash was not queued a second time
        assert sorted(t.files[0] for t in job.tasks) == files and len(job.task_ids) == 3
        every = await c.list(p.TaskListParams())
        assert sorted(t.id for t in every) == sorted(job.task_ids)


async def test_plan_job_naming_a_file_outside_its_allowlist_is_refused(
        daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    plan = {"tasks": [{"instruction": "type add", "files": ["app.py"]},
                      {"instruction": "and the readme", "files": ["README.md"]},
                      {"instruction": "escape", "files": ["../outside.py"]}]}
    answer = "Here is the plan:\n```json\n" + json.dumps(plan) + "\n```"
    offline.set_rules([{"match": "### JOB PLAN", "content": answer}])
    async with daemon.client() as c:
        with pytest.raises(GuardrailRefused, match=r"outside the job's allowlist: README.md .*\.\./outside.py"):
            await c.submit_job(job_params(repo, ["app.py", "util.py"], split="plan"))
        assert await c.list() == []  # nothing was queued
        [job] = await c.jobs()
        assert job.state is p.JobState.FAILED and job.tasks == [] and "README.md" in (job.error or "")
        assert job.plan_cost_usd > 0 and job.spent_usd == job.plan_cost_usd  # the planning call is paid for
        [receipt] = await c.receipts()
        assert receipt.task_id == job.id and receipt.outcome == "failed: plan refused"
    assert len(offline.requests) == 1
    assert (repo / "app.py").read_text().startswith("def add")


async def test_two_tasks_of_one_job_on_one_file_are_serialised(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    plan = {"tasks": [{"instruction": "first", "files": ["app.py"]},
                      {"instruction": "second", "files": ["app.py"]},
                      {"instruction": "third", "files": ["util.py"]}]}
    offline.set_rules([
        {"match": "### JOB PLAN", "content": json.dumps(plan)},
        {"match": "### INSTRUCTION\nsecond", "content": block("app.py", "def sub(a, b):\n", "def sub(a, b):  # 2nd\n")},
    ])
    offline.set_latency(0.4)
    d = make_daemon(workers=3)
    async with d.client() as c:
        job = await c.submit_job(job_params(repo, ["app.py", "util.py"], "tidy up", split="plan"))
        assert [i.files for i in job.plan] == [["app.py"], ["app.py"], ["util.py"]]
        assert len(job.tasks) == 2 and [i.files for i in job.pending] == [["app.py"]]  # second waits
        job = await c.wait_job(job.id)
        assert len(job.tasks) == 3 and not job.pending
        first, second, third = sorted(job.tasks, key=lambda t: ["first", "second", "third"].index(
            t.instruction.split()[0]))
        assert first.finished_at is not None and second.started_at is not None
        assert first.finished_at <= second.started_at  # never both on app.py at once
        assert third.started_at is not None and third.started_at < first.finished_at  # other files run alongside
        res = await c.approve_job(p.JobReviewParams(job_id=job.id))
        assert not res.conflicts and res.job.state is p.JobState.APPLIED
    text = (repo / "app.py").read_text()
    assert text.startswith("# pas: first\n") and "def sub(a, b):  # 2nd\n" in text


# ------------------------------------------------------------ routing and fallback


async def test_auto_routes_a_small_selection_and_a_big_file_to_different_tiers(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    (repo / "big.py").write_text("".join(f"x{i} = {i}\n" for i in range(400)))
    d = make_daemon(**tiered(offline.url))
    async with d.client() as c:
        small = await c.submit(p.SubmitParams(workspace=str(repo), instruction="note", model="auto",
                                              selection=p.Selection(path="app.py", start_line=1, end_line=3)))
        big = await c.submit(p.SubmitParams(workspace=str(repo), instruction="note", model="auto", files=["big.py"]))
        assert (small.tier, small.model) == ("local", "openai/tier-local")
        assert "3 lines in 1 file (a selection) fits routing rule 1" in (small.route or "")
        assert (big.tier, big.model) == ("strong", "openai/tier-strong")
        assert "400 lines" in (big.route or "") and "fits no routing rule" in (big.route or "")
        small, big = await c.wait(small.id), await c.wait(big.id)
        assert small.state is big.state is p.TaskState.REVIEW
        [rs] = await c.receipts(p.ReceiptsParams(task_id=small.id))
        [rb] = await c.receipts(p.ReceiptsParams(task_id=big.id))
        assert (rs.tier, rb.tier) == ("local", "strong") and rs.route == small.route
        by_tier = await c.receipts_summary(p.ReceiptsSummaryParams(by="tier"))
        assert {g.key for g in by_tier.groups} == {"local", "strong"}
    assert sorted(r["model"] for r in offline.requests) == ["tier-local", "tier-strong"]


async def test_a_401_falls_back_to_the_next_tier(make_daemon: DaemonFactory, offline: OfflineModel,
                                                 repo: Path) -> None:
    d = make_daemon(**tiered(offline.url))
    offline.script([{"status": 401, "content": "bad key"}])
    async with d.client() as c:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="note", model="auto",
                                             selection=p.Selection(path="app.py", start_line=1, end_line=2)))
        task = await c.wait(task.id)
        assert task.state is p.TaskState.REVIEW and (task.tier, task.model) == ("fast", "openai/tier-fast")
        [note] = task.fallbacks
        assert "from local (openai/tier-local) to fast (openai/tier-fast) after auth error" in note
        failed, ok = sorted(await c.receipts(p.ReceiptsParams(task_id=task.id)), key=lambda r: r.attempt)
        assert (failed.tier, failed.outcome, failed.fallback) == ("local", "failed: auth", None)
        assert (ok.tier, ok.outcome, ok.fallback) == ("fast", "review", note)
    assert [r["model"] for r in offline.requests] == ["tier-local", "tier-fast"]


async def test_repeated_5xx_falls_back_but_one_is_retried_on_the_same_tier(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(**tiered(offline.url))
    offline.script([{"status": 500}, {"status": 503}, {"status": 500}])
    sel = p.Selection(path="app.py", start_line=1, end_line=2)
    async with d.client() as c:
        task = await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction="n", model="auto",
                                                           selection=sel))).id)
        assert task.state is p.TaskState.REVIEW and task.tier == "fast"
        assert "after 2 provider faults" in task.fallbacks[0]
    # two faults on local, then fast: one fault is retried there, then it answers
    assert [r["model"] for r in offline.requests] == ["tier-local", "tier-local", "tier-fast", "tier-fast"]


async def test_fallback_off_in_config_lets_the_task_fail(make_daemon: DaemonFactory, offline: OfflineModel,
                                                        repo: Path) -> None:
    d = make_daemon(**tiered(offline.url, **{"models.routing": {"fallback": False}}))
    offline.script([{"status": 401, "content": "bad key"}])
    async with d.client() as c:
        task = await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction="n", model="auto",
                                                           files=["util.py"]))).id)
        assert task.state is p.TaskState.FAILED and task.reason == "auth" and task.fallbacks == []


async def test_auto_without_tiers_is_refused(daemon: DaemonProcess, repo: Path) -> None:
    async with daemon.client() as c:
        with pytest.raises(BadModel, match=r"needs tiers"):
            await c.submit(p.SubmitParams(workspace=str(repo), instruction="n", model="auto", files=["app.py"]))


# ------------------------------------------------------------ budgets


async def test_a_job_over_its_budget_stops_queuing_and_reports_its_spend(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    add_sources(repo)
    # every answer: 1000 tokens in, 100 out = $0.0012 at the offline model's prices
    offline.set_rules([{"match": ".", "prompt_tokens": 1000, "completion_tokens": 100}])
    d = make_daemon(workers=1)
    async with d.client() as c:
        job = await c.wait_job((await c.submit_job(job_params(repo, ["src"], budget_usd=0.003))).id)
        assert job.stopped and len(job.tasks) == 2 and len(job.pending) == 4
        assert job.spent_usd == pytest.approx(0.0024) and job.spent_usd <= 0.003
        assert job.stop_reason is not None and "budget: spent $0.002400" in job.stop_reason
        assert "4 subtasks not queued" in job.stop_reason
        assert job.state is p.JobState.REVIEW  # what ran is still there to review
        assert job.receipt.cost_usd == pytest.approx(0.0024)
    assert len(offline.requests) == 2


async def test_a_revision_spends_no_more_than_its_job_has_left(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    files = add_sources(repo, 2)
    priced = {"prompt_tokens": 1000, "completion_tokens": 100}  # $0.0012 an answer
    miss = block(files[0], "def nowhere():\n", "def nowhere(): pass\n")  # a repair round would follow it
    offline.script([priced, priced, {"content": miss, **priced}])
    d = make_daemon(workers=2)
    async with d.client() as c:
        # both tasks start before either has spent: each is given the job's whole $0.003
        job = await c.wait_job((await c.submit_job(job_params(repo, ["src"], budget_usd=0.003))).id)
        first, second = job.tasks
        assert job.state is p.JobState.REVIEW and job.spent_usd == pytest.approx(0.0024)
        assert first.budget_usd == 0.003
        # the task has $0.0018 of its own left, the job only $0.0006: the revision gets the job's
        await c.revise(p.ReviseParams(task_id=first.id, comment="also handle None"))
        assert (await c.get(first.id)).budget_usd == pytest.approx(0.0018)
        first = await c.wait(first.id)
        assert first.state is p.TaskState.REVIEW and first.reason == "revision_budget"
        assert first.cost_usd == pytest.approx(0.0024)  # one answer, then stopped before the repair
        with pytest.raises(GuardrailRefused, match=rf"task {second.id} is part of job {job.id}, and the job's "
                                                   r"budget of \$0\.003 is spent; the task stays in review"):
            await c.revise(p.ReviseParams(task_id=second.id, comment="also handle None"))
        assert (await c.get(second.id)).state is p.TaskState.REVIEW
    assert len(offline.requests) == 3


# ------------------------------------------------------------ CLI


def test_cli_job_show_receipts_by(make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    add_sources(repo, 2)
    d = make_daemon(**tiered(offline.url))
    r = pasd(d, "job", "add a note", "--files", "src/*.py", "--model", "auto", "--wait", "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    assert job["state"] == "REVIEW" and [t["tier"] for t in job["tasks"]] == ["local", "local"]

    r = pasd(d, "job", "show", job["id"][:5])
    assert r.returncode == 0, r.stderr
    assert f"job {job['id']}  REVIEW" in r.stdout and "receipt: 2 attempts" in r.stdout
    assert "+# pas: add a note" in r.stdout and "tiers: local 2" in r.stdout

    r = pasd(d, "jobs")
    assert job["id"] in r.stdout

    for by, key in (("model", "openai/tier-local"), ("day", "20"), ("job", job["id"]), ("tier", "local")):
        r = pasd(d, "receipts", "--by", by)
        assert r.returncode == 0, r.stderr
        header, row, total = r.stdout.splitlines()
        assert header.split()[0] == by.upper() and row.startswith(key) and total.startswith("total $")

    r = pasd(d, "job", "reject", job["id"], "--task", job["tasks"][0]["id"])
    assert r.returncode == 0 and "REJECTED" in r.stdout
    r = pasd(d, "job", "approve", job["id"])
    assert r.returncode == 0 and "APPLIED" in r.stdout
    assert (repo / "src/mod1.py").read_text().startswith("# pas:") and (repo / "src/mod0.py").read_text()[0] == "d"


def test_cli_job_bad_input(daemon: DaemonProcess, repo: Path) -> None:
    usage = {
        ("job", "x"): "name the files with --files",
        ("job", "x", "y", "--files", "app.py"): "quote the instruction",
        ("job", "show"): "show takes one job id",
        ("job", "x", "--files", "app.py", "--split", "bogus"): "invalid choice",
        ("receipts", "--by", "week"): "invalid choice",
    }
    for argv, message in usage.items():
        r = pasd(daemon, *argv, cwd=repo)
        assert r.returncode == 2 and message in r.stderr, (argv, r.stderr)
    errors = {
        ("job", "x", "--files", "nomatch/*.py"): "no files match 'nomatch/*.py'",
        ("job", "show", "nosuch"): "pasd: no job 'nosuch'",
        ("job", "x", "--files", "/etc/passwd"): "outside the workspace",
        ("job", "x", "--files", "app.py", "--model", "auto"): "needs tiers",
        ("job", "x", "--files", "app.py", "--model", "anthropic/claude-sonnet-4-5"): "ANTHROPIC_API_KEY",
    }
    for argv, message in errors.items():
        r = pasd(daemon, *argv, cwd=repo)
        assert r.returncode == 1 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, (argv, r.stderr)
