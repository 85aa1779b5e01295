"""Dependencies go one way: no two modules of the CLI, the launcher and the client import each other,
directly or around a circle (imports inside functions count too: a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports(path: Path, module: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                base = ".".join([*module.split(".")[:-node.level], node.module])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def graph(packages: list[str], singles: list[str]) -> dict[str, set[str]]:
    files = {m: ROOT / (m.replace(".", "/") + ".py") for m in singles}
    for pkg in packages:
        for f in (ROOT / pkg.replace(".", "/")).glob("*.py"):
            files[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
    return {m: {d for d in imports(f, m) if d in files and d != m} for m, f in files.items()}


def cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g[m]):
            if state.get(d) == 1:
                return [*stack[stack.index(d):], d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_cli_launcher_and_client_import_one_way() -> None:
    g = graph(["daemon.cli"], ["daemon.launch", "daemon.client", "daemon.offline_model", "daemon.testing"])
    assert "daemon.cli.main" in g and "daemon.cli.demo" in g
    assert cycle(g) is None, " -> ".join(cycle(g) or [])


def test_the_cycle_check_sees_a_circle() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
