"""Start and stop the daemon; trust a workspace's settings. (`pasd status` is a quick command: daemon/cli/quick.py.)"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from daemon import protocol as p
from daemon.cli.args import workspace_root
from daemon.cli.output import out, table
from daemon.client import PasClient, ensure_daemon
from daemon.errors import DaemonUnavailable, PasError


async def running() -> p.HelloResult | None:
    """The daemon's hello, or None when none answers."""
    try:
        async with PasClient(name="cli") as c:
            return await c.hello()
    except DaemonUnavailable:
        return None


async def cmd_start(args: argparse.Namespace) -> int:
    await ensure_daemon(args.workers, pool_argv=pool_argv(args))
    return 0


def pool_overrides(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    if args.backend:
        out["backend"] = args.backend
    if args.address:
        out["address"] = args.address
    if args.insecure_local:
        out["insecure_local"] = True
    return out


def pool_argv(args: argparse.Namespace) -> list[str]:
    """The same flags for the background `serve`."""
    argv = [f"--backend={args.backend}"] if args.backend else []
    argv += [f"--address={args.address}"] if args.address else []
    return argv + (["--insecure-local"] if args.insecure_local else [])


async def cmd_stop(args: argparse.Namespace) -> int:
    try:
        async with PasClient(name="cli") as c:
            hello = await c.hello()
            await c.shutdown()
    except DaemonUnavailable:
        print("pasd is not running")
        return 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and await running() is not None:
        await asyncio.sleep(0.05)
    print(f"pasd stopped (pid {hello.pid})")
    return 0



async def warn_untrusted(c: PasClient, workspace: str) -> None:
    """One line on stderr when the workspace's .pas.toml has settings the daemon ignores."""
    for u in (await c.status()).untrusted:  # as daemon/cli/quick.py's, for the commands on PasClient
        if u.workspace == workspace:
            print(f"pasd: warning: {u.message()}", file=sys.stderr)


async def cmd_trust(args: argparse.Namespace, c: PasClient) -> int:
    if args.list:
        if args.workspace or args.revoke:
            raise PasError("--list takes no workspace and no --revoke")
        files = (await c.trusted()).files
        rows = [[f.path, f.sha256[:16], "yes" if f.current else "no (changed since)",
                 time.strftime("%Y-%m-%d %H:%M", time.localtime(f.trusted_at))] for f in files]
        out(args, files, table(rows, ["FILE", "SHA256", "CURRENT", "TRUSTED"]) if rows else "no trusted files")
        return 0
    r = await c.trust(p.TrustParams(workspace=workspace_root(args.workspace), revoke=args.revoke))
    if args.revoke:
        text = f"no longer trusted: {r.path}" if r.changed else f"{r.path} was not trusted"
        if r.keys:
            text += f"\nnow ignored: {', '.join(r.keys)}"
    else:
        text = f"trusted {r.path}\nsha256 {r.sha256}\n"
        text += (f"now applies: {', '.join(r.keys)}" if r.keys
                 else "nothing was being ignored: its settings only narrow yours")
    out(args, r, text)
    return 0

