"""`pasd mcp`: serve the pool to an agent over the Model Context Protocol (stdio).

The `mcp` SDK is imported only here, when the command runs: the CLI's other commands never load it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP = "serve the pool over the Model Context Protocol (stdio), for agents such as Claude Code"


def add_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--workspace", help="workspace root the tools work in (default: the git top level, else .)")
    sp.add_argument("--allow-approve", action="store_true",
                    help="offer an approve_task tool, so the agent may apply diffs (default: the config's "
                         "[mcp] allow_approve, else review stays yours)")
    sp.add_argument("--no-start", action="store_true",
                    help="do not start the daemon when none answers; the tools report it is down")


def run(args: argparse.Namespace) -> int:
    from daemon.cli.args import workspace_root

    workspace = workspace_root(args.workspace)
    if not os.path.isdir(workspace):
        print(f"pasd mcp: --workspace {args.workspace}: not a directory", file=sys.stderr)
        return 2
    from daemon.config import load
    from daemon.errors import ConfigError

    try:  # the daemon reads the same files; a workspace's .pas.toml may turn approving on only once trusted
        allow_approve = args.allow_approve or load(Path(workspace)).mcp.allow_approve
    except ConfigError as exc:
        print(f"pasd mcp: {exc.message}", file=sys.stderr)
        return 2
    try:
        from daemon.mcp_server import serve
    except ImportError as exc:
        print(f"pasd mcp: the MCP SDK is not installed ({exc}); pip install 'mcp>=2.3'", file=sys.stderr)
        return 1
    try:
        import asyncio

        asyncio.run(serve(workspace, allow_approve=allow_approve, start_daemon=not args.no_start))
    except KeyboardInterrupt:
        return 130
    return 0
