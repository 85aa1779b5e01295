"""pas-tui: a live, keyboard-driven monitor and review queue for pasd.

Speaks to the daemon only through `daemon.client`; never imports litellm or pygls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pas_tui.app import PasApp

__all__ = ["PasApp"]


def __getattr__(name: str) -> Any:
    """`PasApp` on first use, so `pas-tui --version` and `--help` do not load Textual."""
    if name == "PasApp":
        from pas_tui.app import PasApp

        return PasApp
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
