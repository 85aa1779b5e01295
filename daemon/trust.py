"""What a workspace's `.pas.toml` may change before the user trusts it, and the record of trusted files.

A repository is someone else's until the user says otherwise: its `.pas.toml` may narrow what a
task may do (fewer commands and files, smaller budgets and limits), but anything that widens a
guardrail, names an endpoint or a key, changes prices, routing or the pool, or picks a model the
user's own config does not name, is ignored until `pasd trust` records that file's SHA-256.

RULES holds one combiner per settings key; every Settings field must be covered by one (a test
walks the model), so a new key cannot slip through unruled. Light: stdlib and pydantic only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

Dump = dict[str, Any]
# (user's value, workspace file's value, user's whole settings) -> the value in force while untrusted
Combiner = Callable[[Any, Any, Dump], Any]


def trust_only(user: Any, ws: Any, _: Dump) -> Any:
    """Anything but the user's own value needs trust."""
    return user


def smaller(user: Any, ws: Any, _: Dump) -> Any:
    return min(user, ws)


def smaller_none_unlimited(user: Any, ws: Any, _: Dump) -> Any:
    """Budgets: None is no cap, so any number narrows it and None never does."""
    if ws is None:
        return user
    return ws if user is None else min(user, ws)


def smaller_zero_unlimited(user: Any, ws: Any, _: Dump) -> Any:
    """`jobs.parallel`: 0 means as many as the pool has."""
    if ws == 0:
        return user
    return ws if user == 0 else min(user, ws)


def subset(user: Any, ws: Any, _: Dump) -> Any:
    """Allowlists: keep only the workspace's entries the user's own list has too."""
    return [x for x in ws if x in user]


def union(user: Any, ws: Any, _: Dump) -> Any:
    """Denylists: the workspace may add entries, never drop the user's."""
    return [*user, *(x for x in ws if x not in user)]


def off_only(user: Any, ws: Any, _: Dump) -> Any:
    """A switch that widens when on (`check_network`)."""
    return user and ws


def at_least(order: list[str]) -> Combiner:
    """An enum ordered weakest first (`sandbox`): the workspace may only pick an equal or stronger one."""

    def combine(user: Any, ws: Any, _: Dump) -> Any:
        rank = {name: i for i, name in enumerate(order)}
        return ws if rank.get(ws, -1) >= rank.get(user, len(order)) else user

    return combine


def named_models(user: Dump) -> set[str]:
    """Every model (and tier) the user's own config names; "auto" routes over the user's tiers only."""
    m = user["models"]
    return {"auto", m["default"], *m["choices"], *m["tiers"], *m["tiers"].values(), *m["settings"]}


def named(user: Any, ws: Any, whole: Dump) -> Any:
    return ws if ws in named_models(whole) else user


def named_each(user: Any, ws: Any, whole: Dump) -> Any:
    """Menus: the workspace's choices the user's config names; the user's own if none is."""
    names = named_models(whole)
    return [x for x in ws if x in names] or user


RULES: dict[str, Combiner] = {
    "pool": trust_only,
    "models.default": named,
    "models.choices": named_each,
    "models.tiers": trust_only,
    "models.routing": trust_only,
    "models.settings": trust_only,  # endpoints, key variables, prices and litellm kwargs
    "guardrails.allow_files": subset,
    "guardrails.allow_commands": subset,
    "guardrails.check_env": subset,
    "guardrails.check_network": off_only,
    "guardrails.sandbox": at_least(["off", "auto", "bwrap"]),
    "guardrails.on_check_failure": at_least(["review", "fail"]),
    "guardrails.task_timeout_s": smaller,
    "guardrails.model_timeout_s": smaller,
    "guardrails.check_timeout_s": smaller,
    "guardrails.check_output_bytes": smaller,
    "guardrails.max_rounds": smaller,
    "guardrails.task_budget_usd": smaller_none_unlimited,
    "guardrails.daily_budget_usd": smaller_none_unlimited,
    "guardrails.job_budget_usd": smaller_none_unlimited,
    "jobs.max_tasks": smaller,
    "jobs.parallel": smaller_zero_unlimited,
    "jobs.plan_max_bytes": smaller,
    "context.map_tokens": smaller,
    "context.max_reads": smaller,
    "context.read_max_bytes": smaller,
    "context.round_max_bytes": smaller,
    "context.deny": union,
    "store": trust_only,  # retention is the daemon's, read from the user's config only (daemon/retention.py)
    "engines": trust_only,  # which executable runs, with what options
    "mcp.allow_approve": off_only,  # an agent applying diffs to the user's files
    "web": trust_only,  # the daemon's own, read from the user's config at start only (daemon/dashboard.py)
}


