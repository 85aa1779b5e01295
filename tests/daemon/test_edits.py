"""The SEARCH/REPLACE format: reading what models write, applying it to files as they are."""

from __future__ import annotations

import pytest

from daemon.programmer.edits import Edit, EditFormatError, SearchNotFound, apply_edit, parse_edits

FENCED = """I'll rename the function and add a docstring.

src/app.py
```python
<<<<<<< SEARCH
def old():
    return 1
=======
def new():
    \"\"\"One.\"\"\"
    return 1
>>>>>>> REPLACE
```

That should do it.
"""


# ---------------------------------------------------------------- parse


def test_parse_fenced_block_with_prose_around() -> None:
    assert parse_edits(FENCED) == [
        Edit("src/app.py", "def old():\n    return 1\n", 'def new():\n    """One."""\n    return 1\n')
    ]


def test_parse_fence_without_language_and_decorated_path() -> None:
    text = "**`lib/util.py`**\n```\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n"
    assert parse_edits(text) == [Edit("lib/util.py", "a\n", "b\n")]


@pytest.mark.parametrize("line", ["# src/x.py", "File: src/x.py", "src/x.py:", "  src/x.py  "])
def test_parse_strips_path_noise(line: str) -> None:
    text = f"{line}\n```py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n"
    assert parse_edits(text)[0].path == "src/x.py"


def test_parse_without_fence_path_just_before_search() -> None:
    text = "Change:\nsrc/a.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\nDone."
    assert parse_edits(text) == [Edit("src/a.py", "x = 1\n", "x = 2\n")]


def test_parse_path_inside_fence() -> None:
    text = "```python\nsrc/a.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n```"
    assert parse_edits(text) == [Edit("src/a.py", "x\n", "y\n")]


def test_parse_crlf_and_marker_variants() -> None:
    text = (
        "a.py\r\n```\r\n<<<<<<<<< SEARCH   \r\nold\r\n=====  \r\nnew\r\n>>>>> REPLACE\r\n```\r\n"
    )
    assert parse_edits(text) == [Edit("a.py", "old\n", "new\n")]


def test_parse_several_blocks_and_path_reuse() -> None:
    text = """First file:

a.py
```python
<<<<<<< SEARCH
one
=======
ONE
>>>>>>> REPLACE
<<<<<<< SEARCH
two
=======
TWO
>>>>>>> REPLACE
```

And a new file:

b/c.md
```
<<<<<<< SEARCH
=======
# Title

text
>>>>>>> REPLACE
```
"""
    assert parse_edits(text) == [
        Edit("a.py", "one\n", "ONE\n"),
        Edit("a.py", "two\n", "TWO\n"),
        Edit("b/c.md", "", "# Title\n\ntext\n"),
    ]


def test_parse_empty_replace_deletes() -> None:
    text = "a.py\n<<<<<<< SEARCH\ngone\n=======\n>>>>>>> REPLACE\n"
    assert parse_edits(text) == [Edit("a.py", "gone\n", "")]


def test_parse_no_blocks() -> None:
    assert parse_edits("The code looks fine; I would not change anything.\n") == []
    assert parse_edits("") == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a.py\n```\n<<<<<<< SEARCH\nold\n", "no ======="),
        ("a.py\n```\n<<<<<<< SEARCH\nold\n=======\nnew\n```\n", "no >>>>>>> REPLACE"),
        ("a.py\n<<<<<<< SEARCH\nx\n<<<<<<< SEARCH\ny\n=======\nz\n>>>>>>> REPLACE\n", "not closed"),
        ("```\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n```", "no file path before it"),
        ("a.py\nx\n=======\ny\n>>>>>>> REPLACE\n", "no <<<<<<< SEARCH line"),
    ],
)
def test_parse_malformed(text: str, says: str) -> None:
    with pytest.raises(EditFormatError, match=says):
        parse_edits(text)


# ---------------------------------------------------------------- apply


def test_apply_exact_first_occurrence_only() -> None:
    content = "a = 1\nb = 2\na = 1\n"
    assert apply_edit(content, Edit("f.py", "a = 1\n", "a = 10\n")) == "a = 10\nb = 2\na = 1\n"


def test_apply_exact_matches_whole_lines_only() -> None:
    content = "max = 1\nx = 1\n"
    assert apply_edit(content, Edit("f.py", "x = 1\n", "x = 2\n")) == "max = 1\nx = 2\n"


def test_apply_keeps_crlf_file_crlf() -> None:
    content = "one\r\ntwo\r\nthree\r\n"
    out = apply_edit(content, Edit("f.txt", "two\n", "2\nand a half\n"))
    assert out == "one\r\n2\r\nand a half\r\nthree\r\n"


def test_apply_keeps_missing_final_newline() -> None:
    assert apply_edit("a\nb", Edit("f", "b\n", "B\nC\n")) == "a\nB\nC"
    assert apply_edit("a\nb", Edit("f", "b\n", "")) == "a"


def test_apply_tolerates_trailing_whitespace_drift() -> None:
    content = "def f():   \n    return 1\t\n"
    out = apply_edit(content, Edit("f.py", "def f():\n    return 1\n", "def f():\n    return 2\n"))
    assert out == "def f():\n    return 2\n"


def test_apply_reindents_when_search_is_less_indented() -> None:
    content = "class A:\n    def f(self):\n        return 1\n\n    def g(self):\n        pass\n"
    edit = Edit("f.py", "def f(self):\n    return 1\n", "def f(self):\n    # why\n    return 2\n")
    assert apply_edit(content, edit) == (
        "class A:\n    def f(self):\n        # why\n        return 2\n\n    def g(self):\n        pass\n"
    )


def test_apply_reindents_when_search_is_more_indented() -> None:
    content = "if x:\n  y()\n\n  z()\n"
    edit = Edit("f.py", "    if x:\n      y()\n\n      z()\n", "    if x:\n      y(1)\n")
    assert apply_edit(content, edit) == "if x:\n  y(1)\n"


def test_apply_indentation_must_shift_uniformly() -> None:
    content = "if x:\n        y()\n"
    with pytest.raises(SearchNotFound):
        apply_edit(content, Edit("f.py", "    if x:\n    y()\n", "z\n"))


def test_apply_not_found_names_path_and_first_line() -> None:
    with pytest.raises(SearchNotFound, match=r"src/a\.py.*'def missing\(\):'"):
        apply_edit("x = 1\n", Edit("src/a.py", "def missing():\n    pass\n", ""))


def test_apply_create_and_append() -> None:
    assert apply_edit("", Edit("new.py", "", "print(1)\n")) == "print(1)\n"
    assert apply_edit("a\n", Edit("f", "", "b\n")) == "a\nb\n"
    assert apply_edit("a", Edit("f", "", "b\n")) == "a\nb\n"
    assert apply_edit("a\r\n", Edit("f", "", "b\n")) == "a\r\nb\r\n"


def test_parse_then_apply_round_trip() -> None:
    (edit,) = parse_edits(FENCED)
    assert apply_edit("def old():\n    return 1\n", edit) == 'def new():\n    """One."""\n    return 1\n'
