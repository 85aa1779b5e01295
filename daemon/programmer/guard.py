"""File and command allowlists: what a model may touch and what a check may run."""

from __future__ import annotations

import fnmatch
import shlex
from pathlib import Path, PurePosixPath

NOT_A_TASK_FILE = "not one of the task's files"


def normalize(path: str) -> str:
    return path.strip().replace("\\", "/").removeprefix("./")


def refuse_path(root: Path, path: str, allowed: set[str], globs: list[str]) -> str | None:
    """Why an edit to `path` must be refused, or None when it is allowed."""
    if not path:
        return "empty path"
    p = PurePosixPath(path)
    if p.is_absolute() or (len(path) > 1 and path[1] == ":"):
        return "absolute path"
    if ".." in p.parts:
        return "path leaves the workspace (..)"
    if p.parts and p.parts[0] == ".git":
        return "path inside .git"
    if path not in allowed and not any(fnmatch.fnmatchcase(path, g) for g in globs):
        return NOT_A_TASK_FILE
    if resolved_inside(root, path) is None:
        return "symlink leaves the workspace"
    return None


def resolved_inside(root: Path, path: str) -> Path | None:
    """`root / path` with every link on it followed; None when that leads out of `root` (resolved too)."""
    real_root = root.resolve()
    target = (root / path).resolve()
    return target if target == real_root or real_root in target.parents else None


def command_allowed(command: str, patterns: list[str]) -> bool:
    """A check command runs only if its normalised command line matches an allowlist pattern."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return False
    if not argv:
        return False
    line = shlex.join(argv)
    return any(fnmatch.fnmatchcase(line, pat) or fnmatch.fnmatchcase(command.strip(), pat) for pat in patterns)
