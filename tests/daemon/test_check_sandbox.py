"""Check commands: an allowlisted environment, bubblewrap where it works, nothing left running."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.programmer.sandbox import probe
from daemon.testing import DaemonFactory, DaemonProcess, block, make_repo, offline_config

# Root bypasses the kernel's same-user protections (CAP_SYS_PTRACE): a process without
# capabilities is what an ordinary same-user process is.
NO_CAPS = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"] if os.getuid() == 0 else []


EDIT = {"content": block("app.py", "def add(a, b):\n", "def add(a, b):  # checked\n")}


def submit(repo: Path, check: str, **kw: object) -> p.SubmitParams:
    return p.SubmitParams.model_validate({"workspace": str(repo), "instruction": "change it", "files": ["app.py"],
                                          "check": check, **kw})


def need_bwrap() -> None:
    exe, why = probe()
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have a working bubblewrap: {why}")
        pytest.skip(why)


@pytest.fixture(params=["auto", "off"])
def mode(request: pytest.FixtureRequest) -> str:
    """The [guardrails] sandbox setting; `auto` means bubblewrap here (skipped where it cannot work)."""
    if request.param == "auto":
        need_bwrap()
    return str(request.param)


def running(marker: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()


async def until(condition: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return False


async def check_output(d: DaemonProcess, repo: Path, check: str) -> p.CheckRun:
    async with d.client() as c:
        task = await c.wait((await c.submit(submit(repo, check))).id)
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
    assert receipt.checks, task
    return receipt.checks[0]


async def test_a_check_gets_only_the_allowlisted_environment(make_daemon: DaemonFactory, offline: OfflineModel,
                                                             repo: Path, mode: str) -> None:
    cred = "cred-" + uuid.uuid4().hex
    d = make_daemon(env={"MY_LLM_CRED": cred, "PASD_TEST_PLAIN": "plain-daemon-value",
                         "PASD_TEST_NAMED": "named-value", "LC_PAPER": "C"},
                    guardrails={"allow_commands": ["env"], "sandbox": mode, "max_rounds": 0,
                                "check_env": ["PASD_TEST_NAMED"]},
                    **{'models.settings."openai/pasd-offline"': {"api_key_env": "MY_LLM_CRED"}})
    offline.script([EDIT])
    run = await check_output(d, repo, "env")
    assert run.exit_code == 0, run.output
    names = {line.split("=", 1)[0] for line in run.output.splitlines() if "=" in line}
    # the key is not there at all (not merely redacted), nor any other daemon variable
    assert cred not in run.output and "MY_LLM_CRED" not in names and "PASD_TEST_PLAIN" not in names
    assert "PASD_SOCKET" not in names and "PASD_STATE_DIR" not in names
    assert "PASD_TEST_NAMED=named-value" in run.output.splitlines()  # [guardrails] check_env
    assert {"PATH", "HOME", "LC_PAPER"} <= names
    # PWD: bubblewrap sets it for --chdir
    assert names <= {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR",
                     "PASD_TEST_NAMED", "PASD_CHECK_ID", "PWD"} | {n for n in names if n.startswith("LC_")}
    assert offline.requests[0]["headers"]["authorization"] == f"Bearer {cred}"  # the model did get it


async def test_a_check_cannot_read_the_daemons_environment(tmp_path: Path, offline: OfflineModel, repo: Path,
                                                           mode: str) -> None:
    planted = "planted-" + uuid.uuid4().hex  # a plain name: nothing would redact it
    config = offline_config(offline.url, guardrails={"allow_commands": ["cat /proc/*"], "sandbox": mode,
                                                     "max_rounds": 0})
    (tmp_path / "d").mkdir()
    # without bubblewrap the daemon's non-dumpable flag is what protects it from a same-user process
    d = DaemonProcess(tmp_path / "d", config=config, env={"PASD_TEST_PLANTED": planted},
                      wrap=NO_CAPS if mode == "off" else None)
    # a same-user process that is dumpable: readable by the same check, so the check could read one
    other = subprocess.Popen([*NO_CAPS, "sleep", "120"], env={**os.environ, "PASD_TEST_PLANTED": planted})
    try:
        d.start()
        assert d.proc is not None
        offline.script([EDIT])
        daemon = await check_output(d, repo, f"cat /proc/{d.proc.pid}/environ")
        assert daemon.exit_code != 0 and planted not in daemon.output
        if mode == "off":
            offline.script([{"content": block("util.py", "def mul(a, b):\n", "def mul(a, b):  # x\n")}])
            async with d.client() as c:
                task = await c.wait((await c.submit(submit(repo, f"cat /proc/{other.pid}/environ",
                                                           files=["util.py"]))).id)
                [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
            assert planted in receipt.checks[0].output  # the same check reads a dumpable process
    finally:
        other.kill()
        other.wait()
        d.cleanup()


@pytest.fixture
def off_tmp() -> Iterator[Path]:
    """A folder outside /tmp (which a sandboxed check sees as its own empty tmpfs)."""
    path = Path(tempfile.mkdtemp(prefix="pasd-test-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_a_sandboxed_check_writes_only_its_snapshot(make_daemon: DaemonFactory, offline: OfflineModel,
                                                          off_tmp: Path) -> None:
    need_bwrap()
    repo = make_repo(off_tmp / "ws", {"app.py": "def add(a, b):\n    return a + b\n"})
    outside = off_tmp / "outside"
    outside.mkdir()
    home_file = Path.home() / f"pasd-owned-{uuid.uuid4().hex}"
    script = off_tmp / "escape.py"
    state = off_tmp / "state"
    d = make_daemon(env={"PASD_STATE_DIR": str(state)},
                    guardrails={"allow_commands": [f"{sys.executable} {script} *"], "max_rounds": 0})
    script.write_text(f"""
