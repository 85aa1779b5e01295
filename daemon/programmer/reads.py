"""File requests: the model asks to read a file (`READ path`), pasd answers with it read-only.

Every request passes the guardrails before a byte is read: a plain relative path inside the
workspace, no symbolic link on the way (daemon/safe_io.py), not ignored by git, not a
secret-looking file nor one the `[context] deny` globs name, text, and within the size caps.
A refusal carries its reason, which the model sees. Reading a file never makes it editable.
"""

from __future__ import annotations

import asyncio
import errno
import fnmatch
import os
import stat
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from daemon import safe_io
from daemon.programmer.guard import normalize
from daemon.programmer.proc import run
from daemon.programmer.spec import ContextSpec

SECRETS = (".env", ".env.*", "*.pem", "*.key", "id_*")
"""File names never sent to a model, whatever the config says."""
MAX_REQUESTS = 20
"""Requests answered in one round; the rest are refused with a reason."""


@dataclass(frozen=True)
class ReadAnswer:
    """One request's answer: the file's text, or None and why not."""

    path: str
    text: str | None
    reason: str = ""


def _refusal(path: str, ctx: ContextSpec, editable: Collection[str], sent: Collection[str]) -> str | None:
    """Why `path` is refused before anything is read, or None."""
    p = PurePosixPath(path)
    if not path:
        return "an empty path"
    if p.is_absolute() or (len(path) > 1 and path[1] == ":"):
        return "an absolute path; ask for a path relative to the workspace"
    if ".." in p.parts:
        return "the path leaves the workspace (..)"
    if p.parts[0] == ".git":
        return "a file inside .git"
    if path in editable:
        return "one of the task's files: it is in the prompt already, as it is now"
    if path in sent:
        return "sent in an earlier round; see above"
    name = p.name
    for glob in SECRETS:
        if fnmatch.fnmatchcase(name, glob):
            return f"looks like a secret ({glob}); pasd never sends such files to a model"
    for glob in ctx.deny:
        if fnmatch.fnmatchcase(path, glob) or fnmatch.fnmatchcase(name, glob):
            return f"the configuration keeps it from the model ([context] deny {glob!r})"
    if ctx.unreachable:
        return ctx.unreachable
    return None


async def _ignored(root: Path, paths: list[str]) -> set[str] | None:
    """The paths git ignores (.gitignore and the like): none outside a git repository, None if git
    cannot tell (then nothing is sent)."""
    if not paths:
        return set()
    out = await run(["git", "check-ignore", "-z", "--stdin"], root, timeout=30,
                    input="\0".join(paths).encode() + b"\0")
    if out.code == 1:
        return set()
    if out.code == 0:
        return {x for x in out.stdout.split("\0") if x}
    return set() if "not a git repository" in out.stderr else None


def _read(root: Path, path: str, limit: int) -> tuple[bytes | None, str]:
    """The file's bytes (at most limit + 1), or None and why not; never through a link."""
    try:
        with safe_io.parent(root, path) as (dir_fd, name):
            try:
                fd = os.open(name, safe_io.OPEN_READ, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise safe_io.LinkRefused(path) from None
                raise
            try:
                st = os.fstat(fd)
                if stat.S_ISDIR(st.st_mode):
                    return None, "a directory; ask for the files in it by name"
                if not stat.S_ISREG(st.st_mode):
                    return None, "not a regular file"
                if st.st_size > limit:
                    return None, f"{st.st_size:,} bytes, past the limit of {limit:,} bytes per file"
                chunks, left = [], limit + 1
                while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
                    chunks.append(chunk)
                    left -= len(chunk)
                return b"".join(chunks), ""
            finally:
                os.close(fd)
    except safe_io.LinkRefused:
        return None, "the path goes through a symbolic link; pasd does not follow links"
    except (FileNotFoundError, NotADirectoryError):
        return None, ""
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"


async def answer(root: Path, requests: list[str], ctx: ContextSpec, editable: Collection[str],
                 sent: Collection[str]) -> list[ReadAnswer]:
    """Answer one round of requests against the workspace at `root` (as it is now)."""
    seen: list[str] = []
    for raw in requests:
        path = normalize(raw)
        if path not in seen:
            seen.append(path)
    why: dict[str, str] = {}
    data: dict[str, bytes] = {}
    for n, path in enumerate(seen):
        if (refused := _refusal(path, ctx, editable, sent)) is not None:
            why[path] = refused
        elif n >= MAX_REQUESTS:
            why[path] = f"past {MAX_REQUESTS} requests in one answer; ask again later"
        else:
            got, reason = await asyncio.to_thread(_read, root, path, ctx.read_max_bytes)
            if got is None:
                why[path] = reason or ctx.missing
            else:
                data[path] = got
    # asked only for files read without crossing a link: git stops at a path beyond a symbolic link
    ignored = await _ignored(root, list(data))
    answers: list[ReadAnswer] = []
    budget = ctx.round_max_bytes
    for path in seen:
        if path in why:
            answers.append(ReadAnswer(path, None, why[path]))
            continue
        raw_bytes = data[path]
        text = _text(raw_bytes)
        if ignored is None:
            reason = "git could not tell whether it is ignored; pasd does not send it"
        elif path in ignored:
            reason = "ignored by git (.gitignore); pasd does not send ignored files"
        elif len(raw_bytes) > ctx.read_max_bytes:  # it grew while being read
            reason = f"past the limit of {ctx.read_max_bytes:,} bytes per file"
        elif text is None:
            reason = "a binary file; pasd sends text files only"
        elif len(raw_bytes) > budget:
            reason = (f"{len(raw_bytes):,} bytes, past what is left of this round's {ctx.round_max_bytes:,} bytes; "
                      "ask for it again next round")
        else:
            budget -= len(raw_bytes)
            answers.append(ReadAnswer(path, text))
            continue
        answers.append(ReadAnswer(path, None, reason))
    return answers


def _text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\0" in text else text
