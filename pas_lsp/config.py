"""Typed client settings (`pas.models`, `pas.defaultModel`, `pas.socket`) and their fallbacks.

A bad client value is reported (a message naming the key) and replaced by its default, so a
typo in an editor's settings never stops the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_ACTION_MODELS = 5


class PasSettings(BaseModel):
    """The `pas` section as the editor sends it; empty values mean "not set"."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    models: list[str] = []
    """Model choices offered in code actions (the first 5); empty: the daemon's `models.choices`."""
    default_model: str = Field(default="", alias="defaultModel")
    """Model used when none is chosen; empty: the daemon's `models.default`."""
    socket: str = ""
    """Daemon socket path; empty: the daemon's own default (`$PASD_SOCKET`, then the runtime dir)."""


def parse_settings(raw: Any) -> tuple[PasSettings, list[str]]:
    """Settings from a client's object, field by field; returns the problems found, one per key."""
    if raw is None or raw == []:  # Lua's empty table arrives as []
        return PasSettings(), []
    if not isinstance(raw, dict):
        return PasSettings(), [f"pas: expected an object of settings, got {type(raw).__name__}"]
    good: dict[str, Any] = {}
    problems: list[str] = []
    for field_name, info in PasSettings.model_fields.items():
        key = info.alias or field_name
        if key not in raw or raw[key] is None:
            continue
        try:
            PasSettings.model_validate({key: raw[key]})
        except ValidationError as exc:
            problems.append(f"pas.{key}: {exc.errors()[0]['msg']}; using the default")
            continue
        good[key] = raw[key]
    settings = PasSettings.model_validate(good)
    settings.models = [m.strip() for m in settings.models if m.strip()]
    settings.default_model = settings.default_model.strip()
    settings.socket = settings.socket.strip()
    return settings, problems


@dataclass(frozen=True)
class Effective:
    """What the server uses: client settings over the daemon's config."""

    models: list[str]
    default_model: str | None
    socket: str | None


def effective(settings: PasSettings, workspace: Path | None) -> tuple[Effective, str | None]:
    """Merge with the daemon's config (`daemon.config.load`); returns an error if that config is bad."""
    from daemon import config as daemon_config
    from daemon.errors import PasError

    error = None
    try:
        fallback = daemon_config.load(workspace)
    except PasError as exc:
        error = f"daemon config: {exc.message}; using built-in defaults"
        fallback = daemon_config.Settings()
    return combine(settings, fallback.models.choices, fallback.models.default), error


def combine(settings: PasSettings, choices: list[str], default: str | None) -> Effective:
    """The client's models and default over the daemon's `models.choices` and `models.default`."""
    models = settings.models or list(choices)
    default = settings.default_model or default
    if default and default not in models:
        models = [default, *models] if not settings.models else models
    return Effective(models=models, default_model=default or None, socket=settings.socket or None)
