"""The wire schema: every JSON-RPC method's params and result as pydantic models.

The daemon, the CLI, pas-lsp and pas-tui all speak through these models; nobody
builds protocol dicts by hand. This module must stay light: pydantic only. Its plain-Python
part (bounds, states, error codes) lives in daemon/wire.py, for commands that must start
without pydantic, and is re-exported here.
"""


from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

# the plain-Python part of the schema, re-exported: `protocol` stays the one place to look
from daemon.wire import (  # isort: skip
    PROTOCOL_VERSION as PROTOCOL_VERSION, MAX_LINE_BYTES as MAX_LINE_BYTES, MAX_REPLY_BYTES as MAX_REPLY_BYTES,
    MAX_TIMEOUT_S as MAX_TIMEOUT_S, MAX_BUDGET_USD as MAX_BUDGET_USD, MAX_PRIORITY as MAX_PRIORITY,
    MAX_LINE_NO as MAX_LINE_NO, MAX_ID as MAX_ID, MAX_COMMENT_CHARS as MAX_COMMENT_CHARS, PATH_MAX as PATH_MAX,
    NAME_MAX as NAME_MAX, MAX_TASK_PAGE as MAX_TASK_PAGE, MAX_RECEIPT_PAGE as MAX_RECEIPT_PAGE,
    MAX_JOB_PAGE as MAX_JOB_PAGE, TaskState as TaskState, ProgrammerState as ProgrammerState, HunkState as HunkState,
    CHECK_FAILED as CHECK_FAILED, EDITS_REFUSED as EDITS_REFUSED, EDITS_UNAPPLIED as EDITS_UNAPPLIED,
    WARNING_TEXT as WARNING_TEXT, warning_text as warning_text, ErrorCode as ErrorCode,
    untrusted_message,
)


class Model(BaseModel):
    """Base for wire models: unknown fields are refused, so typos surface as errors; so are
    infinite and NaN numbers, which JSON cannot carry back."""

    model_config = ConfigDict(extra="forbid", defer_build=True, allow_inf_nan=False)


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("instruction is blank")
    return v


Instruction = Annotated[str, Field(min_length=1), AfterValidator(_not_blank)]


def _comment_not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("comment is blank")
    return v


def _usable_path(v: str) -> str:
    """A path the operating system can take: no NUL byte, encodable, within PATH_MAX and NAME_MAX."""
    if "\x00" in v:
        raise ValueError("a path may not contain a NUL byte")
    try:
        raw = v.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a path must be valid Unicode (no lone surrogates)") from None
    if len(raw) >= PATH_MAX:
        raise ValueError(f"path longer than {PATH_MAX - 1} bytes")
    if any(len(part.encode()) > NAME_MAX for part in v.split("/")):
        raise ValueError(f"a path component is longer than {NAME_MAX} bytes")
    return v


PathStr = Annotated[str, AfterValidator(_usable_path)]
Timeout = Annotated[float, Field(gt=0, le=MAX_TIMEOUT_S)]
Budget = Annotated[float, Field(ge=0, le=MAX_BUDGET_USD)]
KeyName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
KeyValue = Annotated[str, Field(min_length=1, max_length=8192)]
Priority = Annotated[int, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)]
EngineName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
LineNo = Annotated[int, Field(ge=1, le=MAX_LINE_NO)]
HunkId = Annotated[int, Field(ge=1, le=MAX_ID)]


# ---------------------------------------------------------------- states


# ---------------------------------------------------------------- building blocks


class Selection(Model):
    """A range of whole lines in one file, 1-based and inclusive."""

    path: PathStr = Field(min_length=1)
    start_line: LineNo
    end_line: LineNo

    @field_validator("end_line")
    @classmethod
    def _ordered(cls, v: int, info: Any) -> int:
        start = info.data.get("start_line")
        if start is not None and v < start:
            raise ValueError("end_line must be >= start_line")
        return v


