"""Named points where recovery tests crash the daemon, as a power cut or SIGKILL would.

`PASD_CRASH_AT=<name>` makes the daemon kill itself with SIGKILL the first time it reaches that
point. Unset (always, outside tests), `reach` is one comparison.
"""

from __future__ import annotations

import os
import signal

_AT = os.environ.get("PASD_CRASH_AT")


def reach(name: str) -> None:
    if _AT == name:
        os.kill(os.getpid(), signal.SIGKILL)
