"""The SEARCH/REPLACE edit format models answer in: parse blocks, apply one to a file's text.

Real models bend the format in known ways; each habit is read as the model meant it when that
is certain, and otherwise the block is refused with a message that tells the model what to fix
(it goes back to the model in a repair round). A block is never applied on a guess.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection
from dataclasses import dataclass, field

# Models vary the marker length and leave trailing spaces; accept what aider accepts. A marker may
# be indented (a block inside a list item): its indentation is then taken off every line of the block.
_SEARCH = re.compile(r"^([ \t]*)<{5,9} ?SEARCH>?\s*$")
_DIVIDER = re.compile(r"^={5,9}\s*$")
_REPLACE = re.compile(r"^>{5,9} ?REPLACE<?\s*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_PATH_PREFIX = re.compile(r"^(?:#+\s*|(?:file(?:name)?|path)\s*:\s*|(?:[-+]|\d+[.)])\s+)", re.IGNORECASE)
_READ = re.compile(r"^\s*READ[ \t]+(\S.*?)\s*$")
# A line that stands for lines left out: `...`, `…`, or a comment opening with one (`# ... existing code`).
_ELISION = re.compile(r"^\s*(?:(?:\.\.\.|…)\s*|(?:#|//|--)\s*(?:\.\.\.|…).*)$")
_ELISION_COMMENT = re.compile(r"^\s*(?:#|//|--)\s*(?:\.\.\.|…)")


@dataclass(frozen=True)
class Edit:
    """One block: replace `search` in `path` with `replace`; an empty `search` creates or appends."""

    path: str
    search: str
    replace: str


@dataclass
class Parsed:
    """What a reply asks for: edits, refused blocks (a message each, for the model), files to read."""

    edits: list[Edit] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)


class EditRefused(ValueError):
    """A block pasd will not apply; the message says what the model should do instead."""


class EditFormatError(EditRefused):
    """The answer holds a block that cannot be read (unterminated, missing path, stray marker)."""


class SearchNotFound(EditRefused):
    """A block's SEARCH text is not in the file, even allowing for whitespace drift."""


# ---------------------------------------------------------------- parse


def clean_path(line: str) -> str:
    """Strip the decoration models put around a file name: `**src/a.py**`, `# File: a.py:`, `"./a.py"`."""
    prev = None
    path = line
    while path != prev:
        prev = path
        path = _PATH_PREFIX.sub("", path.strip()).strip().strip("`*\"'").strip()
        path = path.removesuffix(":")
    while path.startswith("./"):
        path = path[2:]
    return path


def _looks_like_path(path: str) -> bool:
    # Prose ("Here is the fix") has spaces; a file name with spaces still has a separator or dot.
    # `...` between blocks, or any line without a letter or digit, is never a path.
    if not path or not re.search(r"\w", path) or _READ.match(path):
        return False
    if _SEARCH.match(path) or _DIVIDER.match(path) or _REPLACE.match(path):
        return False
    if not re.search(r"\s", path):
        return True
    return ("/" in path or "." in path) and not path.endswith((".", "!", "?"))


def _skip_blank_up(lines: list[str], i: int) -> int:
    while i >= 0 and not lines[i].strip():
        i -= 1
    return i


def _path_before(lines: list[str], index: int) -> str | None:
    """The path written just above line `index` (skipping one opening fence), if any."""
    i = _skip_blank_up(lines, index - 1)
    if i >= 0 and _FENCE.match(lines[i]):
        i = _skip_blank_up(lines, i - 1)
    if i >= 0 and _FENCE.match(lines[i]):
        # the name alone in a fence of its own: ```\nsrc/a.py\n```
        j = _skip_blank_up(lines, i - 1)
        if j >= 1 and _FENCE.match(lines[j - 1]) and not _FENCE.match(lines[j]):
            path = clean_path(lines[j])
            return path if _looks_like_path(path) else None
        return None
    if i < 0:
        return None
    path = clean_path(lines[i])
    return path if _looks_like_path(path) else None


