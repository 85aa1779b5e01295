"""Argument types: values checked against the protocol's own bounds, so a bad value is a one-line
usage error (exit 2) before anything is sent. Standard library only (bounds from daemon/wire.py):
every command builds the whole parser."""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from daemon import wire
from daemon.errors import PasError

if TYPE_CHECKING:
    from pydantic import BaseModel


def line_range(text: str) -> tuple[int, int]:
    """`--range START:END` (or one line N): 1-based, inclusive, START <= END."""
    a, _, b = text.partition(":")
    try:
        start, end = int(a), int(b or a)
    except ValueError:
        start = end = 0
    if not 1 <= start <= end <= wire.MAX_LINE_NO:
        raise argparse.ArgumentTypeError(
            f"expected START:END line numbers (1-based, START <= END), got {text!r}")
    return start, end


def instruction(text: str) -> str:
    """A task's instruction: not blank (protocol.SubmitParams refuses it too; here it is a usage error)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the instruction is blank: say what to do")
    return text


def comment(text: str) -> str:
    """A reviewer's comment (protocol.ReviseParams): not blank, at most MAX_COMMENT_CHARS."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the comment is blank: say what to change")
    if len(text) > wire.MAX_COMMENT_CHARS:
        raise argparse.ArgumentTypeError(f"the comment is longer than {wire.MAX_COMMENT_CHARS} characters")
    return text


def workspace_root(arg: str | None) -> str:
    if arg:
        return str(Path(arg).resolve())
    import subprocess  # here: only the commands that name a workspace start git

    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True)
        return str(Path(top.stdout.strip()).resolve())
    return str(Path.cwd().resolve())



def hunk_list(arg: str | None) -> list[int] | None:
    if not arg:
        return None
    try:
        return [int(x) for x in arg.split(",") if x.strip()]
    except ValueError:
        raise PasError(f"--hunks takes hunk numbers like 1,3; got {arg!r}") from None



def _show(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def number(low: float, high: float, *, open_low: bool = False) -> Callable[[str], float]:
    """An argparse type for a finite number in a range (`float` alone takes inf and nan)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or value > high or (open_low and value == low):
            above = "above" if open_low else "from"
            raise argparse.ArgumentTypeError(f"expected a number {above} {_show(low)} to {_show(high)}, got {text!r}")
        return value
    return parse


def bounds(model: type[BaseModel], field: str) -> tuple[int, int]:
    """A config field's `ge`/`le`, so the CLI refuses what the daemon would."""
    found = {k: getattr(m, k) for m in model.model_fields[field].metadata for k in ("ge", "le") if hasattr(m, k)}
    return int(found["ge"]), int(found["le"])


def whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type for a whole number in a range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}, got {text!r}")
        return value
    return parse


def task_state(text: str) -> wire.TaskState:
    try:
        return wire.TaskState(text.upper())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(s.value.lower() for s in wire.TaskState)}, got {text!r}") from None


def workers_error(workers: int | None) -> str | None:
    """A one-line usage error for a --workers value outside the pool's bounds (None if it is fine)."""
    from daemon.config import PoolConfig

    if workers is None:
        return None
    low, high = bounds(PoolConfig, "workers")
    if low <= workers <= high:
        return None
    return f"pasd: --workers takes a whole number from {low} to {high} (programmers in the pool), got {workers}"


def pool_flags(sp: argparse.ArgumentParser) -> None:
    """`start` and `serve`: where the programmers run."""
    sp.add_argument("--backend", choices=["local", "ray"], help="where programmers run (default: config pool.backend)")
    sp.add_argument("--address", help="Ray cluster address host:port for --backend ray (config pool.address)")
    sp.add_argument("--insecure-local", action="store_true",
                    help="join a loopback Ray cluster without token auth (never for other addresses)")
