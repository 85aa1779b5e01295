"""Revise: a proposal in review goes back to its Programmer with a comment and returns as a new diff."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon import protocol as p
from daemon.client import EventStream
from daemon.errors import GuardrailRefused, InvalidParams, InvalidState
from daemon.offline_model import OfflineModel, default_answer
from daemon.programmer.edits import apply_edit, parse_edits
from daemon.programmer.prompt import build_messages, revision_message
from daemon.programmer.spec import ModelSpec, TaskSpec
from daemon.testing import DaemonFactory, DaemonProcess, block, until_state

HINTS = block("app.py", "def sub(a, b):\n", "def sub(a: int, b: int) -> int:\n")
# builds on the proposal: its SEARCH only matches the file as the first answer left it
NONE_TOO = block("app.py", "def sub(a: int, b: int) -> int:\n    return a - b\n",
                 "def sub(a: int | None, b: int) -> int:\n    return (a or 0) - b\n")
TWO_HUNKS = (block("app.py", "def add(a, b):\n", "def add(a: int, b: int) -> int:\n")
             + block("util.py", "def mul(a, b):\n", "def mul(a: int, b: int) -> int:\n"))


def submit(repo: Path, **kw: Any) -> p.SubmitParams:
    return p.SubmitParams.model_validate(
        {"workspace": str(repo), "instruction": "add type hints to sub", "files": ["app.py"], **kw})


def chat(offline: OfflineModel) -> list[list[dict[str, str]]]:
    """The messages of every chat request the model received, in order."""
    return [r["messages"] for r in offline.requests]


async def test_revise_continues_the_conversation_and_returns_a_diff_on_the_base(
        daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    offline.script([{"content": HINTS}, {"content": NONE_TOO}])
    base = (repo / "app.py").read_text()
    async with daemon.client() as c:
        task = await c.wait((await c.submit(submit(repo))).id)
        assert task.state is p.TaskState.REVIEW and task.revision == 0

        asked = await c.revise(p.ReviseParams(task_id=task.id, comment="also handle None"))
        assert asked.state is p.TaskState.QUEUED and asked.revision == 1
        task = await c.wait(task.id)
        assert task.state is p.TaskState.REVIEW, task.error
        assert task.revision == 1 and task.error is None

        # the model got the whole first conversation, its own answer, then the comment
        first, second = chat(offline)
        assert second[: len(first)] == first
        assert second[len(first)] == {"role": "assistant", "content": HINTS}
        request = second[len(first) + 1]
        assert request["role"] == "user" and len(second) == len(first) + 2
        assert "### INSTRUCTION\nalso handle None" in request["content"]
        assert "def sub(a: int, b: int) -> int:" in request["content"]  # the file as proposed

        # one diff from the original base to the revised proposal
        d = await c.diff(task.id)
        assert "-def sub(a, b):\n-    return a - b\n+def sub(a: int | None, b: int) -> int:\n" in d.diff
        assert "b: int) -> int:\n+    return (a or 0) - b" in d.diff
        assert [h.id for f in d.files for h in f.hunks] == [1]

        # a receipt per round, linked to the task and numbered
        receipts = sorted(await c.receipts(p.ReceiptsParams(task_id=task.id)), key=lambda r: r.attempt)
        assert [(r.task_id, r.revision, r.outcome) for r in receipts] == [(task.id, 0, "review"),
                                                                           (task.id, 1, "review")]
        assert task.cost_usd == round(sum(r.cost_usd for r in receipts), 6) > 0

        assert (repo / "app.py").read_text() == base  # nothing written before approval
        res = await c.approve(p.ReviewParams(task_id=task.id))
        assert res.task.state is p.TaskState.APPLIED
    assert (repo / "app.py").read_text() == base.replace(
        "def sub(a, b):\n    return a - b\n", "def sub(a: int | None, b: int) -> int:\n    return (a or 0) - b\n")


async def test_revise_quotes_the_chosen_hunks(daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    offline.script([{"content": TWO_HUNKS}])  # the revision gets the offline model's own answer
    async with daemon.client() as c:
        task = await c.wait((await c.submit(submit(repo, instruction="add type hints",
                                                   files=["app.py", "util.py"]))).id)
        d = await c.diff(task.id)
        assert [h.id for f in d.files for h in f.hunks] == [1, 2]
        await c.revise(p.ReviseParams(task_id=task.id, comment="name the types in a comment", hunks=[2]))
        task = await c.wait(task.id)
        assert task.state is p.TaskState.REVIEW and task.revision == 1, task.error
        request = chat(offline)[-1][-1]["content"]
        quoted = request.split("### FILE:")[0]
        assert ("--- a/util.py\n+++ b/util.py\n@@ -1,2 +1,2 @@\n-def mul(a, b):\n"
                "+def mul(a: int, b: int) -> int:") in quoted
        assert "def add" not in quoted
        # the offline model's own answer edits the proposed files: the new diff holds both rounds
        d = await c.diff(task.id)
        assert "+# pas: name the types in a comment\n+def add(a: int, b: int) -> int:" in d.diff
        assert "+def mul(a: int, b: int) -> int:" in d.diff


async def test_revise_only_from_review_with_a_sound_comment(daemon: DaemonProcess, offline: OfflineModel,
                                                            repo: Path) -> None:
    offline.script([{"content": HINTS}])
    async with daemon.client() as c:
        task = await c.wait((await c.submit(submit(repo))).id)
        with pytest.raises(InvalidParams, match="has no hunk 7"):
            await c.revise(p.ReviseParams(task_id=task.id, comment="x", hunks=[7]))
        for bad in ({"comment": "   "}, {"comment": "x" * (p.MAX_COMMENT_CHARS + 1)}):
            with pytest.raises(InvalidParams, match="comment"):
                await c.call("task.revise", _Raw(task_id=task.id, **bad))
        await c.reject(p.ReviewParams(task_id=task.id))
        with pytest.raises(InvalidState, match="is REJECTED; only a task awaiting review"):
            await c.revise(p.ReviseParams(task_id=task.id, comment="try again"))
        assert (await c.get(task.id)).state is p.TaskState.REJECTED


class _Raw(p.Model):
    """Params as a careless client would send them, past the client-side model's checks."""

    model_config = p.ConfigDict(extra="allow")


