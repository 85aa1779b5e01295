"""Jobs: one instruction split into tasks (per file, or by a planning model) that run across the pool.

The job feeds its tasks to the scheduler a window at a time (`[jobs] parallel`, default the pool
size). Before queuing each one it checks two things:
- files: a subtask whose files overlap a running task of the same job (or an earlier subtask still
  waiting) waits. So tasks of one job on one file never overlap; the later one starts once the
  earlier one has finished, on the user's tree as it is then: its diff is against that tree, and
  approving both merges them 3-way like any two tasks on one file.
- money: if what the job has spent, plus what its running and next task are expected to cost (the
  mean of its finished tasks), would pass the job's cap or the day's, the job stops queuing and
  reports what it spent. Subtasks not queued stay listed under `pending`.

A job's state is derived from its tasks; nothing about a task is stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from daemon import crashpoints, planning, routing
from daemon import protocol as p
from daemon.config import Settings
from daemon.errors import GuardrailRefused, InvalidParams, InvalidState, NotFound, PasError
from daemon.programmer import llm
from daemon.programmer.guard import command_allowed
from daemon.programmer.spec import ModelSpec, ProviderFault, TaskFailed
from daemon.receipts import totals
from daemon.service import Service
from daemon.store import first_error

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    open INTEGER NOT NULL,
    created_at REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs(open);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at, id);
"""


class JobRecord(p.Model):
    """What a job stores; the rest of JobInfo is derived from its tasks and receipts."""

    id: str
    workspace: str
    instruction: str
    split: p.JobSplit
    model: str
    api_base: str | None = None
    engine: str | None = None
    check: str | None = None
    timeout_s: float | None = None
    task_budget_usd: float | None = None
    priority: int = 0
    files: list[str]
    plan: list[p.PlanItem] = []
    pending: list[p.PlanItem] = []
    task_ids: list[str] = []
    budget_usd: float | None = None
    plan_cost_usd: float = 0.0
    stopped: bool = False
    stop_reason: str | None = None
    cancelled: bool = False
    error: str | None = None
    created_at: float

    @property
    def open(self) -> bool:
        return bool(self.pending) and not self.stopped


