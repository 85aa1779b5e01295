"""`pasd engines`: what can run a task here, and how to install what is missing."""

from __future__ import annotations

import argparse

from daemon import protocol as p
from daemon.cli.output import out, table
from daemon.client import PasClient


async def cmd_engines(args: argparse.Namespace, c: PasClient) -> int:
    found = await c.engines()
    rows = [[e.name, "yes" if e.installed else "no", e.version or "-", e.path or "-", e.brings] for e in found]
    text = table(rows, ["ENGINE", "INSTALLED", "VERSION", "PATH", "BRINGS"])
    missing = [e for e in found if not e.installed]
    for e in missing:
        text += f"\ninstall {e.name}: {e.install}"
    out(args, p.EngineList(engines=found), text)
    return 0
