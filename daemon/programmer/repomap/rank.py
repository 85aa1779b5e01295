"""Rank a workspace's definitions for one task and render the best of them within a token budget.

Files are nodes; a file that references a name another file defines gets an edge to it. A
PageRank personalised towards the task's files (and the files defining the names its selection
or instruction mentions) ranks the files, and each file's rank flows along its edges to the
definitions it uses. Only what the task's files reach this way is shown: a definition nothing of
the task leads to is not worth the tokens. Pure Python, no imports beyond the stdlib.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from daemon.programmer.repomap.tags import FileTags, family_of

DAMPING = 0.5  # a task's map is about what its files use: most of the walk stays within two steps of them
ITERATIONS = 20  # 0.5^20: nothing is left to move
TOLERANCE = 1e-4  # the order of the ranks is what counts, not their fourth digit
MAX_DEFINERS = 50  # a name defined in more files than this (`get`, `main`, `init`) says nothing
MENTION_BOOST = 10.0
MEMBER_WEIGHT = 0.1
DISTINCT_BOOST = 10.0  # `parse_config` or `makeCircle` says more about a link than `get` or `add`
HEADER = "Definitions elsewhere in the repository that the task's files use (signatures only, for reference):\n"


def estimate_tokens(text: str) -> int:
    """Tokens in `text`, estimated as 4 characters each: the daemon does not load a tokenizer (litellm's
    lives in the engine) and a budget only needs to be about right."""
    return (len(text) + 3) // 4


class Graph:
    """The reference graph over a workspace's files, kept up to date file by file.

    Who defines and who uses each name is maintained as files come and go; a file's edges (the
    files it uses, weighted) are worked out when a ranking first reaches it and kept until a
    definition they depend on comes or goes. An edit that keeps its file's names costs that file.
    """

    def __init__(self) -> None:
        self.tags: dict[str, FileTags] = {}
        self.defines: dict[str, set[str]] = {}  # name -> files defining it
        self._by_family: dict[tuple[str, str], set[str]] = {}  # a Python call never means a Go function
        self._users: dict[tuple[str, str], set[str]] = {}  # (family, name) -> files referencing it
        self._edges: dict[str, tuple[list[tuple[str, float]], list[tuple[str, str, float]]]] = {}

    def put(self, path: str, ft: FileTags | None) -> None:
        """Add, replace (ft) or remove (None) one file."""
        old = self.tags.pop(path, None)
        fam = family_of(path)
        before = {d.name for d in old.defs} if old is not None else set()
        after = {d.name for d in ft.defs} if ft is not None else set()
        if old is not None:
            for name in before:
                _discard(self.defines, name, path)
                _discard(self._by_family, (fam, name), path)
            for name in old.refs:
                _discard(self._users, (fam, name), path)
        if ft is not None:
            self.tags[path] = ft
            for name in after:
                self.defines.setdefault(name, set()).add(path)
                self._by_family.setdefault((fam, name), set()).add(path)
            for name in ft.refs:
                self._users.setdefault((fam, name), set()).add(path)
        # the edges that change: this file's own, and those of the files using a name it gained or lost
        self._edges.pop(path, None)
        for name in before ^ after:
            for user in self._users.get((fam, name), ()):
                self._edges.pop(user, None)

    def edges(self, path: str) -> tuple[list[tuple[str, float]], list[tuple[str, str, float]]]:
        """(files it uses with weights summing to 1 at most, (definer, name, share) per definition it uses)."""
        hit = self._edges.get(path)
        if hit is not None:
            return hit
        ft = self.tags.get(path) or FileTags()
        fam = family_of(path)
        weights: dict[tuple[str, str], float] = {}
        for name, rows in ft.refs.items():
            definers = self._by_family.get((fam, name))
            if not definers or len(definers) > MAX_DEFINERS:
                continue
            mul = DISTINCT_BOOST if _distinct(name) else 1.0
            if name in ft.members:  # `x.get()` may be anyone's `get`, a dict's among them
                mul *= MEMBER_WEIGHT
            if name.startswith("_"):
                mul *= 0.1
            if len(definers) > 5:
                mul *= 0.1
            w = mul * math.sqrt(len(rows))
            for definer in definers:
                if definer != path:
                    weights[(definer, name)] = w
        # weights sum to 1 at most: a file whose only links are weak (one `x.join()`) passes on little
        # of its rank, and the rest goes back to the task's files
        total = max(sum(weights.values()), 1.0)
        per_file: dict[str, float] = {}
        uses: list[tuple[str, str, float]] = []
        for (dst, name), w in sorted(weights.items()):
            per_file[dst] = per_file.get(dst, 0.0) + w / total
            uses.append((dst, name, w / total))
        hit = self._edges[path] = (sorted(per_file.items()), uses)
        return hit


def _distinct(name: str) -> bool:
    """A long compound name (snake_case or camelCase), which few unrelated definitions share."""
    return len(name) >= 8 and ("_" in name.strip("_") or (not name.isupper() and not name.islower()))


def _discard(table: dict[Any, set[str]], key: Any, path: str) -> None:
    files = table.get(key)
    if files is not None:
        files.discard(path)
        if not files:
            del table[key]


def build_graph(tags: Mapping[str, FileTags]) -> Graph:
    graph = Graph()
    for path, ft in tags.items():
        graph.put(path, ft)
    return graph


def pagerank(graph: Graph, personal: Mapping[str, float]) -> dict[str, float]:
    """Personalised PageRank by power iteration over the files the personal ones reach.

    A file outside that reach has rank 0 (teleports and dead ends go back to the personal files),
    so only the reachable part is iterated.
    """
    total = sum(personal.values())
    if not total:
        return {}
    reach = {n: i for i, n in enumerate(sorted(personal))}
    nodes = list(reach)
    todo = list(nodes)
    while todo:
        for dst, _ in graph.edges(todo.pop())[0]:
            if dst not in reach:
                reach[dst] = len(nodes)
                nodes.append(dst)
                todo.append(dst)
    out = [[(reach[dst], w) for dst, w in graph.edges(n)[0]] for n in nodes]
    kept = [1.0 - sum(w for _, w in edges) for edges in out]  # what a node does not pass on
    base = [personal.get(n, 0.0) / total for n in nodes]
    rank = list(base)
    for _ in range(ITERATIONS):
        nxt = [0.0] * len(nodes)
        dangling = 0.0
        for i, r in enumerate(rank):
            dangling += r * kept[i]
            r *= DAMPING
            for j, w in out[i]:
                nxt[j] += r * w
        spread = (1.0 - DAMPING) + DAMPING * dangling
        delta = 0.0
        for i, b in enumerate(base):
            if b:
                nxt[i] += spread * b
            delta += abs(nxt[i] - rank[i])
        rank = nxt
        if delta < TOLERANCE:
            break
    return dict(zip(nodes, rank, strict=True))


def rank_definitions(graph: Graph, task_files: Iterable[str], mentioned: Iterable[str] = ()
                     ) -> list[tuple[float, str, str]]:
    """(rank, file, name) of the definitions the task reaches, best first; none of the task's own files."""
    task = {f for f in task_files if f in graph.tags}
    named = {m for m in mentioned if 0 < len(graph.defines.get(m, ())) <= MAX_DEFINERS}
    personal: dict[str, float] = dict.fromkeys(task, 1.0)
    for name in named:
        definers = graph.defines[name] - task
        for f in definers:
            personal[f] = personal.get(f, 0.0) + 0.5 / len(definers)
    rank = pagerank(graph, personal)
    scores: dict[tuple[str, str], float] = {}
    for src, r in rank.items():
        for dst, name, share in graph.edges(src)[1]:
            scores[(dst, name)] = scores.get((dst, name), 0.0) + r * share * (MENTION_BOOST if name in named else 1.0)
    for name in named:  # a mentioned name counts even when no file of the task uses it yet
        for f in graph.defines[name]:
            scores[(f, name)] = scores.get((f, name), 0.0) + rank.get(f, 0.0) * MENTION_BOOST
    ranked = [(s, f, n) for (f, n), s in scores.items() if s > 0 and f not in task]
    ranked.sort(key=lambda t: (-t[0], t[1], t[2]))
    return ranked


