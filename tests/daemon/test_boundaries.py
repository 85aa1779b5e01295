"""Import boundaries: the wire schema, the client and the CLI stay light (no litellm, no UI toolkits)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("litellm", "openai", "textual", "pygls", "watchfiles")


@pytest.mark.parametrize("module", ["daemon.protocol", "daemon.client", "daemon.cli.main", "daemon.config"])
def test_light_modules_load_nothing_heavy(module: str) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"{module} imports {out}"


def test_the_daemon_loads_litellm_only_in_the_engine() -> None:
    code = "import sys, daemon.app, daemon.server, daemon.scheduler; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_pasd_start_spawns_the_daemon_before_importing_pydantic() -> None:
    code = "import sys, daemon.launch; print(','.join(m for m in ('pydantic', 'asyncio') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def _imports(package: str) -> dict[str, set[str]]:
    """Each module of `package` and the modules of `package` it imports anywhere (functions and
    TYPE_CHECKING blocks included: a cycle hidden in either still ties the two modules together).
    A package's `__init__` that the import system runs on the way to a submodule is not counted."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / package
    names = {".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): path
             for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".")[: len(name.split(".")) - node.level + (path.name == "__init__.py")]
                    base = ".".join([*parts, base] if base else parts)
                # `from pkg import mod` depends on the module; `from mod import name` on `mod`
                found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in names else base for a in node.names}
        graph[name] = {m for m in found if m in names and m != name}
    return graph


@pytest.mark.parametrize("package", ["pas_lsp", "pas_tui"])
def test_no_two_modules_of_a_front_end_import_each_other(package: str) -> None:
    graph = _imports(package)
    assert any(graph.values()), f"no imports between the modules of {package} were found"

    def cycle_from(start: str) -> list[str] | None:
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    return [*path, start]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [c for c in map(cycle_from, sorted(graph)) if c]
    assert not cycles, "import cycle: " + " -> ".join(cycles[0])
