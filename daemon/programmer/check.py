"""Run a task's check command in its snapshot: own process group, timeout, capped output."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from daemon.programmer.proc import run
from daemon.protocol import CheckRun

_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def _clean_env() -> dict[str, str]:
    # A check runs code the model wrote: it gets no provider credentials.
    return {k: v for k, v in os.environ.items() if not any(w in k.upper() for w in _SECRET_WORDS)}


async def run_check(command: str, cwd: Path, round_no: int, timeout: float, limit: int) -> CheckRun:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return CheckRun(round=round_no, command=command, exit_code=127, output=f"cannot parse command: {exc}")
    try:
        res = await run(argv, cwd, timeout=timeout, env=_clean_env(), limit=limit)
    except OSError as exc:
        return CheckRun(round=round_no, command=command, exit_code=127, output=f"cannot run {argv[0]}: {exc.strerror}")
    output = (res.stdout + ("\n" if res.stdout and res.stderr else "") + res.stderr)[-limit:]
    return CheckRun(round=round_no, command=command, exit_code=res.code, timed_out=res.timed_out, output=output)
