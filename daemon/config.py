"""Settings: `~/.config/pasd/config.toml` overlaid by `<workspace>/.pas.toml`.

Keys follow the editor settings (`pas.models` is `models.choices`, `pas.defaultModel` is
`models.default`). A bad file raises ConfigError naming the file, the key and the problem.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from daemon import paths, trust
from daemon import protocol as p
from daemon.errors import ConfigError, InvalidParams

log = logging.getLogger(__name__)

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
    between tasks; `copy`: the task's files only, their text edited in memory by the native engine and
    in a temp dir by an external one (a task with a check command gets `reuse`)."""
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
    cached_input_cost_per_token: float | None = Field(default=None, ge=0)
    """USD per input token read from the provider's prompt cache; unset: the input price."""
    params: dict[str, Any] = {}
    """Extra completion parameters (temperature, max_tokens, ...)."""
    engine: str | None = None
    """What runs this model's tasks: "native" (pasd's own engine, the default) or an external tool
    (`pasd engines` lists them, e.g. "aider"); a task's own `engine` wins."""
    engine_settings: dict[str, Any] = {}
    """Settings for the engine with this model, over `[engines.NAME]`'s (e.g. edit_format)."""


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
    on_check_failure: Literal["review", "fail"] = "review"
    """A task whose check still fails after the last repair round: `review` keeps its diff for review,
    flagged `check_failed` everywhere it is shown; `fail` makes the task FAILED (reason `check_failed`)."""


class JobsConfig(Section):
    max_tasks: int = Field(default=50, ge=1, le=1000)
    """Most tasks one job may split into; a bigger job is refused."""
    parallel: int = Field(default=0, ge=0)
    """Most tasks of one job queued or running at once; 0: the pool's size."""
    plan_max_bytes: int = Field(default=200_000, ge=1000)
    """How much file content the planning prompt carries; past it, only the file names."""


class ContextConfig(Section):
    map_tokens: int = Field(default=1024, ge=0, le=65_536)
    """Tokens of repo map (the definitions the task's files use elsewhere in the workspace) in each
    prompt, estimated at 4 characters a token; 0 turns the map off."""
    max_reads: int = Field(default=3, ge=0, le=20)
    """Rounds in which the model may ask to read more files (`READ path`); 0: it may not ask."""
    read_max_bytes: int = Field(default=100_000, ge=1000)
    """The largest file a read request is answered with; a bigger one is refused."""
    round_max_bytes: int = Field(default=300_000, ge=1000)
    """Most bytes of file content one read round sends; requests past it are refused for that round."""
    deny: list[str] = []
    """Glob patterns of files never sent to a model on request, besides .gitignored files and `.env`,
    `.env.*`, `*.pem`, `*.key`, `id_*` (matched against the path and against the file's name)."""
class StoreConfig(Section):
    keep_days: float | None = Field(default=None, ge=0, le=36_500)
    """Days a reviewed task (applied, rejected, cancelled, failed) keeps its stored diff; the daemon then
    removes it once a day (`pasd gc`), keeping the task's summary and its receipts. None: keep everything.
    Read from the user's config only: a workspace's `.pas.toml` cannot set it."""


class McpConfig(Section):
    allow_approve: bool = False
    """`pasd mcp` offers the approve_task tool, so an agent may apply diffs to your files (as
    `--allow-approve` does). A workspace's `.pas.toml` may turn it off, never on, until trusted."""


class WebConfig(Section):
    enabled: bool = False
    """The daemon runs the web dashboard (`pasd web`) beside it, on 127.0.0.1, for as long as it
    runs; `pasd web --url` prints its address with the token that opens it. Read from the user's
    config only, when the daemon starts: a workspace's `.pas.toml` cannot set it."""
    port: int = Field(default=8765, ge=0, le=65_535)
    """Its TCP port; 0 picks a free one at each start."""