def render(ranked: list[tuple[float, str, str]], tags: Mapping[str, FileTags], max_tokens: int) -> str:
    """The outline of the best-ranked definitions that fits `max_tokens` (with the enclosing class or
    module lines that place them), files in path order, definitions in file order; "" when none fits."""
    budget = max_tokens * 4 - len(HEADER)  # the same 4-characters-per-token estimate
    shown: dict[str, set[int]] = {}
    used = 0
    misses = 0
    for _, path, name in ranked:
        ft = tags[path]
        want: set[int] = set()
        for i, d in enumerate(ft.defs):
            if d.name == name:
                j: int | None = i
                while j is not None:
                    want.add(j)
                    j = ft.defs[j].parent
        have = shown.get(path, set())
        new = want - have
        if not new:
            continue
        cost = sum(_size(ft.defs[i].head) for i in new) + (0 if have else len(path) + 4)
        if used + cost > budget:
            misses += 1
            if misses > 20:  # the budget is spent: smaller definitions further down rarely fit
                break
            continue
        shown.setdefault(path, set()).update(new)
        used += cost
    if not shown:
        return ""
    parts = [HEADER]
    for path in sorted(shown):
        ft = tags[path]
        parts.append(f"\n{path}:\n")
        last = -2
        for i in sorted(shown[path], key=lambda i: ft.defs[i].line):
            d = ft.defs[i]
            if d.line <= last:  # on a line already shown (a one-line class and its method)
                continue
            if d.line > last + 1:
                parts.append("⋮\n")
            parts.extend(f"│{line}\n" for line in d.head)
            last = d.line + len(d.head) - 1
    return "".join(parts)


def _size(head: tuple[str, ...]) -> int:
    return sum(len(line) + 2 for line in head) + 2
