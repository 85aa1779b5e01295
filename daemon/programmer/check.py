"""Run a task's check command in its snapshot: sandboxed (see sandbox.py), allowlisted
environment, timeout, capped output with every known secret taken out before anyone sees it.

Redaction happens here, where the check runs (a remote node, for the Ray backend), with the
secrets of this process's environment: CheckRun.output is clean before it reaches a receipt,
the database, a front end or the repair prompt sent to the model.
"""

from __future__ import annotations

import os
import shlex
import warnings
from pathlib import Path

from daemon import paths
from daemon.programmer import sandbox
from daemon.programmer.proc import TRUNCATED, run
from daemon.programmer.spec import TaskFailed, TaskSpec
from daemon.protocol import CheckRun
from daemon.secrets import redact, secret_values


async def require_sandbox(spec: TaskSpec) -> str | None:
    """bwrap's path when the check will run in it; None for the fallback; TaskFailed when the
    settings demand bubblewrap and it does not work here."""
    if spec.limits.sandbox == "off":
        return None
    exe, why = await sandbox.bwrap()
    if exe is None and spec.limits.sandbox == "bwrap":
        raise TaskFailed("sandbox", f"check not run: [guardrails] sandbox = \"bwrap\", but {why}")
    return exe


async def run_check(spec: TaskSpec, cwd: Path, round_no: int) -> CheckRun:
    """Run the spec's check command once in cwd (a snapshot under spec.worktrees_dir)."""
    command = spec.check or ""
    limits = spec.limits
    named = [*spec.secret_env, *([spec.model.api_key_env] if spec.model.api_key_env else [])]
    # and the keys submitted with the task, though a check's environment never holds them
    values = sorted({*secret_values(named), *spec.model.keys.values()}, key=len, reverse=True)

    def done(code: int | None, output: str, timed_out: bool = False) -> CheckRun:
        return CheckRun(round=round_no, command=command, exit_code=code, timed_out=timed_out,
                        output=redact(output, values))

    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return done(127, f"cannot parse command: {exc}")
    if not argv:
        return done(127, "empty check command")
    env = sandbox.check_env(limits.check_env)
    exe = await require_sandbox(spec)
    if exe is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs' note on an unset XDG_RUNTIME_DIR: not news here
            socket = paths.socket_path()
        box = sandbox.box_for(cwd, Path(spec.worktrees_dir), network=limits.check_network,
                              socket=socket, home=env.get("HOME"))
        argv = box.argv(exe, argv)
        env["TMPDIR"] = "/tmp"  # the sandbox's own
    try:
        res = await run(argv, cwd, timeout=limits.check_timeout_s, env=env, limit=limits.check_output_bytes,
                        marker=os.urandom(12).hex())
    except OSError as exc:
        return done(127, f"cannot run {argv[0]}: {exc.strerror}")
    # each stream on its own: a secret cut by the truncation leaves no prefix behind
    out, err = (redact(s, values, cut=TRUNCATED) for s in (res.stdout, res.stderr))
    output = (out + ("\n" if out and err else "") + err)[-limits.check_output_bytes:]
    return done(res.code, output, res.timed_out)