class Settings(Section):
    pool: PoolConfig = PoolConfig()
    models: ModelsConfig = ModelsConfig()
    guardrails: GuardrailsConfig = GuardrailsConfig()
    jobs: JobsConfig = JobsConfig()
    context: ContextConfig = ContextConfig()
    store: StoreConfig = StoreConfig()
    mcp: McpConfig = McpConfig()
    web: WebConfig = WebConfig()
    engines: dict[str, dict[str, Any]] = {}
    """Settings per external engine, `[engines.aider] path = "...", edit_format = "diff", ...`:
    `path` is the tool's executable (or the folder holding it) when it is not on PATH; the other
    keys are the engine's own (README "Engines")."""

    def model_settings(self, model: str) -> ModelSettings:
        return self.models.settings.get(model, ModelSettings())


def engine_settings(settings: Settings, engine: str, model_settings: dict[str, Any]) -> dict[str, Any]:
    """An engine's settings for one model: `[engines.NAME]`, then the model's `engine_settings` over them."""
    return {**settings.engines.get(engine, {}), **model_settings}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_toml(path: Path) -> dict[str, Any]:
    return parse_toml(path, read_bytes(path))


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes; None when there is none."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def parse_toml(path: Path, data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {}
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _validate(data: dict[str, Any], source: str) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{source}: key '{key}': {first['msg']}") from exc


@dataclass(frozen=True)
class Untrusted:
    """A workspace file with settings ignored until the user trusts it (`pasd trust WORKSPACE`)."""

    workspace: str
    path: str
    sha256: str
    ignored: list[str]

    def report(self) -> p.UntrustedConfig:
        return p.UntrustedConfig(workspace=self.workspace, path=self.path, sha256=self.sha256,
                                 ignored=self.ignored, command=f"pasd trust {shlex.quote(self.workspace)}")


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    untrusted: Untrusted | None = None


def resolve(workspace: Path | None, user_path: Path, user_bytes: bytes | None, project_bytes: bytes | None,
            is_trusted: Callable[[Path, str], bool]) -> Loaded:
    """The user's settings overlaid with the workspace file's: all of it if the user trusts that exact
    file (by SHA-256), else only what narrows (daemon/trust.py)."""
    data = parse_toml(user_path, user_bytes)
    settings = _validate(data, str(user_path))
    if workspace is None or project_bytes is None:
        return Loaded(settings)
    project_path = workspace / paths.PROJECT_CONFIG
    project = parse_toml(project_path, project_bytes)
    if not project:
        return Loaded(settings)
    _validate(project, str(project_path))  # name the project file when it alone is wrong
    merged = _validate(_merge(data, project), f"{user_path} + {project_path}")
    digest = trust.sha256(project_bytes)
    if is_trusted(project_path, digest):
        return Loaded(merged)
    narrowed, ignored = trust.restrict(settings.model_dump(mode="json"), merged.model_dump(mode="json"), project)
    effective = _validate(narrowed, f"{user_path} + {project_path} (untrusted)")
    return Loaded(effective, Untrusted(str(workspace), str(project_path), digest, ignored) if ignored else None)


def load(workspace: Path | None = None, user_file: Path | None = None,
         trusted: trust.TrustStore | None = None) -> Settings:
    """The user's config, overlaid with the workspace's `.pas.toml` (as far as the user trusts it)."""
    user_path = user_file or paths.user_config_file()
    store = trusted or trust.TrustStore(paths.state_dir())
    project = read_bytes(workspace / paths.PROJECT_CONFIG) if workspace is not None else None
    return resolve(workspace, user_path, read_bytes(user_path), project, store.is_trusted).settings


