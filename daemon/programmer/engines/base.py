"""What an external engine (aider, an agent CLI) must provide: find the tool, say how to run it
on a task, read its spend from its output. pasd does everything around it (engines/runner.py).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from daemon.programmer.spec import ProviderFault, TaskFailed
from daemon.protocol import TokenUsage

if TYPE_CHECKING:
    from daemon.programmer.spec import TaskSpec

Fault = TaskFailed | ProviderFault


@dataclass
class Installed:
    """What `pasd engines` prints, and what submit checks."""

    name: str  # "aider", "claude", "codex"
    installed: bool
    version: str | None
    path: str | None  # the executable found
    install: str  # the exact command that installs it
    brings: str = ""  # one line: what the tool brings


@dataclass
class Invocation:
    """One run of the tool in the task's snapshot."""

    argv: list[str]  # argv[0] is the executable `find` returned
    # only what the tool needs beyond the runner's minimal base env (PATH, a private HOME, LANG, TMPDIR)
    env: dict[str, str]
    stdin: str | None = None
    # the tool's own bookkeeping in the snapshot (globs relative to its root, e.g. ".aider*"):
    # neither proposed nor refused, and removed after each run
    scratch: list[str] = field(default_factory=list)
    # files copied into the private HOME before the run: path relative to HOME -> the file to copy
    home_files: dict[str, str] = field(default_factory=dict)
    # files written into the private HOME before the run: path relative to HOME -> their text
    home_texts: dict[str, str] = field(default_factory=dict)


@dataclass
class Usage:
    """The spend a tool reported for one run."""

    tokens: TokenUsage
    cost_usd: float | None  # None: the tool reported no price, and the receipt says unpriced
    calls: int = 1
    reported: bool = True  # False: the tool reported nothing at all (tokens then 0, receipt unpriced)


class ExternalEngine(Protocol):
    name: str

    def find(self, settings: dict[str, Any]) -> Installed:
        """Where the tool is and which version; `settings.get("path")` overrides the PATH lookup."""
        ...

    def invoke(self, spec: TaskSpec, prompt: str, root: Path, exe: str, round: int,
               settings: dict[str, Any]) -> Invocation:
        """The command for one round: the instruction (round 0) or the repair prompt (round >= 1).

        `root` is the task's private snapshot (the tool's cwd); the provider key is in
        spec.model.keys or os.environ[spec.model.api_key_env], the endpoint in spec.model.api_base;
        spec.limits.budget_usd is what is left of the task's budget for this run.
        """
        ...

    def usage(self, stdout: str, stderr: str, root: Path) -> Usage:
        """Tokens and cost as the tool's own output reports them."""
        ...

    # Optional: `failure(stdout, stderr) -> Fault | str | None`, what a run that failed (or changed
    # nothing) says went wrong. A Fault for what it recognises (`provider_failure` below), text in the
    # tool's own words for anything else (the task fails as "engine"), None when it says nothing.


def which(settings: dict[str, Any], command: str) -> str | None:
    """The executable: `settings["path"]` (a file, or a directory holding `command`) or PATH's."""
    path = settings.get("path")
    if path:
        p = Path(os.path.expanduser(str(path)))
        if p.is_dir():
            p = p / command
        return str(p) if p.is_file() and os.access(p, os.X_OK) else None
    return shutil.which(command)


NO_KEY = "pasd-no-key"  # as the native engine sends to an endpoint that needs none


def provider_key(spec: TaskSpec) -> str | None:
    """The task's provider key, as the native engine picks it (daemon/programmer/llm.py): the model's
    `api_key_env` (submitted with the task, else the daemon's variable); a placeholder for an
    endpoint of the user's that names none; else a key submitted with the task, else the
    provider's usual variable in the daemon's environment (`OPENAI_API_KEY`, ...)."""
    model = spec.model
    if model.api_key_env:
        return model.keys.get(model.api_key_env) or os.environ.get(model.api_key_env)
    if model.api_base:
        return NO_KEY
    if len(model.keys) == 1:
        return next(iter(model.keys.values()))
    provider = model.model.split("/", 1)[0] if "/" in model.model else "openai"
    return os.environ.get(f"{provider.upper()}_API_KEY")


# The provider's HTTP status -> the native engine's error table entry (daemon/programmer/llm.py ERRORS),
# so a tool's failure gets the reason and the retry the same failure gets on the native engine
_STATUS = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFoundError",
           408: "Timeout", 422: "UnprocessableEntityError", 429: "RateLimitError", 503: "ServiceUnavailableError"}


def provider_failure(said: str, *, status: int | None = None, error: str | None = None,
                     transport: str | None = None, detail: str = "") -> Fault | None:
    """The native engine's verdict on a provider failure a tool reports, with the tool's words `said`:
    by the HTTP status of the provider's answer, else by the name of the litellm error the tool met
    (aider's), else by what failed below HTTP (a kind of llm.TRANSPORT: "refused", "reset", "dns",
    "tls", "unreachable", "timeout"; `detail`: the tool's code for it). A retryable failure is a
    ProviderFault (the scheduler retries the task elsewhere), the rest a TaskFailed; None when
    nothing given is known."""
    from daemon.programmer import llm  # the tables only: litellm itself stays unloaded

    name = error
    if status is not None:
        name = _STATUS.get(status) or ("InternalServerError" if 500 <= status < 600 else None)
    if name is not None and name in llm.ERRORS:
        retryable, reason, text = llm.ERRORS[name]
        message = f"{text}: {said}" if said else text
        return ProviderFault(reason, message) if retryable else TaskFailed(reason, message)
    if transport is not None and transport in llm.TRANSPORT:
        reason, happened, check = llm.TRANSPORT[transport]
        text = happened.format(where="the provider", detail=detail or transport, within="in time") + ": " + check
        return ProviderFault(reason, f"{text}: {said}" if said else text)
    return None
