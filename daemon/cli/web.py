"""`pasd web`: serve the dashboard (pas_web) on loopback. aiohttp, Jinja2 and Pygments are loaded
only here, so the other commands start as fast as before."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP = "serve the web dashboard (pool, tasks, review, receipts charts) on 127.0.0.1"
DEFAULT_PORT = 8765
PARENT_VAR = "PASD_WEB_PARENT"  # set by a daemon that runs the dashboard: end with it


def add_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--port", type=int, default=DEFAULT_PORT,
                    help=f"TCP port (default: {DEFAULT_PORT}; 0 picks a free one)")
    sp.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default: 127.0.0.1; anything else is reachable from elsewhere)")
    sp.add_argument("--open", action="store_true", help="open the dashboard in a browser")
    sp.add_argument("--url", action="store_true",
                    help="print the URL (with its token) of the dashboard the daemon serves ([web] enabled = true)")


def print_url(args: argparse.Namespace) -> int:
    from daemon.cli import rpc
    from daemon.dashboard import read_url
    from daemon.errors import PasError

    try:
        hello = rpc.call("hello")
    except PasError as exc:
        print(f"pasd web: {exc.message}", file=sys.stderr)
        return 1
    url = read_url(Path(hello["state_dir"]))
    if url is None:
        print("pasd web: the daemon serves no dashboard (set `[web] enabled = true` in the config and "
              "restart it, or run `pasd web`)", file=sys.stderr)
        return 1
    print(url)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.url:
        return print_url(args)
    if (parent := os.environ.get(PARENT_VAR)) is not None:
        from daemon.private import die_with

        if not die_with(int(parent)):
            return 1  # started by a daemon that is gone already
    if not 0 <= args.port <= 65535:
        print(f"pasd web: --port takes 0 to 65535, got {args.port} (see `pasd web --help`)", file=sys.stderr)
        return 2
    try:
        from pas_web.serve import serve
    except ImportError as exc:
        print(f"pasd web: cannot load the dashboard ({exc}); reinstall pasd", file=sys.stderr)
        return 1
    try:
        import asyncio

        asyncio.run(serve(args.host, args.port, open_browser=args.open))
    except OSError as exc:
        print(f"pasd web: cannot listen on {args.host}:{args.port}: {exc.strerror or exc} "
              "(another port: --port N, or --port 0 for any free one)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
