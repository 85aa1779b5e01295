"""Secrets a check prints are redacted before they are stored, shown or sent to the model."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.programmer.llm import scrub
from daemon.programmer.proc import TRUNCATED
from daemon.secrets import MARK, is_secret_name, redact, secret_values
from daemon.testing import DaemonFactory, block


def test_which_values_are_secrets() -> None:
    env = {"MY_LLM_CRED": "cred-value", "OPENAI_API_KEY": "sk-openai", "AWS_SESSION_TOKEN": "aws-session-value",
           "DEPLOY_PASSWORD": "hunter2hunter2", "MAX_KEYS": "1", "HOME": "/home/someone", "EMPTY_TOKEN": ""}
    values = secret_values(["MY_LLM_CRED"], env)
    assert set(values) == {"cred-value", "sk-openai", "aws-session-value", "hunter2hunter2"}
    assert values == sorted(values, key=len, reverse=True)
    assert is_secret_name("GEMINI_API_KEY") and is_secret_name("X", ["X"]) and not is_secret_name("HOME")


def test_redaction_leaves_no_prefix_where_output_was_cut() -> None:
    key = "key-0123456789abcdef"
    text = "start " + key + " middle " + key[:11] + TRUNCATED
    assert redact(text, [key], cut=TRUNCATED) == f"start {MARK} middle {MARK}{TRUNCATED}"
    assert redact("short abc", ["abc"]) == f"short {MARK}"


def test_scrub_takes_out_named_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASD_TEST_SCRUB_CRED", "scrub-cred-value")
    assert scrub("failed with scrub-cred-value", named=["PASD_TEST_SCRUB_CRED"]) == f"failed with {MARK}"
    assert scrub("failed with scrub-cred-value") == "failed with scrub-cred-value"  # a plain name, not named
    assert scrub("got Bearer abcdef123") == f"got {MARK}"


async def test_a_check_printing_secrets_leaves_them_nowhere(make_daemon: DaemonFactory, offline: OfflineModel,
                                                            repo: Path) -> None:
    token = uuid.uuid4().hex
    # a variable an api_key_env names, a provider key litellm reads, and one named like a secret
    secrets = {"MY_LLM_CRED": f"cred-{token}", "OPENAI_API_KEY": f"sk-openai-{token}",
               "DEPLOY_PASSWORD": f"pw-{token}"}
    d = make_daemon(env=secrets,
                    guardrails={"allow_commands": ["sh -c *"], "max_rounds": 1, "check_env": sorted(secrets)},
                    **{'models.settings."openai/pasd-offline-b"': {"api_key_env": "MY_LLM_CRED"}})
    offline.script([{"content": block("app.py", "def add(a, b):\n", "def add(a, b):  # one\n")},
                    {"content": "nothing more to change"}])
    check = "sh -c 'echo cred=$MY_LLM_CRED openai=$OPENAI_API_KEY pw=$DEPLOY_PASSWORD; exit 1'"
    async with d.client() as c:
        task = await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction="change it",
                                                           files=["app.py"], check=check))).id)
        assert task.state is p.TaskState.REVIEW, task.error
        receipts = await c.receipts()
        seen = json.dumps([r.model_dump(mode="json") for r in receipts])
        # the check did print them: each one stands redacted in its output
        assert receipts[0].checks[0].output.count(MARK) == 3, receipts[0].checks[0].output
        wal = (d.state_dir / "pasd.db-wal").read_bytes()  # while the daemon runs, its last writes are here
    repair = json.dumps(offline.requests[1]["messages"])
    assert "The check command failed" in repair and MARK in repair
    cli = "".join(subprocess.run([sys.executable, "-m", "daemon", *args], env=d.env, capture_output=True,
                                 text=True).stdout for args in (["show", task.id], ["receipts", "--json"]))
    assert f"cred={MARK}" in cli  # `pasd receipts --json` shows the check's output
    d.stop()
    stored = {path: path.read_bytes() for path in d.state_dir.rglob("*") if path.is_file()}
    assert any(path.suffix == ".jsonl" for path in stored) and d.state_dir / "pasd.db" in stored
    for value in secrets.values():
        for where, text in (("receipts.list", seen), ("repair prompt", repair), ("cli", cli)):
            assert value not in text, where
        assert value.encode() not in wal
        for path, data in stored.items():
            assert value.encode() not in data, path
