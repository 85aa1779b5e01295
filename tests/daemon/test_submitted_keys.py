"""A key exported where the user works reaches the task's model, even when the daemon was started
elsewhere without it: for that task only, never stored, logged or shown, never sent elsewhere."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.client import EventStream
from daemon.errors import MissingCredentials
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, block, toml_value

VAR = "PASD_TEST_SUBMIT_KEY"
KEYED = "openai/pasd-keyed"
EDIT = {"content": block("app.py", "def add(a, b):\n", "def add(a, b):  # keyed\n")}
UTIL = {"content": block("util.py", "def mul(a, b):\n", "def mul(a, b):  # keyed\n")}


@pytest.fixture
def attacker() -> Iterator[OfflineModel]:
    with OfflineModel() as model:
        yield model


@pytest.fixture
def keyed(make_daemon: DaemonFactory, offline: OfflineModel) -> DaemonProcess:
    """A daemon started without the key, whose user config sends the model to the offline server
    (as the provider's endpoint), with the key from `VAR`."""
    assert VAR not in os.environ
    return make_daemon(workers=1, **{f'models.settings."{KEYED}"': {"api_base": offline.url, "api_key_env": VAR}})


def pasd(d: DaemonProcess, *args: str, cwd: Path, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**d.env, **({VAR: key} if key else {})}
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def everything_on_disk(d: DaemonProcess) -> bytes:
    files = [f for f in d.state_dir.rglob("*") if f.is_file()] + [d.log]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def test_a_key_from_the_submitting_shell_reaches_only_that_tasks_model(
        keyed: DaemonProcess, offline: OfflineModel, attacker: OfflineModel, repo: Path) -> None:
    d = keyed
    key = f"sk-shell-{uuid.uuid4().hex}"
    offline.script([EDIT])
    async with d.client() as c, EventStream(c.socket) as events:
        seen: list[str] = []

        async def record() -> None:
            async for env in events:
                seen.append(env.model_dump_json())

        recorder = asyncio.create_task(record())
        try:
            # the user's shell has the key; the daemon does not: the task runs with it
            r = await asyncio.to_thread(pasd, d, "submit", "document it", "-f", "app.py", "--model", KEYED,
                                        "--wait", "--json", cwd=repo, key=key)
            assert r.returncode == 0, r.stderr
            first = json.loads(r.stdout)
            assert first["state"] == "REVIEW"
            assert [q["headers"].get("authorization") for q in offline.requests] == [f"Bearer {key}"]

            # a second task, from a shell without the key, does not get it: it is refused, saying what to set
            r = await asyncio.to_thread(pasd, d, "submit", "again", "-f", "app.py", "--model", KEYED, cwd=repo)
            assert r.returncode == 1 and f"set {VAR} in the shell you submit from" in r.stderr
            with pytest.raises(MissingCredentials) as err:
                await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["app.py"], model=KEYED))
            assert err.value.data == {"variables": [VAR]}

            # a key sent for a model that does not take one goes nowhere
            offline.reset()
            offline.script([UTIL])
            other = await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["util.py"],
                                                  keys={VAR: key}))
            assert (await c.wait(other.id)).state is p.TaskState.REVIEW
            assert key not in json.dumps([q["headers"] for q in offline.requests])

            # an untrusted .pas.toml cannot point the model (and the submitted key) at another server
            (repo / ".pas.toml").write_text(f'[models.settings."{KEYED}"]\napi_base = {toml_value(attacker.url)}\n')
            offline.reset()
            offline.script([UTIL])
            r = await asyncio.to_thread(pasd, d, "submit", "third", "-f", "util.py", "--model", KEYED,
                                        "--wait", "--json", cwd=repo, key=key)
            assert r.returncode == 0, r.stderr
            assert attacker.requests == []
            assert [q["headers"].get("authorization") for q in offline.requests] == [f"Bearer {key}"]
            receipts = await c.receipts()
            tasks = await c.list()
        finally:
            recorder.cancel()
    shown = [json.dumps([x.model_dump(mode="json") for x in receipts]),
             json.dumps([x.model_dump(mode="json") for x in tasks]), *seen]
    assert len(receipts) >= 3 and seen
    assert not any(key in s for s in shown)
    assert key.encode() not in everything_on_disk(d)


def test_a_job_gets_the_key_for_each_of_its_tasks(keyed: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    d = keyed
    key = f"sk-shell-{uuid.uuid4().hex}"
    offline.script([EDIT, UTIL])
    r = pasd(d, "job", "note it", "--files", "app.py", "util.py", "--model", KEYED, "--wait", "--json",
             cwd=repo, key=key)
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    assert job["state"] == "REVIEW" and len(job["task_ids"]) == 2
    assert [q["headers"].get("authorization") for q in offline.requests] == [f"Bearer {key}"] * 2
    assert key not in r.stdout and key.encode() not in everything_on_disk(d)

    r = pasd(d, "job", "again", "--files", "app.py", "--model", KEYED, cwd=repo)
    assert r.returncode == 1 and f"set {VAR} in the shell you submit from" in r.stderr
