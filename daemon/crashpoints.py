"""Named points where recovery tests crash or pause the daemon, as a power cut or a racing user would.

`PASD_CRASH_AT=<name>` makes the daemon kill itself with SIGKILL the first time it reaches that
point. `PASD_PAUSE_AT=<name>` makes it stop there the first time instead: it writes the marker
file `pause-<name>` in the directory it is given (the state dir) and waits, without blocking the
event loop, until the test removes that file. Unset (always, outside tests), `reach` and `pause`
are one dictionary lookup each.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

POLL_S = 0.01


def reach(name: str) -> None:
    if os.environ.get("PASD_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def marker(where: Path, name: str) -> Path:
    """The file that holds the daemon at `name` while it exists."""
    return where / f"pause-{name}"


async def pause(name: str, where: Path) -> None:
    if os.environ.get("PASD_PAUSE_AT") != name:
        return
    held, passed = marker(where, name), where / f"pause-{name}.passed"
    if passed.exists():
        return
    held.write_text(str(os.getpid()))
    while held.exists():
        await asyncio.sleep(POLL_S)
    passed.write_text("")
