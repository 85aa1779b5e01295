"""File requests: the model asks to read a file (`READ path`) and pasd answers, within guardrails.

A real daemon and the offline model; what the model was told is read back from the model's own
request log (`/control/reads`, `/control/requests`).
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon import protocol as p
from daemon.client import PasClient
from daemon.offline_model import OfflineModel
from daemon.programmer.reads import answer
from daemon.programmer.spec import ContextSpec
from daemon.testing import DaemonProcess, block, make_repo, offline_config, write_files

APP = "def add(a, b):\n    return a + b\n"
UTIL = "def mul(a, b):\n    return a * b\n"
EDIT_APP = block("app.py", "def add(a, b):\n", "def add(a, b):  # uses mul\n")


@pytest.fixture
def offline(model: OfflineModel) -> OfflineModel:
    model.reset()
    return model


@pytest.fixture(scope="module")
def pasd(model: OfflineModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("reads"), workers=1, config=offline_config(
        model.url, guardrails={"max_rounds": 1},
        context={"max_reads": 2, "read_max_bytes": 1000, "deny": ["*.secret"]}))
    yield d.start()
    d.cleanup()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "ws", {"app.py": APP, "util.py": UTIL, "README.md": "# r\n", "notes.txt": "n\n",
                                       ".gitignore": "build/\n"})


def reads_seen(model: OfflineModel) -> list[dict[str, Any]]:
    with urllib.request.urlopen(model.url.removesuffix("/v1") + "/control/reads", timeout=5) as reply:
        return list(json.loads(reply.read()))


async def run(c: PasClient, ws: Path, files: list[str] | None = None) -> tuple[p.TaskInfo, p.Receipt]:
    task = await c.submit(p.SubmitParams(workspace=str(ws), instruction="use mul", files=files or ["app.py"]))
    task = await c.wait(task.id)
    (receipt,) = await c.receipts(p.ReceiptsParams(task_id=task.id))
    return task, receipt


async def test_a_read_is_answered_then_the_model_edits(pasd: DaemonProcess, offline: OfflineModel, ws: Path) -> None:
    offline.script([{"read": ["util.py"], "content": EDIT_APP}])
    async with pasd.client() as c:
        task, receipt = await run(c, ws)
        assert task.state is p.TaskState.REVIEW, task.error  # a reply with only a request is not "no edits"
        assert reads_seen(offline) == [{"path": "util.py", "sent": True, "reason": ""}]
        first, second = offline.requests
        assert first["response"]["choices"][0]["message"]["content"].endswith("READ util.py\n")
        told = second["messages"][-1]["content"]
        assert f"### FILE: util.py (read-only)\n```\n{UTIL}```" in told
        assert "You may ask for more files in 1 more answer(s)." in told
        asked = [m["content"] for m in second["messages"] if m["role"] == "user" and "### INSTRUCTION" in m["content"]]
        assert len(asked) == 1 and "use mul" in asked[0]  # the task itself is still in the conversation
        assert receipt.files_read == ["util.py"]
        assert receipt.rounds == {"first": 1, "read": 1} and receipt.llm_calls == 2
        diff = await c.diff(task.id)
        assert "# uses mul" in diff.diff and "util.py" not in diff.diff


async def test_every_refusal_reaches_the_model_with_its_reason(pasd: DaemonProcess, offline: OfflineModel,
                                                               ws: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("the user's secret\n")
    write_files(ws, {".env": "KEY=1\n", ".env.local": "KEY=2\n", "deploy/id_ed25519": "k\n", "tls/cert.pem": "c\n",
                     "api.key": "k\n", "prod.secret": "s\n", "build/out.txt": "o\n", "big.txt": "x" * 1001,
                     "pkg/mod.py": "x = 1\n"})
    (ws / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    (ws / "escape.txt").symlink_to(outside / "secret.txt")
    (ws / "linkdir").symlink_to(outside, target_is_directory=True)
    asked = [".env", ".env.local", "deploy/id_ed25519", "tls/cert.pem", "api.key", "prod.secret", "build/out.txt",
             "big.txt", "blob.bin", "escape.txt", "linkdir/secret.txt", "/etc/passwd", "../outside/secret.txt",
             "missing.py", "pkg", "app.py", "./pkg/mod.py"]
    offline.script([{"read": asked, "content": EDIT_APP}])
    async with pasd.client() as c:
        task, receipt = await run(c, ws)
        assert task.state is p.TaskState.REVIEW, task.error
    secret = "looks like a secret ({}); pasd never sends such files to a model"
    link = "the path goes through a symbolic link; pasd does not follow links"
    assert {r["path"]: r["reason"] for r in reads_seen(offline)} == {
        ".env": secret.format(".env"),
        ".env.local": secret.format(".env.*"),
        "deploy/id_ed25519": secret.format("id_*"),
        "tls/cert.pem": secret.format("*.pem"),
        "api.key": secret.format("*.key"),
        "prod.secret": "the configuration keeps it from the model ([context] deny '*.secret')",
        "build/out.txt": "ignored by git (.gitignore); pasd does not send ignored files",
        "big.txt": "1,001 bytes, past the limit of 1,000 bytes per file",
        "blob.bin": "a binary file; pasd sends text files only",
        "escape.txt": link,
        "linkdir/secret.txt": link,
        "/etc/passwd": "an absolute path; ask for a path relative to the workspace",
        "../outside/secret.txt": "the path leaves the workspace (..)",
        "missing.py": "no such file in the workspace",
        "pkg": "a directory; ask for the files in it by name",
        "app.py": "one of the task's files: it is in the prompt already, as it is now",
        "pkg/mod.py": "",
    }
    told = json.dumps(offline.requests[-1]["messages"])
    assert "the user's secret" not in told and "KEY=" not in told and "\\u0001\\u0002binary" not in told
    assert receipt.files_read == ["pkg/mod.py"]


async def test_max_reads_is_honoured(pasd: DaemonProcess, offline: OfflineModel, ws: Path) -> None:
    offline.script([{"read": ["util.py"], "content": "READ README.md\n"}, {"content": "READ notes.txt\n"},
                    {"content": EDIT_APP}])
    async with pasd.client() as c:
        task, receipt = await run(c, ws)
        assert task.state is p.TaskState.REVIEW, task.error
    assert [r["path"] for r in reads_seen(offline)] == ["util.py", "README.md"]
    assert "You cannot ask for more files now." in offline.requests[2]["messages"][-1]["content"]
    assert ("- file requests refused: the 2 read round(s) are used up; answer with SEARCH/REPLACE blocks against "
            "the files you have") in offline.requests[3]["messages"][-1]["content"]
    assert receipt.files_read == ["util.py", "README.md"]
    assert receipt.rounds == {"first": 1, "read": 2, "repair": 1}


async def test_a_file_read_stays_uneditable(pasd: DaemonProcess, offline: OfflineModel, ws: Path) -> None:
    both = EDIT_APP + block("util.py", "def mul(a, b):\n", "def mul(a, b):  # changed\n")
    again = block("app.py", "def add(a, b):  # uses mul\n", "def add(a, b):  # uses mul, reads util\n")
    offline.script([{"read": ["util.py"], "content": both}, {"content": again}])
    async with pasd.client() as c:
        task, receipt = await run(c, ws)
        assert task.state is p.TaskState.REVIEW, task.error
        why = "read-only: it was sent because you asked to read it; only the task's files can be edited"
        assert [(r.path, r.reason) for r in receipt.refused] == [("util.py", why)]
        assert f"- util.py: refused, {why}" in offline.requests[2]["messages"][-1]["content"]
        contents = await c.contents(task.id)
        assert [f.path for f in contents.files] == ["app.py"]
    assert (ws / "util.py").read_text() == UTIL


async def test_a_workspace_file_may_only_tighten_reads(make_daemon: Any, offline: OfflineModel, ws: Path) -> None:
    (ws / ".pas.toml").write_text('[context]\nmax_reads = 1\nread_max_bytes = 50000\ndeny = ["notes.txt"]\n')
    d = make_daemon(workers=1, context={"max_reads": 2, "read_max_bytes": 1000, "deny": ["*.secret"]})
    offline.script([{"read": ["notes.txt", "util.py"], "content": "READ README.md\n"}, {"content": EDIT_APP}])
    async with d.client() as c:
        task, receipt = await run(c, ws)
        assert task.state is p.TaskState.REVIEW, task.error
        status = await c.status()
    # lowered max_reads and an added deny glob hold; the larger read_max_bytes waits for trust
    assert reads_seen(offline) == [
        {"path": "notes.txt", "sent": False,
         "reason": "the configuration keeps it from the model ([context] deny 'notes.txt')"},
        {"path": "util.py", "sent": True, "reason": ""}]
    assert receipt.files_read == ["util.py"]
    assert "file requests refused: the 1 read round(s) are used up" in offline.requests[2]["messages"][-1]["content"]
    assert [u.ignored for u in status.untrusted] == [["context.read_max_bytes"]]


def test_no_request_syntax_is_offered_when_reads_are_off() -> None:
    from daemon.programmer.prompt import build_messages
    from daemon.programmer.spec import ModelSpec, TaskSpec

    spec = TaskSpec(task_id="t", run_id="r", attempt=1, programmer="P", workspace="/w", instruction="x",
                    files=["a.py"], model=ModelSpec(model="m"), worktrees_dir="/tmp", context=ContextSpec(max_reads=0))
    assert "READ path/to/file" not in build_messages(spec, {"a.py": "x\n"})[0]["content"]
    on = spec.model_copy(update={"context": ContextSpec()})
    assert "READ path/to/file" in build_messages(on, {"a.py": "x\n"})[0]["content"]


async def test_reads_where_the_workspace_is_not_reachable(tmp_path: Path) -> None:
    """A node that got only the task's files refuses every request, saying why."""
    ctx = ContextSpec(unreachable="the workspace is not reachable from Ray node n1: only the task's files were sent")
    write_files(tmp_path, {"util.py": UTIL})
    (got,) = await answer(tmp_path, ["util.py"], ctx, {"app.py"}, [])
    assert (got.text, got.reason) == (None, ctx.unreachable)
    (ok,) = await answer(tmp_path, ["util.py"], ContextSpec(), {"app.py"}, [])
    assert (ok.text, ok.reason) == (UTIL, "")
    os.chmod(tmp_path / "util.py", 0o000)
    if os.geteuid() != 0:
        (denied,) = await answer(tmp_path, ["util.py"], ContextSpec(), {"app.py"}, [])
        assert denied.text is None and denied.reason.startswith("cannot be read")


def test_a_receipt_stored_before_reads_existed_still_loads() -> None:
    from daemon.protocol import Receipt

    old = {"task_id": "t", "run_id": "r", "attempt": 1, "programmer": "Programmer-01",
           "provider": {"provider": "openai", "model": "openai/x"}, "tokens": {"input": 1, "output": 2},
           "cost_usd": 0.0, "priced": False, "wall_s": 1.0, "llm_s": 0.5, "outcome": "review", "created_at": 0.0}
    receipt = Receipt.model_validate_json(json.dumps(old))
    assert (receipt.files_read, receipt.rounds) == ([], {})
