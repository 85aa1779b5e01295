"""What every command prints with: JSON or text, tables, short forms of text, numbers and times."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from pydantic import BaseModel

from daemon.protocol import TaskInfo


def out(args: argparse.Namespace, data: BaseModel | list[Any] | dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        if isinstance(data, BaseModel):
            print(data.model_dump_json(indent=2))
        else:
            print(json.dumps([d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
                             if isinstance(data, list) else data, indent=2))
    else:
        print(text)


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]

    def line(r: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


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
    """The task's state, with `⚠` when it is flagged: "REVIEW ⚠"."""
    return f"{t.state.value} ⚠" if t.warnings else t.state.value