def unruled(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Settings keys no rule covers (a section is covered by its own rule or by one per field)."""
    out = []
    for name, field in model.model_fields.items():
        key = prefix + name
        if key in RULES:
            continue
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out += unruled(kind, key + ".")
        else:
            out.append(key)
    return out


def _get(d: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(d, dict) or part not in d:
            return _MISSING
        d = d[part]
    return d


_MISSING = object()
_BARE = re.compile(r"[A-Za-z0-9_-]+")


def key_name(path: list[str]) -> str:
    """A dotted key as TOML spells it: `models.settings."openai/x".api_base`."""
    return ".".join(p if _BARE.fullmatch(p) else json.dumps(p) for p in path)


def _leaves(raw: Any, path: list[str]) -> list[list[str]]:
    if isinstance(raw, dict) and raw:
        return [leaf for k, v in raw.items() for leaf in _leaves(v, [*path, str(k)])]
    return [path]


def restrict(user: Dump, merged: Dump, raw: Dump) -> tuple[Dump, list[str]]:
    """The settings in force while the workspace file is untrusted, and the keys it sets that are ignored.

    `user`: the user's settings dumped; `merged`: the user's overlaid with the file, validated and
    dumped; `raw`: the file as parsed. Rules for keys this version has no field for are skipped.
    """
    out = json.loads(json.dumps(user))  # a deep copy
    ignored: list[str] = []
    for key, combine in RULES.items():
        path = key.split(".")
        u, w = _get(user, path), _get(merged, path)
        if u is _MISSING or w is _MISSING or _get(raw, path) is _MISSING:
            continue
        value = combine(u, w, user)
        _get(out, path[:-1])[path[-1]] = value
        # the file asked for more than it gets: name its keys that differ from the user's (a denylist it
        # extends gets all it asks for, and the user's entries besides)
        if value != w and combine is not union:
            ignored += [key_name(leaf) for leaf in _leaves(_get(raw, path), path)
                        if _get(merged, leaf) != _get(user, leaf)] or [key]
    return out, ignored


# ---------------------------------------------------------------- the record of trusted files


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Trusted:
    path: str
    sha256: str
    trusted_at: float


class TrustStore:
    """`trust.json` in the state dir (0600, dir 0700): config file path -> the SHA-256 the user trusted.

    Written atomically (a temp file renamed over it); re-read when it changes on disk.
    """

    FILE = "trust.json"

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / self.FILE
        self._stamp: tuple[int, int, int] | None = None
        self._files: dict[str, Trusted] = {}

    def _fresh(self) -> dict[str, Trusted]:
        try:
            st = self.path.stat()
        except OSError:
            self._stamp, self._files = None, {}
            return self._files
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._files = {}
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
                data = json.loads(self.path.read_text())
                for path, entry in data["files"].items():
                    self._files[path] = Trusted(path, str(entry["sha256"]), float(entry["trusted_at"]))
            self._stamp = stamp
        return self._files

    def is_trusted(self, path: Path, digest: str) -> bool:
        entry = self._fresh().get(str(path))
        return entry is not None and entry.sha256 == digest

    def files(self) -> list[Trusted]:
        return sorted(self._fresh().values(), key=lambda t: t.path)

    def trust(self, path: Path, digest: str) -> None:
        files = dict(self._fresh())
        files[str(path)] = Trusted(str(path), digest, time.time())
        self._write(files)

    def revoke(self, path: Path) -> bool:
        files = dict(self._fresh())
        if files.pop(str(path), None) is None:
            return False
        self._write(files)
        return True

    def _write(self, files: dict[str, Trusted]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)  # the state dir is the user's alone, whoever created it first
        data = {"version": 1, "files": {t.path: {"sha256": t.sha256, "trusted_at": t.trusted_at}
                                        for t in sorted(files.values(), key=lambda t: t.path)}}
        fd, tmp = tempfile.mkstemp(prefix=".trust-", suffix=".json", dir=self.path.parent)  # 0600, O_EXCL
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._stamp = None  # re-read: the stamp of the new file is not known here