class Hunk(Model):
    """One reviewable change; `id` is 1-based and unique within its task."""

    id: int
    path: str
    old_start: int  # 1-based first line in the base file (0 for an insertion into an empty file)
    old_count: int
    new_start: int
    new_count: int
    old_lines: list[str]  # the base lines this hunk replaces, without line endings
    new_lines: list[str]  # the lines it puts there instead
    header: str  # the "@@ -a,b +c,d @@" line
    text: str  # the hunk as it appears in the unified diff (with context)
    state: HunkState = HunkState.PENDING
    stale: bool = False  # the user's file changed under this hunk since the task's base


class FileDiff(Model):
    path: str
    created: bool = False
    added: int = 0
    removed: int = 0
    hunks: list[Hunk] = []


class RefusedEdit(Model):
    """An edit the guardrails refused; it was never written anywhere."""

    path: str
    reason: str


class CheckRun(Model):
    round: int
    command: str
    exit_code: int | None  # None: killed on timeout
    timed_out: bool = False
    output: str = ""  # size-capped


class Conflict(Model):
    hunk_id: int
    path: str
    reason: str


class TokenUsage(Model):
    input: int = 0  # every prompt token, the cached ones included
    output: int = 0
    reasoning: int = 0
    cached_input: int = 0  # of `input`: read from the provider's prompt cache, priced lower
    cache_write: int = 0  # of `input`: written to the prompt cache (Anthropic prices these higher)
    estimated: bool = False  # a reply came without usage: its tokens were counted here, not reported

    def plus(self, other: "TokenUsage") -> "TokenUsage":
        return TokenUsage(input=self.input + other.input, output=self.output + other.output,
                          reasoning=self.reasoning + other.reasoning,
                          cached_input=self.cached_input + other.cached_input,
                          cache_write=self.cache_write + other.cache_write,
                          estimated=self.estimated or other.estimated)


class ProviderSnapshot(Model):
    provider: str
    model: str
    api_base: str | None = None
    params: dict[str, Any] = {}
    litellm_version: str | None = None


class Receipt(Model):
    """What one task attempt cost and changed."""

    task_id: str
    run_id: str
    attempt: int
    programmer: str
    provider: ProviderSnapshot
    tokens: TokenUsage
    cost_usd: float  # rounded to 6 decimals
    priced: bool  # False when the model is not in litellm's price table or the config
    wall_s: float
    llm_s: float
    llm_calls: int = 0
    files_changed: int = 0
    lines_added: int = 0
    lines_removed: int = 0
    check: str | None = None  # "passed" | "failed" | None (no check command)
    check_rounds: int = 0
    refused: list[RefusedEdit] = []
    checks: list[CheckRun] = []  # every check round, output capped
    outcome: str  # "review" | "approved" | "rejected" | "partial" | "no-change" | "failed: <reason>" | "cancelled"
    created_at: float
    job_id: str | None = None
    tier: str | None = None
    route: str | None = None  # why the tier was chosen
    fallback: str | None = None  # set when this attempt runs on a tier the task fell back to
    node: str = "local"  # where the attempt ran: "local", or the Ray node's name
    map_tokens: int = 0  # the repo map's size in the prompt (estimated at 4 characters a token)
    files_read: list[str] = []  # files sent to the model on its request (read-only)
    rounds: dict[str, int] = {}  # model calls by kind: "first", "read" (after a read round), "repair"
    revision: int = 0  # 0: the task's first proposal; n: the attempt answering its nth revise
    # quality: the result's warnings, its repairs, and what the review made of it
    warnings: list[str] = []  # CHECK_FAILED, EDITS_REFUSED, EDITS_UNAPPLIED: the result is not a good one
    repair_rounds: int = 0  # model calls answering failed edits or a failed check (rounds["repair"])
    hunks_proposed: int = 0  # hunks of the diff this attempt left for review
    hunks_approved: int = 0  # set when the user approves or rejects, by hunk
    hunks_rejected: int = 0
    reviewed_at: float | None = None  # when the last hunk was decided (outcome approved/rejected/partial)
    engine: str = "native"  # what made the attempt's edits: "native" or an external tool ("aider", ...)
    engine_version: str | None = None  # the external tool's version