class JobStore:
    """Jobs in their own SQLite file next to the daemon's database."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # as the daemon's store: no fsync per commit (every advance saves). A crash of the daemon loses
        # nothing; a power loss at most the last saves, mended at the next start like a crash's
        # (`_adopt_orphans`)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def save(self, job: JobRecord) -> None:
        self.db.execute("INSERT OR REPLACE INTO jobs (id, workspace, open, created_at, record) VALUES (?, ?, ?, ?, ?)",
                        (job.id, job.workspace, int(job.open), job.created_at, job.model_dump_json()))

    def get(self, job_id: str) -> JobRecord | None:
        row = self.db.execute("SELECT id, record FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._load(*row) if row else None

    def _load(self, job_id: str, record: str) -> JobRecord | None:
        """A stored job; one whose record cannot be read (a damaged file, a newer pasd's) is left out and
        closed, so it is never adopted again: its tasks stay in the daemon's store, as tasks."""
        try:
            return JobRecord.model_validate_json(record)
        except (ValidationError, ValueError) as exc:
            why = first_error(exc)
        log.warning("job %s: stored record unreadable (%s); leaving it out", job_id, why)
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("UPDATE jobs SET open = 0 WHERE id = ?", (job_id,))
        return None

    def find_ids(self, prefix: str) -> list[str]:
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return [r[0] for r in self.db.execute("SELECT id FROM jobs WHERE id LIKE ? ESCAPE '\\' LIMIT 5", (like,))]

    def query(self, workspace: str | None, limit: int, open_only: bool = False) -> list[JobRecord]:
        """The newest `limit` jobs (those that can be read)."""
        return [job for row in self._rows(workspace, limit, open_only) if (job := self._load(*row)) is not None]

    def page(self, workspace: str | None, limit: int,
             before: tuple[float, str] | None) -> tuple[list[JobRecord], str | None]:
        """The newest `limit` jobs created before `before` (created_at, id), and the id to page on from
        (the last row's, even one whose record cannot be read: it does not end the listing)."""
        rows = self._rows(workspace, limit + 1, before=before)
        more = len(rows) > limit
        rows = rows[:limit]
        return [job for row in rows if (job := self._load(*row)) is not None], rows[-1][0] if more else None

    def position(self, job_id: str) -> tuple[float, str] | None:
        """A job's place in the listing (created_at, id), read or not."""
        row = self.db.execute("SELECT created_at, id FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def _rows(self, workspace: str | None, limit: int, open_only: bool = False,
              before: tuple[float, str] | None = None) -> list[tuple[str, str]]:
        sql, args = "SELECT id, record FROM jobs WHERE 1=1", list[object]()
        if before is not None:  # (created_at, id): two jobs made in the same instant still page apart
            sql += " AND (created_at, id) < (?, ?)"
            args += before
        if workspace is not None:
            sql += " AND workspace = ?"
            args.append(workspace)
        if open_only:
            sql += " AND open = 1"
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        args.append(limit)
        return self.db.execute(sql, args).fetchall()


def job_state(job: JobRecord, tasks: list[p.TaskInfo]) -> p.JobState:
    """A job is as far along as its tasks: running while any runs or waits, then review, then done."""
    states = [t.state for t in tasks]
    if any(s.active for s in states) or job.open:
        return p.JobState.RUNNING if any(s is not p.TaskState.QUEUED for s in states) else p.JobState.QUEUED
    if any(s.reviewable for s in states):
        return p.JobState.REVIEW
    if p.TaskState.APPLIED in states:
        return p.JobState.APPLIED
    if p.TaskState.REJECTED in states:
        return p.JobState.REJECTED
    if job.cancelled or (states and all(s is p.TaskState.CANCELLED for s in states)):
        return p.JobState.CANCELLED
    return p.JobState.FAILED


class JobManager:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.store = service.store
        self.bus = service.bus
        self.scheduler = service.scheduler
        self.jobs = JobStore(service.store.state_dir / "jobs.db")
        self._lock = asyncio.Lock()  # one job advances at a time: queuing decisions see each other
        self._watch_task: asyncio.Task[None] | None = None
        # keys submitted with a job, in memory until its last subtask is queued (Service.submit explains)
        self._keys: dict[str, dict[str, str]] = {}
        service.handlers.update({
            "job.submit": self.submit, "job.get": self.get, "job.list": self.list_jobs, "job.cancel": self.cancel,
            "job.diff": self.diff, "job.approve": self.approve, "job.reject": self.reject,
            "receipts.summary": self.summary,
        })

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        self._adopt_orphans()
        self._watch_task = asyncio.create_task(self._watch(), name="pasd-jobs")

    async def close(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
        self.jobs.close()

    def _adopt_orphans(self) -> None:
        """Give back to their jobs the tasks queued just before a crash, before their job record was saved.

        Such a task is in the store (and the scheduler runs it again after the restart) while its job
        still lists its subtask as pending: without this the subtask would be queued a second time.
        """
        for job in self.jobs.query(None, 10_000, open_only=True):
            listed = set(job.task_ids)
            orphans = [t for t in (self.store.get_task(i) for i in self.store.job_task_ids(job.id))
                       if t is not None and t.id not in listed]
            if not orphans:
                continue
            pending = list(job.pending)
            for task in orphans:
                same = [i for i, item in enumerate(pending)
                        if item.files == task.files and item.instruction.strip() == task.instruction]
                if same:
                    del pending[same[0]]
            log.info("job %s: adopted %d task(s) queued before a crash", job.id, len(orphans))
            self.jobs.save(job.model_copy(update={"pending": pending,
                                                  "task_ids": [*job.task_ids, *(t.id for t in orphans)]}))

    async def _watch(self) -> None:
        """Advance a job whenever one of its tasks stops running; catch up after (re)subscribing.

        The task events waiting are taken together: each job concerned advances once, before anything
        else (its next subtask is queued before the scheduler hands the freed programmer on), then the
        scheduler runs, then each job's event is published once for the lot."""
        while True:
            sub = self.bus.subscribe(["task"])
            try:
                for job in self.jobs.query(None, 10_000, open_only=True):
                    await self._advance(job.id)
                while (first := await sub.next()) is not None:
                    changed: dict[str, bool] = {}  # job id -> has a task that stopped running
                    for pub in [first, *sub.ready()]:
                        ev = pub.env.event
                        if isinstance(ev, p.TaskEvent) and ev.task.job_id:
                            stopped = not ev.task.state.active
                            changed[ev.task.job_id] = changed.get(ev.task.job_id, False) or stopped
                    for job_id, stopped in changed.items():
                        try:
                            if stopped:
                                await self._advance(job_id)
                        except Exception:
                            log.exception("job %s: could not advance", job_id)
                    await asyncio.sleep(0)  # the scheduler starts what was just queued
                    for job_id in changed:
                        try:
                            self._publish(job_id)
                        except Exception:
                            log.exception("job %s: could not publish its state", job_id)
            finally:
                sub.close()

    # ------------------------------------------------------------ reading

    def record(self, ref: str) -> JobRecord:
        job = self.jobs.get(ref)
        if job is not None:
            return job
        ids = self.jobs.find_ids(ref) if ref else []
        if len(ids) == 1:
            found = self.jobs.get(ids[0])
            if found is None:
                raise NotFound(f"job {ids[0]}'s stored record cannot be read (the daemon's log says why); "
                               "its tasks are listed by `pasd tasks`")
            return found
        if len(ids) > 1:
            raise InvalidParams(f"job id {ref!r} is ambiguous: {', '.join(ids)}")
        raise NotFound(f"no job {ref!r}")

    def tasks(self, job: JobRecord) -> list[p.TaskInfo]:
        return [t for t in (self.store.get_task(i) for i in job.task_ids) if t is not None]

    def info(self, job: JobRecord) -> p.JobInfo:
        tasks = self.tasks(job)
        receipts = [r for t in [job.id, *job.task_ids] for r in self.store.receipts(t, 10_000)]
        state = job_state(job, tasks)
        finished = [t.finished_at for t in tasks if t.finished_at is not None]
        return p.JobInfo(
            id=job.id, state=state, workspace=job.workspace, instruction=job.instruction, split=job.split,
            model=job.model, files=job.files, plan=job.plan, pending=job.pending, task_ids=job.task_ids,
            tasks=tasks, budget_usd=job.budget_usd, plan_cost_usd=job.plan_cost_usd,
            spent_usd=round(job.plan_cost_usd + sum(t.cost_usd for t in tasks), 6), receipt=totals(receipts),
            stopped=job.stopped, stop_reason=job.stop_reason, error=job.error, created_at=job.created_at,
            finished_at=(max(finished) if finished else None) if not state.active else None,
        )

    def _publish(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is not None:
            self.bus.publish(p.JobEvent(job=self.info(job)))

    async def get(self, params: p.JobRef) -> p.JobInfo:
        return self.info(self.record(params.job_id))

    async def list_jobs(self, params: p.JobListParams) -> p.JobList:
        before = None
        if params.before is not None and (before := self.jobs.position(params.before)) is None:
            raise InvalidParams(f"before: no job {params.before!r} to page from (give the id of a listed job)")
        jobs, next_id = self.jobs.page(params.workspace, params.limit, before)
        return p.JobList(jobs=[self.info(j) for j in jobs], next=next_id)

    async def diff(self, params: p.JobRef) -> p.JobDiffResult:
        job = self.record(params.job_id)
        diffs, text = [], []
        for task in self.tasks(job):
            if task.state.reviewable or task.state in (p.TaskState.APPLIED, p.TaskState.REJECTED):
                d = await self.service.reviewer.diff(task)
                diffs.append(d)
                if d.diff:
                    text.append(f"# task {task.id} ({task.state.value}): {task.instruction.splitlines()[0][:100]}\n"
                                + d.diff)
        return p.JobDiffResult(job_id=job.id, state=job_state(job, self.tasks(job)), diff="".join(text), tasks=diffs)

    # ------------------------------------------------------------ submit and advance

    def _new_id(self) -> str:
        while True:
            job_id = "j" + secrets.token_hex(3)
            if self.jobs.get(job_id) is None:
                return job_id

    async def submit(self, params: p.JobSubmitParams) -> p.JobInfo:
        workspace = Path(params.workspace)
        if not workspace.is_absolute() or not workspace.is_dir():
            raise InvalidParams(f"workspace must be an absolute path to a directory: {params.workspace}")
        workspace = workspace.resolve()
        settings = self.service.configs.get(str(workspace))
        files = [self.service._relative(workspace, f) for f in planning.expand_scope(workspace, params.files)]
        files = list(dict.fromkeys(files))
        limit = settings.jobs.max_tasks
        if params.split == "per-file" and len(files) > limit:
            raise InvalidParams(f"the job names {len(files)} files; a job may have at most {limit} tasks "
                                "([jobs] max_tasks)")
        if params.check and not command_allowed(params.check, settings.guardrails.allow_commands):
            raise GuardrailRefused(f"check command not allowed: {params.check!r}; add a matching pattern to "
                                   "[guardrails] allow_commands in the config")
        model = params.model or settings.models.default
        if params.engine:  # an unknown or missing engine fails the job now, not each of its tasks
            await self.service._engine(params.engine, settings, settings.model_settings(model).engine_settings)
        job = JobRecord(id=self._new_id(), workspace=str(workspace), instruction=params.instruction.strip(),
                        split=params.split, model=model, api_base=params.api_base, engine=params.engine,
                        check=params.check,
                        timeout_s=params.timeout_s, task_budget_usd=params.task_budget_usd, priority=params.priority,
                        files=files, budget_usd=params.budget_usd if params.budget_usd is not None
                        else settings.guardrails.job_budget_usd, created_at=time.time())
        if params.split == "plan":
            items, job = await self._plan(job, settings, workspace, params.keys)
        else:
            items = planning.per_file(job.instruction, files)
        needed = await self._validate_models(job, settings, workspace, items, params.keys)
        job = job.model_copy(update={"plan": items, "pending": items})
        self.jobs.save(job)
        if needed:
            self._keys[job.id] = {k: params.keys[k] for k in needed}
        await self._advance(job.id)
        self._publish(job.id)
        return self.info(self.record(job.id))

    async def _validate_models(self, job: JobRecord, settings: Settings, workspace: Path,
                               items: list[p.PlanItem], submitted: dict[str, str]) -> set[str]:
        """Refuse the job now if a model its tasks would use cannot be (bad string, no credentials);
        the variables whose submitted keys its tasks need."""
        await llm.ensure_loaded()
        models = {job.model}
        if routing.is_routed(job.model, settings):
            models = {routing.route(settings, job.model, routing.scope_of(workspace, i.files, None)).model
                      for i in items}
        needed: set[str] = set()
        for model in sorted(models):
            ms = settings.model_settings(model)
            # the job's tasks may run on remote nodes, which hold and check their own keys
            needed.update(llm.validate(
                ModelSpec(model=model, api_base=job.api_base or ms.api_base, api_key_env=ms.api_key_env),
                keys=self.service.pool.backend.name == "local", submitted=submitted))
        return needed

    async def _plan(self, job: JobRecord, settings: Settings, workspace: Path,
                    submitted: dict[str, str]) -> tuple[list[p.PlanItem], JobRecord]:
        """Ask the model for subtasks; a failed or refused plan leaves a FAILED job that shows its cost."""
        model, tier, why = job.model, None, None
        if routing.is_routed(model, settings):
            r = routing.route(settings, model, routing.scope_of(workspace, job.files, None, kind="plan"))
            model, tier, why = r.model, r.tier, r.reason
        ms = settings.model_settings(model)
        spec = ModelSpec(model=model, api_base=job.api_base or ms.api_base, api_key_env=ms.api_key_env,
                         params=ms.params, input_cost_per_token=ms.input_cost_per_token,
                         output_cost_per_token=ms.output_cost_per_token,
                         cached_input_cost_per_token=ms.cached_input_cost_per_token)
        await llm.ensure_loaded()
        if needed := llm.validate(spec, submitted=submitted):
            spec = spec.model_copy(update={"keys": {k: submitted[k] for k in needed}})
        messages = planning.plan_messages(workspace, job.instruction, job.files, settings.jobs.max_tasks,
                                          settings.jobs.plan_max_bytes)
        started = time.time()
        outcome, cost = "plan", 0.0
        try:
            reply = await llm.complete(spec, messages, settings.guardrails.model_timeout_s)
        except (TaskFailed, ProviderFault) as exc:
            job = job.model_copy(update={"error": f"planning failed: {exc.message}", "stopped": True})
            self.jobs.save(job)
            raise InvalidState(f"job {job.id}: planning with {model} failed: {exc.message}") from None
        cost = reply.cost_usd
        try:
            items = planning.parse_plan(reply.text, settings.jobs.max_tasks)
            planning.check_plan(workspace, items, job.files, settings.guardrails.allow_files)
        except PasError as exc:
            outcome = "failed: plan refused" if isinstance(exc, GuardrailRefused) else "failed: bad plan"
            job = job.model_copy(update={"error": exc.message, "stopped": True, "plan_cost_usd": round(cost, 6)})
            raise type(exc)(f"job {job.id}: {exc.message}") from None
        finally:
            self._record(planning.plan_receipt(
                job.id, self.scheduler.run_id, model, spec.api_base, spec.params, reply.tokens, cost, reply.priced,
                started, reply.seconds, outcome, tier, why))
            job = job.model_copy(update={"plan_cost_usd": round(cost, 6)})
            self.jobs.save(job)
        return [i.model_copy(update={"instruction": f"{i.instruction}\n\n(one part of the job: {job.instruction})"})
                for i in items], job

    def _record(self, receipt: p.Receipt) -> None:
        if self.store.add_receipt(receipt):
            self.bus.publish(p.ReceiptEvent(receipt=receipt))

    def left_for(self, task: p.TaskInfo) -> tuple[float | None, str]:
        """What one of a job's tasks may still spend of its job's budget (and the day's), and which budget
        that is; (None, "") for a task outside any job or a job without a limit."""
        job = self.jobs.get(task.job_id) if task.job_id else None
        if job is None:
            return None, ""
        spent = job.plan_cost_usd + sum(t.cost_usd for t in self.tasks(job))
        return self._budget_left(job, self.service.configs.get(job.workspace), spent)

    def _budget_left(self, job: JobRecord, settings: Settings, spent: float) -> tuple[float | None, str]:
        left, what = None, ""
        if job.budget_usd is not None:
            left, what = job.budget_usd - spent, f"the job's budget of ${job.budget_usd:g}"
        daily = settings.guardrails.daily_budget_usd
        if daily is not None:
            midnight = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
            day_left = daily - self.store.spent_since(midnight)
            if left is None or day_left < left:
                left, what = day_left, f"the daily budget of ${daily:g}"
        return left, what

    async def _advance(self, job_id: str) -> None:
        """Queue the job's next subtasks that may run now; stop the job if the next would overspend."""
        async with self._lock:
            job = self.jobs.get(job_id)
            if job is None or not job.open:
                return
            settings = self.service.configs.get(job.workspace)
            tasks = self.tasks(job)
            active = [t for t in tasks if t.state.active]
            window = settings.jobs.parallel or len(self.service.pool.programmers)
            busy = {f for t in active for f in t.files}
            spent = job.plan_cost_usd + sum(t.cost_usd for t in tasks)
            done = [t.cost_usd for t in tasks if not t.state.active and t.cost_usd > 0]
            expected = sum(done) / len(done) if done else 0.0
            pending: list[p.PlanItem] = []
            new_ids: list[str] = []
            errors: list[str] = []
            for n, item in enumerate(job.pending):
                if len(active) + len(new_ids) >= window or busy.intersection(item.files):
                    pending.append(item)
                    busy.update(item.files)  # later subtasks on these files keep their order
                    continue
                left, what = self._budget_left(job, settings, spent)
                if left is not None and (left <= 0 or (len(active) + len(new_ids) + 1) * expected > left):
                    rest = len(job.pending) - n + len(pending)
                    job = job.model_copy(update={"stopped": True, "stop_reason": (
                        f"budget: spent ${spent:.6f}; the next task (about ${expected:.6f}) would pass {what}; "
                        f"{rest} subtask{'s' if rest != 1 else ''} not queued")})
                    pending += job.pending[n:]
                    break
                task_budget = job.task_budget_usd
                if left is not None:
                    task_budget = left if task_budget is None else min(task_budget, left)
                keys: dict[str, str] = {}
                try:
                    task = await self.service.build_task(p.SubmitParams(
                        workspace=job.workspace, instruction=item.instruction, files=item.files, model=job.model,
                        api_base=job.api_base, check=job.check, timeout_s=job.timeout_s, budget_usd=task_budget,
                        priority=job.priority, keys=self._keys.get(job.id, {}), engine=job.engine),
                        job_id=job.id, keys=keys)
                except PasError as exc:
                    errors.append(f"{', '.join(item.files)}: {exc.message}")
                    continue
                self.scheduler.submit(task, keys)
                crashpoints.reach("job.task-queued")
                new_ids.append(task.id)
                busy.update(task.files)
            error = "; ".join(filter(None, [job.error, *errors])) or None
            if not pending or job.stopped:
                self._keys.pop(job.id, None)  # every subtask that will run is queued, with its own copy
            self.jobs.save(job.model_copy(update={"pending": pending, "task_ids": [*job.task_ids, *new_ids],
                                                  "error": error}))

    # ------------------------------------------------------------ cancel and review

    async def cancel(self, params: p.JobRef) -> p.JobInfo:
        async with self._lock:
            job = self.record(params.job_id)
            self._keys.pop(job.id, None)
            self.jobs.save(job.model_copy(update={"stopped": True, "cancelled": True,
                                                  "stop_reason": job.stop_reason or "cancelled by the user"}))
        for task in self.tasks(job):
            if task.state.active:
                self.scheduler.cancel(task)
                await self.scheduler.wait_cancelled(task.id)
        self._publish(job.id)
        return self.info(self.record(job.id))

    def _targets(self, job: JobRecord, task_ids: list[str] | None) -> list[p.TaskInfo]:
        tasks = self.tasks(job)
        if task_ids is None:
            chosen = [t for t in tasks if t.state.reviewable]
            if not chosen:
                raise InvalidState(f"job {job.id} has no task awaiting review")
            return chosen
        by_id = {t.id: t for t in tasks}
        chosen = []
        for ref in task_ids:
            matches = [t for i, t in by_id.items() if i == ref or (bool(ref) and i.startswith(ref))]
            if len(matches) != 1:
                raise InvalidParams(f"job {job.id} has {'no' if not matches else 'more than one'} task {ref!r}")
            if not matches[0].state.reviewable:
                raise InvalidState(f"task {matches[0].id} is {matches[0].state.value}, not awaiting review")
            chosen.append(matches[0])
        return chosen

    async def approve(self, params: p.JobReviewParams) -> p.JobReviewResult:
        job = self.record(params.job_id)
        reviewer = self.service.reviewer
        # hold every task's review lock: a job approve and a job reject at once never both half-succeed
        async with reviewer.holding(job.task_ids):
            results = [await reviewer.approve(task, p.ReviewParams(task_id=task.id), held=True)
                       for task in self._targets(job, params.task_ids)]
        self._publish(job.id)
        return p.JobReviewResult(job=self.info(self.record(job.id)), results=results,
                                 conflicts=[c for r in results for c in r.conflicts])

    async def reject(self, params: p.JobReviewParams) -> p.JobReviewResult:
        job = self.record(params.job_id)
        reviewer = self.service.reviewer
        async with reviewer.holding(job.task_ids):
            results = [await reviewer.reject(t, p.ReviewParams(task_id=t.id), held=True)
                       for t in self._targets(job, params.task_ids)]
        self._publish(job.id)
        return p.JobReviewResult(job=self.info(self.record(job.id)), results=results)

    async def summary(self, params: p.ReceiptsSummaryParams) -> p.ReceiptSummary:
        from daemon.receipts import summarize_stored

        return summarize_stored(self.store.db, params.by, params.since, params.limit)

