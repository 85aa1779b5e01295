"""Hunks, unified text, partial apply and the 3-way merge behind approve."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from daemon.programmer.diffs import (
    apply_hunks,
    compute_hunks,
    file_diff,
    matching_blocks,
    merge3,
    split_lines,
    unified_diff,
)

BASE = "".join(f"line {n}\n" for n in range(1, 21))


def edited(text: str, **changes: str) -> str:
    """`text` with "line N" replaced by the given lines (keys like n3="x\\ny\\n")."""
    out = text
    for key, new in changes.items():
        out = out.replace(f"line {key[1:]}\n", new, 1)
    return out


def test_hunk_numbering_and_changed_region() -> None:
    new = edited(BASE, n2="line two\n", n15="line 15\nadded\n")
    hunks = compute_hunks("a.txt", BASE, new, first_id=7)
    assert [h.id for h in hunks] == [7, 8]
    first, second = hunks
    assert first.header == "@@ -1,5 +1,5 @@"
    assert (first.old_start, first.old_count, first.new_start, first.new_count) == (2, 1, 2, 1)
    assert (first.old_lines, first.new_lines) == (["line 2"], ["line two"])
    assert first.text == "@@ -1,5 +1,5 @@\n line 1\n-line 2\n+line two\n line 3\n line 4\n line 5\n"
    # A pure insertion: nothing replaced, new lines go before base line 16.
    assert second.header == "@@ -13,6 +13,7 @@"
    assert (second.old_start, second.old_count, second.new_start, second.new_count) == (16, 0, 16, 1)
    assert (second.old_lines, second.new_lines) == ([], ["added"])
    assert all(h.path == "a.txt" for h in hunks)


def test_nearby_changes_share_one_contiguous_region() -> None:
    new = edited(BASE, n5="five\n", n7="seven\n")
    (hunk,) = compute_hunks("a", BASE, new, 1)
    assert (hunk.old_start, hunk.old_count, hunk.new_count) == (5, 3, 3)
    assert hunk.old_lines == ["line 5", "line 6", "line 7"]
    assert hunk.new_lines == ["five", "line 6", "seven"]


def test_append_delete_and_empty_base_positions() -> None:
    (append,) = compute_hunks("a", "x\n", "x\ny\n", 1)
    assert (append.old_start, append.old_count, append.new_start) == (2, 0, 2)
    assert append.header == "@@ -1 +1,2 @@"
    (create,) = compute_hunks("a", "", "y\n", 1)
    assert (create.old_start, create.old_count, create.new_start, create.new_count) == (0, 0, 1, 1)
    assert create.header == "@@ -0,0 +1 @@"
    (delete,) = compute_hunks("a", "x\ny\n", "x\n", 1)
    assert (delete.old_start, delete.old_count, delete.new_start, delete.new_count) == (2, 1, 2, 0)
    assert delete.old_lines == ["y"]


def test_missing_final_newline_is_marked() -> None:
    (hunk,) = compute_hunks("a", "x\ny", "x\nz", 1)
    eol = "\\ No newline at end of file\n"
    assert hunk.text == f"@@ -1,2 +1,2 @@\n x\n-y\n{eol}+z\n{eol}"


def test_unified_diff_matches_git_apply(tmp_path: Path) -> None:
    new = edited(BASE, n1="first\n", n10="", n20="line 20\nend")
    text = unified_diff("pkg/a.txt", BASE, new)
    assert text.startswith("diff --git a/pkg/a.txt b/pkg/a.txt\n--- a/pkg/a.txt\n+++ b/pkg/a.txt\n@@ ")
    # git itself must accept the text and produce exactly `new`.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/a.txt").write_text(BASE)
    (tmp_path / "p.diff").write_text(text)
    subprocess.run(["git", "apply", "p.diff"], cwd=tmp_path, check=True)
    assert (tmp_path / "pkg/a.txt").read_text() == new


def test_unified_diff_created_and_unchanged(tmp_path: Path) -> None:
    assert unified_diff("a", BASE, BASE) == ""
    text = unified_diff("new.py", "", "print(1)\n", created=True)
    assert text == (
        "diff --git a/new.py b/new.py\nnew file mode 100644\n--- /dev/null\n+++ b/new.py\n"
        "@@ -0,0 +1 @@\n+print(1)\n"
    )
    (tmp_path / "p.diff").write_text(text)
    subprocess.run(["git", "apply", "p.diff"], cwd=tmp_path, check=True)
    assert (tmp_path / "new.py").read_text() == "print(1)\n"


def test_file_diff_counts() -> None:
    new = edited(BASE, n2="two\n", n10="", n19="a\nb\n")
    diff, text = file_diff("a.txt", BASE, new, first_id=3)
    assert (diff.path, diff.created, diff.added, diff.removed) == ("a.txt", False, 3, 3)
    assert [h.id for h in diff.hunks] == [3, 4, 5]
    assert text == unified_diff("a.txt", BASE, new)


def test_apply_hunks_subsets_keep_exact_bytes() -> None:
    base = "a\r\nb\r\nc\r\nd\r\ne\r\nf\r\ng\r\nh\r\ni\r\nj"
    new = "A\r\nb\r\nc\r\nd\r\ne\r\nf\r\ng\r\nh\r\ni\r\nJ\n"
    assert len(compute_hunks("f", base, new, 1)) == 2
    assert apply_hunks(base, new, {0}) == "A\r\n" + base[3:]
    assert apply_hunks(base, new, {1}) == base[:-1] + "J\n"
    assert apply_hunks(base, new, {0, 1}) == new
    assert apply_hunks(base, new, set()) == base


lines = st.lists(st.sampled_from(["a\n", "b\n", "c\n", "  d\n", "e\r\n", "\n", "f"]), max_size=30)


@given(lines, lines)
def test_apply_hunks_all_is_new_and_none_is_base(a: list[str], b: list[str]) -> None:
    # "f" has no newline; a line that lacks one can only stand last in a real file.
    base = "".join(x if x.endswith("\n") else x + "\n" for x in a[:-1]) + "".join(a[-1:])
    new = "".join(x if x.endswith("\n") else x + "\n" for x in b[:-1]) + "".join(b[-1:])
    n = len(compute_hunks("f", base, new, 1))
    assert apply_hunks(base, new, set(range(n))) == new
    assert apply_hunks(base, new, set()) == base
    # Any single hunk alone leaves every other region as it was in base.
    for i in range(n):
        partial = apply_hunks(base, new, {i})
        assert apply_hunks(partial, new, set(range(len(compute_hunks("f", partial, new, 1))))) == new


def join(lines: list[str]) -> str:
    """A file of `lines`; only the last may lack its newline, as in a real file."""
    return "".join(x if x.endswith("\n") else x + "\n" for x in lines[:-1]) + "".join(lines[-1:])


# Few distinct lines, many repeats: where difflib (autojunk off) turns quadratic and where
# equally short diffs abound.
few = st.lists(st.sampled_from(["x = 1\n", "x = 2\n", "\n", "}"]), max_size=120)


@given(few, few)
def test_hunks_of_repeated_lines_apply_and_describe_their_ranges(a_lines: list[str], b_lines: list[str]) -> None:
    base, new = join(a_lines), join(b_lines)
    a, b = split_lines(base), split_lines(new)
    hunks = compute_hunks("f", base, new, 1)
    assert apply_hunks(base, new, set(range(len(hunks)))) == new
    assert apply_hunks(base, new, set()) == base
    old_end = new_end = 0
    for h in hunks:
        # Each hunk's changed region is exactly those lines of each side, in order, disjoint.
        o, n = max(h.old_start - 1, 0), max(h.new_start - 1, 0)  # start 0: an empty side
        assert [x.rstrip("\r\n") for x in a[o:o + h.old_count]] == h.old_lines
        assert [x.rstrip("\r\n") for x in b[n:n + h.new_count]] == h.new_lines
        assert o >= old_end and n >= new_end and (h.old_count or h.new_count)
        old_end, new_end = o + h.old_count, n + h.new_count
        # The unified text agrees with its header and with the region.
        body = h.text.splitlines()[1:]
        olds = [x for x in body if x[:1] in " -"]
        news = [x for x in body if x[:1] in " +"]
        ranges = h.header.split()[1:3]
        counts = [int(r.split(",")[1]) if "," in r else 1 for r in ranges]
        assert (len(olds), len(news)) == tuple(counts)


@given(few, few)
def test_matching_blocks_are_a_longest_common_subsequence(a_lines: list[str], b_lines: list[str]) -> None:
    import difflib

    blocks = matching_blocks(a_lines, b_lines)
    i0 = j0 = 0
    for i, j, n in blocks:
        assert n > 0 and i >= i0 and j >= j0
        assert a_lines[i:i + n] == b_lines[j:j + n]
        i0, j0 = i + n, j + n
    # At least as many lines kept as difflib keeps (an LCS keeps the most there are).
    kept = sum(n for _, _, n in blocks)
    old = difflib.SequenceMatcher(None, a_lines, b_lines, autojunk=False).get_matching_blocks()
    assert kept >= sum(m.size for m in old)
    # A region too large for one LCS is first cut at unique lines; still a valid matching.
    cut = matching_blocks(a_lines, b_lines, max_cells=8)
    i0 = j0 = 0
    for i, j, n in cut:
        assert a_lines[i:i + n] == b_lines[j:j + n] and i >= i0 and j >= j0
        i0, j0 = i + n, j + n


def test_replacing_one_of_many_equal_lines_is_one_local_hunk(tmp_path: Path) -> None:
    base = "    total = total + value\n" * 5000
    lines = split_lines(base)
    lines[2500] = "    total = total - value\n"
    new = "".join(lines)
    (hunk,) = compute_hunks("f", base, new, 1)
    assert (hunk.old_start, hunk.old_count, hunk.new_start, hunk.new_count) == (2501, 1, 2501, 1)
    assert hunk.new_lines == ["    total = total - value"]
    diff, text = file_diff("f", base, new, 1)
    assert (diff.added, diff.removed) == (1, 1)
    (tmp_path / "f").write_text(base)
    (tmp_path / "p.diff").write_text(text)
    subprocess.run(["git", "apply", "p.diff"], cwd=tmp_path, check=True)
    assert (tmp_path / "f").read_text() == new


def test_unique_lines_anchor_a_region_too_large_for_one_lcs() -> None:
    a = [f"{n}\n" for n in range(50)]
    b = ["new\n", *a[:20], "mid\n", *a[20:], "end\n"]
    blocks = matching_blocks(a, b, max_cells=100)
    assert blocks == [(0, 1, 20), (20, 22, 30)]


async def test_merge3_clean_when_user_edited_elsewhere() -> None:
    proposed = edited(BASE, n15="line fifteen\n")
    current = edited(BASE, n2="user line 2\n")
    merged, conflicted = await merge3(current, BASE, proposed)
    assert not conflicted
    assert merged == edited(BASE, n2="user line 2\n", n15="line fifteen\n")


async def test_merge3_conflict_on_overlap() -> None:
    proposed = edited(BASE, n15="line fifteen\n")
    current = edited(BASE, n15="the user's 15\n")
    merged, conflicted = await merge3(current, BASE, proposed)
    assert conflicted
    assert "<<<<<<< current\nthe user's 15\n=======\nline fifteen\n>>>>>>> proposed\n" in merged


async def test_merge3_keeps_crlf_and_missing_newline() -> None:
    base = "a\r\nb\r\nc\r\nd\r\ne\r\nf"
    merged, conflicted = await merge3(base.replace("a", "A"), base, base.replace("f", "F"))
    assert (merged, conflicted) == ("A\r\nb\r\nc\r\nd\r\ne\r\nF", False)
