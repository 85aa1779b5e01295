"""Named points where recovery tests crash the daemon, as a power cut or SIGKILL would.

`PASD_CRASH_AT=<name>` makes the daemon kill itself with SIGKILL the first time it reaches that
point. Unset (always, outside tests), `reach` is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal


def reach(name: str) -> None:
    if os.environ.get("PASD_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
