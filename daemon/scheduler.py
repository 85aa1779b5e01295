"""The scheduler: a priority queue, round-robin dispatch to IDLE programmers, retries,
cancellation and crash recovery. It owns every task's asyncio task and their shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon import crashpoints
from daemon.config import Settings, engine_settings
from daemon.events import EventBus
from daemon.pool import Pool, Programmer
from daemon.programmer.engine import SPEND, STOPPED, STREAM, spent, streamed
from daemon.programmer.llm import scrub
from daemon.programmer.repomap.index import RepoMaps
from daemon.programmer.spec import (
    ContextSpec,
    EngineResult,
    FileChange,
    Limits,
    ModelSpec,
    ProviderFault,
    Revision,
    TaskFailed,
    TaskSpec,
)
from daemon.protocol import (
    CHECK_FAILED,
    ProgressEvent,
    Receipt,
    ReceiptEvent,
    TaskEvent,
    TaskInfo,
    TaskState,
    warning_text,
)
from daemon.routing import stamp
from daemon.store import Change, RevisionRequest, Store

log = logging.getLogger(__name__)

SettingsFor = Callable[[str], Settings]  # workspace -> effective settings
# (task, failure reason, message) -> task changes that move it to another model, or None
Fallback = Callable[[TaskInfo, str, str], dict[str, Any] | None]


class Scheduler:
    def __init__(self, store: Store, pool: Pool, bus: EventBus, settings_for: SettingsFor,
                 run_id: str, worktrees_dir: Path) -> None:
        self.store = store
        self.pool = pool
        self.bus = bus
        self.settings_for = settings_for
        self.run_id = run_id
        self.worktrees_dir = worktrees_dir
        self._heap: list[tuple[int, int, str]] = []
        self._wake = asyncio.Event()
        self._jobs: set[asyncio.Task[Any]] = set()  # every background task, owned here
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._cancelling: set[str] = set()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self.on_review: Callable[[TaskInfo], None] | None = None
        self.fallback: Fallback | None = None  # daemon/routing.py: next tier when a model is unavailable
        # keys submitted with a task: task id -> (the model they are for, variable -> value); in memory
        # only, for that model only, dropped when the task ends (a restart loses them: submit again)
        self._keys: dict[str, tuple[str, dict[str, str]]] = {}
        self.maps: RepoMaps | None = None  # programmer/repomap/: the workspace outline each spec carries

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._dispatch_loop(), name="pasd-dispatch")

    async def close(self) -> None:
        """Stop dispatching; running tasks go back to QUEUED so a restart resumes them."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
        jobs = list(self._jobs)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)

    def _own(self, coro: Any, name: str) -> asyncio.Task[Any]:
        job = asyncio.create_task(coro, name=name)
        self._jobs.add(job)
        job.add_done_callback(self._job_done)
        return job

    def _job_done(self, job: asyncio.Task[Any]) -> None:
        self._jobs.discard(job)
        if not job.cancelled() and job.exception() is not None:
            log.error("background task %s failed", job.get_name(), exc_info=job.exception())

    def recover(self, max_retries: int) -> tuple[int, int]:
        """After a restart: re-queue RUNNING tasks (or fail them past their retries); queue QUEUED ones.

        Unreadable task records are marked FAILED first, and attempts the stop cut short after a
        model reply get their receipt now, carrying what they spent.
        """
        if mended := self.store.mend_tasks():
            log.warning("%d stored tasks were unreadable and are marked FAILED", mended)
        for receipt in self.store.unsettled_spend():
            self._settle(receipt, STOPPED)
        requeued = failed = 0
        for task in self.store.list_tasks([TaskState.RUNNING], limit=100_000):
            if task.attempts > max_retries:
                self._finish(task, state=TaskState.FAILED, reason="crashed", programmer=None,
                             error=f"the daemon stopped during the task {task.attempts} times")
                failed += 1
            else:
                self._update(task, state=TaskState.QUEUED, programmer=None)
                requeued += 1
        for seq, task in self.store.queued_in_order():
            heapq.heappush(self._heap, (-task.priority, seq, task.id))
        self._wake.set()
        return requeued, failed

    # ------------------------------------------------------------ public operations

    def submit(self, task: TaskInfo, keys: dict[str, str] | None = None) -> TaskInfo:
        if keys:
            self._keys[task.id] = (task.model, dict(keys))
        seq = self.store.next_seq()
        self.store.save_task(task, seq=seq)
        self.bus.publish(TaskEvent(task=task))
        self.bus.publish(ProgressEvent(task_id=task.id, phase="queued", message="queued"))
        heapq.heappush(self._heap, (-task.priority, seq, task.id))
        self._wake.set()
        with contextlib.suppress(Exception):  # a bad config fails the task at dispatch, with its message
            if self.maps is not None and self.settings_for(task.workspace).context.map_tokens > 0:
                self.maps.warm(task.workspace)  # index it while the task waits for a programmer
        return task

    def revise(self, task: TaskInfo, request: RevisionRequest, keys: dict[str, str] | None = None) -> TaskInfo:
        """Queue the task again to answer the reviewer's comment; it comes back to REVIEW (the caller
        holds the task's review lock and checked it awaits review). `keys`: as for `submit`."""
        if keys:
            self._keys[task.id] = (task.model, dict(keys))
        task = task.model_copy(update=dict(
            state=TaskState.QUEUED, revision=task.revision + 1, programmer=None, reason=None, error=None,
            conflicts=[], stale_hunks=[], started_at=None, finished_at=None,
            attempts_before_fallback=task.attempts))  # a revision gets its own fault retries
        self.store.ask_revision(task, request)
        self.bus.publish(TaskEvent(task=task))
        self.bus.publish(ProgressEvent(task_id=task.id, phase="queued", message=f"revision {task.revision} queued"))
        heapq.heappush(self._heap, (-task.priority, self.store.seq_of(task.id), task.id))
        self._wake.set()
        return task

    def cancel(self, task: TaskInfo) -> TaskInfo:
        if task.state is TaskState.QUEUED:
            if task.revision:
                return self._finish(task, state=TaskState.CANCELLED, reason="cancelled", error="cancelled by the user")
            return self._update(task, state=TaskState.CANCELLED, finished_at=time.time())
        job = self._running.get(task.id)
        if job is not None:
            self._cancelling.add(task.id)
            job.cancel()
        return task

    async def wait_cancelled(self, task_id: str) -> None:
        job = self._running.get(task_id)
        if job is not None:
            await asyncio.gather(job, return_exceptions=True)

    # ------------------------------------------------------------ dispatch

    async def _dispatch_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                self._dispatch()
            except Exception:  # the loop must outlive any one bad task or store error
                log.exception("dispatch failed; the loop goes on")

    def _dispatch(self) -> None:
        while self._heap and not self._stopping:
            prog = self.pool.next_idle()
            if prog is None:
                break
            _, _, task_id = heapq.heappop(self._heap)
            try:
                task = self.store.get_task(task_id)
                if task is None or task.state is not TaskState.QUEUED:
                    continue  # cancelled while queued
                self._start(task, prog)
            except Exception:
                log.exception("could not start task %s", task_id)
                if task_id not in self._running and prog.info.task_id == task_id:
                    self.pool.idle(prog, done=False)

    def _start(self, task: TaskInfo, prog: Programmer) -> None:
        task = self._update(task, state=TaskState.RUNNING, programmer=prog.id, attempts=task.attempts + 1,
                            started_at=time.time(), reason=None, error=None)
        self.pool.busy(prog, task.id, task.model, task.engine)
        self.bus.publish(ProgressEvent(task_id=task.id, programmer=prog.id, phase="running",
                                       message=f"running on {prog.id}"))
        self._running[task.id] = self._own(self._run(task, prog), f"task-{task.id}")

    def _spec(self, task: TaskInfo, prog: Programmer, settings: Settings) -> TaskSpec:
        ms = settings.model_settings(task.model)
        g = settings.guardrails
        budget = task.budget_usd if task.budget_usd is not None else g.task_budget_usd
        if task.revision and budget is not None:  # the task's budget covers all its rounds
            if budget - task.cost_usd <= 0:
                raise TaskFailed("budget", f"the task has spent ${task.cost_usd:.6f} of its ${budget:g} budget")
            budget -= task.cost_usd
        if g.daily_budget_usd is not None:
            midnight = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
            left = max(0.0, g.daily_budget_usd - self.store.spent_since(midnight))
            if left <= 0:
                raise TaskFailed("budget", f"the daily budget of ${g.daily_budget_usd:g} is spent")
            budget = left if budget is None else min(budget, left)
        revision = self._revision(task) if task.revision else None
        return TaskSpec(
            task_id=task.id, run_id=self.run_id, attempt=task.attempts, programmer=prog.id,
            workspace=task.workspace, instruction=task.instruction, files=task.files, selection=task.selection,
            model=ModelSpec(model=task.model, api_base=task.api_base or ms.api_base, api_key_env=ms.api_key_env,
                            keys=self._keys_for(task), params=ms.params, input_cost_per_token=ms.input_cost_per_token,
                            output_cost_per_token=ms.output_cost_per_token,
                            cached_input_cost_per_token=ms.cached_input_cost_per_token),
            check=task.check, allow_files=g.allow_files, allow_commands=g.allow_commands,
            snapshot=settings.pool.snapshot, worktrees_dir=str(self.worktrees_dir),
            limits=Limits(timeout_s=task.timeout_s, model_timeout_s=min(g.model_timeout_s, task.timeout_s),
                          check_timeout_s=g.check_timeout_s, check_output_bytes=g.check_output_bytes,
                          max_rounds=g.max_rounds, budget_usd=budget, check_env=g.check_env,
                          check_network=g.check_network, sandbox=g.sandbox),
            context=ContextSpec(**settings.context.model_dump(include={"max_reads", "read_max_bytes",
                                                                       "round_max_bytes", "deny"})),
            secret_env=sorted({m.api_key_env for m in settings.models.settings.values() if m.api_key_env}),
            revision=revision, engine=task.engine,
            engine_settings=engine_settings(settings, task.engine, ms.engine_settings),
        )

    def _revision(self, task: TaskInfo) -> Revision:
        """What a revision attempt continues from: the stored conversation, the comment, the proposal."""
        messages = self.store.conversation(task.id)
        request = self.store.revision_request(task.id)
        if messages is None or request is None:
            raise TaskFailed("revision", "the conversation or the comment of this revision is not stored")
        files = [FileChange(path=c.path, base=c.base, proposed=c.proposed, created=c.created)
                 for c in self.store.changes(task.id)]
        return Revision(number=task.revision, messages=messages, comment=request.comment, hunks=request.hunks,
                        files=files)

    async def _run(self, task: TaskInfo, prog: Programmer) -> None:
        settings: Settings | None = None

        def progress(phase: str, message: str) -> None:
            if phase == SPEND:
                self._spend(spent(message), prog)
                return
            if phase == STREAM:
                self.bus.publish(_streaming(task.id, prog.id, message))
                return
            self.bus.publish(ProgressEvent(task_id=task.id, programmer=prog.id, phase=phase, message=message))

        try:
            settings = self.settings_for(task.workspace)
            spec = self._spec(task, prog, settings)
            if self.maps is not None:
                spec.repo_map = await self.maps.map_for(task.workspace, task.files, task.selection,
                                                        task.instruction, settings.context.map_tokens)
            result = await self.pool.backend.run(prog.id, spec, progress)
        except asyncio.CancelledError:
            if task.id in self._cancelling and not self._stopping:
                self._settle_attempt(task, "cancelled")
                self._finish(task, state=TaskState.CANCELLED, reason="cancelled", error="cancelled by the user")
                self.pool.idle(prog, done=False)
            else:
                # daemon shutdown: leave the task to be resumed by the next start
                self._settle_attempt(task, STOPPED)
                self._update(task, state=TaskState.QUEUED, programmer=None)
            raise
        except TaskFailed as exc:
            self._record(exc.receipt)
            self._settle_attempt(task, f"failed: {exc.reason}")  # in case no receipt came back
            if not self._fall_back(task, exc.reason, scrub(exc.message)):
                self._finish(task, state=TaskState.FAILED, reason=exc.reason, error=scrub(exc.message))
            self.pool.idle(prog)
        except ProviderFault as exc:
            self._record(exc.receipt)
            self._settle_attempt(task, f"failed: {exc.reason}")
            self._fault(task, prog, settings, exc.reason, scrub(exc.message), exc.retry_after)
        except Exception as exc:
            log.exception("engine failure on %s for task %s", prog.id, task.id)
            self._settle_attempt(task, "failed: engine")
            self._fault(task, prog, settings, "engine", scrub(f"{type(exc).__name__}: {exc}"), None)
        else:
            self._review(task, result, settings)
            self.pool.idle(prog)
        finally:
            self._running.pop(task.id, None)
            self._cancelling.discard(task.id)
            self._wake.set()

    def _fault(self, task: TaskInfo, prog: Programmer, settings: Settings | None, reason: str,
               message: str, retry_after: float | None) -> None:
        """The programmer failed: it rests until a health check; the task retries elsewhere."""
        self.pool.failed(prog, message)
        self._own(self._heal(prog, settings), f"heal-{prog.id}")
        if self._fall_back(task, reason, message):
            return
        pool_cfg = (settings or Settings()).pool
        tries = task.attempts - task.attempts_before_fallback  # a new tier gets its own retries
        if tries <= pool_cfg.max_retries:
            delay = max(retry_after or 0.0, pool_cfg.retry_backoff_s * 2 ** (tries - 1))
            task = self._update(task, state=TaskState.QUEUED, programmer=None, reason=reason,
                                error=f"attempt {task.attempts} failed: {message}; retrying in {delay:.1f} s")
            self.bus.publish(ProgressEvent(task_id=task.id, phase="queued",
                                           message=f"retrying after: {message}"))
            self._own(self._requeue_later(task, delay), f"retry-{task.id}")
        else:
            self._finish(task, state=TaskState.FAILED, reason=reason,
                         error=f"{message} (after {task.attempts} attempts)")

    async def _requeue_later(self, task: TaskInfo, delay: float) -> None:
        await asyncio.sleep(delay)
        heapq.heappush(self._heap, (-task.priority, self.store.seq_of(task.id), task.id))
        self._wake.set()

    async def _heal(self, prog: Programmer, settings: Settings | None) -> None:
        delay = (settings or Settings()).pool.health_check_delay_s
        while True:
            await asyncio.sleep(delay)
            if await self.pool.backend.health(prog.id):
                self.pool.recovered(prog)
                self._wake.set()
                return
            delay = min(max(delay, 0.5) * 2, 30.0)

    def _fall_back(self, task: TaskInfo, reason: str, message: str) -> bool:
        """Re-queue the task at once on the model the fallback hook names; False if it names none."""
        if self.fallback is None or self._stopping:
            return False
        current = self.store.get_task(task.id) or task
        changes = self.fallback(current, reason, message)
        if not changes:
            return False
        task = self._update(current, state=TaskState.QUEUED, programmer=None, reason=reason,
                            error=f"attempt {current.attempts} failed: {message}; moved to {changes['model']}",
                            **changes)
        self.bus.publish(ProgressEvent(task_id=task.id, phase="queued",
                                       message=f"falling back to {task.tier or task.model} ({task.model})"))
        heapq.heappush(self._heap, (-task.priority, self.store.seq_of(task.id), task.id))
        self._wake.set()
        return True

    # ------------------------------------------------------------ outcomes

    def _review(self, task: TaskInfo, result: EngineResult, settings: Settings) -> None:
        """The attempt's result goes to review, flagged with its warnings; or, when the check still
        fails and `on_check_failure = "fail"`, the task fails (its diff kept for `pasd diff`)."""
        changes = [Change(path=c.path, base=c.base, proposed=c.proposed, created=c.created)
                   for c in result.changes]
        r = stamp(result.receipt, self.store.get_task(task.id) or task)
        fail = CHECK_FAILED in r.warnings and settings.guardrails.on_check_failure == "fail"
        update: dict[str, Any] = dict(
            state=TaskState.REVIEW, finished_at=time.time(), files_changed=r.files_changed,
            lines_added=r.lines_added, lines_removed=r.lines_removed, refused=result.refused,
            cost_usd=round(task.cost_usd + r.cost_usd, 6), warnings=list(r.warnings), unapplied=result.unapplied,
            stale_hunks=[], conflicts=[])
        if fail:
            last = r.checks[-1] if r.checks else None
            code = "timed out" if last and last.timed_out else f"exit code {last.exit_code}" if last else "failed"
            update |= dict(state=TaskState.FAILED, reason=CHECK_FAILED,
                           error=f"the check still fails after {r.check_rounds} run{'s' if r.check_rounds != 1 else ''}"
                                 f" ({code}): {task.check}")
            r = r.model_copy(update={"outcome": f"failed: {CHECK_FAILED}"})
        task = (self.store.get_task(task.id) or task).model_copy(update=update)
        if self.store.save_result(task, changes, r, result.messages):
            self.bus.publish(ReceiptEvent(receipt=r))
        if fail:
            message = f"failed: {task.error}"
        else:
            flagged = f" ({warning_text(task.warnings)})" if task.warnings else ""
            message = f"ready for review{flagged}: +{r.lines_added} -{r.lines_removed}"
        # the last progress line comes before the state that ends the task: a follower stops there
        self.bus.publish(ProgressEvent(task_id=task.id, programmer=task.programmer, phase="done", message=message))
        self.bus.publish(TaskEvent(task=task))
        if self.on_review is not None and not fail:
            self.on_review(task)

    def _record(self, receipt: Receipt | None) -> None:
        if receipt is not None:
            receipt = stamp(receipt, self.store.get_task(receipt.task_id))
        if receipt is not None and self.store.add_receipt(receipt):
            self.bus.publish(ReceiptEvent(receipt=receipt))
            task = self.store.get_task(receipt.task_id)
            if task is not None:
                self.store.save_task(task.model_copy(update={"cost_usd": round(task.cost_usd + receipt.cost_usd, 6)}))

    def _spend(self, receipt: Receipt, prog: Programmer) -> None:
        """A model reply arrived: store what the attempt has spent so far before anything else happens."""
        if receipt.node == "local" and prog.info.node != "local":
            receipt = receipt.model_copy(update={"node": prog.info.node})
        self.store.record_spend(stamp(receipt, self.store.get_task(receipt.task_id)))
        crashpoints.reach("spend.recorded")

    def _settle_attempt(self, task: TaskInfo, outcome: str) -> None:
        """An attempt ended without a receipt: give it one for what its model replies cost."""
        for receipt in self.store.unsettled_spend(task.id, task.attempts):
            self._settle(receipt, outcome)

    def _settle(self, receipt: Receipt, outcome: str) -> None:
        receipt = receipt.model_copy(update={"outcome": outcome})
        task = self.store.get_task(receipt.task_id)
        if task is not None:
            task = task.model_copy(update={"cost_usd": round(task.cost_usd + receipt.cost_usd, 6)})
        if self.store.settle_spend(receipt, task):
            self.bus.publish(ReceiptEvent(receipt=receipt))
            if task is not None:
                self.bus.publish(TaskEvent(task=task))

    def _finish(self, task: TaskInfo, **changes: Any) -> TaskInfo:
        current = self.store.get_task(task.id) or task
        if current.revision and changes.get("state") in (TaskState.FAILED, TaskState.CANCELLED):
            return self._unrevise(current, changes)
        ending = task.model_copy(update=changes)  # announced before the state that ends the task
        self.bus.publish(ProgressEvent(task_id=task.id, programmer=ending.programmer, phase="done",
                                       message=f"{ending.state.value.lower()}: {ending.error or ending.reason or ''}"))
        return self._update(task, finished_at=time.time(), **changes)

    def _unrevise(self, task: TaskInfo, ended: dict[str, Any]) -> TaskInfo:
        """A revision that failed or was cancelled leaves the proposal it was asked about in review."""
        how = "was cancelled" if ended["state"] is TaskState.CANCELLED else "failed"
        error = f"revision {task.revision} {how}: {ended.get('error') or ended.get('reason') or ''}".rstrip(": ")
        task = task.model_copy(update=dict(state=TaskState.REVIEW, finished_at=time.time(), error=error,
                                           reason=f"revision_{ended.get('reason') or 'failed'}",
                                           programmer=ended.get("programmer", task.programmer)))
        self.bus.publish(ProgressEvent(task_id=task.id, programmer=task.programmer, phase="done",
                                       message=f"back in review: {error}"))
        self.store.ask_revision(task, None)
        self.bus.publish(TaskEvent(task=task))
        if self.on_review is not None:
            self.on_review(task)
        return task

    def _keys_for(self, task: TaskInfo) -> dict[str, str]:
        """The keys submitted with the task, while it still runs the model they were given for: a
        fallback to another model never carries them along."""
        model, keys = self._keys.get(task.id, ("", {}))
        return dict(keys) if model == task.model else {}

    def _update(self, task: TaskInfo, **changes: Any) -> TaskInfo:
        """Change a task from its stored state (the caller's copy may be stale), store and publish."""
        task = (self.store.get_task(task.id) or task).model_copy(update=changes)
        if not task.state.active:
            self._keys.pop(task.id, None)
        self.store.save_task(task)
        self.bus.publish(TaskEvent(task=task))
        return task


def _streaming(task_id: str, programmer: str, message: str) -> ProgressEvent:
    """A streaming reply's counts as a progress event: the numbers as fields, and in words."""
    s = streamed(message)
    blocks = f"{s.blocks} edit block{'' if s.blocks == 1 else 's'}"
    text = f"received {s.tokens} tokens, {blocks}" if s.final else f"receiving: ~{s.tokens} tokens, {blocks}"
    return ProgressEvent(task_id=task_id, programmer=programmer, phase="model", message=text,
                         tokens=s.tokens, edit_blocks=s.blocks, streaming=not s.final)
