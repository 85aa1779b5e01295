"""The `pasd` command as a new user meets it: usage errors, pipes, short ids, wording, versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, block, commit_all, write_files


def pasd(d: DaemonProcess, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=d.env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


BAD_VALUES = [
    (["submit", "x", "-f", "app.py", "--timeout", "-5"], "--timeout", "above 0 to 604800"),
    (["submit", "x", "-f", "app.py", "--timeout", "0"], "--timeout", "above 0 to 604800"),
    (["submit", "x", "-f", "app.py", "--budget", "-1"], "--budget", "from 0 to 1000000"),
    (["submit", "x", "-f", "app.py", "--priority", "99999999"], "--priority", "whole number"),
    (["submit", "x", "-f", "app.py", "--range", "50:10"], "--range", "START <= END"),
    (["submit", "x", "-f", "app.py", "--range", "a:b"], "--range", "START:END"),
    (["submit", "x", "--range", "1:2"], "--range needs --file", ""),
    (["job", "x", "--files", "app.py", "--budget", "-2"], "--budget", "from 0 to 1000000"),
    (["job", "x", "--files", "app.py", "--task-budget", "nan"], "--task-budget", "a number"),
    (["tasks", "--limit", "0"], "--limit", "from 1 to 10000"),
    (["tasks", "--state", "done"], "--state", "queued, running, review"),
    (["receipts", "--limit", "0"], "--limit", "from 1 to 100000"),
    (["jobs", "--limit", "-1"], "--limit", "from 1 to 10000"),
]


def test_bad_values_are_one_line_usage_errors_and_nothing_is_sent(daemon: DaemonProcess, repo: Path) -> None:
    for argv, flag, accepts in BAD_VALUES:
        r = pasd(daemon, *argv, cwd=repo)
        assert r.returncode == 2 and r.stdout == "", (argv, r)
        [line] = r.stderr.splitlines()  # no traceback, no usage block
        assert line.startswith(f"pasd {argv[0]}: ") and flag in line and accepts in line, (argv, line)
    assert json.loads(pasd(daemon, "tasks", "--json").stdout) == []
    assert json.loads(pasd(daemon, "jobs", "--json").stdout) == []


def test_help_names_each_state_once_and_explains_limit(daemon: DaemonProcess) -> None:
    text = pasd(daemon, "tasks", "--help").stdout
    assert text.count("review") == 1 and "REVIEW" not in text
    assert "at most this many tasks" in text


def into_closed_pipe(d: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `pasd ARGS | head -0`: the reader is gone before the first byte is written."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run([sys.executable, "-m", "daemon", *args], env=d.env, stdout=w, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(w)


def test_review_flow_reads_right_for_a_newcomer(daemon: DaemonProcess, repo: Path) -> None:
    r = pasd(daemon, "submit", "add a docstring", "--file", "app.py", "--wait", "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    task_id = json.loads(r.stdout)["id"]

    # a reader that stops early ends the command quietly, as `git log | head` does
    for argv in (["show", task_id], ["diff", task_id], ["tasks"], ["receipts"], ["status"]):
        r = into_closed_pipe(daemon, *argv)
        assert (r.returncode, r.stderr) == (141, ""), (argv, r.stderr)

    # one character is a prefix like any other
    r = pasd(daemon, "show", task_id[0])
    assert r.returncode == 0 and r.stdout.startswith(f"task {task_id}  REVIEW"), r.stderr
    assert "  changes: 1 file, +1 -0" in r.stdout.splitlines()

    # two jobs: their ids share the first character, and the error names both
    jobs = [json.loads(pasd(daemon, "job", f"note {name}", "--files", name, "--wait", "--json", cwd=repo).stdout)
            for name in ("app.py", "util.py")]
    r = pasd(daemon, "job", "show", "j")
    assert r.returncode == 1 and "ambiguous" in r.stderr and all(j["id"] in r.stderr for j in jobs), r.stderr
    r = pasd(daemon, "job", "show", jobs[1]["id"])
    first = r.stdout.splitlines()[0]
    assert first == f"job {jobs[1]['id']}  REVIEW  (per-file, 1 of 1 task done)", first
    assert "1 attempt, " in r.stdout and " 1 file +1 -0" in r.stdout


def test_not_running_is_said_once(daemon: DaemonProcess) -> None:
    daemon.stop()
    r = pasd(daemon, "tasks")
    [line] = r.stderr.splitlines()
    assert r.returncode == 1 and line.startswith("pasd: the daemon is not running") and "`pasd start`" in line
    assert "pasd is" not in line and line.count("not running") == 1


def test_diff_numbers_its_hunks_and_stays_a_patch(daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    long = "".join(f"line {i}\n" for i in range(1, 41))
    write_files(repo, {"long.txt": long})
    commit_all(repo, "long file")
    offline.script([{"content": block("long.txt", "line 3\n", "line three\n")
                     + block("long.txt", "line 30\n", "line thirty\n")}])
    r = pasd(daemon, "submit", "spell two numbers", "--file", "long.txt", "--wait", "--json", cwd=repo)
    task_id = json.loads(r.stdout)["id"]
    r = pasd(daemon, "reject", task_id, "--hunks", "2")
    assert r.returncode == 0, r.stderr

    text = pasd(daemon, "diff", task_id).stdout
    headers = [line for line in text.splitlines() if line.startswith("@@")]
    assert len(headers) == 2 and headers[0].endswith(" @@ hunk 1") and headers[1].endswith(" @@ hunk 2, rejected")
    patch = repo.parent / "task.patch"
    patch.write_text(text + "\n")
    check = subprocess.run(["git", "apply", "--check", "-v", str(patch)], cwd=repo, capture_output=True, text=True)
    assert check.returncode == 0 and "long.txt" in check.stderr, check.stderr
    # --json is the daemon's diff as it was: no numbers in it
    assert "hunk 1" not in json.loads(pasd(daemon, "diff", task_id, "--json").stdout)["diff"]


def test_version_of_each_command(tmp_path: Path) -> None:
    code = "import importlib.metadata as m; print(m.version('pasd'))"
    expected = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    for module, prog in (("daemon", "pasd"), ("pas_tui", "pas-tui")):
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", module, "--version"], capture_output=True,
                           text=True, timeout=60, cwd=tmp_path, env={**os.environ, "PASD_SOCKET": str(tmp_path / "s")})
        assert r.returncode == 0 and r.stdout == f"{prog} {expected}\n", r
        loaded = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in r.stderr.splitlines()}
        assert not loaded & {"pydantic", "textual", "litellm", "pygls"}, (prog, loaded & {"pydantic", "textual"})


def test_a_missing_pasd_config_file_is_reported(make_daemon: DaemonFactory, tmp_path: Path) -> None:
    d = make_daemon(start=False)
    saved = d.config_file.read_text()
    d.config_file.unlink()
    d.start()
    warning = f"$PASD_CONFIG names {d.config_file}, which does not exist; the built-in defaults apply"
    assert warning in d.log.read_text()  # the daemon logs it as it starts

    r = pasd(d, "status")
    assert r.returncode == 0 and r.stderr.splitlines() == [f"pasd: warning: {warning}"]
    assert f"config error (last good settings in force): {warning}" in r.stdout
    status = json.loads(pasd(d, "status", "--json").stdout)
    assert status["config_errors"] == [warning]

    d.config_file.write_text(saved)  # the file is there now: nothing to say
    r = pasd(d, "status", "--json")
    assert r.stderr == "" and json.loads(r.stdout)["config_errors"] == []

    # the default path missing is normal and silent
    env = {k: v for k, v in d.env.items() if k != "PASD_CONFIG"}
    r = subprocess.run([sys.executable, "-m", "daemon", "tasks"], env={**env, "XDG_CONFIG_HOME": str(tmp_path / "x")},
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
