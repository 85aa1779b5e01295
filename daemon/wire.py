"""The plain-Python part of the wire schema: bounds, states, warning words and error codes.

Standard library only, so that a command which sends one request and prints the reply (`pasd status
--json`, `pasd submit`) starts without pydantic. daemon/protocol.py builds its models on these and
re-exports every name, so the rest of pasd keeps using `protocol`.
"""

from __future__ import annotations

from enum import StrEnum

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 8 * 1024 * 1024  # a request to the daemon
MAX_REPLY_BYTES = 512 * 1024 * 1024  # a reply from the daemon (a task's whole diff may be large)

# Bounds on what a request may ask for: past them a number is a mistake or an attack.
MAX_TIMEOUT_S = 7 * 24 * 3600.0
MAX_BUDGET_USD = 1_000_000.0
MAX_PRIORITY = 1_000_000
MAX_LINE_NO = 100_000_000
MAX_ID = 100_000_000  # hunk ids and the like
MAX_COMMENT_CHARS = 16_000  # a reviewer's comment sent back with a proposal
PATH_MAX = 4096  # bytes, as Linux counts them
NAME_MAX = 255
# pages a list request may ask for (TaskListParams, ReceiptsParams, JobListParams)
MAX_TASK_PAGE = 10_000
MAX_RECEIPT_PAGE = 100_000
MAX_JOB_PAGE = 10_000


# ---------------------------------------------------------------- states


class TaskState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    REVIEW = "REVIEW"
    APPLIED = "APPLIED"
    REJECTED = "REJECTED"
    CONFLICT = "CONFLICT"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def active(self) -> bool:
        return self in (TaskState.QUEUED, TaskState.RUNNING)

    @property
    def reviewable(self) -> bool:
        return self in (TaskState.REVIEW, TaskState.CONFLICT)

    @property
    def final(self) -> bool:
        return self in (TaskState.APPLIED, TaskState.REJECTED, TaskState.FAILED, TaskState.CANCELLED)


class ProgrammerState(StrEnum):
    IDLE = "IDLE"
    BUSY = "BUSY"
    FAILED = "FAILED"


class HunkState(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"


# What makes a task that reached review not a good result (TaskInfo.warnings, Receipt.warnings)
CHECK_FAILED = "check_failed"  # the check command still failed after the last repair round
EDITS_REFUSED = "edits_refused"  # the last round's edits named a file the guardrails refuse
EDITS_UNAPPLIED = "edits_unapplied"  # the last round's edits did not apply (SEARCH text not found, malformed)
WARNING_TEXT = {CHECK_FAILED: "check failed", EDITS_REFUSED: "edits refused", EDITS_UNAPPLIED: "edits not applied"}


def warning_text(warnings: list[str]) -> str:
    """The one wording every front end shows for a task's warnings: "check failed, edits refused"."""
    return ", ".join(WARNING_TEXT.get(w, w.replace("_", " ")) for w in warnings)


def untrusted_message(path: str, ignored: list[str], command: str) -> str:
    """The one wording every front end shows for a workspace's `.pas.toml` whose settings are ignored."""
    return (f"{path} is not trusted, so these of its settings are ignored: {', '.join(ignored)}; "
            f"to apply them, review the file and run: {command}")


# ---------------------------------------------------------------- JSON-RPC error codes


class ErrorCode:
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    # application errors
    NOT_FOUND = -32001  # unknown task
    INVALID_STATE = -32002  # e.g. approving a RUNNING task
    BAD_MODEL = -32003  # unknown provider / malformed model string
    MISSING_CREDENTIALS = -32004
    GUARDRAIL = -32005  # refused by an allowlist or budget
    BAD_CONFIG = -32006
    SHUTTING_DOWN = -32007
