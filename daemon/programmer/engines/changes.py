"""What a tool changed in a snapshot: a listing of the snapshot before and after a run (kind, size,
mtime, ctime of every path), the removal of the tool's scratch files, and taking back what pasd refuses.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import stat
from pathlib import Path

from daemon.programmer.engine import _write

Entry = tuple[str, int, int, int]  # kind ("f", "l", "d", "o"), size, mtime_ns, ctime_ns


def top(root: Path, worktrees: Path) -> Path:
    """The snapshot's top folder (a worktree's, when the workspace is a folder inside its repository)."""
    try:
        return worktrees / root.relative_to(worktrees).parts[0]
    except (ValueError, IndexError):
        return root


def scan(top: Path) -> dict[str, Entry]:
    """Every path under top (not following links), with what tells a change: kind, size, mtime, ctime.

    ctime cannot be set back by a process, so a rewrite that restores size and mtime still shows.
    A worktree's `.git` file is listed; a `.git` folder's contents are, too (a tool has no business there).
    """
    out: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = os.path.relpath(dirpath, top)
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            mode = st.st_mode
            kind = ("l" if stat.S_ISLNK(mode) else "d" if stat.S_ISDIR(mode) else
                    "f" if stat.S_ISREG(mode) else "o")
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            out[rel] = (kind, 0 if kind == "d" else st.st_size, 0 if kind == "d" else st.st_mtime_ns,
                        0 if kind == "d" else st.st_ctime_ns)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return out


def clear(root: Path, patterns: list[str]) -> None:
    """Remove the tool's scratch files at the snapshot's root (they are never proposed)."""
    if not patterns:
        return
    with contextlib.suppress(OSError), os.scandir(root) as entries:
        for entry in entries:
            if any(fnmatch.fnmatchcase(entry.name, p) for p in patterns):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def undo(top: Path, rel_top: str, before: Entry | None, rel: str, root: Path, base_: dict[str, str | None]) -> bool:
    """Take a refused change back where pasd knows the old state (a new path goes; a task file the
    tool deleted or replaced comes back as it was); False for a file pasd holds no copy of."""
    path = top / rel_top
    if before is None:
        _remove(path)
        return True
    if rel in base_ and base_[rel] is not None:
        with contextlib.suppress(OSError):
            if path.is_symlink() or (path.exists() and not path.is_file()):
                _remove(path)
            _write(root / rel, base_[rel] or "")
        return True
    if before[0] == "d":
        return True
    if path.is_symlink() or path.is_dir():
        _remove(path)
    return False


def _remove(path: Path) -> None:
    """Remove a path, whatever it is, never following a link."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def stage(home: Path, files: dict[str, str], texts: dict[str, str] | None = None) -> None:
    for rel, src in files.items():
        dest = home / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    for rel, text in (texts or {}).items():
        dest = home / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
