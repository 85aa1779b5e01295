"""`pas-tui` / `python -m pas_tui`: start the monitor."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pas-tui", description="Live monitor and review queue for pasd.")
    from daemon.version import banner

    parser.add_argument("--version", action="version", version=banner("pas-tui"))
    parser.add_argument("--socket", help="the daemon's socket (default: $PASD_SOCKET or the per-user socket)")
    parser.add_argument("--workspace", help="workspace for the submit form (default: the current directory)")
    args = parser.parse_args(argv)

    from pas_tui.app import PasApp

    PasApp(args.socket, workspace=args.workspace).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