class TaskInfo(Model):
    """A task as the front ends see it."""

    id: str
    state: TaskState
    workspace: str
    instruction: str
    files: list[str]
    selection: Selection | None = None
    model: str
    api_base: str | None = None
    check: str | None = None
    timeout_s: float
    budget_usd: float | None = None
    priority: int = 0
    programmer: str | None = None
    attempts: int = 0
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    reason: str | None = None  # machine-readable failure reason: timeout, budget, provider, ...
    error: str | None = None  # human-readable
    files_changed: int = 0
    lines_added: int = 0
    lines_removed: int = 0
    cost_usd: float = 0.0
    refused: list[RefusedEdit] = []
    conflicts: list[Conflict] = []
    stale_hunks: list[int] = []
    job_id: str | None = None  # the job this task is part of
    tier: str | None = None  # the routing tier the model came from (`model = "auto"` or a tier name)
    route: str | None = None  # why that tier was chosen
    fallbacks: list[str] = []  # each move to the next tier, and why
    attempts_before_fallback: int = 0  # fault retries count again from here on a new tier
    warnings: list[str] = []  # a task in review that is not a good result: CHECK_FAILED, EDITS_REFUSED, ...
    unapplied: list[str] = []  # the last round's edits that did not apply, and why
    pruned_at: float | None = None  # when retention (`pasd gc`) removed its stored diff; summary and receipts stay
    revision: int = 0  # how many times the proposal was sent back with a comment (`task.revise`)
    engine: str = "native"  # what runs the task: "native" or an external tool (`pasd engines`)


class ProgrammerInfo(Model):
    id: str  # "Programmer-01"
    state: ProgrammerState
    task_id: str | None = None
    model: str | None = None
    engine: str | None = None  # the running task's engine (TaskInfo.engine); None while idle
    busy_since: float | None = None
    tasks_done: int = 0
    failures: int = 0
    last_error: str | None = None
    node: str = "local"


# ---------------------------------------------------------------- methods


class Empty(Model):
    pass


class HelloParams(Model):
    client: str = "unknown"
    protocol: int = Field(default=PROTOCOL_VERSION, ge=0, le=MAX_ID)


class HelloResult(Model):
    server: str = "pasd"
    version: str
    protocol: int = PROTOCOL_VERSION
    pid: int
    run_id: str
    socket: str
    state_dir: str


class UntrustedConfig(Model):
    """A workspace's `.pas.toml` with settings ignored until the user trusts that exact file."""

    workspace: str
    path: str  # the file
    sha256: str  # of the file as it is now
    ignored: list[str]  # its keys not in force, e.g. `guardrails.allow_commands`
    command: str  # what trusts it: `pasd trust /path/to/ws`

    def message(self) -> str:
        """The one wording every front end shows."""
        return untrusted_message(self.path, self.ignored, self.command)


class PoolStatus(Model):
    programmers: list[ProgrammerInfo]
    queued: int
    running: int
    review: int
    config_errors: list[str] = []  # config files that failed to reload; the last good settings apply
    untrusted: list[UntrustedConfig] = []  # workspaces loaded so far whose .pas.toml has ignored settings
    dashboard: str | None = None  # the web dashboard the daemon runs ([web] enabled), without its token


