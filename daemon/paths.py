"""Where pasd keeps its socket, state and config. Light: no imports beyond the stdlib."""

from __future__ import annotations

import os
from pathlib import Path

APP = "pasd"


def socket_path() -> Path:
    """`$PASD_SOCKET`, else `$XDG_RUNTIME_DIR/pasd/pasd.sock`, else the platform runtime dir."""
    env = os.environ.get("PASD_SOCKET")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / APP / "pasd.sock"
    import platformdirs

    return Path(platformdirs.user_runtime_dir(APP)) / "pasd.sock"


def state_dir() -> Path:
    env = os.environ.get("PASD_STATE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_state_dir(APP))


def user_config_file() -> Path:
    env = os.environ.get("PASD_CONFIG")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


def missing_config() -> str | None:
    """A one-line warning when $PASD_CONFIG names a file that does not exist (then no settings are read from
    it); None otherwise. The default path missing is normal: the built-in defaults apply, silently."""
    env = os.environ.get("PASD_CONFIG")
    if not env or Path(env).expanduser().exists():
        return None
    return f"$PASD_CONFIG names {Path(env).expanduser()}, which does not exist; the built-in defaults apply"


PROJECT_CONFIG = ".pas.toml"
