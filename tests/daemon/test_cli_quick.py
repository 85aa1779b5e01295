"""The quick commands (`status`, `submit`, `revise`) as a script calls them in a loop: they load no
schema library and no event loop, and what they send and print is the protocol's own schema.

Speed itself is measured in bench/startup.py; these tests hold the structure that gives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from daemon import protocol as p
from daemon.testing import DaemonProcess

# What a quick command must not load: the schema library, the event loop, the models and the config
# (the daemon validates and resolves; it has them), nor anything heavier.
NOT_LOADED = ("pydantic", "pydantic_core", "asyncio", "daemon.protocol", "daemon.client", "daemon.config",
              "litellm", "openai", "textual", "pygls", "tree_sitter", "watchfiles", "shtab", "importlib.metadata")

# Run one command in this interpreter as the console script would, then say what it loaded.
PROBE = """
import json, sys
from daemon.cli.main import main
try:
    code = main(sys.argv[1:])
finally:
    print("LOADED " + json.dumps([m for m in {names!r} if m in sys.modules]), file=sys.stderr)
sys.exit(code)
"""


def run(d: DaemonProcess, *args: str, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    code = PROBE.format(names=NOT_LOADED)
    r = subprocess.run([sys.executable, "-c", code, *args], env=d.env, cwd=cwd, capture_output=True, text=True,
                       timeout=120)
    lines = r.stderr.splitlines()
    loaded = json.loads(next(line for line in lines if line.startswith("LOADED "))[len("LOADED "):])
    r.stderr = "\n".join(line for line in lines if not line.startswith("LOADED "))
    return r, loaded


def test_the_parser_and_the_quick_commands_import_only_the_standard_library() -> None:
    code = ("import sys, daemon.cli.main, daemon.cli.quick, daemon.cli.revise; "
            f"print(','.join(m for m in {NOT_LOADED!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"the CLI's quick path imports {out}"


def test_status_and_submit_run_without_pydantic_and_speak_the_protocol(daemon: DaemonProcess, repo: Path) -> None:
    r, loaded = run(daemon, "status", "--json")
    assert r.returncode == 0 and loaded == [], (r.stderr, loaded)
    status = json.loads(r.stdout)
    assert p.PoolStatus.model_validate(status).model_dump(mode="json") == status  # the result model's JSON, whole
    assert [pr["state"] for pr in status["programmers"]] == ["IDLE"] * 4

    r, loaded = run(daemon, "status")
    assert r.returncode == 0 and loaded == [], (r.stderr, loaded)
    assert r.stdout.splitlines()[0].split() == ["PROGRAMMER", "STATE", "TASK", "MODEL", "BUSY", "DONE", "FAILURES"]
    assert "queued 0 · running 0 · awaiting review 0" in r.stdout

    r, loaded = run(daemon, "submit", "add a docstring", "--file", "app.py", "--range", "1:2", "--json", cwd=repo)
    assert r.returncode == 0 and loaded == [], (r.stderr, loaded)
    task = p.TaskInfo.model_validate(json.loads(r.stdout))
    assert task.instruction == "add a docstring" and task.files == ["app.py"]
    assert task.selection == p.Selection(path="app.py", start_line=1, end_line=2)

    r, loaded = run(daemon, "submit", "add a docstring", "--file", "util.py", "--wait", cwd=repo)
    assert r.returncode == 0 and loaded == [], (r.stderr, loaded)
    assert r.stdout.splitlines()[0].endswith("REVIEW") and "  files: util.py" in r.stdout.splitlines()
    assert "done:" in r.stderr  # the progress lines came from the event stream


def test_a_value_the_daemon_refuses_is_one_line_and_nothing_is_queued(daemon: DaemonProcess, repo: Path) -> None:
    r, _ = run(daemon, "submit", "x", "--file", "app.py", "--model", "nope/model", cwd=repo)
    assert r.returncode == 1 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith("pasd: ")
    r, _ = run(daemon, "submit", "   ", "--file", "app.py", cwd=repo)
    assert r.returncode == 2 and "instruction is blank" in r.stderr
    r, _ = run(daemon, "status", "--json")
    assert json.loads(r.stdout)["queued"] == 0


def test_without_a_daemon_the_quick_commands_say_how_to_start_one(tmp_path: Path) -> None:
    env = {**os.environ, "PASD_SOCKET": str(tmp_path / "none.sock")}
    r = subprocess.run([sys.executable, "-m", "daemon", "status", "--json"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "the daemon is not running" in r.stderr and "pasd start" in r.stderr, r.stderr
