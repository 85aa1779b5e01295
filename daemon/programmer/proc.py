"""Async subprocesses: git and check commands never block the event loop.

A command runs in its own process group. Its output is read from pipes this module owns, so a
process that outlives the command while holding them (a daemon started with `setsid ... &`)
cannot keep the caller waiting: once the command ends or runs out of time its group is killed,
the pipes get a short grace to drain, then they are closed. A run given a `marker` also puts
that random value in the command's environment and, at the end, kills every process of this
user still carrying it: that catches what left the process group (a new session, a double
fork), unless it also cleared its environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

MARKER_VAR = "PASD_CHECK_ID"
TRUNCATED = "\n[... output truncated ...]\n"
PIPE_GRACE_S = 1.0  # after the command is gone, how long its pipes may take to reach EOF
_CHUNK = 65536


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
              limit: int | None = None, marker: str | None = None) -> ProcResult:
    """Run argv in its own process group; on timeout or cancellation kill the whole group
    (and, with `marker`, every process that carries it)."""
    if marker is not None:
        env = {**(os.environ if env is None else env), MARKER_VAR: marker}
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=str(cwd), env=env,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=out_w, stderr=err_w, start_new_session=True,
        )
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    outputs = (_Output(out_r, limit), _Output(err_r, limit))
    readers = [asyncio.create_task(o.read()) for o in outputs]
    timed_out = False
    try:
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(_feed(proc, input), proc.wait())
        except TimeoutError:
            timed_out = True
        if marker is not None or timed_out:
            await _contain(proc.pid, marker)
        done, _ = await asyncio.wait(readers, timeout=PIPE_GRACE_S)
        if len(done) < len(readers) and marker is None:
            # a process outside the group still holds the pipes: take the group down, then give up on them
            _kill_group(proc.pid)
            await asyncio.wait(readers, timeout=PIPE_GRACE_S)
    except BaseException:  # cancelled: nothing the command started may survive the task
        await asyncio.shield(_contain(proc.pid, marker))
        with contextlib.suppress(BaseException):
            await asyncio.shield(proc.wait())
        raise
    finally:
        for reader in readers:
            reader.cancel()  # closes a pipe still held open by a process that escaped everything
        await asyncio.gather(*readers, return_exceptions=True)
        for o in outputs:
            o.close()
    out, err = (o.text() for o in outputs)
    if timed_out:
        with contextlib.suppress(ProcessLookupError, TimeoutError):
            await asyncio.wait_for(proc.wait(), PIPE_GRACE_S)  # reap it
        return ProcResult(None, out, err, timed_out=True)
    return ProcResult(proc.returncode, out, err)


async def _feed(proc: asyncio.subprocess.Process, data: bytes | None) -> None:
    if data is None or proc.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
    proc.stdin.close()


class _Output:
    """One pipe's first `limit` bytes; what was read stays when the reading is cut short."""

    def __init__(self, fd: int, limit: int | None) -> None:
        self.fd: int | None = fd
        self.limit = limit
        self.kept = bytearray()
        self.truncated = False

    async def read(self) -> None:
        """Read the pipe to EOF (or until cancelled), then close it."""
        assert self.fd is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_CHUNK)
        pipe = os.fdopen(self.fd, "rb", 0)
        self.fd = None  # the file object owns it now
        try:
            transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        except BaseException:
            pipe.close()
            raise
        try:
            while chunk := await reader.read(_CHUNK):
                room = len(chunk) if self.limit is None else max(0, self.limit - len(self.kept))
                self.kept += chunk[:room]
                self.truncated = self.truncated or room < len(chunk)  # keep draining: the writer must not block
        finally:
            transport.close()

    def close(self) -> None:
        """Close the pipe if reading it never started (a task cancelled before its first step)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def text(self) -> str:
        return self.kept.decode("utf-8", "replace") + (TRUNCATED if self.truncated else "")


async def _contain(pgid: int, marker: str | None) -> None:
    _kill_group(pgid)
    if marker is not None:
        await asyncio.to_thread(sweep, marker)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def sweep(marker: str, proc_dir: str = "/proc") -> int:
    """SIGKILL every process of this user whose environment carries the marker; how many.

    Blocking (it reads /proc): run it in a thread. Passes repeat while they find something, so a
    process forked during one pass is caught by the next.
    """
    needle = f"{MARKER_VAR}={marker}".encode()
    uid, me = os.getuid(), os.getpid()
    killed: set[int] = set()
    for _ in range(10):
        found = 0
        with contextlib.suppress(OSError), os.scandir(proc_dir) as entries:
            for entry in entries:
                if not entry.name.isdigit() or int(entry.name) == me or int(entry.name) in killed:
                    continue
                try:
                    if entry.stat().st_uid != uid:
                        continue
                    with open(os.path.join(entry.path, "environ"), "rb") as fh:
                        environ = fh.read()
                except OSError:
                    continue  # gone already, or not ours to read
                if needle in environ.split(b"\0"):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(int(entry.name), signal.SIGKILL)
                        killed.add(int(entry.name))
                        found += 1
        if not found:
            break
    return len(killed)


# A repository's own .git/config and hooks are the repository's, not the user's: the snapshot's git
# commands run none of its hooks (post-checkout, ...) and no fsmonitor command it names.
GIT_SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")


async def git(cwd: Path | str, *args: str, timeout: float = 60.0) -> str:
    """Run one git command; its stdout, or GitError with git's own message."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    res = await run(["git", *GIT_SAFE, *args], cwd, timeout=timeout, env=env)
    if res.code != 0:
        msg = res.stderr.strip() or res.stdout.strip() or f"exit {res.code}"
        raise GitError(f"git {args[0]}: {msg}")
    return res.stdout