async def test_budget_covers_every_revision(daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    # 1000 prompt tokens cost $0.001: the first round spends the whole $0.001 budget
    offline.script([{"content": HINTS, "prompt_tokens": 1000, "completion_tokens": 10}])
    async with daemon.client() as c:
        task = await c.wait((await c.submit(submit(repo, budget_usd=0.001))).id)
        assert task.state is p.TaskState.REVIEW and task.cost_usd >= 0.001
        with pytest.raises(GuardrailRefused, match=r"spent \$0\.00102\d* of its \$0\.001 budget"):
            await c.revise(p.ReviseParams(task_id=task.id, comment="also handle None"))
        again = await c.get(task.id)
        assert again.state is p.TaskState.REVIEW and again.revision == 0
    assert len(offline.requests) == 1


async def test_a_revision_stops_when_the_tasks_budget_runs_out(daemon: DaemonProcess, offline: OfflineModel,
                                                                repo: Path) -> None:
    # each answer costs $0.00102; the budget allows the first round and one call of the revision
    miss = block("app.py", "def nowhere():\n", "def nowhere(): pass\n")  # fails: a repair round would follow
    offline.script([{"content": HINTS, "prompt_tokens": 1000, "completion_tokens": 10},
                    {"content": miss, "prompt_tokens": 1000, "completion_tokens": 10}])
    async with daemon.client() as c:
        task = await c.wait((await c.submit(submit(repo, budget_usd=0.0015))).id)
        before = (await c.diff(task.id)).diff
        await c.revise(p.ReviseParams(task_id=task.id, comment="also handle None"))
        task = await c.wait(task.id)
        assert task.state is p.TaskState.REVIEW and task.reason == "revision_budget"
        assert task.error is not None and task.error.startswith("revision 1 failed: stopped before the next model call")
        assert (await c.diff(task.id)).diff == before and task.cost_usd == 0.00204
        with pytest.raises(GuardrailRefused, match=r"spent \$0\.002040 of its \$0\.0015 budget"):
            await c.revise(p.ReviseParams(task_id=task.id, comment="one more time"))
    assert len(offline.requests) == 2


async def test_a_spent_daily_budget_refuses_a_revise(make_daemon: DaemonFactory, offline: OfflineModel,
                                                    repo: Path) -> None:
    d = make_daemon(guardrails={"daily_budget_usd": 0.001})
    offline.script([{"content": HINTS, "prompt_tokens": 1000, "completion_tokens": 10}])
    async with d.client() as c:
        task = await c.wait((await c.submit(submit(repo))).id)
        assert task.state is p.TaskState.REVIEW
        with pytest.raises(GuardrailRefused, match=rf"daily budget of \$0.001 is spent; task {task.id} stays"):
            await c.revise(p.ReviseParams(task_id=task.id, comment="also handle None"))
        assert (await c.get(task.id)).state is p.TaskState.REVIEW


async def test_cancelling_a_revision_leaves_the_proposal_in_review(daemon: DaemonProcess, offline: OfflineModel,
                                                                   repo: Path) -> None:
    offline.script([{"content": HINTS}, {"fault": "hang", "latency": 60}])
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["task"]) as events:
        task = await c.wait((await c.submit(submit(repo))).id)
        before = (await c.diff(task.id)).diff
        await c.revise(p.ReviseParams(task_id=task.id, comment="also handle None"))
        await until_state(events, task.id, p.TaskState.RUNNING)
        done = await c.cancel(task.id)
        assert done.state is p.TaskState.REVIEW and done.reason == "revision_cancelled"
        assert done.error == "revision 1 was cancelled: cancelled by the user"
        assert (await c.diff(task.id)).diff == before
        res = await c.approve(p.ReviewParams(task_id=task.id))
        assert res.task.state is p.TaskState.APPLIED
    assert "def sub(a: int, b: int) -> int:" in (repo / "app.py").read_text()