class ConfigCache:
    """Effective settings per workspace, re-read when a config file or its trust changes.

    Keyed by the files' SHA-256 (not their stamps), so trust is decided by the content that is in
    force. A file that turns bad keeps the last good settings in force; the error is kept in
    `errors` (and logged by the daemon) until the file is fixed.
    """

    def __init__(self, user_file: Path | None = None, overrides: dict[str, Any] | None = None,
                 trusted: trust.TrustStore | None = None) -> None:
        self.user_file = user_file or paths.user_config_file()
        self.overrides = overrides or {}
        self.trust = trusted or trust.TrustStore(paths.state_dir())
        self._cache: dict[str | None, tuple[tuple[str, ...], Loaded]] = {}
        self.errors: dict[str | None, str] = {}
        self._warned: set[tuple[str, str]] = set()

    def _key(self, workspace: str | None, user: bytes | None, project: bytes | None) -> tuple[str, ...]:
        key = (trust.sha256(user) if user is not None else "-",)
        if workspace is None or project is None:
            return key
        digest = trust.sha256(project)
        return (*key, digest, str(self.trust.is_trusted(Path(workspace) / paths.PROJECT_CONFIG, digest)))

    def load(self, workspace: str | None = None) -> Loaded:
        """The settings and what of the workspace file is ignored (re-checked on every call: two small reads)."""
        try:
            user = read_bytes(self.user_file)
            project = read_bytes(Path(workspace) / paths.PROJECT_CONFIG) if workspace else None
        except ConfigError as exc:
            return self._failed(workspace, exc)
        key = self._key(workspace, user, project)
        hit = self._cache.get(workspace)
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            loaded = resolve(Path(workspace) if workspace else None, self.user_file, user, project,
                             self.trust.is_trusted)
            if self.overrides:
                settings = _validate(_merge(loaded.settings.model_dump(), self.overrides), "command line")
                loaded = Loaded(settings, loaded.untrusted)
        except ConfigError as exc:
            return self._failed(workspace, exc)
        self.errors.pop(workspace, None)
        self._cache[workspace] = (key, loaded)
        u = loaded.untrusted
        if u is not None and (u.path, u.sha256) not in self._warned:
            self._warned.add((u.path, u.sha256))
            log.warning("%s is not trusted; ignoring %s until `%s`", u.path, ", ".join(u.ignored),
                        u.report().command)
        return loaded

    def _failed(self, workspace: str | None, exc: ConfigError) -> Loaded:
        self.errors[workspace] = exc.message
        hit = self._cache.get(workspace)
        if hit is None:
            raise exc
        return hit[1]

    def in_use(self, workspace: str) -> bool:
        return workspace in self._cache or workspace in self.errors

    def get(self, workspace: str | None = None) -> Settings:
        return self.load(workspace).settings

    def untrusted(self) -> list[Untrusted]:
        """Workspaces loaded so far whose file has ignored settings now."""
        out = []
        for ws in [w for w in self._cache if w is not None]:
            with contextlib.suppress(ConfigError):
                u = self.load(ws).untrusted
                if u is not None:
                    out.append(u)
        return sorted(out, key=lambda u: u.workspace)

    def set_trust(self, workspace: Path, revoke: bool = False) -> p.TrustResult:
        """Trust (or stop trusting) the workspace's `.pas.toml` as it is now; names the keys this
        unlocks (or, revoking, the keys now ignored)."""
        path = workspace / paths.PROJECT_CONFIG
        if revoke:
            found = self.trust.revoke(path)
            ignored: list[str] = []
            with contextlib.suppress(ConfigError):
                now = self.load(str(workspace))
                ignored = now.untrusted.ignored if now.untrusted else []
            return p.TrustResult(workspace=str(workspace), path=str(path), trusted=False, changed=found,
                                 keys=ignored)
        data = read_bytes(path)
        if data is None:
            raise InvalidParams(f"{workspace} has no {paths.PROJECT_CONFIG} to trust")
        # judge the very bytes that are hashed: a bad file is refused with its file, key and problem
        untrusted = resolve(workspace, self.user_file, read_bytes(self.user_file), data, lambda *_: False).untrusted
        digest = trust.sha256(data)
        self.trust.trust(path, digest)
        with contextlib.suppress(ConfigError):
            self.load(str(workspace))
        return p.TrustResult(workspace=str(workspace), path=str(path), sha256=digest, trusted=True,
                             changed=True, keys=untrusted.ignored if untrusted else [])

    def trusted_files(self) -> p.TrustList:
        out = []
        for t in self.trust.files():
            try:
                data = read_bytes(Path(t.path))
            except ConfigError:
                data = None
            current = data is not None and trust.sha256(data) == t.sha256
            out.append(p.TrustedFile(path=t.path, sha256=t.sha256, trusted_at=t.trusted_at, current=current))
        return p.TrustList(files=out)
