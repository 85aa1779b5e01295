"""Files inside a workspace, reached without following a link in any component.

Every directory on a path is opened relative to the one before it with O_NOFOLLOW, starting
at the workspace root, and files are read, created, renamed and removed relative to those
directory descriptors: a symlink committed in the repository, or swapped in while an approve
runs, cannot redirect a write out of the workspace. New files are created exclusively
(O_CREAT|O_EXCL|O_NOFOLLOW) under unpredictable names in the target's own directory and
fsynced before they are renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted at the target must not hang the read
OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
TEMP_SUFFIX = ".pasd-tmp"


class LinkRefused(Exception):
    """The path crosses a symbolic link; nothing is read or written through it."""


@dataclass(frozen=True)
class Current:
    """A file as read: its bytes (None when absent) and its permission bits."""

    data: bytes | None
    mode: int | None = None


def temp_name(name: str) -> str:
    """An unpredictable hidden name beside `name` (kept under the 255-byte name limit)."""
    stem = name.encode()[:80].decode(errors="ignore")
    return f".{stem}.{secrets.token_hex(8)}{TEMP_SUFFIX}"


def _refuse_if_link(dir_fd: int, name: str, shown: str) -> None:
    with contextlib.suppress(OSError):
        if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise LinkRefused(f"{shown} is a symbolic link")


def open_parent(root: Path, rel: str, *, made: list[str] | None = None) -> tuple[int, str]:
    """A descriptor of the directory holding `rel` and the file's name; no link is followed.

    With `made`, missing directories are created (0o777 & ~umask) and listed there, shallowest
    first; without it a missing directory raises FileNotFoundError.
    """
    parts = PurePosixPath(rel).parts
    if not parts or any(x in ("", ".", "..") for x in parts) or PurePosixPath(rel).is_absolute():
        raise LinkRefused(f"{rel} is not a plain relative path")
    fd = os.open(root, OPEN_DIR)
    try:
        for n, part in enumerate(parts[:-1]):
            shown = "/".join(parts[: n + 1])
            try:
                sub = os.open(part, OPEN_DIR, dir_fd=fd)
            except FileNotFoundError:
                if made is None:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
                    made.append(shown)
                sub = _open_dir(fd, part, shown)
            except OSError:
                _refuse_if_link(fd, part, shown)
                raise
            os.close(fd)
            fd = sub
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def _open_dir(dir_fd: int, name: str, shown: str) -> int:
    try:
        return os.open(name, OPEN_DIR, dir_fd=dir_fd)
    except OSError:
        _refuse_if_link(dir_fd, name, shown)
        raise


@contextlib.contextmanager
def parent(root: Path, rel: str, *, made: list[str] | None = None) -> Iterator[tuple[int, str]]:
    fd, name = open_parent(root, rel, made=made)
    try:
        yield fd, name
    finally:
        os.close(fd)


def read_at(dir_fd: int, name: str, shown: str) -> Current:
    """The file `name` in that directory; a link or anything but a regular file is refused."""
    try:
        fd = os.open(name, OPEN_READ, dir_fd=dir_fd)
    except FileNotFoundError:
        return Current(None)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LinkRefused(f"{shown} is a symbolic link") from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", shown)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", shown)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return Current(b"".join(chunks), stat.S_IMODE(st.st_mode))
    finally:
        os.close(fd)


def read(root: Path, rel: str) -> Current:
    """A workspace file by its relative path; a missing directory on the way means no file."""
    try:
        with parent(root, rel) as (fd, name):
            return read_at(fd, name, rel)
    except FileNotFoundError:
        return Current(None)


def stage(dir_fd: int, tmp: str, data: bytes, mode: int | None) -> None:
    """Write `data` to the new temp file `tmp` (created exclusively, never through a link), fsynced.

    `mode` None (a new file): the user's default, 0o666 & ~umask; otherwise exactly `mode`.
    """
    fd = os.open(tmp, OPEN_NEW, 0o666 if mode is None else 0o600, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if mode is not None:
            os.fchmod(fd, mode)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        remove(dir_fd, tmp)
        raise
    os.close(fd)


def switch(dir_fd: int, tmp: str, name: str) -> None:
    """Rename the staged temp over `name` in one step (a link at `name` is replaced, not followed)."""
    os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def remove(dir_fd: int, name: str) -> bool:
    """Unlink `name` (never what a link points to); False if it was already gone."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def exists(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def same_dir(root: Path, rel: str, dir_fd: int) -> bool:
    """Is the directory holding `rel` still the one `dir_fd` opened (not moved or swapped for a link)?"""
    try:
        with parent(root, rel) as (fd, _):
            a, b = os.fstat(fd), os.fstat(dir_fd)
    except (OSError, LinkRefused):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def remove_dirs(root: Path, dirs: list[str]) -> None:
    """Remove these directories if they are empty, deepest first (best effort)."""
    for rel in sorted(dirs, key=lambda d: d.count("/"), reverse=True):
        with contextlib.suppress(OSError, LinkRefused), parent(root, rel) as (fd, name):
            os.rmdir(name, dir_fd=fd)
