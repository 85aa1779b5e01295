"""Whether pasd may join a Ray cluster, decided before Ray is imported.

A Ray cluster runs whatever code its clients send, so pasd joins one only with Ray's token
auth, except a cluster on this machine when the user says `--insecure-local`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from daemon.errors import ConfigError

AuthMode = Literal["token", "disabled"]
HOW = ("start the cluster with RAY_AUTH_MODE=token and give pasd the same token (RAY_AUTH_TOKEN, "
       "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token); see docs/ray.md")


def host_of(address: str) -> str:
    """The host of `host:port` (IPv6 in brackets); raises ConfigError for what pasd cannot join."""
    if "://" in address:
        raise ConfigError(f"pool.address {address!r}: give the head's host:port; Ray Client (ray://) "
                          "addresses are not supported, run pasd on a node of the cluster (docs/ray.md)")
    try:
        host = urlsplit(f"//{address}").hostname
    except ValueError:
        host = None
    if not host:
        raise ConfigError(f"pool.address {address!r} is not host:port")
    return host


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: never trusted as local, whatever it resolves to


def has_token(env: Mapping[str, str], home: Path) -> bool:
    """Is a token where Ray looks for one (its own order: variable, file named by a variable, default file)?"""
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return True
    path = Path(env["RAY_AUTH_TOKEN_PATH"]) if env.get("RAY_AUTH_TOKEN_PATH") else home / ".ray" / "auth_token"
    try:
        return bool(path.read_text().strip())
    except OSError:
        return False


def auth_mode(address: str | None, insecure_local: bool, env: Mapping[str, str] | None = None,
              home: Path | None = None) -> AuthMode:
    """The RAY_AUTH_MODE to join `address` with, or ConfigError saying why not."""
    env = os.environ if env is None else env
    if not address:
        raise ConfigError("pool.address: backend 'ray' needs the cluster's address (--address host:port)")
    loopback = is_loopback(host_of(address))
    if insecure_local and not loopback:
        raise ConfigError(f"pool.insecure_local is only for a Ray cluster on this machine (127.0.0.1, ::1, "
                          f"localhost); {address} is not one")
    explicit_off = env.get("RAY_AUTH_MODE", "").lower() == "disabled"
    if has_token(env, home or Path.home()) and not explicit_off:
        return "token"
    if insecure_local:
        return "disabled"
    why = "RAY_AUTH_MODE=disabled" if explicit_off else "no Ray auth token"
    hint = "; for a cluster on this machine only, --insecure-local joins without auth" if loopback else ""
    raise ConfigError(f"refusing to join the Ray cluster at {address} with {why}: {HOW}{hint}")
