"""The engine's self-contained input and output: no shared state with the scheduler.

A remote backend ships a TaskSpec to a worker and gets an EngineResult (or a failure) back.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from daemon.protocol import CheckRun, Receipt, RefusedEdit, Selection


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limits(Spec):
    timeout_s: float = 600.0
    model_timeout_s: float = 300.0
    check_timeout_s: float = 120.0
    check_output_bytes: int = 64_000
    max_rounds: int = 2
    budget_usd: float | None = None
    check_env: list[str] = []  # variables a check gets besides the allowlist (programmer/sandbox.py)
    check_network: bool = False
    sandbox: Literal["auto", "bwrap", "off"] = "auto"


class ContextSpec(Spec):
    """What the model may read besides the task's files (programmer/reads.py)."""

    max_reads: int = 3
    read_max_bytes: int = 100_000
    round_max_bytes: int = 300_000
    deny: list[str] = []
    unreachable: str | None = None  # set where the workspace cannot be read: every request is refused so
    missing: str = "no such file in the workspace"  # what a request for an absent file is told


class ModelSpec(Spec):
    model: str
    api_base: str | None = None
    api_key_env: str | None = None  # the variable's name; the key is read where the engine runs
    # keys submitted with the task (variable -> value), for this model only; never in a receipt
    keys: dict[str, str] = Field(default={}, repr=False)
    params: dict[str, Any] = {}
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    cached_input_cost_per_token: float | None = None


class FileChange(Spec):
    path: str
    base: str
    proposed: str
    created: bool = False


class Revision(Spec):
    """A proposal sent back with a comment: the conversation so far and the files as it left them.

    Self-contained, like the rest of the spec: the engine needs no store to continue the task.
    """

    number: int  # 1 for the first revision
    messages: list[dict[str, str]]  # the conversation up to the model's last answer
    comment: str  # the reviewer's words
    hunks: list[str] = []  # the hunks of the proposal the comment is about, as the diff shows them
    files: list[FileChange]  # base = the task's original base content, proposed = the current proposal


class TaskSpec(Spec):
    task_id: str
    run_id: str
    attempt: int
    programmer: str
    workspace: str
    instruction: str
    files: list[str]
    selection: Selection | None = None
    model: ModelSpec
    check: str | None = None
    allow_files: list[str] = []  # extra glob patterns from the project's config
    allow_commands: list[str] = []
    snapshot: Literal["auto", "worktree", "reuse", "copy"] = "auto"
    worktrees_dir: str
    limits: Limits = Limits()
    context: ContextSpec = ContextSpec()
    secret_env: list[str] = []  # every variable an `api_key_env` setting names: redacted from check output
    revision: Revision | None = None  # set when the reviewer sent the task's proposal back
    repo_map: str = ""  # the workspace's outline for this task, made by the daemon (programmer/repomap/)
    engine: str = "native"  # "native" (programmer/engine.py) or an external tool (programmer/engines/)
    engine_settings: dict[str, Any] = {}  # the engine's settings from config ([engines.NAME])


class EngineResult(Spec):
    changes: list[FileChange]
    receipt: Receipt
    checks: list[CheckRun] = []
    refused: list[RefusedEdit] = []  # every round's
    unapplied: list[str] = []  # the last round's edits that did not apply, and why (refusals not included)
    messages: list[dict[str, str]] = []  # the final conversation, ending with the model's last answer


class TaskFailed(Exception):
    """A verdict on the task (not the programmer): timeout, budget, no edits, bad credentials..."""

    def __init__(self, reason: str, message: str, *, receipt: Receipt | None = None,
                 retryable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.receipt = receipt
        self.retryable = retryable


class ProviderFault(Exception):
    """The model provider failed in a way worth retrying elsewhere (429, 5xx, reset, hang)."""

    def __init__(self, reason: str, message: str, *, retry_after: float | None = None,
                 receipt: Receipt | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.receipt = receipt
