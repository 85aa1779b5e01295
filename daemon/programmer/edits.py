"""The SEARCH/REPLACE edit format models answer in: parse blocks, apply one to a file's text."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Models vary the marker length and leave trailing spaces; accept what aider accepts.
_SEARCH = re.compile(r"^<{5,9} ?SEARCH>?\s*$")
_DIVIDER = re.compile(r"^={5,9}\s*$")
_REPLACE = re.compile(r"^>{5,9} ?REPLACE<?\s*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_PATH_PREFIX = re.compile(r"^(?:#+\s*|(?:file(?:name)?|path)\s*:\s*)", re.IGNORECASE)


@dataclass(frozen=True)
class Edit:
    """One block: replace `search` in `path` with `replace`; an empty `search` creates or appends."""

    path: str
    search: str
    replace: str


class EditFormatError(ValueError):
    """The answer holds a block that cannot be read (unterminated, missing path, stray marker)."""


class SearchNotFound(ValueError):
    """A block's SEARCH text is not in the file, even allowing for whitespace drift."""


def _clean_path(line: str) -> str:
    """Strip the decoration models put around a file name: `**src/a.py**`, `# File: a.py:`."""
    prev = None
    path = line
    while path != prev:
        prev = path
        path = _PATH_PREFIX.sub("", path.strip()).strip().strip("`*").strip()
        path = path.removesuffix(":")
    return path


def _looks_like_path(path: str) -> bool:
    # Prose ("Here is the fix") has spaces; a file name with spaces still has a separator or dot.
    if not path or _SEARCH.match(path) or _DIVIDER.match(path) or _REPLACE.match(path):
        return False
    if not re.search(r"\s", path):
        return True
    return ("/" in path or "." in path) and not path.endswith((".", "!", "?"))


def _path_before(lines: list[str], index: int) -> str | None:
    """The path written just above line `index` (skipping one opening fence), if any."""
    i = index - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    if i >= 0 and _FENCE.match(lines[i]):
        i -= 1
        while i >= 0 and not lines[i].strip():
            i -= 1
    if i < 0 or _FENCE.match(lines[i]):
        return None
    path = _clean_path(lines[i])
    return path if _looks_like_path(path) else None


def _joined(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def parse_edits(text: str) -> list[Edit]:
    """Every SEARCH/REPLACE block in a model's answer, in order; [] when there is none."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    edits: list[Edit] = []
    path: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if _REPLACE.match(line):
            raise EditFormatError(f"line {i + 1}: REPLACE marker without a SEARCH block")
        if not _SEARCH.match(line):
            i += 1
            continue
        opened = i
        path = _path_before(lines, i) or path
        if path is None:
            raise EditFormatError(f"line {opened + 1}: SEARCH block without a file path before it")
        search: list[str] = []
        replace: list[str] = []
        target = search
        i += 1
        while True:
            if i >= len(lines):
                part = "=======" if target is search else ">>>>>>> REPLACE"
                raise EditFormatError(f"block for {path} opened at line {opened + 1} has no {part}")
            line = lines[i]
            if target is search and _DIVIDER.match(line):
                target = replace
            elif target is replace and _REPLACE.match(line):
                break
            elif _SEARCH.match(line):
                raise EditFormatError(f"block for {path} opened at line {opened + 1} is not closed")
            else:
                target.append(line)
            i += 1
        edits.append(Edit(path=path, search=_joined(search), replace=_joined(replace)))
        i += 1
    return edits


# ---------------------------------------------------------------- apply


def _newline(content: str) -> str:
    """The file's dominant line ending, so inserted lines look like their neighbours."""
    crlf = content.count("\r\n")
    return "\r\n" if crlf and crlf >= content.count("\n") - crlf else "\n"


def _body(line: str) -> str:
    return line.removesuffix("\n").removesuffix("\r")


def _split(text: str) -> list[str]:
    """Lines with their endings; unlike str.splitlines, only "\n" ends a line (as in git)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _match_at(file: list[str], pat: list[str], at: int, level: int) -> str | None:
    """Whether `pat` matches `file` at `at`; returns the extra indent ("+x" / "-x") or None."""
    shift: str | None = None
    for f_line, p_line in zip(file[at : at + len(pat)], pat, strict=True):
        f, p = _body(f_line), p_line
        if level == 0:
            if f != p:
                return None
            continue
        f, p = f.rstrip(), p.rstrip()
        if level == 1:
            if f != p:
                return None
            continue
        if not f or not p:
            if f or p:
                return None
            continue
        fi, pi = _indent(f), _indent(p)
        if f[len(fi) :] != p[len(pi) :]:
            return None
        if fi.endswith(pi):
            here = "+" + fi[: len(fi) - len(pi)]
        elif pi.endswith(fi):
            here = "-" + pi[: len(pi) - len(fi)]
        else:
            return None
        if shift is None:
            shift = here
        elif here != shift:
            return None
    return shift or "+"


def _reindent(lines: list[str], shift: str) -> list[str]:
    sign, delta = shift[0], shift[1:]
    if not delta:
        return lines
    if sign == "+":
        return [delta + line if line.strip() else line for line in lines]
    # A line indented less than the shift loses only the indentation it has.
    return [line[min(len(delta), len(_indent(line))) :] for line in lines]


def apply_edit(content: str, edit: Edit) -> str:
    """`content` with the first match of `edit.search` replaced, keeping the file's line endings."""
    nl = _newline(content)
    replace = edit.replace.replace("\n", nl) if nl != "\n" else edit.replace
    if not edit.search:
        if content and not content.endswith("\n"):
            content += nl  # appending must not glue the new text onto the last line
        return content + replace

    # Exact, but only at a line start: "x = 1" must not match the tail of "max = 1".
    start = 0
    while (at := content.find(edit.search, start)) >= 0:
        if at == 0 or content[at - 1] == "\n":
            return content[:at] + replace + content[at + len(edit.search) :]
        start = at + 1

    file = _split(content)
    pat = edit.search.removesuffix("\n").split("\n")
    for level in (0, 1, 2):  # line endings, then trailing whitespace, then uniform indentation
        for at in range(len(file) - len(pat) + 1):
            shift = _match_at(file, pat, at, level)
            if shift is None:
                continue
            new = _reindent(edit.replace.removesuffix("\n").split("\n"), shift) if edit.replace else []
            out = [line + nl for line in new]
            last = file[at + len(pat) - 1]
            if last == _body(last):  # the match ran to a file end without a final newline
                if out:
                    out[-1] = out[-1].removesuffix(nl)
                elif at > 0:
                    file[at - 1] = _body(file[at - 1])
            return "".join(file[:at] + out + file[at + len(pat) :])

    first = pat[0]
    raise SearchNotFound(f"{edit.path}: SEARCH block not found (first line: {first!r})")
