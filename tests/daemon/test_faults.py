"""Provider faults from the offline model: each gives a clear outcome; transient ones are retried."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.client import PasClient
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, offline_config

GOOD = "app.py\n```\n<<<<<<< SEARCH\ndef add(a, b):\n=======\ndef add(a, b):  # ok\n>>>>>>> REPLACE\n```\n"


# One model (conftest's `model`) and two daemons for the whole module: each daemon pays litellm's import once.
@pytest.fixture
def offline(model: OfflineModel) -> OfflineModel:
    model.reset()
    return model


@pytest.fixture(scope="module")
def fast(model: OfflineModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("fast"), workers=2, config=offline_config(
        model.url, guardrails={"model_timeout_s": 1.5}, pool={"max_retries": 2}))
    yield d.start()
    d.cleanup()


@pytest.fixture(scope="module")
def single(model: OfflineModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("single"), workers=1,
                      config=offline_config(model.url, guardrails={"max_rounds": 0}))
    yield d.start()
    d.cleanup()


async def run_one(c: PasClient, repo: Path) -> tuple[p.TaskInfo, list[p.Receipt]]:
    task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["app.py"]))
    task = await c.wait(task.id)
    receipts = sorted(await c.receipts(p.ReceiptsParams(task_id=task.id)), key=lambda r: r.attempt)
    return task, receipts


@pytest.mark.parametrize(("fault", "outcome"), [
    ({"status": 429, "retry_after": 1}, "failed: rate_limit"),
    ({"status": 500}, "failed: provider"),
    ({"status": 503}, "failed: provider"),
    ({"fault": "reset"}, "failed: connection"),
    ({"fault": "garbage"}, "failed: provider"),
    ({"fault": "hang", "latency": 30}, "failed: model_timeout"),
])
async def test_transient_faults_are_retried_on_another_programmer(fast: DaemonProcess, offline: OfflineModel,
                                                                  repo: Path, fault: dict[str, object],
                                                                  outcome: str) -> None:
    offline.script([fault, {"content": GOOD}])
    async with fast.client() as c:
        task, receipts = await run_one(c, repo)
        assert task.state is p.TaskState.REVIEW and task.attempts == 2
        assert [r.outcome for r in receipts] == [outcome, "review"]
        assert receipts[0].programmer != receipts[1].programmer
        if "retry_after" in fault:
            assert receipts[1].created_at - receipts[0].created_at >= 1.0


async def test_retries_are_bounded(fast: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    offline.script([{"status": 500, "content": "upstream exploded"}] * 3)
    async with fast.client() as c:
        task, receipts = await run_one(c, repo)
        assert task.state is p.TaskState.FAILED and task.reason == "provider" and task.attempts == 3
        assert "upstream exploded" in (task.error or "") and "after 3 attempts" in (task.error or "")
        assert len(receipts) == 3


@pytest.mark.parametrize(("fault", "reason", "words"), [
    ({"status": 401, "content": "bad key"}, "auth", "refused the credentials"),
    ({"status": 400, "content": "nonsense request"}, "bad_request", "rejected the request"),
    ({"fault": "no_edits"}, "no_edits", "without any SEARCH/REPLACE edit"),
    ({"content": "app.py\n```\n<<<<<<< SEARCH\nnot in the file\n=======\nx\n>>>>>>> REPLACE\n```\n"},
     "edits_failed", "no edit applied"),
    ({"content": "app.py\n```\n<<<<<<< SEARCH\ndef add(a, b):\n=======\n"}, "edits_failed",
     "has no >>>>>>> REPLACE line"),
])
async def test_permanent_faults_fail_with_a_readable_reason(single: DaemonProcess, offline: OfflineModel,
                                                            repo: Path, fault: dict[str, object], reason: str,
                                                            words: str) -> None:
    d = single
    offline.script([fault])
    async with d.client() as c:
        task, receipts = await run_one(c, repo)
        assert task.state is p.TaskState.FAILED and task.reason == reason and task.attempts == 1
        assert words in (task.error or "")
        assert [r.outcome for r in receipts] == [f"failed: {reason}"]
        st = await c.status()
        assert st.programmers[0].state is p.ProgrammerState.IDLE  # a verdict on the task, not the programmer


async def test_bad_edit_is_sent_back_for_repair(fast: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    offline.script([
        {"content": "app.py\n```\n<<<<<<< SEARCH\nnot in the file\n=======\nx\n>>>>>>> REPLACE\n```\n"},
        {"content": GOOD},
    ])
    async with fast.client() as c:
        task, receipts = await run_one(c, repo)
        assert task.state is p.TaskState.REVIEW
        assert receipts[0].llm_calls == 2
        assert "could not be applied" in offline.requests[1]["messages"][-1]["content"]
        await c.approve(p.ReviewParams(task_id=task.id))
