"""Spend is recorded as each model reply arrives: a killed attempt's reply still gets its receipt
(once), and the daily budget counts replies whose attempt has not finished yet."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.client import EventStream
from daemon.errors import DaemonUnavailable
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory

IN_COST, OUT_COST = 1e-6, 2e-6  # the offline model's prices in offline_config


async def test_a_reply_whose_attempt_is_killed_gets_one_receipt(make_daemon: DaemonFactory, offline: OfflineModel,
                                                                 repo: Path) -> None:
    d = make_daemon(workers=1, env={"PASD_CRASH_AT": "spend.recorded"})
    offline.script([{"prompt_tokens": 1234, "completion_tokens": 56}])
    async with d.client() as c:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="note", files=["app.py"]))
        with pytest.raises(DaemonUnavailable):  # SIGKILLed right after the reply was stored
            await c.wait(task.id)
    assert d.proc is not None and d.proc.wait(30) == -signal.SIGKILL
    del d.env["PASD_CRASH_AT"]
    d.start()
    async with d.client() as c:
        done = await c.wait(task.id)
        assert done.state is p.TaskState.REVIEW and done.attempts == 2
        receipts = sorted(await c.receipts(p.ReceiptsParams(task_id=task.id)), key=lambda r: r.attempt)
        assert [(r.attempt, r.outcome) for r in receipts] == [(1, "failed: the daemon stopped"), (2, "review")]
        killed = receipts[0]
        assert (killed.tokens.input, killed.tokens.output, killed.llm_calls) == (1234, 56, 1)
        assert killed.cost_usd == round(1234 * IN_COST + 56 * OUT_COST, 6) and killed.priced
        assert done.cost_usd == round(sum(r.cost_usd for r in receipts), 6)
        total = await c.receipts_summary(p.ReceiptsSummaryParams(by="day"))
        assert total.total_usd == round(sum(r.cost_usd for r in receipts), 6)
    d.restart()  # settled once: a second start adds nothing
    async with d.client() as c:
        assert len(await c.receipts(p.ReceiptsParams(task_id=task.id))) == 2
    lines = [line for f in (d.state_dir / "receipts").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert sum('"outcome":"failed: the daemon stopped"' in line for line in lines) == 1


async def test_the_daily_budget_counts_replies_of_unfinished_attempts(make_daemon: DaemonFactory,
                                                                     offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(workers=2, guardrails={"daily_budget_usd": 0.001, "allow_commands": ["sleep *"]})
    # the first task's reply costs more than the whole day's budget, then its check runs for a long time
    offline.script([{"prompt_tokens": 2000, "completion_tokens": 100}])
    async with d.client() as c, EventStream(d.socket, kinds=["progress"]) as events:
        slow = await c.submit(p.SubmitParams(workspace=str(repo), instruction="note", files=["app.py"],
                                             check="sleep 120"))
        async for env in events:
            ev = env.event
            if isinstance(ev, p.ProgressEvent) and ev.task_id == slow.id and ev.phase == "check":
                break  # the reply is in; the attempt has no receipt yet
        assert await c.receipts() == []
        started = time.time()
        late = await c.submit(p.SubmitParams(workspace=str(repo), instruction="note", files=["util.py"]))
        late = await c.wait(late.id)
        assert late.state is p.TaskState.FAILED and late.reason == "budget", late
        assert "daily budget" in (late.error or "")
        await c.cancel(slow.id)
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=slow.id))
        assert receipt.outcome == "cancelled" and (receipt.tokens.input, receipt.tokens.output) == (2000, 100)
        assert receipt.cost_usd == round(2000 * IN_COST + 100 * OUT_COST, 6)
        assert receipt.created_at <= started  # when the reply came, not when the attempt ended
        assert (await c.get(slow.id)).cost_usd == receipt.cost_usd
    assert len(offline.requests) == 1  # the second task never called the model
