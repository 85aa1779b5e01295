"""The diff, one syntax-highlighted block per hunk; `n`/`p` move, `space` selects."""

from __future__ import annotations

import fnmatch
import functools
from typing import TYPE_CHECKING

from rich.console import Group
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from daemon.protocol import DiffResult, Hunk, HunkState

if TYPE_CHECKING:
    from pygments.lexer import Lexer


class HunkView(Static):
    """One hunk: a header line (file, number, state, selection) and the highlighted hunk text."""

    DEFAULT_CSS = """
    HunkView { border-left: blank; padding: 0 1; margin-bottom: 1; }
    HunkView.-current { border-left: thick $accent; background: $boost; }
    """

    def __init__(self, hunk: Hunk) -> None:
        super().__init__()
        self.hunk = hunk
        self.chosen = False

    def on_mount(self) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        h = self.hunk
        mark = "[x]" if self.chosen else "[ ]"
        head = Text.assemble((f"{mark} ", "bold green" if self.chosen else "dim"),
                             (h.path, "bold"), f"  hunk {h.id}  ", (h.state.value, _HUNK_STYLE[h.state]))
        if h.stale:
            head.append("  stale: the file changed under this hunk", style="yellow")
        self.update(Group(head, hunk_text(h.path, h.text)))


_HUNK_STYLE = {HunkState.PENDING: "magenta", HunkState.APPLIED: "green", HunkState.REJECTED: "dim"}
_MARK_STYLE = {"+": "bold green", "-": "bold red", " ": ""}
LINE_BACKGROUND = {"+": "on #16361f", "-": "on #3d1a1f"}  # dark enough that the code's colours still read


def hunk_text(path: str, text: str) -> Text:
    """A unified-diff hunk with its code highlighted as the file's language, on green/red for +/- lines.

    The old side (context and `-` lines) and the new side (context and `+` lines) are each
    highlighted as a whole, so a string or comment opened on one line colours the lines after it.
    """
    lines = text.rstrip("\n").split("\n")
    lexer = _lexer(path)
    old = iter(_highlight([line[1:] for line in lines if line[:1] in " -"], lexer))
    new = iter(_highlight([line[1:] for line in lines if line[:1] in " +"], lexer))
    width = max((len(line) for line in lines), default=0)
    out = Text(no_wrap=True, overflow="crop")
    for i, line in enumerate(lines):
        if i:
            out.append("\n")
        mark = line[:1]
        if mark not in _MARK_STYLE or not line:  # the @@ header, "\ No newline at end of file"
            out.append(line, style="cyan" if line.startswith("@@") else "dim")
            continue
        code = next(old if mark == "-" else new)
        if mark == " ":
            next(old)
        row = Text.assemble((mark, _MARK_STYLE[mark]), code)
        if mark in LINE_BACKGROUND:  # padded so the hunk's changed lines make one even block
            row.append(" " * (width - len(line)))
            row.stylize_before(LINE_BACKGROUND[mark])
        out.append_text(row)
    return out


def _lexer(path: str) -> Lexer | str:
    """The file's language by its name alone: guessing from the code loads every lexer (seconds)."""
    cls = _lexer_class(path.rsplit("/", 1)[-1])
    return cls() if cls is not None else "text"


@functools.lru_cache(maxsize=256)
def _lexer_class(name: str) -> type[Lexer] | None:
    """Pygments' choice for a file name (`get_lexer_for_filename`) among its own lexers only: asking
    for plugin lexers imports every package that offers one (IPython's alone takes half a second)."""
    from pygments.lexers import find_lexer_class_by_name, get_all_lexers

    best: tuple[float, str, type[Lexer]] | None = None
    for _, aliases, patterns, _ in get_all_lexers(plugins=False):
        for pattern in patterns:
            if aliases and _name_matches(name, pattern):
                cls = find_lexer_class_by_name(aliases[0])
                rating = (cls.priority + (0 if "*" in pattern else 0.5), cls.__name__)  # as pygments rates them
                if best is None or rating > best[:2]:
                    best = (*rating, cls)
    return best[2] if best else None


def _name_matches(name: str, pattern: str) -> bool:
    """`fnmatchcase`, without compiling a pattern for the common `*.ext`."""
    if pattern.startswith("*") and not any(c in pattern[1:] for c in "*?["):
        return name.endswith(pattern[1:])
    return fnmatch.fnmatchcase(name, pattern)


def _highlight(code: list[str], lexer: Lexer | str) -> list[Text]:
    if not code:
        return []
    from rich.syntax import Syntax

    text = Syntax("\n".join(code), lexer, theme="ansi_dark").highlight("\n".join(code))
    out = text.split("\n", allow_blank=True)
    return [*out, *(Text() for _ in range(len(code) - len(out)))]


class HunkList(VerticalScroll):
    """The hunks of one task; tracks the current hunk and which hunks are chosen."""

    DEFAULT_CSS = """
    HunkList { width: 2fr; height: 1fr; }
    """

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.current = 0

    @property
    def views(self) -> list[HunkView]:
        return list(self.query(HunkView))

    async def show(self, diff: DiffResult | None, keep_choice: bool = False) -> None:
        """Show a task's hunks; keeps the current hunk and choices when it is the same task."""
        chosen = {v.hunk.id for v in self.views if v.chosen} if keep_choice else set()
        await self.remove_children()
        if diff is None:
            return
        views = [HunkView(h) for f in diff.files for h in f.hunks]
        for v in views:
            v.chosen = v.hunk.id in chosen and v.hunk.state is HunkState.PENDING
        if not views:
            await self.mount(Static(Text("no changes", style="dim")))
            return
        await self.mount_all(views)
        self.current = min(self.current, len(views) - 1) if keep_choice else 0
        self._mark()

    def move(self, step: int) -> None:
        views = self.views
        if views:
            self.current = max(0, min(len(views) - 1, self.current + step))
            self._mark()

    def toggle(self) -> HunkView | None:
        """Choose or un-choose the current hunk (only pending hunks can be chosen)."""
        views = self.views
        if not views:
            return None
        view = views[self.current]
        if view.hunk.state is HunkState.PENDING:
            view.chosen = not view.chosen
            view.refresh_view()
        return view

    @property
    def chosen(self) -> list[int]:
        return [v.hunk.id for v in self.views if v.chosen]

    def _mark(self) -> None:
        for i, v in enumerate(self.views):
            v.set_class(i == self.current, "-current")
        views = self.views
        if views:
            views[self.current].scroll_visible(animate=False)
