"""A task's diff as the page draws it: each hunk's lines with their kind and highlighted code.

Highlighting happens here, with Pygments (the lexer chosen by file name), so the page needs no
highlighter of its own; a hunk is highlighted as one piece so most constructs keep their colours.
"""

from __future__ import annotations

import functools
from typing import Any

from daemon import protocol as p

MAX_HIGHLIGHT_LINES = 5_000  # past this a file's hunks are shown as plain (escaped) text

KINDS = {" ": "ctx", "-": "del", "+": "add"}


@functools.lru_cache(maxsize=256)
def _lexer(path: str) -> Any:
    from pygments.lexers import TextLexer, get_lexer_for_filename
    from pygments.util import ClassNotFound

    try:
        return get_lexer_for_filename(path, stripnl=False, stripall=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


@functools.lru_cache(maxsize=1)
def _formatter() -> Any:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(nowrap=True, classprefix="hl-")


def style_css() -> str:
    """The colours for the highlighted code (light and dark)."""
    from pygments.formatters import HtmlFormatter

    light = HtmlFormatter(classprefix="hl-", style="default").get_style_defs(".code")
    dark = HtmlFormatter(classprefix="hl-", style="monokai").get_style_defs("body.dark .code")
    return f"{light}\n{dark}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def highlight(path: str, lines: list[str], plain: bool = False) -> list[str]:
    """One HTML fragment per line (spans never cross a line)."""
    if plain or not lines:
        return [_escape(line) for line in lines]
    from pygments import highlight as run

    html = str(run("\n".join(lines) + "\n", _lexer(path), _formatter()))
    out = html.split("\n")[:len(lines)]
    return out + [""] * (len(lines) - len(out))


def hunk_lines(hunk: p.Hunk, plain: bool) -> list[dict[str, Any]]:
    """The hunk's lines as [{kind, old, new, html}], old/new being line numbers (None where absent)."""
    raw = [line for line in hunk.text.split("\n")[1:] if line and line[0] in KINDS]
    html = highlight(hunk.path, [line[1:] for line in raw], plain)
    old, new = hunk.old_start, hunk.new_start
    out = []
    for line, code in zip(raw, html, strict=True):
        kind = KINDS[line[0]]
        row: dict[str, Any] = {"kind": kind, "html": code, "old": None, "new": None}
        if kind != "add":
            row["old"], old = old, old + 1
        if kind != "del":
            row["new"], new = new, new + 1
        out.append(row)
    return out


def diff_view(diff: p.DiffResult, task: p.TaskInfo) -> dict[str, Any]:
    """The diff for the page: files, hunks with their lines, state, stale and conflict marks."""
    conflicts = {c.hunk_id: c.reason for c in task.conflicts}
    stale = set(task.stale_hunks)
    files = []
    for f in diff.files:
        plain = sum(len(h.text) for h in f.hunks) > MAX_HIGHLIGHT_LINES * 80
        files.append({"path": f.path, "created": f.created, "added": f.added, "removed": f.removed, "hunks": [
            {"id": h.id, "header": h.header, "state": h.state.value, "stale": h.stale or h.id in stale,
             "conflict": conflicts.get(h.id), "lines": hunk_lines(h, plain)} for h in f.hunks]})
    return {"files": files, "pruned_at": diff.pruned_at, "state": diff.state.value}