async def test_a_failed_revision_leaves_the_proposal_in_review(daemon: DaemonProcess, offline: OfflineModel,
                                                               repo: Path) -> None:
    offline.script([{"content": HINTS}, {"fault": "no_edits"}])
    async with daemon.client() as c:
        task = await c.wait((await c.submit(submit(repo))).id)
        before = (await c.diff(task.id)).diff
        await c.revise(p.ReviseParams(task_id=task.id, comment="also handle None"))
        task = await c.wait(task.id, until={p.TaskState.REVIEW})
        assert task.reason == "revision_no_edits"
        assert task.error is not None and task.error.startswith("revision 1 failed: the model answered without")
        assert (await c.diff(task.id)).diff == before
        receipts = sorted(await c.receipts(p.ReceiptsParams(task_id=task.id)), key=lambda r: r.attempt)
        assert [(r.revision, r.outcome) for r in receipts] == [(0, "review"), (1, "failed: no_edits")]
        # the next revise starts again from the proposal's conversation, not the failed one
        offline.script([{"content": NONE_TOO}])
        await c.revise(p.ReviseParams(task_id=task.id, comment="handle None, please"))
        task = await c.wait(task.id, until={p.TaskState.REVIEW})
        assert task.revision == 2 and task.error is None
        last = chat(offline)[-1]
        assert [m["role"] for m in last] == ["system", "user", "assistant", "user"]
        assert "handle None, please" in last[-1]["content"]
        assert "+def sub(a: int | None, b: int) -> int:" in (await c.diff(task.id)).diff


