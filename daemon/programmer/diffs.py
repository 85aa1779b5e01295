"""Diffs of a task's files: reviewable hunks, git-style unified text, partial apply, 3-way merge."""

from __future__ import annotations

import asyncio
import difflib
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from daemon import protocol

Opcode = tuple[str, int, int, int, int]
_NO_EOL = "\\ No newline at end of file\n"


def split_lines(text: str) -> list[str]:
    """Lines with their endings; unlike str.splitlines, only "\\n" ends a line (as in git)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _groups(a: list[str], b: list[str], context: int) -> Iterable[list[Opcode]]:
    # autojunk off: its popularity heuristic makes diffs of long files depend on line frequency.
    return difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context)


def _range(start: int, stop: int) -> str:
    """A unified-diff range as `diff -u` prints it: the line before an empty range, no ",1"."""
    length = stop - start
    first = start + 1 if length else start
    return str(first) if length == 1 else f"{first},{length}"


def _line(prefix: str, line: str) -> str:
    return prefix + line if line.endswith("\n") else prefix + line + "\n" + _NO_EOL


def _strip_eol(line: str) -> str:
    return line.removesuffix("\n").removesuffix("\r")


def compute_hunks(path: str, base: str, new: str, first_id: int, context: int = 3) -> list[protocol.Hunk]:
    """The hunks turning `base` into `new`, numbered from `first_id`.

    `header` and `text` are the classic unified hunk, with context. The numbers and lines
    describe only the changed region, so an editor can replace it exactly: `old_start` is the
    first changed base line (1-based), `old_count` how many base lines it replaces, and
    `old_lines` those lines; `new_*` likewise for `new`. The region runs from the first to the
    last change of the hunk, so unchanged lines between two nearby changes are part of it on
    both sides. A pure insertion has `old_count` 0 and `old_start` the line it goes before
    (line count + 1 when appending; 0 when the base is empty); a pure deletion mirrors that.
    """
    a, b = split_lines(base), split_lines(new)
    hunks: list[protocol.Hunk] = []
    for n, group in enumerate(_groups(a, b, context)):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        header = f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@"
        body: list[str] = [header + "\n"]
        for tag, ai, aj, bi, bj in group:
            if tag == "equal":
                body += [_line(" ", x) for x in a[ai:aj]]
                continue
            body += [_line("-", x) for x in a[ai:aj]]
            body += [_line("+", x) for x in b[bi:bj]]
        changes = [op for op in group if op[0] != "equal"]
        ci1, ci2, cj1, cj2 = changes[0][1], changes[-1][2], changes[0][3], changes[-1][4]
        hunks.append(
            protocol.Hunk(
                id=first_id + n,
                path=path,
                old_start=ci1 + 1 if a else 0,
                old_count=ci2 - ci1,
                new_start=cj1 + 1 if b else 0,
                new_count=cj2 - cj1,
                old_lines=[_strip_eol(x) for x in a[ci1:ci2]],
                new_lines=[_strip_eol(x) for x in b[cj1:cj2]],
                header=header,
                text="".join(body),
            )
        )
    return hunks


def _headers(path: str, created: bool) -> str:
    old = "/dev/null" if created else f"a/{path}"
    mode = "new file mode 100644\n" if created else ""
    return f"diff --git a/{path} b/{path}\n{mode}--- {old}\n+++ b/{path}\n"


def unified_diff(path: str, base: str, new: str, *, created: bool = False) -> str:
    """A git-style diff of one file; "" when nothing changed."""
    return file_diff(path, base, new, 1, created=created)[1]


def file_diff(
    path: str, base: str, new: str, first_id: int, *, created: bool = False
) -> tuple[protocol.FileDiff, str]:
    """The reviewable FileDiff of one file and its git-style unified text."""
    hunks = compute_hunks(path, base, new, first_id)
    a, b = split_lines(base), split_lines(new)
    added = removed = 0
    for group in _groups(a, b, 0):
        for tag, ai, aj, bi, bj in group:
            if tag != "equal":
                removed += aj - ai
                added += bj - bi
    diff = protocol.FileDiff(path=path, created=created, added=added, removed=removed, hunks=hunks)
    if not hunks:
        # An empty new file is still a change git would show, with no ---/+++ lines.
        text = f"diff --git a/{path} b/{path}\nnew file mode 100644\n" if created else ""
        return diff, text
    return diff, _headers(path, created) + "".join(h.text for h in hunks)


def apply_hunks(base: str, new: str, selected: set[int]) -> str:
    """`base` with only the hunks whose 0-based index (as compute_hunks orders them) is selected."""
    a, b = split_lines(base), split_lines(new)
    out: list[str] = []
    pos = 0
    for n, group in enumerate(_groups(a, b, 3)):
        if n not in selected:
            continue
        for tag, ai, aj, bi, bj in group:
            if tag != "equal":
                out += a[pos:ai]
                out += b[bi:bj]
                pos = aj
    out += a[pos:]
    return "".join(out)


def _write_inputs(texts: tuple[str, str, str]) -> tuple[str, list[str]]:
    tmp = tempfile.mkdtemp(prefix="pasd-merge-")
    names = []
    for name, text in zip(("current", "base", "other"), texts, strict=True):
        file = Path(tmp, name)
        # surrogateescape round-trips files that are not valid UTF-8 byte for byte.
        file.write_bytes(text.encode("utf-8", "surrogateescape"))
        names.append(str(file))
    return tmp, names


async def merge3(current: str, base: str, other: str) -> tuple[str, bool]:
    """Merge `base`→`other` into `current` with `git merge-file`; returns (text, conflicted)."""
    # File work goes to a thread so the event loop never blocks on the disk.
    tmp, names = await asyncio.to_thread(_write_inputs, (current, base, other))
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            "merge-file",
            "-p",
            *("-L", "current", "-L", "base", "-L", "proposed"),
            *names,
            cwd=tmp,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
    except OSError as exc:
        raise RuntimeError(f"cannot run git merge-file: {exc}") from exc
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp, True)
    code = proc.returncode
    # git exits with the number of conflicts (capped at 127); its errors are negative, so 255.
    if code is None or code < 0 or code > 127:
        raise RuntimeError(f"git merge-file failed ({code}): {err.decode(errors='replace').strip()}")
    return out.decode("utf-8", "surrogateescape"), code > 0
