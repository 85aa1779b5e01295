"""What every command prints with: JSON or text, tables, short forms of text, numbers and times."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from typing import TYPE_CHECKING, Any

from daemon.wire import CHECK_FAILED

if TYPE_CHECKING:  # standard library only at run time: the quick commands print with this module too
    from pydantic import BaseModel

    from daemon.protocol import TaskInfo


def out(args: argparse.Namespace, data: BaseModel | list[Any] | dict[str, Any], text: str) -> None:
    """`text`, or with --json the data: a model, a list of models, or a result's JSON as the daemon sent it."""
    if getattr(args, "json", False):
        if isinstance(data, dict):
            print(json.dumps(data, indent=2, ensure_ascii=False))  # as a model's model_dump_json(indent=2) has it
        elif not isinstance(data, list):
            print(data.model_dump_json(indent=2))
        else:
            print(json.dumps([d if isinstance(d, dict) else d.model_dump(mode="json") for d in data], indent=2))
    else:
        print(text)


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Columns padded to their widest cell; cells may be painted (the codes take no width)."""
    widths = [max(width(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]

    def line(r: list[str]) -> str:
        return "  ".join(str(c) + " " * (w - width(str(c))) for c, w in zip(r, widths, strict=False)).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


# ---------------------------------------------------------------- colour
# A few ANSI codes by hand: Rich would cost more import time than the whole command needs.

CODES = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35", "cyan": "36",
         "bold": "1", "dim": "2"}
STYLES = {
    # task, job and hunk states
    "QUEUED": "blue", "RUNNING": "cyan", "REVIEW": "yellow", "APPLIED": "green", "REJECTED": "dim",
    "CONFLICT": "magenta", "FAILED": "red", "CANCELLED": "dim",
    "applied": "green", "rejected": "dim", "pending": "yellow", "stale": "magenta",
    # programmers
    "IDLE": "green", "BUSY": "cyan",
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def colour() -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (no-color.org) or TERM is dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def paint(text: str, style: str | None, on: bool | None = None) -> str:
    """`text` in a style from CODES (or as it is: no style, no terminal, NO_COLOR)."""
    if not style or not text or not (colour() if on is None else on):
        return text
    return "".join(f"\x1b[{CODES[s]}m" for s in style.split()) + text + "\x1b[0m"


def state(value: str, on: bool | None = None) -> str:
    """A state word (REVIEW, FAILED, applied, ...) in its colour."""
    return paint(value, STYLES.get(value), on)


def width(text: str) -> int:
    """How many columns text takes on screen (colour codes take none)."""
    return len(_ANSI.sub("", text)) if "\x1b" in text else len(text)


def painted_diff(text: str) -> str:
    """A unified diff with added lines green, removed red, hunk headers cyan, file headers bold."""
    if not colour():
        return text
    styles = (("+++ ", "bold"), ("--- ", "bold"), ("diff ", "bold"), ("@@ ", "cyan"), ("+", "green"),
              ("-", "red"), ("# task ", "bold"))
    out = []
    for line in text.split("\n"):
        style = next((s for prefix, s in styles if line.startswith(prefix)), None)
        out.append(paint(line, style, True))
    return "\n".join(out)


def short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def ago(t: float | None) -> str:
    if t is None:
        return "-"
    s = max(0, int(time.time() - t))
    return f"{s}s" if s < 60 else f"{s // 60}m" if s < 3600 else f"{s // 3600}h"



def badge(t: TaskInfo) -> str:
    """The task's state in its colour, with `⚠` when it is flagged: "REVIEW ⚠" (red: its check fails)."""
    if not t.warnings:
        return state(t.state.value)
    return f"{state(t.state.value)} {paint('⚠', 'red' if CHECK_FAILED in t.warnings else 'yellow')}"
