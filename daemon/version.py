"""The installed package's version: standard library only, so `--version` answers without loading pasd."""

from __future__ import annotations

from importlib import metadata

DIST = "pasd"


def version() -> str:
    try:
        return metadata.version(DIST)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def banner(prog: str) -> str:
    return f"{prog} {version()}"
