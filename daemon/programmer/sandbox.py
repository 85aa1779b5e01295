"""Where a check command runs: code the model wrote, so as little of the machine as it needs.

The environment is built from an allowlist (`ENV_ALLOW`, `LC_*`, and the names the user lists
in `[guardrails] check_env`), never copied from the daemon's: no credential reaches a check
unless the user names it.

`[guardrails] sandbox` picks the rest:
- `bwrap`: bubblewrap, or the check is refused (the task fails with reason "sandbox").
- `auto` (the default): bubblewrap when it works here, else the fallback below. Whether it works
  is probed once per process (it is missing, or user namespaces are disabled) and remembered.
- `off`: the fallback.

Under bubblewrap the system is read-only; /tmp is a private tmpfs; a tmpfs hides the daemon's
state dir (database, receipts, logs, other tasks' snapshots), then the snapshot is bound back
in writable (mount order matters), its `.git` file read-only, and its repository's git
metadata read-only again where a tmpfs hid it (a repository under /tmp, a Ray node's stage);
the daemon's socket and the usual credential files in $HOME are masked; there is no network
unless `[guardrails] check_network = true`; a private PID namespace hides the daemon's /proc
and takes every process of the check down with it when the check's command ends; capabilities
are dropped; `--die-with-parent`, and `--new-session` (no TIOCSTI into the daemon's terminal).

The fallback runs the check in its own process group with the allowlisted environment and
nothing more: it can read and write what the user can, reach the network and the daemon's
socket. At its end its group is killed, and so is every process carrying its random marker
variable (see `proc.py`), which catches a process started in a new session but not one that
also cleared its environment.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_ALLOW = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR")
"""What tools need to run and behave as in the user's shell: find programs (PATH), a home for
their dotfiles (HOME, read-only under bwrap), who is running (USER, LOGNAME: getpass, git),
text encoding and messages (LANG, LANGUAGE, LC_*), output style (TERM), local time (TZ), and
where temp files go (TMPDIR; /tmp under bwrap, which is private there). No SHELL, PYTHONPATH,
VIRTUAL_ENV or proxies: name them in `check_env` when a check needs them."""

HOME_SECRETS = (".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".docker", ".kube", ".netrc",
                ".git-credentials", ".npmrc", ".pypirc", ".config/gh", ".config/pasd")
"""Credential stores under $HOME a check never needs: masked under bwrap."""


def check_env(extra: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A check's environment: the allowlist, LC_*, and the variables the user named."""
    env = os.environ if environ is None else environ
    names = set(ENV_ALLOW) | set(extra)
    return {k: v for k, v in env.items() if k in names or k.startswith("LC_")}


@dataclass
class Box:
    """What one sandboxed check sees, in bubblewrap's mount order."""

    writable: Path  # the snapshot: the only place a check writes to (besides its own /tmp)
    cwd: Path
    hide: list[Path] = field(default_factory=list)  # tmpfs over these folders
    restore: list[Path] = field(default_factory=list)  # read-only again after the hiding
    mask: list[Path] = field(default_factory=list)  # /dev/null over these (files, sockets) or a tmpfs (folders)
    protect: list[Path] = field(default_factory=list)  # read-only inside the writable snapshot
    network: bool = False

    def argv(self, bwrap: str, command: list[str]) -> list[str]:
        args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--tmpfs", "/dev/shm", "--proc", "/proc",
                "--tmpfs", str(TMP)]
        for path in self.hide:
            args += ["--tmpfs", str(path)]
        for path in self.mask:
            args += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
        for path in self.restore:
            args += ["--ro-bind", str(path), str(path)]
        args += ["--bind", str(self.writable), str(self.writable)]
        for path in self.protect:
            args += ["--ro-bind", str(path), str(path)]
        args += ["--chdir", str(self.cwd)]
        args += [*FLAGS, *([] if self.network else ["--unshare-net"]), "--", *command]
        return args


TMP = Path("/tmp")
FLAGS = ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session",
         "--cap-drop", "ALL")


def box_for(cwd: Path, worktrees_dir: Path, *, network: bool, socket: Path | None = None,
            home: str | None = None) -> Box:
    """The box for a check running in cwd, a snapshot under worktrees_dir (inside the state dir)."""
    cwd = cwd.resolve()
    worktrees = worktrees_dir.resolve()
    try:
        writable = worktrees / cwd.relative_to(worktrees).parts[0]  # the snapshot's top, not just cwd
    except (ValueError, IndexError):
        writable = cwd
    box = Box(writable=writable, cwd=cwd, network=network)
    state = worktrees.parent
    hidden = [TMP]
    if state != Path(state.anchor) and state.is_dir() and state not in (Path.home(), TMP):
        box.hide.append(state)
        hidden.append(state)
    if _exists(writable / ".git"):
        # the daemon runs git in a reused snapshot: a `.git` pointing at a repository the check made
        # (with core.fsmonitor or hooks of its own) would run the check's code outside the sandbox
        box.protect.append(writable / ".git")
    common = _git_common_dir(writable)
    if (common is not None and not common.is_relative_to(writable)
            and any(common.is_relative_to(h) for h in hidden)):
        box.restore.append(common)  # the snapshot's git metadata: in a repository under /tmp, or on a node
    if socket is not None and _exists(socket):
        box.mask.append(socket.resolve())
    if home:
        box.mask += [p for p in (Path(home) / rel for rel in HOME_SECRETS)
                     if _exists(p) and not p.is_symlink() and not writable.is_relative_to(p)]
    return box


def _exists(path: Path) -> bool:
    try:
        path.lstat()
    except OSError:
        return False
    return True


def _git_common_dir(top: Path) -> Path | None:
    """A git worktree's shared repository folder (`<repo>/.git`), from its `.git` file."""
    try:
        text = (top / ".git").read_text(errors="replace").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    gitdir = Path(text.split(":", 1)[1].strip())
    gitdir = gitdir if gitdir.is_absolute() else (top / gitdir)
    return gitdir.resolve().parent.parent  # <repo>/.git/worktrees/<name> -> <repo>/.git


@functools.cache  # probed once per process: bubblewrap does not come and go under a running daemon
def probe() -> tuple[str | None, str]:
    """(bwrap's path, "") when bubblewrap works here, else (None, why not). Blocking."""
    exe = shutil.which("bwrap")
    if exe is None:
        return None, "bubblewrap (bwrap) is not installed"
    argv = [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            *FLAGS, "--unshare-net", "--", "true"]
    try:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"bubblewrap does not start: {exc}"
    if res.returncode != 0:
        why = res.stderr.decode(errors="replace").strip().splitlines()
        return None, "bubblewrap does not work here" + (f": {why[-1]}" if why else "")
    return exe, ""


async def bwrap() -> tuple[str | None, str]:
    """`probe()` off the event loop."""
    return await asyncio.to_thread(probe)
