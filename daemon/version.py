"""The installed package's version: standard library only, so `--version` answers without loading pasd."""

from __future__ import annotations

DIST = "pasd"


def version() -> str:
    from importlib import metadata  # only when asked: importing it costs a command 10 ms or more

    try:
        return metadata.version(DIST)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def banner(prog: str) -> str:
    return f"{prog} {version()}"
