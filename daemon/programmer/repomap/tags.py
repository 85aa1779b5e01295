"""What one source file defines and references, read with tree-sitter and the tags queries in `queries/`.

Blocking and CPU-bound: the daemon calls it from a thread. tree-sitter is imported on first use,
so nothing here loads at import time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

# file name suffix -> tree-sitter-language-pack grammar; the query file is named for the grammar
LANGUAGES: dict[str, str] = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hh": "cpp", ".hpp": "cpp", ".hxx": "cpp",
    ".lua": "lua",
}
_QUERY_FILE = {"tsx": "typescript"}  # the TSX grammar extends TypeScript's
# a name reached through one of these (`obj.name`) may be any type's method, a builtin's among them
_MEMBER_NODES = frozenset({"attribute", "member_expression", "field_expression", "selector_expression",
                           "method_index_expression", "dot_index_expression", "field_access"})
# languages whose files call each other's definitions: a name links files of one family only
_FAMILY = {"javascript": "js", "typescript": "js", "tsx": "js", "c": "c", "cpp": "c"}
SIGNATURE_LINES = 4  # at most this many lines of a definition's head are shown
LINE_CHARS = 160  # and each is cut here


class Definition(NamedTuple):  # a tuple of plain values: the garbage collector stops tracking it
    name: str
    kind: str  # class, function, method, constant, type, interface, module, ...
    line: int  # 0-based row of the definition's first line
    end: int  # its last row (to find which definitions enclose which)
    head: tuple[str, ...]  # the definition's first lines, as written (its signature)
    parent: int | None = None  # index of the enclosing definition in the file's list


@dataclass
class FileTags:
    """One file's definitions, and the names it references with the rows they appear on."""

    defs: list[Definition] = field(default_factory=list)
    refs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    members: frozenset[str] = frozenset()  # names referenced only after a dot (`x.get()`), a weaker link


def language_of(path: str) -> str | None:
    dot = path.rfind(".")
    return LANGUAGES.get(path[dot:].lower()) if dot > path.rfind("/") else None


def family_of(path: str) -> str:
    lang = language_of(path) or ""
    return _FAMILY.get(lang, lang)


class _Parsers(threading.local):
    """tree-sitter parsers are not thread-safe: each thread gets its own."""

    def __init__(self) -> None:
        self.by_lang: dict[str, Any] = {}


_parsers = _Parsers()


@cache
def _language(lang: str) -> Any:
    import tree_sitter_language_pack

    return tree_sitter_language_pack.get_language(lang)  # type: ignore[arg-type]


@cache
def _query(lang: str) -> Any:
    from tree_sitter import Query

    name = f"{_QUERY_FILE.get(lang, lang)}-tags.scm"
    text = resources.files(__package__).joinpath("queries").joinpath(name).read_text(encoding="utf-8")
    return Query(_language(lang), text)


def _parser(lang: str) -> Any:
    parser = _parsers.by_lang.get(lang)
    if parser is None:
        from tree_sitter import Parser

        parser = _parsers.by_lang[lang] = Parser(_language(lang))
    return parser


def parse(path: str, source: bytes) -> FileTags | None:
    """The file's tags; None for a language pasd has no grammar and query for."""
    lang = language_of(path)
    if lang is None:
        return None
    from tree_sitter import QueryCursor

    tree = _parser(lang).parse(source)
    lines = source.split(b"\n")
    out = FileTags()
    refs: dict[str, list[int]] = {}
    bare: set[str] = set()
    seen: set[tuple[str, int]] = set()
    found: list[tuple[int, int, str, str, Any]] = []  # (start byte, -end byte, name, kind, node)
    for _, caps in QueryCursor(_query(lang)).matches(tree.root_node):
        for cap, nodes in caps.items():
            if cap.startswith("name.reference."):
                for node in nodes:
                    name = _text(node)
                    if name:
                        refs.setdefault(name, []).append(node.start_point[0])
                        if node.parent is None or node.parent.type not in _MEMBER_NODES:
                            bare.add(name)
            elif cap.startswith("name.definition."):
                kind = cap.removeprefix("name.definition.")
                whole = caps.get(f"definition.{kind}") or nodes
                for node, outer in zip(nodes, whole, strict=False):
                    name = _text(node)
                    if name and (name, node.start_byte) not in seen:
                        seen.add((name, node.start_byte))
                        found.append((outer.start_byte, -outer.end_byte, name, kind, outer))
    found.sort(key=lambda f: (f[0], f[1]))
    stack: list[tuple[int, int]] = []  # (index, end byte) of the definitions enclosing the current one
    for start, neg_end, name, kind, node in found:
        while stack and stack[-1][1] <= start:
            stack.pop()
        out.defs.append(Definition(name=name, kind=kind, line=node.start_point[0], end=node.end_point[0],
                                   head=_head(lines, node), parent=stack[-1][0] if stack else None))
        stack.append((len(out.defs) - 1, -neg_end))
    out.refs = {name: tuple(rows) for name, rows in refs.items()}
    out.members = frozenset(refs.keys() - bare)
    return out


def _text(node: Any) -> str:
    raw = node.text
    return raw.decode("utf-8", "replace").strip() if raw else ""


def _head(lines: list[bytes], node: Any) -> tuple[str, ...]:
    """The definition's signature: its lines up to where its body starts (its first line when it has none)."""
    first = node.start_point[0]
    body = node.child_by_field_name("body")
    last = first
    if body is not None and body.start_point[0] > first:
        # a brace on its own line belongs to the head; an indented block (Python's) does not
        last = body.start_point[0] if (body.text or b"")[:1] == b"{" else body.start_point[0] - 1
    last = min(last, first + SIGNATURE_LINES - 1, len(lines) - 1)
    out = []
    for raw in lines[first : last + 1]:
        text = raw.decode("utf-8", "replace").rstrip().expandtabs(4)
        out.append(text if len(text) <= LINE_CHARS else text[: LINE_CHARS - 1] + "…")
    return tuple(out)
