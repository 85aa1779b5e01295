"""`pas-lsp` / `python -m pas_lsp`: run the language server over stdio."""

from __future__ import annotations

import logging
import os
import sys


def main() -> None:
    logging.basicConfig(level=os.environ.get("PAS_LSP_LOG", "WARNING"), stream=sys.stderr,
                        format="pas-lsp %(levelname)s %(name)s: %(message)s")
    from pas_lsp.server import create_server

    create_server().start_io()


if __name__ == "__main__":
    main()
