"""Guardrails: file and command allowlists, check rounds, timeouts, budgets, secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.errors import GuardrailRefused, InvalidParams
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, block


def submit(repo: Path, files: list[str], instruction: str = "change it", **kw: object) -> p.SubmitParams:
    return p.SubmitParams.model_validate({"workspace": str(repo), "instruction": instruction, "files": files, **kw})


async def test_edits_outside_the_allowlist_are_refused_and_never_written(
        daemon: DaemonProcess, offline: OfflineModel, repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("KEEP = 1\n")
    (repo / "link.py").symlink_to(outside / "secret.py")
    (repo / "docs").mkdir()
    (repo / "docs" / "guide.md").write_text("old guide\n")
    (repo / ".pas.toml").write_text('[guardrails]\nallow_files = ["docs/*.md", "link*"]\n')
    answer = "".join([
        block("app.py", "def add(a, b):\n", "def add(a: int, b: int) -> int:\n"),
        block("util.py", "def mul(a, b):\n", "def mul(a, b):  # sneaky\n"),
        block("/etc/hostname", "", "owned\n"),
        block("../escape.py", "", "owned\n"),
        block("link.py", "KEEP = 1\n", "KEEP = 2\n"),
        block(".git/config", "", "owned\n"),
        block("docs/guide.md", "old guide\n", "new guide\n"),
    ])
    offline.script([{"content": answer}, {"content": "no more changes"}])
    async with daemon.client() as c:
        await c.trust(p.TrustParams(workspace=str(repo)))  # the project's allow_files widen the user's
        with pytest.raises(InvalidParams, match="symlink that leaves the workspace"):
            await c.submit(submit(repo, ["link.py"]))
        task = await c.wait((await c.submit(submit(repo, ["app.py"]))).id)
        assert task.state is p.TaskState.REVIEW
        refused = {r.path: r.reason for r in task.refused}
        assert refused == {
            "util.py": "not one of the task's files",
            "/etc/hostname": "absolute path",
            "../escape.py": "path leaves the workspace (..)",
            "link.py": "symlink leaves the workspace",
            ".git/config": "path inside .git",
        }
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert {r.path for r in receipt.refused} == set(refused)
        d = await c.diff(task.id)
        assert sorted(f.path for f in d.files) == ["app.py", "docs/guide.md"]
    assert (outside / "secret.py").read_text() == "KEEP = 1\n"
    assert not (repo.parent / "escape.py").exists()
    assert "sneaky" not in (repo / "util.py").read_text()


@pytest.fixture
def checked(make_daemon: DaemonFactory) -> DaemonProcess:
    return make_daemon(guardrails={"allow_commands": [f"{sys.executable} check.py", "sh -c *"],
                                   "check_timeout_s": 1.5, "max_rounds": 2})


async def test_check_failure_goes_back_to_the_model_until_it_passes(checked: DaemonProcess, offline: OfflineModel,
                                                                     repo: Path) -> None:
    (repo / "check.py").write_text("import sys\nsys.exit(0 if 'FIXED' in open('app.py').read() else 3)\n")
    offline.script([
        {"content": block("app.py", "def add(a, b):\n", "def add(a, b):  # first try\n")},
        {"content": block("app.py", "def add(a, b):  # first try\n", "def add(a, b):  # FIXED\n")},
    ])
    async with checked.client() as c:
        task = await c.wait((await c.submit(submit(repo, ["app.py"], check=f"{sys.executable} check.py"))).id)
        assert task.state is p.TaskState.REVIEW
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert receipt.check == "passed" and receipt.check_rounds == 2 and receipt.llm_calls == 2
        assert [ck.exit_code for ck in receipt.checks] == [3, 0]
        assert "check command failed" in offline.requests[1]["messages"][-1]["content"]
        assert "# FIXED" in (await c.diff(task.id)).diff
    assert "FIXED" not in (repo / "app.py").read_text()  # the check ran in the snapshot


async def test_check_not_in_allowlist_is_refused_at_submit(checked: DaemonProcess, repo: Path) -> None:
    async with checked.client() as c:
        with pytest.raises(GuardrailRefused, match="allow_commands"):
            await c.submit(submit(repo, ["app.py"], check="rm -rf /"))


async def test_check_timeout_kills_the_whole_process_group(checked: DaemonProcess, offline: OfflineModel,
                                                           repo: Path) -> None:
    marker = "sleep 97.31"
    offline.script([{"content": block("app.py", "def add(a, b):\n", "def add(a, b):  # x\n")}])
    async with checked.client() as c:
        task = await c.submit(submit(repo, ["app.py"], check=f"sh -c '{marker} & {marker}'"))
        task = await c.wait(task.id)
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert receipt.checks and receipt.checks[0].timed_out and receipt.checks[0].exit_code is None
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert left == []


async def test_task_timeout_fails_with_reason_and_frees_the_programmer(daemon: DaemonProcess,
                                                                       offline: OfflineModel, repo: Path) -> None:
    offline.set_latency(20)
    async with daemon.client() as c:
        task = await c.wait((await c.submit(submit(repo, ["app.py"], timeout_s=1.0))).id)
        assert task.state is p.TaskState.FAILED and task.reason == "timeout"
        assert "1 s limit" in (task.error or "")
        st = await c.status()
        assert all(pr.state is p.ProgrammerState.IDLE for pr in st.programmers)


async def test_task_budget_stops_before_the_next_model_call(checked: DaemonProcess, offline: OfflineModel,
                                                            repo: Path) -> None:
    (repo / "check.py").write_text("raise SystemExit(1)\n")
    offline.script([{"content": block("app.py", "def add(a, b):\n", "def add(a, b):  # x\n"),
                     "prompt_tokens": 1000, "completion_tokens": 100}])
    async with checked.client() as c:
        task = await c.submit(submit(repo, ["app.py"], check=f"{sys.executable} check.py", budget_usd=0.001))
        task = await c.wait(task.id)
        assert task.state is p.TaskState.FAILED and task.reason == "budget"
        assert "$0.0012" in (task.error or "")
        assert len(offline.requests) == 1
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert receipt.cost_usd == pytest.approx(0.0012) and receipt.outcome == "failed: budget"


async def test_daily_budget(make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(guardrails={"daily_budget_usd": 0.0005})
    offline.script([{"content": block("app.py", "def add(a, b):\n", "def add(a, b):  # x\n"),
                     "prompt_tokens": 1000, "completion_tokens": 10}])
    async with d.client() as c:
        first = await c.wait((await c.submit(submit(repo, ["app.py"]))).id)
        assert first.state is p.TaskState.REVIEW
        second = await c.wait((await c.submit(submit(repo, ["util.py"]))).id)
        assert second.state is p.TaskState.FAILED and second.reason == "budget"
        assert "daily budget" in (second.error or "")
    assert len(offline.requests) == 1


async def test_a_planted_key_never_leaks(make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    key = "sk-planted-0123456789abcdefSECRET"
    d = make_daemon(env={"PAS_TEST_KEY": key},
                    **{'models.settings."openai/pasd-offline"': {"api_key_env": "PAS_TEST_KEY"}})
    offline.script([
        {"content": block("app.py", "def add(a, b):\n", "def add(a, b):  # ok\n")},
        {"status": 401, "content": f"Incorrect API key provided: {key}. Authorization: Bearer {key}"},
    ])
    async with d.client() as c:
        ok = await c.wait((await c.submit(submit(repo, ["app.py"]))).id)
        bad = await c.wait((await c.submit(submit(repo, ["util.py"]))).id)
        assert ok.state is p.TaskState.REVIEW
        assert bad.state is p.TaskState.FAILED and bad.reason == "auth"
        everything = json.dumps([t.model_dump(mode="json") for t in await c.list()])
        everything += json.dumps([r.model_dump(mode="json") for r in await c.receipts()])
        everything += (await c.diff(ok.id)).model_dump_json()
    # the key did reach the provider (it was used), and nowhere else
    assert offline.requests[0]["headers"]["authorization"] == f"Bearer {key}"
    assert key not in everything
    cli = subprocess.run([sys.executable, "-m", "daemon", "show", bad.id], env=d.env, capture_output=True, text=True)
    assert "[redacted]" in cli.stdout and key not in cli.stdout + cli.stderr
    d.stop()
    for path in d.root.rglob("*"):
        if path.is_file() and path.name != "config.toml":
            assert key.encode() not in path.read_bytes(), path
    assert os.environ.get("PAS_TEST_KEY") is None
