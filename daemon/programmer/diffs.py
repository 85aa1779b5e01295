"""Diffs of a task's files: reviewable hunks, git-style unified text, partial apply, 3-way merge."""

from __future__ import annotations

import asyncio
import bisect
import difflib
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from rapidfuzz.distance import Indel

from daemon import protocol

Opcode = tuple[str, int, int, int, int]
_NO_EOL = "\\ No newline at end of file\n"


def split_lines(text: str) -> list[str]:
    """Lines with their endings; unlike str.splitlines, only "\\n" ends a line (as in git)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


# rapidfuzz's LCS keeps a bit matrix of about cells/8 bytes; a changed region larger than this
# (e.g. two rewritten 25,000-line files) is first cut at lines found once on each side.
_MAX_CELLS = 1 << 29


def matching_blocks(a: Sequence[str], b: Sequence[str], max_cells: int = _MAX_CELLS) -> list[tuple[int, int, int]]:
    """Runs (i, j, n) with a[i:i+n] == b[j:j+n], in order: a longest common subsequence of lines.

    difflib's SequenceMatcher is quadratic when lines repeat (5,000 nearly identical lines took
    seconds); rapidfuzz's bit-parallel LCS is near-linear on them and exact. Lines are numbered
    first, so equal numbers mean equal lines (no hash collisions).
    """
    ids: dict[str, int] = {}
    x = [ids.setdefault(line, len(ids)) for line in a]
    y = [ids.setdefault(line, len(ids)) for line in b]
    found: list[tuple[int, int, int]] = []
    _match(x, y, (0, len(x), 0, len(y)), found, max_cells)
    cx, cy = [True] * len(x), [True] * len(y)  # which lines are changed
    for i, j, n in found:
        cx[i:i + n] = [False] * n
        cy[j:j + n] = [False] * n
    # Among equally short diffs the LCS may pick one whose changes sit far apart in a run of
    # equal lines (a one-line replacement shown as an insertion here and a deletion at the end
    # of the run); slide them together as git does.
    _compact(x, cx, cy)
    _compact(y, cy, cx)
    # The unchanged lines of each side pair up in order.
    out: list[tuple[int, int, int]] = []
    for i, j in zip([i for i, c in enumerate(cx) if not c], [j for j, c in enumerate(cy) if not c], strict=True):
        if out and out[-1][0] + out[-1][2] == i and out[-1][1] + out[-1][2] == j:
            out[-1] = (out[-1][0], out[-1][1], out[-1][2] + 1)
        else:
            out.append((i, j, 1))
    return out


def _compact(x: list[int], cx: list[bool], cy: list[bool]) -> None:
    """Slide each run of changed lines of x along equal lines (git's xdl_change_compact).

    A run moves as far as equal lines let it, merging with runs it meets, and stops where it
    lines up with a change in the other file if it can, else as far down as it goes. With u
    unchanged lines before it, a run of x faces the other file's (maybe empty) run between its
    u-th and (u+1)-th unchanged lines.
    """
    n = len(x)
    kept = [j for j, c in enumerate(cy) if not c]  # the other file's unchanged lines
    ends = [-1, *kept, len(cy)]

    def facing(u: int) -> bool:
        """Whether the other file has changed lines where a run of x with u before it stands."""
        return ends[u + 1] > ends[u] + 1

    def start_of(i: int) -> int:
        while i > 0 and cx[i - 1]:
            i -= 1
        return i

    def end_of(i: int) -> int:
        while i < n and cx[i]:
            i += 1
        return i

    try:
        gs = cx.index(True)
    except ValueError:
        return
    u, ge = gs, end_of(gs)
    while True:
        while True:
            size, matched = ge - gs, -1
            while gs > 0 and x[gs - 1] == x[ge - 1]:  # up, merging with runs met
                gs, ge, u = gs - 1, ge - 1, u - 1
                cx[gs], cx[ge] = True, False
                gs = start_of(gs)
            earliest = ge
            if facing(u):
                matched = ge
            while ge < n and x[gs] == x[ge]:  # down, merging with runs met
                cx[gs], cx[ge] = False, True
                gs, ge, u = gs + 1, end_of(ge + 1), u + 1
                if facing(u):
                    matched = ge
            if size == ge - gs:
                break
        if ge != earliest and matched != -1:
            while not facing(u):  # back up to the last place facing a change
                gs, ge, u = gs - 1, ge - 1, u - 1
                cx[gs], cx[ge] = True, False
                gs = start_of(gs)
        try:
            nxt = cx.index(True, ge + 1)
        except ValueError:
            return
        u += nxt - ge
        gs, ge = nxt, end_of(nxt)


def _match(x: list[int], y: list[int], region: tuple[int, int, int, int],
           out: list[tuple[int, int, int]], max_cells: int) -> None:
    alo, ahi, blo, bhi = region
    if (ahi - alo) * (bhi - blo) <= max_cells:  # rapidfuzz trims common ends itself
        for blk in Indel.opcodes(x[alo:ahi], y[blo:bhi]).as_matching_blocks():
            out.append((alo + blk.a, blo + blk.b, blk.size))
        return
    start = alo
    while alo < ahi and blo < bhi and x[alo] == y[blo]:
        alo, blo = alo + 1, blo + 1
    out.append((start, blo - (alo - start), alo - start))
    end = ahi
    while alo < ahi and blo < bhi and x[ahi - 1] == y[bhi - 1]:
        ahi, bhi = ahi - 1, bhi - 1
    out.append((ahi, bhi, end - ahi))
    if alo == ahi or blo == bhi:
        return
    if (ahi - alo) * (bhi - blo) <= max_cells:
        _match(x, y, (alo, ahi, blo, bhi), out, max_cells)
        return
    # Too large for one LCS: anchor at the longest run of lines unique on both sides (patience
    # diff), then diff each gap. Without such lines the region stays one replacement.
    i0, j0 = alo, blo
    for i, j in _unique_anchors(x, y, alo, ahi, blo, bhi):
        _match(x, y, (i0, i, j0, j), out, max_cells)
        out.append((i, j, 1))
        i0, j0 = i + 1, j + 1
    if (i0, j0) != (alo, blo):
        _match(x, y, (i0, ahi, j0, bhi), out, max_cells)


def _unique_anchors(x: list[int], y: list[int], alo: int, ahi: int, blo: int,
                    bhi: int) -> list[tuple[int, int]]:
    """Lines that occur once in x[alo:ahi] and once in y[blo:bhi], as a longest in-order chain."""
    count: dict[int, int] = {}
    for v in x[alo:ahi]:
        count[v] = count.get(v, 0) + 1
    where: dict[int, int] = {}
    for j in range(blo, bhi):
        v = y[j]
        if count.get(v) == 1:
            where[v] = -1 if v in where else j
    pairs = [(i, where[x[i]]) for i in range(alo, ahi) if where.get(x[i], -1) >= 0]
    # Longest increasing run of j (patience sorting), keeping back-links to rebuild it.
    tails: list[int] = []
    tail_at: list[int] = []
    back: list[int] = []
    for n, (_, j) in enumerate(pairs):
        k = bisect.bisect_left(tails, j)
        back.append(tail_at[k - 1] if k else -1)
        if k == len(tails):
            tails.append(j)
            tail_at.append(n)
        else:
            tails[k], tail_at[k] = j, n
    chain: list[tuple[int, int]] = []
    n = tail_at[-1] if tail_at else -1
    while n >= 0:
        chain.append(pairs[n])
        n = back[n]
    return chain[::-1]


class LineMatcher(difflib.SequenceMatcher[str]):
    """difflib's opcodes and hunk grouping, over the matching blocks of `matching_blocks`."""

    def __init__(self, a: Sequence[str], b: Sequence[str]) -> None:
        super().__init__(None, a, b, autojunk=False)
        ends = [difflib.Match(len(a), len(b), 0)]
        self._blocks = [difflib.Match(i, j, n) for i, j, n in matching_blocks(a, b)] + ends

    def set_seq2(self, b: Sequence[str]) -> None:
        # difflib would index b for find_longest_match, which this matcher never calls
        self.b, self.matching_blocks, self.opcodes, self.fullbcount = b, None, None, None

    def get_matching_blocks(self) -> list[difflib.Match]:
        return list(self._blocks)


def _groups(a: list[str], b: list[str], context: int) -> Iterable[list[Opcode]]:
    return LineMatcher(a, b).get_grouped_opcodes(context)


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
    return _hunks(path, a, b, _groups(a, b, context), first_id)


def _hunks(path: str, a: list[str], b: list[str], groups: Iterable[list[Opcode]],
           first_id: int) -> list[protocol.Hunk]:
    hunks: list[protocol.Hunk] = []
    for n, group in enumerate(groups):
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
    a, b = split_lines(base), split_lines(new)
    matcher = LineMatcher(a, b)  # one diff serves the hunks and the counts
    hunks = _hunks(path, a, b, matcher.get_grouped_opcodes(3), first_id)
    added = removed = 0
    for tag, ai, aj, bi, bj in matcher.get_opcodes():
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
    return Patch(base, new).apply(selected)


class Patch:
    """One file's change diffed once, so that any subset of its hunks applies without a new diff."""

    def __init__(self, base: str, new: str) -> None:
        self.a, self.b = split_lines(base), split_lines(new)
        self.groups = list(_groups(self.a, self.b, 3))

    def apply(self, selected: set[int]) -> str:
        """`base` with only the hunks whose 0-based index is selected."""
        a, b = self.a, self.b
        out: list[str] = []
        pos = 0
        for n, group in enumerate(self.groups):
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