class SubmitParams(Model):
    workspace: PathStr = Field(min_length=1, description="absolute path of the workspace root")
    instruction: Instruction
    files: list[PathStr] = []
    selection: Selection | None = None
    model: str | None = None  # None: the configured default
    api_base: str | None = None
    check: str | None = None
    timeout_s: Timeout | None = None
    budget_usd: Budget | None = None
    priority: Priority = 0
    # Provider keys from the submitting shell, for this task's model only: sent only when the daemon
    # asked for them (a MissingCredentials error names the variables), held in memory for this task,
    # never stored, logged or shown (README: "Keys where you work").
    keys: dict[KeyName, KeyValue] = Field(default={}, max_length=8, repr=False)
    # None: the model's configured engine, else "native"; an external one must be installed (`pasd engines`)
    engine: EngineName | None = None


class EngineInfo(Model):
    """One engine as `pasd engines` lists it."""

    name: str
    installed: bool
    version: str | None = None
    path: str | None = None  # the executable found
    install: str = ""  # the command that installs it ("" for the native engine)
    brings: str = ""


class EngineList(Model):
    engines: list[EngineInfo]


class TaskRef(Model):
    task_id: str = Field(min_length=1)


TEXT_COUNT_CAP = 1_000  # a total of tasks matching words is counted up to this (TaskList.total_exact)


class TaskListParams(Model):
    states: list[TaskState] | None = None
    workspace: PathStr | None = None
    limit: int = Field(default=200, ge=1, le=MAX_TASK_PAGE)
    # Keyset paging, newest first: a task id (the last of the previous page, or TaskList.next); the page
    # holds the tasks queued before it. Tasks queued meanwhile never shift the pages that follow.
    before: str | None = Field(default=None, min_length=1, max_length=64)
    model: str | None = Field(default=None, min_length=1, max_length=300)  # exactly this model string
    # words, all of which must begin a word of the task's id, instruction, files or job id
    text: str | None = Field(default=None, max_length=500)
    count: bool = False  # also count every task the filters match (TaskList.total)


class TaskList(Model):
    tasks: list[TaskInfo]
    next: str | None = None  # the `before` of the next (older) page; None: this is the last page
    total: int | None = None  # with `count`: how many tasks match the filters, on every page
    total_exact: bool = True  # False: `text` matched more than TEXT_COUNT_CAP tasks; `total` is the cap


class DiffResult(Model):
    task_id: str
    state: TaskState
    diff: str  # unified diff of the whole task
    files: list[FileDiff]
    pruned_at: float | None = None  # the diff was removed by retention then (`pasd gc`): empty, not "no changes"


class FileContents(Model):
    path: str
    base: str  # "" for a file the task creates
    proposed: str
    created: bool = False


class ContentsResult(Model):
    """A task's files whole, before and after: for native diff views."""

    task_id: str
    files: list[FileContents]


class ReviewParams(Model):
    """Approve or reject a task, or only some of its hunks."""

    task_id: str = Field(min_length=1)
    hunks: list[HunkId] | None = None  # None: every pending hunk
    applied_by_client: list[HunkId] = []  # hunks an editor already applied to its buffers


class ReviseParams(Model):
    """Send a task's proposal back to its Programmer with a comment, optionally about some hunks."""

    task_id: str = Field(min_length=1)
    comment: Annotated[str, Field(min_length=1, max_length=MAX_COMMENT_CHARS), AfterValidator(_comment_not_blank)]
    hunks: list[HunkId] | None = None  # the hunks (numbers as `task.diff` gives them) the comment is about
    keys: dict[KeyName, KeyValue] = Field(default={}, max_length=8, repr=False)  # as SubmitParams.keys


class ReviewResult(Model):
    task: TaskInfo
    applied: list[int] = []
    rejected: list[int] = []
    conflicts: list[Conflict] = []


class ReceiptsParams(Model):
    task_id: str | None = None
    limit: int = Field(default=500, ge=1, le=MAX_RECEIPT_PAGE)


class ReceiptList(Model):
    receipts: list[Receipt]


class ModelsParams(Model):
    workspace: PathStr | None = None  # apply that workspace's .pas.toml


class ModelsResult(Model):
    default: str
    choices: list[str]


