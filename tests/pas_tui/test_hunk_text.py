"""A hunk's code is highlighted as its file's language, on a green or red ground for its +/- lines."""

from __future__ import annotations

from rich.console import Console
from rich.style import Style

from pas_tui.widgets.review.hunks import LINE_BACKGROUND, hunk_text

HUNK = "\n".join([
    "@@ -1,4 +1,4 @@",
    " def sub(a, b):",
    "-    return a - b  # old",
    '+    return "x" - b',
    " ",
    "\\ No newline at end of file",
]) + "\n"


def styles(path: str) -> dict[str, list[Style]]:
    """Each rendered piece of text and the styles it was drawn with."""
    out: dict[str, list[Style]] = {}
    for seg in Console(width=80, color_system="truecolor").render(hunk_text(path, HUNK)):
        if seg.text.strip():
            out.setdefault(seg.text.strip(), []).append(seg.style or Style())
    return out


def test_python_keywords_strings_and_comments_get_their_colours_on_the_line_background() -> None:
    seen = styles("app.py")
    plain = Style.parse("")
    added, removed = Style.parse(LINE_BACKGROUND["+"]).bgcolor, Style.parse(LINE_BACKGROUND["-"]).bgcolor
    [keyword_ctx] = seen["def"]
    assert keyword_ctx.color is not None and keyword_ctx.bgcolor is None  # context: coloured, no ground
    returns = seen["return"]
    assert {s.bgcolor for s in returns} == {added, removed}
    assert all(s.color == keyword_ctx.color for s in returns)  # `return` coloured like `def`, on either side
    [comment] = seen["# old"]
    assert comment.bgcolor == removed and comment != plain
    assert any(s.color is not None and s.bgcolor == added for s in seen['"'])  # the string
    assert seen["-"][0].bgcolor == removed and seen["+"][0].bgcolor == added
    assert seen["@@ -1,4 +1,4 @@"][0].color is not None


def test_an_unknown_language_is_plain_text_with_the_same_grounds() -> None:
    seen = styles("notes.unknownext")
    assert "def" not in seen  # no lexer: the context line stays one piece, uncoloured
    assert any(s.bgcolor is not None for s in seen.get("return a - b  # old", []))


def test_the_language_is_the_one_pygments_picks_for_the_file_name() -> None:
    """Among pygments' own lexers, by the same rating (`get_lexer_for_filename`), without loading plugins."""
    from pygments.lexers import get_lexer_for_filename
    from pygments.util import ClassNotFound

    from pas_tui.widgets.review.hunks import _lexer

    for name in ("app.py", "src/lib.rs", "include/a.h", "x.c", "Makefile", "web/app.tsx", "types.d.ts",
                 "Dockerfile", "CMakeLists.txt", "notes.md", "pyproject.toml", "run.sh", "data.json", "a.m",
                 "README", "x.unknownext"):
        try:
            expected = type(get_lexer_for_filename(name.rsplit("/", 1)[-1])).__name__
        except ClassNotFound:
            expected = "text"
        got = _lexer(name)
        assert (got if isinstance(got, str) else type(got).__name__) == expected, name
