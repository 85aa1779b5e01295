"""Replies as real models write them: each habit read as meant, or the block refused with a fix.

Each reply lives in tests/fixtures/replies/; every case states the exact files it leaves or the
exact refusal the model is sent. The last test sends a messy reply through a real daemon.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.programmer.edits import EditRefused, Parsed, apply_edit, parse_reply, resolve_path
from daemon.testing import DaemonProcess

REPLIES = Path(__file__).resolve().parents[1] / "fixtures" / "replies"
APP = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
UTIL = "def mul(a, b):\n    return a * b\n"
CALC = "def inc(x):\n    return x + 1\n\n\ndef dec(x):\n    return x + 1\n"
FILES = {"src/app.py": APP, "src/util.py": UTIL, "src/calc.py": CALC, "lib/calc.py": "x = 1\n"}


def run(name: str) -> tuple[dict[str, str], list[str]]:
    """Parse a corpus reply and apply it as the engine does: the changed files and the refusals."""
    parsed: Parsed = parse_reply((REPLIES / name).read_text())
    files, problems = dict(FILES), list(parsed.problems)
    for edit in parsed.edits:
        try:
            path = resolve_path(edit.path, files)
            files[path] = apply_edit(files[path], edit)
        except EditRefused as exc:
            problems.append(str(exc))
    return {k: v for k, v in files.items() if v != FILES[k]}, problems


@pytest.mark.parametrize(("name", "changed"), [
    ("second_divider.txt", {"src/app.py": APP.replace("a + b\n", "a + b  # the sum\n")}),
    ("second_divider_closes.txt", {"src/app.py": APP.replace("a - b", "b - a")}),
    ("indented_list.txt", {"src/app.py": APP.replace("def add", "def plus"),
                           "src/util.py": UTIL.replace("def mul", "def times")}),
    ("ellipsis_between.txt", {"src/app.py": APP.replace("(a, b):", "(a: int, b: int) -> int:")}),
    ("name_in_own_fence.txt", {"src/util.py": UTIL.replace("a * b", "b * a")}),
    ("blank_first_line.txt", {"src/app.py": APP.replace("def sub(a, b):\n", 'def sub(a, b):\n    """a minus b"""\n')}),
    ("dot_slash_path.txt", {"src/util.py": UTIL.replace("b):", "b):  # product")}),
    ("quoted_path.txt", {"src/util.py": UTIL.replace("b):", "b):  # product")}),
    ("bare_basename.txt", {"src/util.py": UTIL.replace("b):", "b):  # product")}),
    ("stray_marker.txt", {"src/util.py": UTIL.replace("a * b", "a * b  # product")}),
    ("elision.txt", {"src/app.py": APP.replace("a - b", "b - a")}),
    ("elision_comment.txt", {"src/app.py": APP.replace("(a, b):", "(a: int, b: int) -> int:")}),
    ("mixed.txt", {"src/app.py": APP.replace("a + b\n", "a + b  # the sum\n"),
                   "src/util.py": UTIL.replace("b):", "b):  # product")}),
])
def test_habit_is_read_as_meant(name: str, changed: dict[str, str]) -> None:
    assert run(name) == (changed, [])


@pytest.mark.parametrize(("name", "refusal"), [
    ("second_divider_ambiguous.txt",
     "the block for src/app.py at line 3 has a second ======= line (line 7) with more lines after it; a block "
     "has exactly one ======= line, between the lines to find and the lines that replace them: send that "
     "block again with one"),
    ("indented_mixed.txt",
     "the block for src/app.py at line 3: its marker lines are indented but some of its lines are indented "
     "less; send that block again without indenting the block itself"),
    ("bare_basename_ambiguous.txt",
     "calc.py: several of the task's files have that name (lib/calc.py, src/calc.py); write the file's full "
     "path above the block"),
    ("elision_ambiguous.txt",
     "src/calc.py: SEARCH leaves lines out with a `...` line, and its part 2 (first line '    return x + 1') "
     "occurs 2 times; copy more lines so that each part around `...` is found exactly once, or copy the "
     "file's lines in full"),
    ("elided_replace.txt",
     "src/app.py: REPLACE has the line '# ... existing code ...', which stands for lines left out and would "
     "land in the file as it is; write the new lines in full"),
    ("elision_without_replace_marker.txt",
     "src/app.py: SEARCH leaves lines out with a `...` line but REPLACE has no `...` line at the same place, "
     "so the lines left out would be lost; put a `...` line in REPLACE where SEARCH has one, or copy the "
     "left-out lines in full"),
])
def test_doubtful_block_is_refused_with_what_to_fix(name: str, refusal: str) -> None:
    assert run(name) == ({}, [refusal])


def test_a_refused_block_leaves_the_others_applied() -> None:
    text = ((REPLIES / "second_divider_ambiguous.txt").read_text()
            + "\n" + (REPLIES / "quoted_path.txt").read_text())
    parsed = parse_reply(text)
    assert [e.path for e in parsed.edits] == ["src/util.py"]
    assert len(parsed.problems) == 1 and "second ======= line" in parsed.problems[0]


def test_a_search_marker_in_the_prose_is_refused_and_the_real_block_applies() -> None:
    changed, problems = run("stray_search.txt")
    assert changed == {"src/util.py": UTIL.replace("a * b", "a * b  # product")}
    assert problems == ["the block at line 2 is not closed: a new <<<<<<< SEARCH line (line 7) comes before "
                        "its >>>>>>> REPLACE line; send that block again, complete"]


def test_an_ellipsis_line_is_never_a_path() -> None:
    parsed = parse_reply("...\n```\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n")
    assert parsed.edits == []
    assert parsed.problems == ["the block at line 3 has no file path before it; put the file's path alone on "
                               "the line above the block's opening fence"]


def test_a_replace_marker_after_a_divider_without_search_is_refused() -> None:
    parsed = parse_reply("src/app.py\n```\n    return a + b\n=======\n    return b + a\n>>>>>>> REPLACE\n```\n")
    assert parsed.edits == []
    assert parsed.problems == ["line 6: a >>>>>>> REPLACE line with no <<<<<<< SEARCH line before it; write the "
                               "whole block again: <<<<<<< SEARCH, the exact lines, =======, the new lines, "
                               ">>>>>>> REPLACE"]


def test_a_cut_off_reply_refuses_its_last_block_only() -> None:
    text = (REPLIES / "quoted_path.txt").read_text() + "src/app.py\n```\n<<<<<<< SEARCH\ndef add(a, b):\n"
    parsed = parse_reply(text)
    assert [e.path for e in parsed.edits] == ["src/util.py"]
    assert parsed.problems == ["the block for src/app.py at line 11 has no ======= line (was the answer cut "
                               "off?); send that block again, complete"]


def test_a_blank_line_that_is_in_the_file_is_kept() -> None:
    # SEARCH's blank first line is only dropped when the file does not have it there
    edit = parse_reply("a.py\n<<<<<<< SEARCH\n\nx\n=======\n\ny\n>>>>>>> REPLACE\n").edits[0]
    assert apply_edit("w\n\nx\n", edit) == "w\n\ny\n"
    assert apply_edit("w\nx\n", edit) == "w\ny\n"


def test_elision_keeps_the_lines_it_stands_for() -> None:
    content = "def f():\n    a = 1\n    b = 2\n    return a + b\n"
    edit = parse_reply("f.py\n<<<<<<< SEARCH\ndef f():\n    # ...\n    return a + b\n=======\ndef f() -> int:\n"
                       "    # ...\n    return a + b\n>>>>>>> REPLACE\n").edits[0]
    assert apply_edit(content, edit) == content.replace("def f():", "def f() -> int:")


def test_a_literal_ellipsis_line_matches_as_text_first() -> None:
    content = "class P(Protocol):\n    def f(self) -> int:\n        ...\n"
    edit = parse_reply("p.pyi\n<<<<<<< SEARCH\n    def f(self) -> int:\n        ...\n=======\n"
                       "    def f(self) -> str:\n        ...\n>>>>>>> REPLACE\n").edits[0]
    assert apply_edit(content, edit) == content.replace("-> int", "-> str")


def test_read_requests_are_read_outside_blocks_only() -> None:
    parsed = parse_reply("I need to see two files first.\nREAD src/models.py\nREAD `./lib/db.py`\n\n"
                         "src/app.py\n```\n<<<<<<< SEARCH\nREAD x\n=======\nREAD y\n>>>>>>> REPLACE\n```\n")
    assert parsed.reads == ["src/models.py", "lib/db.py"]
    assert [(e.path, e.search, e.replace) for e in parsed.edits] == [("src/app.py", "READ x\n", "READ y\n")]


# ---------------------------------------------------------------- through the daemon


async def test_messy_reply_through_the_daemon(daemon: DaemonProcess, offline: OfflineModel, tmp_path: Path) -> None:
    from daemon.testing import make_repo

    repo = make_repo(tmp_path / "messy", {"src/app.py": APP, "src/util.py": UTIL})
    offline.script([{"content": (REPLIES / "mixed.txt").read_text()}])
    async with daemon.client() as c:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="annotate",
                                             files=["src/app.py", "src/util.py"]))
        task = await c.wait(task.id)
        assert task.state is p.TaskState.REVIEW, task.error
        contents = await c.contents(task.id)
        got = {f.path: f.proposed for f in contents.files}
        assert got == {"src/app.py": APP.replace("a + b\n", "a + b  # the sum\n"),
                       "src/util.py": UTIL.replace("b):", "b):  # product")}
        (receipt,) = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert receipt.refused == [] and receipt.llm_calls == 1


def test_not_found_names_the_first_line_that_is_not_blank() -> None:
    edit = parse_reply("src/app.py\n<<<<<<< SEARCH\n\ndef mul(a, b):\n=======\nx\n>>>>>>> REPLACE\n").edits[0]
    with pytest.raises(EditRefused) as caught:
        apply_edit(APP, edit)
    assert str(caught.value) == ("src/app.py: SEARCH block not found (first line: 'def mul(a, b):'); copy the lines "
                                 "to find exactly as they are in the file now")


async def test_a_refused_block_goes_back_to_the_model_word_for_word(daemon: DaemonProcess, offline: OfflineModel,
                                                                     tmp_path: Path) -> None:
    from daemon.testing import make_repo

    repo = make_repo(tmp_path / "doubt", {"src/app.py": APP})
    offline.script([{"content": (REPLIES / "second_divider_ambiguous.txt").read_text()},
                    {"content": (REPLIES / "second_divider_closes.txt").read_text()}])
    async with daemon.client() as c:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="swap", files=["src/app.py"]))
        task = await c.wait(task.id)
        assert task.state is p.TaskState.REVIEW, task.error
        (f,) = (await c.contents(task.id)).files
    assert f.proposed == APP.replace("a - b", "b - a")
    told = offline.requests[1]["messages"][-1]["content"]
    assert told.startswith(
        "Some of your edits could not be applied:\n- the block for src/app.py at line 3 has a second ======= line "
        "(line 7) with more lines after it; a block has exactly one ======= line, between the lines to find and "
        "the lines that replace them: send that block again with one\n")
    assert f"### FILE: src/app.py (as it is now)\n```\n{APP}```" in told