class TrustParams(Model):
    workspace: str = Field(min_length=1, description="absolute path of the workspace root")
    revoke: bool = False  # stop trusting the file instead


class TrustResult(Model):
    workspace: str
    path: str
    sha256: str | None = None  # the hash now trusted (None when revoking)
    trusted: bool
    changed: bool  # False: revoking a file that was not trusted
    keys: list[str] = []  # trusting: the keys this unlocks; revoking: the keys now ignored


class TrustedFile(Model):
    path: str
    sha256: str
    trusted_at: float
    current: bool  # the file on disk still has this hash (else its settings are untrusted again)


class TrustList(Model):
    files: list[TrustedFile]


class SubscribeParams(Model):
    kinds: list[Literal["programmer", "task", "progress", "receipt", "job"]] | None = None


class SubscribeResult(Model):
    status: PoolStatus


class ShutdownResult(Model):
    stopping: bool = True


class Ok(Model):
    ok: bool = True


# ---------------------------------------------------------------- jobs


class JobState(StrEnum):
    """Derived from the job's tasks (see daemon/jobs.py: `job_state`)."""

    QUEUED = "QUEUED"  # nothing started yet
    RUNNING = "RUNNING"  # a task is queued or running, or subtasks wait for their turn
    REVIEW = "REVIEW"  # all done running; some task awaits review
    APPLIED = "APPLIED"  # reviewed; at least one task applied
    REJECTED = "REJECTED"  # reviewed; nothing applied
    FAILED = "FAILED"  # no task reached review (or the plan was refused)
    CANCELLED = "CANCELLED"

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.RUNNING)


JobSplit = Literal["per-file", "plan"]


class PlanItem(Model):
    """One subtask of a job: an instruction and the files it may change."""

    instruction: Instruction
    files: list[str] = Field(min_length=1)


class JobSubmitParams(Model):
    workspace: PathStr = Field(min_length=1, description="absolute path of the workspace root")
    instruction: Instruction
    files: list[PathStr] = Field(min_length=1, description="files, directories or glob patterns ('src/**/*.py')")
    split: JobSplit = "per-file"
    model: str | None = None  # None: the configured default; "auto": routed per task over the tiers
    api_base: str | None = None
    check: str | None = None
    timeout_s: Timeout | None = None  # per task
    budget_usd: Budget | None = None  # cap for the whole job (planning included)
    task_budget_usd: Budget | None = None
    priority: Priority = 0
    keys: dict[KeyName, KeyValue] = Field(default={}, max_length=8, repr=False)  # as SubmitParams.keys, per job
    engine: EngineName | None = None  # as SubmitParams.engine, for every task of the job


class JobTotals(Model):
    """The job's summed receipt: every attempt of every task, plus the planning call."""

    receipts: int = 0
    tokens: TokenUsage = TokenUsage()
    cost_usd: float = 0.0
    priced: bool = True  # False if any receipt was unpriced
    llm_s: float = 0.0
    wall_s: float = 0.0  # summed over attempts: work done, not time elapsed
    files_changed: int = 0
    lines_added: int = 0
    lines_removed: int = 0
    tiers: dict[str, int] = {}  # attempts per tier (routed tasks only)


class JobInfo(Model):
    """A job as the front ends see it: its tasks, what is still to queue, what it spent."""

    id: str
    state: JobState
    workspace: str
    instruction: str
    split: JobSplit
    model: str
    files: list[str]  # the job's scope (globs expanded)
    plan: list[PlanItem] = []  # every subtask, in order
    pending: list[PlanItem] = []  # subtasks not queued yet (waiting for a file, a programmer or stopped)
    task_ids: list[str] = []
    tasks: list[TaskInfo] = []
    budget_usd: float | None = None
    spent_usd: float = 0.0  # tasks plus planning
    plan_cost_usd: float = 0.0
    receipt: JobTotals = JobTotals()
    stopped: bool = False  # no further subtasks will be queued
    stop_reason: str | None = None
    error: str | None = None
    created_at: float
    finished_at: float | None = None


