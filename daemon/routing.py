"""Model routing: `model = "auto"` picks a tier by the task's size and kind; fallback moves a
task to the next tier when its model is unavailable.

The rule lives in the config (`[models.tiers]`, `[models.routing]`), and every choice carries
its reason, which the task and its receipts record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from daemon.config import RouteRule, Settings
from daemon.errors import BadModel, PasError
from daemon.protocol import Receipt, Selection, TaskInfo

if TYPE_CHECKING:
    from daemon.store import Store

AUTO = "auto"
Kind = Literal["selection", "files", "plan"]

# Task failure reasons that mean "this model is unavailable": move at once, or after repeats.
FALLBACK_AT_ONCE = {"auth", "bad_model"}
FALLBACK_WHEN_REPEATED = {"provider", "connection", "model_timeout", "malformed"}


@dataclass(frozen=True)
class Scope:
    kind: Kind
    lines: int
    files: int

    def describe(self) -> str:
        s = "" if self.files == 1 else "s"
        what = {"selection": "a selection", "files": "whole files", "plan": "planning a job"}[self.kind]
        return f"{self.lines} lines in {self.files} file{s} ({what})"


@dataclass(frozen=True)
class Route:
    tier: str
    model: str
    reason: str


def count_lines(path: Path) -> int:
    try:
        data = path.read_bytes()
    except OSError:
        return 0
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def scope_of(workspace: Path, files: list[str], selection: Selection | None, kind: Kind | None = None) -> Scope:
    """How big the work is: a selection counts its lines, otherwise the files' lines together."""
    if selection is not None and kind is None:
        return Scope("selection", selection.end_line - selection.start_line + 1, 1)
    return Scope(kind or "files", sum(count_lines(workspace / f) for f in files), len(files))


def is_routed(model: str, settings: Settings) -> bool:
    """`auto`, or the name of a tier (`--model fast`)."""
    return model == AUTO or model in settings.models.tiers


def _fits(rule: RouteRule, scope: Scope) -> bool:
    return ((rule.kinds is None or scope.kind in rule.kinds)
            and (rule.max_lines is None or scope.lines <= rule.max_lines)
            and (rule.max_files is None or scope.files <= rule.max_files))


def _limits(rule: RouteRule) -> str:
    parts = [f"≤{rule.max_lines} lines" if rule.max_lines is not None else "",
             f"≤{rule.max_files} files" if rule.max_files is not None else "",
             "/".join(rule.kinds) if rule.kinds else ""]
    return ", ".join(p for p in parts if p) or "anything"


def route(settings: Settings, model: str, scope: Scope) -> Route:
    """The tier for this work; raises BadModel when `auto` has no tiers to choose from."""
    tiers = settings.models.tiers
    if model != AUTO:
        return Route(model, tiers[model], f"tier {model} asked for by name; {scope.describe()}")
    if not tiers:
        raise BadModel('model "auto" needs tiers: add [models.tiers] to the config, e.g. '
                       'local = "ollama/qwen2.5-coder", fast = "openai/gpt-4.1-mini"')
    for i, rule in enumerate(settings.models.routing.rules, 1):
        if rule.tier in tiers and _fits(rule, scope):
            return Route(rule.tier, tiers[rule.tier],
                         f"{scope.describe()} fits routing rule {i} ({rule.tier}: {_limits(rule)})")
    last = list(tiers)[-1]
    return Route(last, tiers[last], f"{scope.describe()} fits no routing rule; the last tier ({last}) takes it")


def fallback(settings: Settings, task: TaskInfo, reason: str, message: str, faults_on_model: int,
             validate: Callable[[str], None]) -> dict[str, Any] | None:
    """Changes that move a routed task to the next usable tier, or None to let it fail or retry.

    `faults_on_model` counts this task's failed attempts on its current model; `validate` raises a
    PasError for a tier whose model cannot be used (e.g. missing credentials), which is skipped.
    """
    routing = settings.models.routing
    if task.tier is None or not routing.fallback:
        return None
    if reason not in FALLBACK_AT_ONCE and not (
            reason in FALLBACK_WHEN_REPEATED and faults_on_model >= routing.fallback_after_faults):
        return None
    names = list(settings.models.tiers)
    start = names.index(task.tier) + 1 if task.tier in names else len(names)
    skipped: list[str] = []
    for name in names[start:]:
        model = settings.models.tiers[name]
        if model == task.model:
            continue
        try:
            validate(model)
        except PasError as exc:
            skipped.append(f"{name} skipped: {exc.message}")
            continue
        why = "auth error" if reason == "auth" else reason if reason in FALLBACK_AT_ONCE else \
            f"{faults_on_model} {reason} faults"
        note = f"from {task.tier} ({task.model}) to {name} ({model}) after {why}: {message[:200]}"
        if skipped:
            note += "; " + "; ".join(skipped)
        ms = settings.model_settings(model)
        return {"model": model, "api_base": ms.api_base, "tier": name, "fallbacks": [*task.fallbacks, note],
                "attempts_before_fallback": task.attempts}
    return None


def stamp(receipt: Receipt, task: TaskInfo | None) -> Receipt:
    """The receipt with the task's job, tier, routing reason and last fallback."""
    if task is None or (task.tier is None and task.job_id is None):
        return receipt
    return receipt.model_copy(update={
        "job_id": task.job_id, "tier": task.tier, "route": task.route,
        "fallback": task.fallbacks[-1] if task.fallbacks else None,
    })


class TierFallback:
    """The scheduler's fallback hook: counts the task's faults on its model from its receipts."""

    def __init__(self, store: Store, settings_for: Callable[[str], Settings]) -> None:
        self.store = store
        self.settings_for = settings_for

    def __call__(self, task: TaskInfo, reason: str, message: str) -> dict[str, Any] | None:
        if task.tier is None:
            return None
        settings = self.settings_for(task.workspace)
        faults = sum(1 for r in self.store.receipts(task.id, 1000)
                     if r.provider.model == task.model and r.outcome.startswith("failed:"))

        def validate(model: str) -> None:
            from daemon.programmer import llm
            from daemon.programmer.spec import ModelSpec

            ms = settings.model_settings(model)
            llm.validate(ModelSpec(model=model, api_base=ms.api_base, api_key_env=ms.api_key_env))

        return fallback(settings, task, reason, message, faults, validate)
