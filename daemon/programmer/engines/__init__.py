"""External engines: tools that edit the task's snapshot in place of the native engine.

"native" (daemon/programmer/engine.py) is not in the registry: it is the default. Each engine
module exports `ENGINE`, an instance; the registry takes those of the modules that exist.
"""

from __future__ import annotations

import importlib

from daemon.programmer.engines.base import ExternalEngine, Installed, Invocation, Usage

NATIVE = "native"
_MODULES = ("aider", "claude", "codex")


def _load() -> dict[str, ExternalEngine]:
    found: dict[str, ExternalEngine] = {}
    for module in _MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{module}":
                raise
            continue
        engine: ExternalEngine = mod.ENGINE
        found[engine.name] = engine
    return found


ENGINES: dict[str, ExternalEngine] = _load()
"""Every external engine by name (read-only by convention)."""


def names() -> list[str]:
    """Every engine a task may name, native first."""
    return [NATIVE, *ENGINES]


def get(name: str) -> ExternalEngine:
    """The external engine called `name`; KeyError for an unknown one (and for "native")."""
    return ENGINES[name]


__all__ = ["ENGINES", "NATIVE", "ExternalEngine", "Installed", "Invocation", "Usage", "get", "names"]