class JobRef(Model):
    job_id: str = Field(min_length=1)


class JobListParams(Model):
    workspace: PathStr | None = None
    limit: int = Field(default=100, ge=1, le=MAX_JOB_PAGE)
    # Keyset paging, newest first, as task.list's: a job id (JobList.next); the page holds the jobs
    # created before it.
    before: str | None = Field(default=None, min_length=1, max_length=64)


class JobList(Model):
    jobs: list[JobInfo]
    next: str | None = None  # the `before` of the next (older) page; None: this is the last page


class JobDiffResult(Model):
    job_id: str
    state: JobState
    diff: str  # every task's diff, one after the other, each headed by a `# task ID: ...` line
    tasks: list[DiffResult]


class JobReviewParams(Model):
    """Approve or reject a whole job, or only some of its tasks."""

    job_id: str = Field(min_length=1)
    task_ids: list[str] | None = None  # None: every task awaiting review


class JobReviewResult(Model):
    job: JobInfo
    results: list[ReviewResult] = []
    conflicts: list[Conflict] = []


ReceiptGrouping = Literal["model", "day", "job", "tier"]


class ReceiptsSummaryParams(Model):
    by: ReceiptGrouping = "model"
    since: float | None = None  # epoch seconds; None: all receipts
    limit: int = Field(default=100_000, ge=1, le=1_000_000)  # receipts read, newest first


class ReceiptGroup(Model):
    key: str  # model string, YYYY-MM-DD (local time), job id or tier; "-" for none
    receipts: int
    tasks: int
    tokens_input: int
    tokens_output: int
    cost_usd: float
    unpriced: int = 0  # receipts whose model had no price
    # quality (daemon/receipts.py): over the receipts whose review is decided / that ran a check
    hunks_proposed: int = 0  # of reviewed attempts
    hunks_approved: int = 0
    hunks_rejected: int = 0
    approval_rate: float | None = None  # approved hunks / proposed hunks of reviewed attempts
    checks: int = 0  # attempts that ran a check
    checks_passed: int = 0
    check_pass_rate: float | None = None
    flagged: int = 0  # attempts that reached review with warnings
    approved_tasks: int = 0  # tasks with at least one hunk approved
    median_cost_usd: float | None = None  # per approved task, all its attempts in this group
    median_wall_s: float | None = None  # per approved task, all its attempts in this group


class ReceiptSummary(Model):
    by: ReceiptGrouping
    groups: list[ReceiptGroup]
    total_usd: float


class ReceiptSeriesParams(Model):
    """The receipts charts' figures over the whole history, summed by the daemon."""

    since: float | None = None  # epoch seconds; None: all receipts


class DayCost(Model):
    day: str  # YYYY-MM-DD, local time
    model: str
    cost_usd: float
    receipts: int


class ModelSeries(Model):
    model: str
    receipts: int
    cost_usd: float
    tokens_input: int
    tokens_output: int
    tokens_reasoning: int
    wall: list[int]  # attempts per bin of ReceiptSeries.wall_edges


class ReceiptSeries(Model):
    receipts: int
    total_usd: float
    days: list[DayCost]  # oldest first
    models: list[ModelSeries]  # most spent first
    wall_edges: list[float]  # seconds; bin i is [edges[i], edges[i+1]), the last one runs to the longest attempt


# ---------------------------------------------------------------- retention


class GcParams(Model):
    """Remove the stored diffs of tasks reviewed or ended more than `keep_days` ago (receipts stay)."""

    keep_days: float | None = Field(default=None, ge=0, le=36_500)  # None: the config's [store] keep_days
    dry_run: bool = False  # only count what would go


