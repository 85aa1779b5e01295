"""`pasd mcp`: the pool as Model Context Protocol tools over stdio, for an agent that hands sub-tasks
to pasd and gets reviewable diffs and receipts back. Here: the tools' names, arguments and descriptions
(what a calling model reads); their bodies are in `mcp_tools.py`.

A front end like the TUI: it talks to the daemon only through `daemon/client.py`. Review stays
with the human: the tools submit, wait and read; `approve_task` exists only when the user turned
it on (`pasd mcp --allow-approve`, or `[mcp] allow_approve = true` in their config).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from daemon import protocol as p
from daemon.mcp_tools import PoolTools
from daemon.version import version

F = TypeVar("F", bound=Callable[..., Any])
MAX_WAIT_S = 900.0  # one call; waiting longer is calling again

INSTRUCTIONS = """\
pasd runs coding tasks on a pool of LLM programmers (often cheaper models than yours), each in a
private copy of the workspace. A task ends as a diff waiting for the user's review plus a receipt
(tokens, cost, time). Nothing is written to the user's files until the user approves the diff.
Flow: submit_task (or submit_job for many files) -> wait_task -> task_diff -> tell the user the
task id so they can review it (`pasd approve ID`, `pasd diff ID`, their editor or pas-tui).
File paths are relative to the workspace root.
"""

TaskId = Annotated[str, Field(min_length=1, description="the task id (or a unique prefix of it)")]
WaitS = Annotated[float, Field(ge=0, le=MAX_WAIT_S, description="give up waiting after this many seconds "
                                                                "(the work keeps running)")]
Files = Annotated[list[str], Field(description="files the task may change, relative to the workspace root")]
Model = Annotated[str | None, Field(description="litellm model string (pool_status lists the configured "
                                                "ones); default: the configured default")]
Check = Annotated[str | None, Field(description="command that checks the edit, e.g. 'pytest -q'; must be "
                                                "allowlisted in the user's config; on failure the output goes back "
                                                "to the model")]
Engine = Annotated[str | None, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description=(
    "what runs the task: 'native' (pasd's own) or an installed tool such as 'aider' (pool_status lists "
    "the installed ones); default: the model's configured engine, else native"))]
TimeoutS = Annotated[float | None, Field(gt=0, le=p.MAX_TIMEOUT_S, description="time limit in seconds")]
Budget = Annotated[float | None, Field(ge=0, le=p.MAX_BUDGET_USD, description="cost cap in USD")]
READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)


def create_server(tools: PoolTools, *, allow_approve: bool = False) -> MCPServer[Any]:
    """The MCP server with pasd's tools; `approve_task` only when `allow_approve`."""
    server: MCPServer[Any] = MCPServer("pasd", instructions=INSTRUCTIONS, version=version(),
                                          log_level="WARNING")  # a tool error is the caller's to read, not a log line

    def tool(annotations: ToolAnnotations) -> Callable[[F], F]:
        """Register a tool; its description is its docstring as one paragraph."""
        def register(fn: F) -> F:
            server.add_tool(fn, description=" ".join((inspect.getdoc(fn) or "").split()), annotations=annotations)
            return fn
        return register

    @tool(WRITE)
    async def submit_task(
        instruction: Annotated[str, Field(description="what to change, as you would tell a programmer")],
        files: Files,
        start_line: Annotated[int | None, Field(ge=1, description="first line (1-based) of a selection in the "
                                                                  "first file, to focus the task")] = None,
        end_line: Annotated[int | None, Field(ge=1, description="last line of that selection (inclusive)")] = None,
        model: Model = None, check: Check = None, timeout_s: TimeoutS = None, budget_usd: Budget = None,
        engine: Engine = None,
    ) -> dict[str, Any]:
        """Hand one coding task to a programmer in the pasd pool; returns at once with the task id and
        state QUEUED. The task runs in a private copy of the workspace: the result is a diff for the user to
        review, never a change to their files. Follow with wait_task."""
        return await tools.submit_task(instruction, files, start_line, end_line, model, check, timeout_s, budget_usd,
                                       engine)

    @tool(WRITE)
    async def submit_job(
        instruction: Annotated[str, Field(description="what to change in every file")],
        files: Annotated[list[str], Field(min_length=1, description="files, directories or globs ('src/**/*.py'), "
                                                                    "relative to the workspace root")],
        split: Annotated[Literal["per-file", "plan"], Field(description="one task per file, or let a model plan "
                                                                        "the subtasks")] = "per-file",
        model: Model = None, check: Check = None,
        timeout_s: Annotated[float | None, Field(gt=0, le=p.MAX_TIMEOUT_S, description="time limit per task")] = None,
        budget_usd: Annotated[float | None, Field(ge=0, le=p.MAX_BUDGET_USD,
                                                  description="cost cap for the whole job in USD")] = None,
        engine: Engine = None,
    ) -> dict[str, Any]:
        """Split one instruction over many files into tasks that run in parallel across the pool; returns at
        once with the job id and its planned tasks. Each task ends as a diff awaiting the user's review.
        Follow with wait_job."""
        return await tools.submit_job(instruction, files, split, model, check, timeout_s, budget_usd, engine)

    @tool(READ)
    async def wait_task(task_id: TaskId, ctx: Context[Any, Any], timeout_s: WaitS = 120.0) -> dict[str, Any]:
        """Wait until a task stops running (or timeout_s passes) and return its state and outcome: REVIEW (a
        diff awaits the user's review; read it with task_diff), FAILED (with the error), CANCELLED, or, once
        the user decided, APPLIED / REJECTED / CONFLICT. Also lines changed, cost, and any warnings (a failing
        check, refused edits) that make the result doubtful. done=false means it is still queued or running."""
        return await tools.wait_task(task_id, timeout_s, ctx)

    @tool(READ)
    async def wait_job(job_id: Annotated[str, Field(min_length=1, description="the job id")],
                       timeout_s: WaitS = 300.0) -> dict[str, Any]:
        """Wait until a job's tasks have all run (or timeout_s passes) and return the job with each task's
        state and outcome; read each task's diff with task_diff."""
        return await tools.wait_job(job_id, timeout_s)

    @tool(READ)
    async def task_diff(task_id: TaskId) -> str:
        """The unified diff a task proposes, hunks numbered ("@@ ... @@ hunk 1"), after a header line with
        its state. A diff in REVIEW waits for the user's review: it is not in their files until they approve
        it."""
        return await tools.task_diff(task_id)

    @tool(READ)
    async def task_receipt(task_id: TaskId) -> dict[str, Any]:
        """A task's receipts, one per attempt: model, tokens in/out, cost in USD (priced=false: the model
        has no price, the cost is not known), wall and model time, lines changed, check result, outcome."""
        return await tools.task_receipt(task_id)

    @tool(READ)
    async def list_tasks(
        states: Annotated[list[p.TaskState] | None, Field(description="only tasks in these states")] = None,
        limit: Annotated[int, Field(ge=1, le=500, description="at most this many, newest first")] = 20,
        all_workspaces: Annotated[bool, Field(description="every workspace's tasks, not only this one's")] = False,
    ) -> dict[str, Any]:
        """The workspace's tasks, newest first: id, state, model, files, lines changed, cost."""
        return await tools.list_tasks(states, limit, all_workspaces)

    @tool(READ)
    async def pool_status() -> dict[str, Any]:
        """The pool: each programmer's state (IDLE, BUSY, FAILED) and task; how many tasks are queued,
        running and in review; the models configured for this workspace and the default one; the engines
        installed (a submit's `engine`)."""
        return await tools.pool_status()

    @tool(ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                             open_world_hint=False))
    async def cancel_task(task_id: TaskId) -> dict[str, Any]:
        """Cancel a task that is queued or running (its work is discarded); returns the task."""
        return await tools.cancel_task(task_id)

    if allow_approve:
        @tool(ToolAnnotations(read_only_hint=False, destructive_hint=True,
                                                 open_world_hint=False))
        async def approve_task(
            task_id: TaskId,
            hunks: Annotated[list[int] | None, Field(description="only these hunks (numbers as task_diff shows "
                                                                 "them); default: all")] = None,
        ) -> dict[str, Any]:
            """Apply a task's diff (in REVIEW) to the user's files with a 3-way merge. The user turned this
            tool on; still, approve only what the user asked you to. If their files changed under a hunk,
            nothing is written and the conflicts are listed."""
            return await tools.approve_task(task_id, hunks)

    return server


async def serve(workspace: str, *, allow_approve: bool = False, start_daemon: bool = True) -> None:
    """Serve over stdio until the client closes the connection."""
    tools = PoolTools(workspace, start_daemon=start_daemon)
    try:
        await create_server(tools, allow_approve=allow_approve).run_stdio_async()
    finally:
        await tools.close()
