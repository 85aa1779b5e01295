"""The `pasd` console script: the fast start path (standard library only, daemon/launch.py), else
the full command line."""

from __future__ import annotations

import sys


def entry() -> int:
    from daemon import launch

    code = launch.main(sys.argv[1:])
    if code is None:
        from daemon.cli.main import main

        code = main()
    return code