import os, socket, sys, urllib.request
def attempt(name, fn):
    try:
        fn()
        print(name, "DONE")
    except Exception as exc:
        print(name, "refused:", type(exc).__name__)
def write(path):
    with open(path, "w") as fh:
        fh.write("owned")
def connect(path):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
attempt("snapshot", lambda: write("snapshot-file.txt"))
attempt("tmp", lambda: write("/tmp/scratch"))
attempt("dotgit", lambda: write(".git"))  # where the daemon's next git command in this snapshot looks
attempt("workspace", lambda: write({str(repo / 'owned.txt')!r}))
attempt("outside", lambda: write({str(outside / 'owned.txt')!r}))
attempt("home", lambda: write({str(home_file)!r}))
attempt("socket", lambda: connect({str(d.socket)!r}))
attempt("network", lambda: urllib.request.urlopen({offline.url + '/models'!r}, timeout=5))
print("state:", sorted(os.listdir(sys.argv[1])))
""")
    offline.script([EDIT])
    assert (state / "pasd.db").exists()
    run = await check_output(d, repo, f"{sys.executable} {script} {state}")
    lines = dict(line.split(" ", 1) for line in run.output.splitlines() if " " in line)
    assert lines["snapshot"] == "DONE" and lines["tmp"] == "DONE", run.output
    for name in ("dotgit", "workspace", "outside", "home", "socket", "network"):
        assert lines[name].startswith("refused"), run.output
    assert lines["state:"] == "['worktrees']", run.output  # the database, receipts and logs are hidden
    assert not (repo / "owned.txt").exists() and not (outside / "owned.txt").exists() and not home_file.exists()


async def test_a_check_that_escapes_ends_at_its_timeout(make_daemon: DaemonFactory, offline: OfflineModel,
                                                        repo: Path, mode: str) -> None:
    escaped = f"sleep 313.{uuid.uuid4().int % 10**6}"
    lingering = f"sleep 314.{uuid.uuid4().int % 10**6}"
    d = make_daemon(guardrails={"allow_commands": ["sh -c *"], "check_timeout_s": 2.0, "max_rounds": 0,
                                "sandbox": mode})
    offline.script([EDIT, {"content": block("util.py", "def mul(a, b):\n", "def mul(a, b):  # x\n")}])
    async with d.client() as c:
        # a new session keeping the output pipes open, while the check itself runs past its limit
        slow = await c.wait((await c.submit(submit(repo, f"sh -c 'setsid {escaped} & sleep 60'",
                                                   timeout_s=45))).id)
        # the check ends at once, a process it started in a new session holds the pipes
        quick = await c.wait((await c.submit(submit(repo, f"sh -c 'setsid {lingering} &'", files=["util.py"],
                                                    timeout_s=45))).id)
        [slow_receipt] = await c.receipts(p.ReceiptsParams(task_id=slow.id))
        [quick_receipt] = await c.receipts(p.ReceiptsParams(task_id=quick.id))
    # the task went on to review rather than waiting on the pipes until its own 45 s limit
    assert slow.state is p.TaskState.REVIEW, slow.error
    assert slow_receipt.checks[0].timed_out and slow_receipt.checks[0].exit_code is None
    assert quick.state is p.TaskState.REVIEW, quick.error
    assert not quick_receipt.checks[0].timed_out and quick_receipt.checks[0].exit_code == 0
    assert await until(lambda: not running(escaped) and not running(lingering)), (running(escaped),
                                                                                 running(lingering))


async def test_a_cancelled_check_leaves_nothing_behind(make_daemon: DaemonFactory, offline: OfflineModel,
                                                       repo: Path, mode: str) -> None:
    escaped = f"sleep 315.{uuid.uuid4().int % 10**6}"
    d = make_daemon(guardrails={"allow_commands": ["sh -c *"], "check_timeout_s": 120.0, "sandbox": mode})
    offline.script([EDIT])
    async with d.client() as c:
        task = await c.submit(submit(repo, f"sh -c 'setsid {escaped} & sleep 100'"))
        assert await until(lambda: bool(running(escaped)), 60)
        await c.cancel(task.id)
        task = await c.wait(task.id)
    assert task.state is p.TaskState.CANCELLED
    assert await until(lambda: not running(escaped)), running(escaped)


async def test_sandbox_bwrap_refuses_to_run_a_check_without_bubblewrap(make_daemon: DaemonFactory,
                                                                        offline: OfflineModel, repo: Path,
                                                                        tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # git and sh, and no bwrap
    bin_dir.mkdir()
    for tool in ("git", "sh"):
        found = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        (bin_dir / tool).symlink_to(found)
    done = tmp_path / "ran"
    d = make_daemon(env={"PATH": str(bin_dir)},
                    guardrails={"allow_commands": ["sh -c *"], "sandbox": "bwrap", "max_rounds": 0})
    offline.script([EDIT])
    async with d.client() as c:
        task = await c.wait((await c.submit(submit(repo, f"sh -c 'echo > {done}'"))).id)
    assert task.state is p.TaskState.FAILED and task.reason == "sandbox", task
    assert "bubblewrap" in (task.error or "")
    assert not done.exists()