async def test_the_conversation_survives_a_restart(make_daemon: DaemonFactory, offline: OfflineModel,
                                                   repo: Path) -> None:
    d = make_daemon()
    offline.script([{"content": HINTS}, {"content": NONE_TOO}])
    async with d.client() as c:
        task = await c.wait((await c.submit(submit(repo))).id)
    d.restart()
    async with d.client() as c:
        await c.revise(p.ReviseParams(task_id=task.id, comment="also handle None"))
        task = await c.wait(task.id)
        assert task.state is p.TaskState.REVIEW and task.revision == 1, task.error
        assert "+def sub(a: int | None, b: int) -> int:" in (await c.diff(task.id)).diff
    first, second = chat(offline)
    assert second[: len(first) + 1] == [*first, {"role": "assistant", "content": HINTS}]


async def test_revise_works_on_the_snapshot_when_the_file_changed(daemon: DaemonProcess, offline: OfflineModel,
                                                                  repo: Path) -> None:
    offline.script([{"content": HINTS}, {"content": NONE_TOO}])
    async with daemon.client() as c:
        task = await c.wait((await c.submit(submit(repo))).id)
        app = repo / "app.py"
        app.write_text("# edited meanwhile\n" + app.read_text())
        await c.revise(p.ReviseParams(task_id=task.id, comment="also handle None"))
        task = await c.wait(task.id)
        assert task.state is p.TaskState.REVIEW, task.error
        request = chat(offline)[-1][-1]["content"]
        assert "# edited meanwhile" not in request  # the proposal, not the user's file
        d = await c.diff(task.id)
        assert "# edited meanwhile" not in d.diff and "+def sub(a: int | None, b: int) -> int:" in d.diff
        res = await c.approve(p.ReviewParams(task_id=task.id))  # the 3-way approve merges as always
        assert res.task.state is p.TaskState.APPLIED
    text = (repo / "app.py").read_text()
    assert text.startswith("# edited meanwhile\n") and "def sub(a: int | None, b: int) -> int:" in text


def pasd(d: DaemonProcess, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=d.env, cwd=repo, capture_output=True,
                          text=True, timeout=120)


async def test_cli_revise_waits_for_the_new_proposal(daemon: DaemonProcess, offline: OfflineModel,
                                                     repo: Path) -> None:
    offline.script([{"content": HINTS}, {"content": NONE_TOO}])
    async with daemon.client() as c:
        task = await c.wait((await c.submit(submit(repo))).id)
    r = await asyncio.to_thread(pasd, daemon, repo, "revise", task.id, "also handle None", "--hunks", "1", "--wait")
    assert r.returncode == 0, r.stderr
    assert f"revision 1 of {task.id} queued; waiting" in r.stderr and "model:" in r.stderr
    assert f"task {task.id} REVIEW (revision 1): 1 file, +2 -2" in r.stdout
    assert "+def sub(a: int, b: int) -> int:" in chat(offline)[-1][-1]["content"]  # hunk 1 quoted
    r = await asyncio.to_thread(pasd, daemon, repo, "show", task.id)
    assert "  revision: 1 (sent back 1 time with a comment)" in r.stdout
    r = await asyncio.to_thread(pasd, daemon, repo, "receipts", "--task", task.id)
    rows = [line.split()[:3] for line in r.stdout.splitlines()[1:]]
    assert rows == [[task.id, "2", "r1"], [task.id, "1", "openai/pasd-offline"]]

    r = await asyncio.to_thread(pasd, daemon, repo, "revise", task.id, "   ")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "comment is blank" in r.stderr, r.stderr
    await asyncio.to_thread(pasd, daemon, repo, "reject", task.id)
    r = await asyncio.to_thread(pasd, daemon, repo, "revise", task.id, "again")
    assert r.returncode == 1 and r.stderr == (f"pasd: task {task.id} is REJECTED; only a task awaiting review "
                                              "(REVIEW or CONFLICT) can be revised\n")


