"""`pas-lsp` / `python -m pas_lsp`: run the language server over stdio."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGINT or SIGTERM: leave the way the editor's `exit` does, without a traceback."""
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    from daemon.version import banner

    parser = argparse.ArgumentParser(prog="pas-lsp", description="The pasd language server for editors: delegate "
                                     "a selection to the pool, review its diff in place. The editor starts it.")
    parser.add_argument("--version", action="version", version=banner("pas-lsp"))
    parser.add_argument("--stdio", action="store_true", help="talk LSP over stdin and stdout (the default and "
                        "only transport)")
    parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    logging.basicConfig(level=os.environ.get("PAS_LSP_LOG", "WARNING"), stream=sys.stderr,
                        format="pas-lsp %(levelname)s %(name)s: %(message)s")
    try:
        from pas_lsp.server import create_server

        create_server().start_io()
    except SystemExit as exc:  # a signal before the server's own loop was running
        return exc.code if isinstance(exc.code, int) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
