"""The store: `pasd gc` removes the stored diffs of long-reviewed tasks (receipts and summaries stay).

Light at import (protocol and client load when the command runs): every command builds the parser,
`add_parser` included.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from daemon.cli.output import out, plural

if TYPE_CHECKING:
    from daemon.client import PasClient


def add_parser(cmd: Callable[..., argparse.ArgumentParser]) -> None:
    """`pasd gc`, added by main's parser through its `cmd` helper."""
    sp = cmd("gc", "remove the stored diffs of tasks reviewed more than N days ago; their receipts and "
                   "summaries stay")
    sp.add_argument("--keep-days", type=_days, metavar="N",
                    help="keep the diffs of tasks reviewed in the last N days (default: [store] keep_days)")
    sp.add_argument("--dry-run", action="store_true", help="only say what would be removed")


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not 0 <= value <= 36_500:
        raise argparse.ArgumentTypeError(f"days must be between 0 and 36500, not {text}")
    return value


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def day(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


async def cmd_gc(args: argparse.Namespace, c: PasClient) -> int:
    from daemon import protocol as p

    r = await c.gc(p.GcParams(keep_days=args.keep_days, dry_run=args.dry_run))
    what = (f"{plural(r.tasks, 'task')} reviewed before {day(r.cutoff)}: {plural(r.files, 'stored file')} "
            f"({mb(r.text_bytes)} of text), {plural(r.hunk_states, 'hunk state')}")
    if r.dry_run:
        text = f"would remove the diffs of {what}; receipts and task summaries stay"
    elif not r.tasks:
        text = f"nothing to remove: no task reviewed before {day(r.cutoff)} still has its diff"
    else:
        text = (f"removed the diffs of {what}; receipts and task summaries kept\n"
                f"database {mb(r.db_bytes_before)} -> {mb(r.db_bytes_after)}, {mb(r.freed_bytes)} freed"
                + (" (with a VACUUM)" if r.vacuumed else ""))
    out(args, r, text)
    return 0
