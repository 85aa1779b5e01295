"""Settings: `~/.config/pasd/config.toml` overlaid by `<workspace>/.pas.toml`.

Keys follow the editor settings (`pas.models` is `models.choices`, `pas.defaultModel` is
`models.default`). A bad file raises ConfigError naming the file, the key and the problem.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from daemon import paths
from daemon.errors import ConfigError

OFFLINE_MODEL = "openai/pasd-offline"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PoolConfig(Section):
    workers: int = Field(default=4, ge=1, le=512)
    """How many Programmers the pool runs."""
    health_check_delay_s: float = Field(default=1.0, ge=0)
    """How long a FAILED programmer rests before its health check."""
    max_retries: int = Field(default=2, ge=0, le=20)
    """How often a task is re-queued after a transient fault or a daemon crash."""
    retry_backoff_s: float = Field(default=0.5, ge=0)
    """First retry delay; doubles with each attempt."""
    snapshot: Literal["auto", "worktree", "reuse", "copy"] = "auto"
    """`auto`: `copy` for tasks without a check command, else `reuse`; `worktree`: a new detached git
    worktree (with uncommitted changes) per task; `reuse`: one such worktree per programmer, reset
    between tasks; `copy`: the task's files only (a task with a check command gets `reuse`)."""
    backend: Literal["local", "ray"] = "local"
    """Where Programmers run: `local` (asyncio workers in the daemon) or `ray` (actors on a Ray cluster)."""
    address: str | None = None
    """The Ray cluster's address (`host:port` of its head) for backend `ray`."""
    insecure_local: bool = False
    """Allow a loopback Ray cluster without token auth (tests, one machine); never for other addresses."""
    slots: int = Field(default=8, ge=1, le=256)
    """Programmers per Ray actor; each actor takes one unit of a node's `programmer` resource."""


class ModelSettings(Section):
    api_base: str | None = None
    """OpenAI-compatible or provider endpoint for this model."""
    api_key_env: str | None = None
    """Name of the environment variable holding this model's key (never the key itself)."""
    input_cost_per_token: float | None = Field(default=None, ge=0)
    """USD per input token, for models litellm has no price for."""
    output_cost_per_token: float | None = Field(default=None, ge=0)
    """USD per output token, for models litellm has no price for."""
    params: dict[str, Any] = {}
    """Extra completion parameters (temperature, max_tokens, ...)."""


class RouteRule(Section):
    """A task goes to `tier` when it fits every limit this rule sets (the first rule that fits wins)."""

    tier: str
    """Tier name from [models.tiers]."""
    max_lines: int | None = Field(default=None, ge=0)
    """Most lines in scope: the selection's lines, else the files' lines together."""
    max_files: int | None = Field(default=None, ge=0)
    """Most files in scope."""
    kinds: list[Literal["selection", "files", "plan"]] | None = None
    """Kinds of work this rule takes: a selection, whole files, or planning a job; None: any."""


class RoutingConfig(Section):
    rules: list[RouteRule] = [
        RouteRule(tier="local", max_lines=50, max_files=1, kinds=["selection", "files"]),
        RouteRule(tier="fast", max_lines=300, max_files=4, kinds=["selection", "files"]),
    ]
    """Tried in order for `model = "auto"`; rules naming an unconfigured tier are skipped, and work
    that fits no rule goes to the last tier."""
    fallback: bool = True
    """Move a routed task to the next tier when its model is unavailable (auth error, repeated 5xx)."""
    fallback_after_faults: int = Field(default=2, ge=1, le=20)
    """Transient provider faults (5xx, connection, timeout) on one tier before moving to the next."""


class ModelsConfig(Section):
    default: str = "openai/gpt-4.1-mini"
    """Model used when a task names none (`pas.defaultModel`); "auto" routes over the tiers."""
    tiers: dict[str, str] = {}
    """Tier name -> model string, cheapest first: `model = "auto"` picks one, fallback takes the next."""
    routing: RoutingConfig = RoutingConfig()
    """How `auto` picks a tier, and whether it falls back."""
    choices: list[str] = ["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash"]
    """Models offered in the editors' menus (`pas.models`)."""
    settings: dict[str, ModelSettings] = {}
    """Per-model settings keyed by model string."""

    @model_validator(mode="after")
    def _rules_name_tiers(self) -> ModelsConfig:
        # the built-in rules name tiers that may not exist (they are skipped); rules a user wrote must not
        if self.tiers and self.routing.rules != RoutingConfig().rules:
            for i, rule in enumerate(self.routing.rules):
                if rule.tier not in self.tiers:
                    raise ValueError(f"routing rule {i + 1} names tier {rule.tier!r}, which is not in "
                                     f"[models.tiers] ({', '.join(self.tiers)})")
        return self


