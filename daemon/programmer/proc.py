"""Async subprocesses: git and check commands never block the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ProcResult:
    code: int | None  # None: killed on timeout
    stdout: str
    stderr: str
    timed_out: bool = False


class GitError(RuntimeError):
    pass


async def run(argv: list[str], cwd: Path | str, *, timeout: float | None = None,
              input: bytes | None = None, env: dict[str, str] | None = None,
              limit: int | None = None) -> ProcResult:
    """Run argv in its own process group; on timeout or cancellation kill the whole group."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=str(cwd), env=env,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), timeout)
    except TimeoutError:
        _kill_group(proc.pid)
        out, err = await proc.communicate()
        return ProcResult(None, _cap(out, limit), _cap(err, limit), timed_out=True)
    except BaseException:
        _kill_group(proc.pid)
        with contextlib.suppress(Exception):
            await proc.wait()
        raise
    return ProcResult(proc.returncode, _cap(out, limit), _cap(err, limit))


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _cap(data: bytes, limit: int | None) -> str:
    if limit is not None and len(data) > limit:
        data = data[:limit] + b"\n[... output truncated ...]\n"
    return data.decode("utf-8", "replace")


async def git(cwd: Path | str, *args: str, timeout: float = 60.0) -> str:
    """Run one git command; its stdout, or GitError with git's own message."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    res = await run(["git", *args], cwd, timeout=timeout, env=env)
    if res.code != 0:
        msg = res.stderr.strip() or res.stdout.strip() or f"exit {res.code}"
        raise GitError(f"git {args[0]}: {msg}")
    return res.stdout