def _joined(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def _marker(pattern: re.Pattern[str], line: str, indent: str) -> bool:
    """Is `line` this marker, at exactly the block's indentation?"""
    return line.startswith(indent) and pattern.match(line[len(indent):]) is not None and (
        not line[len(indent):][:1].isspace())


def _block_ends_here(lines: list[str], j: int) -> bool:
    """After a second `=======`: does the block plainly end at line j (end, fence, new block)?"""
    if j >= len(lines) or _FENCE.match(lines[j]) or _SEARCH.match(lines[j]):
        return True
    k = j + 1
    while k < len(lines) and not lines[k].strip():
        k += 1
    if k < len(lines) and _FENCE.match(lines[k]):
        k += 1
    return k < len(lines) and _SEARCH.match(lines[k]) is not None and _looks_like_path(clean_path(lines[j]))


def parse_reply(text: str) -> Parsed:
    """Every SEARCH/REPLACE block and READ request in a model's answer, in order.

    A block that cannot be read for certain becomes a problem (its message says what to fix);
    the blocks around it are still read.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out = Parsed()
    path: str | None = None
    last_end = 0  # the line after the last block: a stray marker is judged on what lies between
    i = 0
    while i < len(lines):
        line = lines[i]
        if (read := _READ.match(line)) is not None:
            out.reads.append(clean_path(read.group(1)))
            i += 1
            continue
        if _REPLACE.match(line.strip()):
            # a REPLACE marker in prose (or a doubled one) is noise; after a ======= it is a block whose
            # SEARCH line is missing, and guessing where that block starts could edit the wrong lines
            if any(_DIVIDER.match(x.strip()) for x in lines[last_end:i]):
                out.problems.append(f"line {i + 1}: a >>>>>>> REPLACE line with no <<<<<<< SEARCH line before "
                                    "it; write the whole block again: <<<<<<< SEARCH, the exact lines, =======, "
                                    "the new lines, >>>>>>> REPLACE")
            last_end = i + 1
            i += 1
            continue
        opening = _SEARCH.match(line)
        if opening is None:
            i += 1
            continue
        i, edit, problem = _block(lines, i, opening.group(1), _path_before(lines, i) or path)
        last_end = i
        if edit is not None:
            path = edit.path
            out.edits.append(edit)
        elif problem:
            out.problems.append(problem)
    return out


def _block(lines: list[str], opened: int, indent: str, path: str | None) -> tuple[int, Edit | None, str]:
    """Read the block whose SEARCH line is `opened`: (the line to go on from, the edit or None, problem)."""
    where = f"the block for {path} at line {opened + 1}" if path else f"the block at line {opened + 1}"
    search: list[str] = []
    replace: list[str] = []
    target = search
    i = opened + 1
    while True:
        if i >= len(lines):
            part = "=======" if target is search else ">>>>>>> REPLACE"
            return i, None, (f"{where} has no {part} line (was the answer cut off?); "
                             "send that block again, complete")
        line = lines[i]
        if target is search and _marker(_DIVIDER, line, indent):
            target = replace
        elif target is replace and _marker(_REPLACE, line, indent):
            i += 1
            break
        elif target is replace and _marker(_DIVIDER, line, indent):
            # a second =======: it ends the REPLACE part and never lands in the file
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and _marker(_REPLACE, lines[j], indent):
                i = j + 1
                break
            if _block_ends_here(lines, j):
                i = j
                break
            while j < len(lines) and not _REPLACE.match(lines[j].strip()) and not _SEARCH.match(lines[j]):
                j += 1
            resume = j if j >= len(lines) or _SEARCH.match(lines[j]) else j + 1
            return resume, None, (
                f"{where} has a second ======= line (line {i + 1}) with more lines after it; a block has "
                "exactly one ======= line, between the lines to find and the lines that replace them: "
                "send that block again with one")
        elif _SEARCH.match(line):
            return i, None, (f"{where} is not closed: a new <<<<<<< SEARCH line (line {i + 1}) comes before "
                             "its >>>>>>> REPLACE line; send that block again, complete")
        else:
            target.append(line)
        i += 1
    if path is None:
        return i, None, (f"the block at line {opened + 1} has no file path before it; put the file's path "
                         "alone on the line above the block's opening fence")
    if indent:
        body = [x for x in search + replace if x.strip()]
        carried = [x.startswith(indent) for x in body]
        if all(carried):
            search = [x[len(indent):] for x in search]
            replace = [x[len(indent):] for x in replace]
        elif any(carried):
            return i, None, (f"{where}: its marker lines are indented but some of its lines are indented "
                             "less; send that block again without indenting the block itself")
    return i, Edit(path=path, search=_joined(search), replace=_joined(replace)), ""


def parse_edits(text: str) -> list[Edit]:
    """Every SEARCH/REPLACE block in a model's answer, in order; [] when there is none.

    Raises EditFormatError for the first block that cannot be read.
    """
    parsed = parse_reply(text)
    if parsed.problems:
        raise EditFormatError(parsed.problems[0])
    return parsed.edits


def resolve_path(path: str, files: Collection[str], globs: Collection[str] = ()) -> str:
    """The task file a block names: `./a.py`, `"a.py"` and a bare name of exactly one task file count.

    Raises EditRefused when a bare name fits several task files.
    """
    p = clean_path(path.replace("\\", "/"))
    if p in files or "/" in p or any(fnmatch.fnmatchcase(p, g) for g in globs):
        return p
    hits = sorted(f for f in files if f.rsplit("/", 1)[-1] == p)
    if len(hits) > 1:
        raise EditRefused(f"{p}: several of the task's files have that name ({', '.join(hits)}); "
                          "write the file's full path above the block")
    return hits[0] if hits else p


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


def _find(file: list[str], pat: list[str], start: int = 0) -> list[tuple[int, str]]:
    """Where `pat` matches from line `start` on, at the strictest level that finds it: (line, shift)."""
    for level in (0, 1, 2):  # line endings, then trailing whitespace, then uniform indentation
        hits = [(at, shift) for at in range(start, len(file) - len(pat) + 1)
                if (shift := _match_at(file, pat, at, level)) is not None]
        if hits:
            return hits
    return []


def _splice(file: list[str], at: int, n: int, new: list[str], shift: str, nl: str) -> list[str]:
    """`file` with lines at..at+n replaced by `new` (re-indented by `shift`)."""
    out = [line + nl for line in _reindent(new, shift)]
    last = file[at + n - 1]
    if last == _body(last):  # the match ran to a file end without a final newline
        if out:
            out[-1] = out[-1].removesuffix(nl)
        elif at > 0:
            file = [*file[: at - 1], _body(file[at - 1]), *file[at:]]
    return file[:at] + out + file[at + n :]


def _lines(text: str) -> list[str]:
    return text.removesuffix("\n").split("\n") if text else []


def apply_edit(content: str, edit: Edit) -> str:
    """`content` with the first match of `edit.search` replaced, keeping the file's line endings.

    Raises SearchNotFound, or EditRefused when a `...` elision cannot be placed for certain.
    """
    _refuse_elided_replace(edit)
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
    pat = _lines(edit.search)
    hits = _find(file, pat)
    if hits:
        at, shift = hits[0]
        return "".join(_splice(file, at, len(pat), _lines(edit.replace), shift, nl))

    trimmed = _trim_blank(edit)
    if trimmed is not None:
        try:
            return apply_edit(content, trimmed)
        except SearchNotFound:
            pass
    if any(_ELISION.match(line) for line in pat):
        return _apply_elided(file, edit, nl)
    first = next((line for line in pat if line.strip()), pat[0])
    raise SearchNotFound(f"{edit.path}: SEARCH block not found (first line: {first!r}); copy the lines to "
                         "find exactly as they are in the file now")


def _refuse_elided_replace(edit: Edit) -> None:
    """A `# ...` line in REPLACE that SEARCH lacks stands for code the model left out: applied, it would
    replace that code with the comment."""
    search = [x.strip() for x in _lines(edit.search) if _ELISION_COMMENT.match(x)]
    extra = [x for x in _lines(edit.replace) if _ELISION_COMMENT.match(x) and x.strip() not in search]
    if extra:
        raise EditRefused(f"{edit.path}: REPLACE has the line {extra[0].strip()!r}, which stands for lines left "
                          "out and would land in the file as it is; write the new lines in full")


def _trim_blank(edit: Edit) -> Edit | None:
    """The edit without the blank lines models put at the start or end of SEARCH (and of REPLACE)."""
    search, replace = _lines(edit.search), _lines(edit.replace)
    lead = next((i for i, x in enumerate(search) if x.strip()), len(search))
    if lead == len(search):
        return None  # only blank lines: not a block to guess at
    trail = next(i for i, x in enumerate(reversed(search)) if x.strip())
    if not lead and not trail:
        return None
    r_lead = next((i for i, x in enumerate(replace) if x.strip()), len(replace))
    r_lead = min(lead, r_lead)
    replace = replace[r_lead:]
    r_trail = min(trail, next((i for i, x in enumerate(reversed(replace)) if x.strip()), len(replace)))
    replace = replace[: len(replace) - r_trail]
    return Edit(edit.path, _joined(search[lead : len(search) - trail]), _joined(replace))


def _pieces(lines: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for line in lines:
        if _ELISION.match(line):
            out.append([])
        else:
            out[-1].append(line)
    return out


def _apply_elided(file: list[str], edit: Edit, nl: str) -> str:
    """SEARCH with `...` lines: each part around them must match exactly once, in order; the lines
    they stand for stay as they are, so REPLACE needs a `...` line at each same place."""
    what = f"{edit.path}: SEARCH leaves lines out with a `...` line"
    s_parts, r_parts = _pieces(_lines(edit.search)), _pieces(_lines(edit.replace))
    if len(s_parts) != len(r_parts):
        raise EditRefused(f"{what} but REPLACE has no `...` line at the same place, so the lines left out "
                          "would be lost; put a `...` line in REPLACE where SEARCH has one, or copy the "
                          "left-out lines in full")
    placed: list[tuple[int, int, list[str], str]] = []
    start = 0
    for n, (s, r) in enumerate(zip(s_parts, r_parts, strict=True)):
        if not any(x.strip() for x in s):
            if any(x.strip() for x in r):
                raise EditRefused(f"{what} at its start or end, so where the new lines go is open; begin and "
                                  "end SEARCH with lines copied from the file")
            continue
        hits = _find(file, s, start)
        if len(hits) != 1:
            times = "is not in the file after the part before it" if not hits else f"occurs {len(hits)} times"
            raise EditRefused(f"{what}, and its part {n + 1} (first line {s[0]!r}) {times}; copy more lines "
                              "so that each part around `...` is found exactly once, or copy the file's lines "
                              "in full")
        at, shift = hits[0]
        placed.append((at, len(s), r, shift))
        start = at + len(s)
    for at, size, r, shift in reversed(placed):
        file = _splice(file, at, size, r, shift, nl)
    return "".join(file)