async def test_a_task_from_an_older_store_says_it_cannot_be_revised(make_daemon: DaemonFactory,
                                                                     offline: OfflineModel, repo: Path) -> None:
    d = make_daemon()
    offline.script([{"content": HINTS}])
    async with d.client() as c:
        task = await c.wait((await c.submit(submit(repo))).id)
    d.stop()
    # what a store written before revise existed holds: no conversation, no revision numbers
    with sqlite3.connect(d.state_dir / "pasd.db") as db:
        db.execute("DROP TABLE conversations")
        db.execute("UPDATE tasks SET info = json_remove(info, '$.revision')")
        db.execute("UPDATE receipts SET data = json_remove(data, '$.revision')")
    d.start()
    async with d.client() as c:
        old = await c.get(task.id)
        assert old.state is p.TaskState.REVIEW and old.revision == 0
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert receipt.revision == 0
        with pytest.raises(InvalidState, match=f"task {task.id} has no stored conversation"):
            await c.revise(p.ReviseParams(task_id=task.id, comment="also handle None"))
        assert (await c.approve(p.ReviewParams(task_id=task.id))).task.state is p.TaskState.APPLIED


def test_the_offline_models_own_answer_to_a_revision_takes_the_comment_and_the_proposed_file() -> None:
    base = "def add(a, b):\n    return a + b\n"
    proposed = "# pas: explain add\n" + base
    task = p.SubmitParams(workspace="/ws", instruction="explain add", files=["app.py"])
    first = build_messages(TaskSpec(task_id="t", run_id="r", attempt=1, programmer="P", workspace=task.workspace,
                                    instruction=task.instruction, files=task.files,
                                    model=ModelSpec(model="openai/pasd-offline"), worktrees_dir="/tmp"),
                           {"app.py": base})[1]["content"]
    again = revision_message("say what it returns", [], {"app.py": proposed})["content"]
    [edit] = parse_edits(default_answer(first, [again]))
    assert apply_edit(proposed, edit) == "# pas: say what it returns\n" + proposed


KEY_VAR = "PASD_TEST_REVISE_KEY"
KEYED = "openai/pasd-keyed"


async def test_a_revise_sends_the_shells_key_when_the_daemon_has_none(make_daemon: DaemonFactory,
                                                                     offline: OfflineModel, repo: Path) -> None:
    """The key the task was submitted with is gone once it reached review; `pasd revise` sends it again,
    for that revision only (asked for by name, never stored)."""
    d = make_daemon(workers=1, **{f'models.settings."{KEYED}"': {"api_base": offline.url, "api_key_env": KEY_VAR}})
    key = "sk-revise-" + "7" * 24
    offline.script([{"content": HINTS}, {"content": NONE_TOO}])
    env = {**d.env, KEY_VAR: key}

    def run(*args: str, with_key: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "daemon", *args], env=env if with_key else d.env, cwd=repo,
                              capture_output=True, text=True, timeout=120)

    r = await asyncio.to_thread(run, "submit", "add type hints to sub", "--file", "app.py", "--model", KEYED,
                                "--wait", "--json")
    assert r.returncode == 0, r.stderr
    task_id = json.loads(r.stdout)["id"]
    r = await asyncio.to_thread(run, "revise", task_id, "also handle None", with_key=False)
    assert r.returncode == 1 and KEY_VAR in r.stderr  # said up front; the task stays in review
    async with d.client() as c:
        assert (await c.get(task_id)).state is p.TaskState.REVIEW
    r = await asyncio.to_thread(run, "revise", task_id, "also handle None", "--wait")
    assert r.returncode == 0, r.stderr
    assert [req["headers"].get("authorization") for req in offline.requests] == [f"Bearer {key}"] * 2
    assert key.encode() not in b"".join(f.read_bytes() for f in d.state_dir.rglob("*") if f.is_file())
