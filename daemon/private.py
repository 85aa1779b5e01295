"""The daemon's own things stay private: its memory and environment, and its state directory.

The state directory holds code, diffs, receipts and logs: it and its folders are 0700, its
files 0600. The process umask is left alone, since approve writes the user's own files and
those must get the user's usual permissions.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import stat
import sys
from pathlib import Path

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
STATE_DIRS = ("receipts", "logs", "worktrees")


def make_undumpable() -> bool:
    """prctl(PR_SET_DUMPABLE, 0): same-user processes can no longer read this process's
    /proc/<pid>/environ or memory, nor attach to it. Linux only; elsewhere a no-op (False)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


PR_SET_PDEATHSIG = 1


def die_with(parent: int) -> bool:
    """prctl(PR_SET_PDEATHSIG, SIGTERM): this process gets SIGTERM when its parent dies, even by
    SIGKILL; False (and nothing set) if `parent` is already gone or this is not Linux."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if int(libc.prctl(PR_SET_PDEATHSIG, 15, 0, 0, 0)) != 0:
            return False
    except (OSError, AttributeError):
        return False
    return os.getppid() == parent  # the parent died before the prctl: no signal will come


def private_dir(path: Path) -> None:
    """Create path 0700 (its missing parents as usual), and make an existing one 0700."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    os.chmod(path, 0o700)


def private_files(folder: Path) -> None:
    """Make every regular file directly in folder 0600 (links are left alone, never followed)."""
    with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
                    os.chmod(entry.path, stat.S_IMODE(st.st_mode) & 0o700)


def private_state(state_dir: Path) -> None:
    """The state directory and its folders 0700, the files in them 0600 (fixes an older state dir)."""
    private_dir(state_dir)
    private_files(state_dir)
    for name in STATE_DIRS:
        private_dir(state_dir / name)
        if name != "worktrees":  # snapshots keep the modes of the user's files
            private_files(state_dir / name)


def create_private(path: Path) -> None:
    """Make sure path exists as a 0600 file before another library opens it with its own mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