class GcResult(Model):
    keep_days: float
    cutoff: float  # epoch seconds: tasks whose last change is older lose their diff
    dry_run: bool
    tasks: int  # tasks whose stored diff was (or would be) removed
    files: int  # their stored files (base and proposed text)
    hunk_states: int
    text_bytes: int  # the size of that text
    db_bytes_before: int  # the database and its write-ahead log
    db_bytes_after: int
    freed_bytes: int  # given back to the file system
    vacuumed: bool = False  # a full VACUUM ran (a gc that freed much of the file, with nothing running)


# ---------------------------------------------------------------- events


class ProgrammerEvent(Model):
    kind: Literal["programmer"] = "programmer"
    programmer: ProgrammerInfo


class TaskEvent(Model):
    kind: Literal["task"] = "task"
    task: TaskInfo


class ProgressEvent(Model):
    kind: Literal["progress"] = "progress"
    task_id: str
    programmer: str | None = None
    phase: str  # queued | snapshot | model | edit | check | diff | done
    message: str
    tokens: int | None = None  # a model reply's output tokens so far (estimated while streaming)
    edit_blocks: int | None = None  # a model reply's complete SEARCH/REPLACE blocks so far
    streaming: bool = False  # the reply is still arriving; False with `tokens` set: the provider's count


class ReceiptEvent(Model):
    kind: Literal["receipt"] = "receipt"
    receipt: Receipt


class JobEvent(Model):
    kind: Literal["job"] = "job"
    job: JobInfo


Event = Annotated[
    ProgrammerEvent | TaskEvent | ProgressEvent | ReceiptEvent | JobEvent, Field(discriminator="kind")
]


class EventEnvelope(Model):
    """The params of an `event` notification."""

    seq: int
    time: float
    event: Event


# ---------------------------------------------------------------- registry

METHODS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "hello": (HelloParams, HelloResult),
    "pool.status": (Empty, PoolStatus),
    "task.submit": (SubmitParams, TaskInfo),
    "task.get": (TaskRef, TaskInfo),
    "task.list": (TaskListParams, TaskList),
    "task.cancel": (TaskRef, TaskInfo),
    "task.diff": (TaskRef, DiffResult),
    "task.contents": (TaskRef, ContentsResult),
    "task.approve": (ReviewParams, ReviewResult),
    "task.reject": (ReviewParams, ReviewResult),
    "task.revise": (ReviseParams, TaskInfo),
    "receipts.list": (ReceiptsParams, ReceiptList),
    "engines.list": (Empty, EngineList),
    "models.list": (ModelsParams, ModelsResult),
    "events.subscribe": (SubscribeParams, SubscribeResult),
    "daemon.shutdown": (Empty, ShutdownResult),
    "workspace.trust": (TrustParams, TrustResult),
    "workspace.trusted": (Empty, TrustList),
    # jobs (daemon/jobs.py)
    "job.submit": (JobSubmitParams, JobInfo),
    "job.get": (JobRef, JobInfo),
    "job.list": (JobListParams, JobList),
    "job.cancel": (JobRef, JobInfo),
    "job.diff": (JobRef, JobDiffResult),
    "job.approve": (JobReviewParams, JobReviewResult),
    "job.reject": (JobReviewParams, JobReviewResult),
    "receipts.summary": (ReceiptsSummaryParams, ReceiptSummary),
    "receipts.series": (ReceiptSeriesParams, ReceiptSeries),
    # retention (daemon/retention.py)
    "store.gc": (GcParams, GcResult),
}


# ---------------------------------------------------------------- JSON-RPC envelopes


class RpcError(Model):
    code: int
    message: str
    data: Any = None


def request(method: str, params: BaseModel, id: int | str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": params.model_dump(mode="json")}


def notification(method: str, params: BaseModel) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params.model_dump(mode="json")}


def response(id: int | str | None, result: BaseModel) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "result": result.model_dump(mode="json")}


def error_response(id: int | str | None, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "error": error.model_dump(mode="json", exclude_none=True)}
