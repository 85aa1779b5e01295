"""pas-tui: a live, keyboard-driven monitor and review queue for pasd.

Speaks to the daemon only through `daemon.client`; never imports litellm or pygls.
"""

from pas_tui.app import PasApp

__all__ = ["PasApp"]