class GuardrailsConfig(Section):
    allow_files: list[str] = []
    """Extra glob patterns, relative to the workspace, a task may change besides its own files."""
    allow_commands: list[str] = []
    """Check commands allowed to run, as shell-style patterns over the command line (`pytest *`)."""
    task_timeout_s: float = Field(default=600.0, gt=0)
    """Wall-time limit of a task: model calls, edits and checks."""
    model_timeout_s: float = Field(default=300.0, gt=0)
    """Limit of one model call."""
    check_timeout_s: float = Field(default=120.0, gt=0)
    """Limit of one check command run; the whole process group is killed past it."""
    check_output_bytes: int = Field(default=64_000, ge=1024)
    """How much check output is kept and sent back to the model."""
    max_rounds: int = Field(default=2, ge=0, le=10)
    """Repair rounds after a failed check."""
    task_budget_usd: float | None = Field(default=None, ge=0)
    """Cap per task in USD; None for no cap."""
    daily_budget_usd: float | None = Field(default=None, ge=0)
    """Cap per day in USD over all tasks; None for no cap."""
    job_budget_usd: float | None = Field(default=None, ge=0)
    """Cap per job in USD (planning and tasks); a job that would pass it stops queuing. None: no cap."""
    check_env: list[str] = []
    """Environment variables passed to check commands besides PATH, HOME, USER, LOGNAME, LANG, LANGUAGE,
    LC_*, TERM, TZ and TMPDIR (e.g. "VIRTUAL_ENV"); nothing else of the daemon's environment reaches a check."""
    check_network: bool = False
    """Let sandboxed check commands reach the network (bubblewrap only; the fallback cannot stop them)."""
    sandbox: Literal["auto", "bwrap", "off"] = "auto"
    """Where check commands run: `bwrap` in bubblewrap (no check runs without it), `auto` in bubblewrap
    when it works here, else like `off`: in their own process group, with the allowlisted environment."""


class JobsConfig(Section):
    max_tasks: int = Field(default=50, ge=1, le=1000)
    """Most tasks one job may split into; a bigger job is refused."""
    parallel: int = Field(default=0, ge=0)
    """Most tasks of one job queued or running at once; 0: the pool's size."""
    plan_max_bytes: int = Field(default=200_000, ge=1000)
    """How much file content the planning prompt carries; past it, only the file names."""


class Settings(Section):
    pool: PoolConfig = PoolConfig()
    models: ModelsConfig = ModelsConfig()
    guardrails: GuardrailsConfig = GuardrailsConfig()
    jobs: JobsConfig = JobsConfig()

    def model_settings(self, model: str) -> ModelSettings:
        return self.models.settings.get(model, ModelSettings())


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def _validate(data: dict[str, Any], source: str) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{source}: key '{key}': {first['msg']}") from exc


def load(workspace: Path | None = None, user_file: Path | None = None) -> Settings:
    """The user's config, overlaid with the workspace's `.pas.toml` when one is given."""
    user_path = user_file or paths.user_config_file()
    data = read_toml(user_path)
    settings = _validate(data, str(user_path))
    if workspace is None:
        return settings
    project_path = workspace / paths.PROJECT_CONFIG
    project = read_toml(project_path)
    if not project:
        return settings
    _validate(project, str(project_path))  # name the project file when it alone is wrong
    return _validate(_merge(data, project), f"{user_path} + {project_path}")


class ConfigCache:
    """Effective settings per workspace, re-read when a config file changes.

    A file that turns bad keeps the last good settings in force; the error is kept in
    `errors` (and logged by the daemon) until the file is fixed.
    """

    def __init__(self, user_file: Path | None = None, overrides: dict[str, Any] | None = None) -> None:
        self.user_file = user_file or paths.user_config_file()
        self.overrides = overrides or {}
        self._cache: dict[str | None, tuple[tuple[float, ...], Settings]] = {}
        self.errors: dict[str | None, str] = {}

    def _stamp(self, workspace: str | None) -> tuple[float, ...]:
        files = [self.user_file] + ([Path(workspace) / paths.PROJECT_CONFIG] if workspace else [])
        out = []
        for f in files:
            try:
                st = f.stat()
                out += [st.st_mtime_ns, st.st_size]
            except OSError:
                out += [-1, -1]
        return tuple(out)

    def get(self, workspace: str | None = None) -> Settings:
        stamp = self._stamp(workspace)
        hit = self._cache.get(workspace)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        try:
            settings = load(Path(workspace) if workspace else None, self.user_file)
            if self.overrides:
                settings = _validate(_merge(settings.model_dump(), self.overrides), "command line")
        except ConfigError as exc:
            self.errors[workspace] = exc.message
            if hit is not None:
                self._cache[workspace] = (stamp, hit[1])
                return hit[1]
            raise
        self.errors.pop(workspace, None)
        self._cache[workspace] = (stamp, settings)
        return settings
