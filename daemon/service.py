"""The daemon's methods: one handler per protocol method, params and results as protocol models."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from daemon import paths, routing, version
from daemon import protocol as p
from daemon.config import ConfigCache, Settings, engine_settings
from daemon.errors import ConfigError, GuardrailRefused, InvalidParams, InvalidState, NotFound
from daemon.events import EventBus
from daemon.pool import Pool
from daemon.programmer import engines, llm, snapshot
from daemon.programmer.guard import command_allowed, resolved_inside
from daemon.programmer.spec import ModelSpec
from daemon.retention import Retention
from daemon.review import Reviewer
from daemon.scheduler import Scheduler
from daemon.store import Store

if TYPE_CHECKING:
    from daemon.dashboard import Dashboard

Handler = Callable[[Any], Awaitable[BaseModel]]


def _unusable_files(workspace: Path, files: list[str]) -> list[str]:
    """Why each of the task's existing files cannot be worked on (a task may create an absent one)."""
    out = []
    for rel in files:
        try:
            snapshot.read_text(workspace, rel)
        except snapshot.UnusableFile as exc:
            out.append(str(exc))
        except OSError:
            pass  # unreadable: the task says so when it runs
    return out


class Service:
    def __init__(self, *, store: Store, pool: Pool, bus: EventBus, scheduler: Scheduler, reviewer: Reviewer,
                 configs: ConfigCache, hello: p.HelloResult, on_shutdown: Callable[[], None]) -> None:
        self.store = store
        self.pool = pool
        self.bus = bus
        self.scheduler = scheduler
        self.reviewer = reviewer
        self.configs = configs
        self._hello = hello
        self._on_shutdown = on_shutdown
        self.dashboard: Dashboard | None = None  # [web] enabled: the dashboard the daemon runs
        # retention is the user's choice: [store] of the user's config, never a workspace's .pas.toml
        self.retention = Retention(store, lambda: configs.get().store.keep_days,
                                   idle=lambda: store.count_tasks([p.TaskState.QUEUED, p.TaskState.RUNNING]) == 0)
        self.handlers: dict[str, Handler] = {
            "hello": self.hello,
            "pool.status": self.pool_status,
            "task.submit": self.submit,
            "task.get": self.get,
            "task.list": self.list,
            "task.cancel": self.cancel,
            "task.diff": self.diff,
            "task.contents": self.contents,
            "task.approve": self.approve,
            "task.reject": self.reject,
            "receipts.list": self.receipts,
            "receipts.series": self.receipt_series,
            "engines.list": self.engines,
            "models.list": self.models,
            "daemon.shutdown": self.shutdown,
            "workspace.trust": self.trust,
            "workspace.trusted": self.trusted,
            "store.gc": self.gc,
        }

    # ------------------------------------------------------------ basics

    async def hello(self, params: p.HelloParams) -> p.HelloResult:
        return self._hello

    def config_errors(self) -> list[str]:
        """Config files that failed to load (re-checked now: a fixed file clears its error)."""
        for ws in list(self.configs.errors):
            with contextlib.suppress(ConfigError):
                self.configs.get(ws)
        missing = paths.missing_config()  # re-checked too: creating the file clears it
        return sorted(set(self.configs.errors.values()) | ({missing} if missing else set()))

    def status(self) -> p.PoolStatus:
        running = sum(1 for prog in self.pool.programmers if prog.info.task_id)
        review = self.store.count_tasks([p.TaskState.REVIEW, p.TaskState.CONFLICT])
        queued = self.store.count_tasks([p.TaskState.QUEUED])
        return p.PoolStatus(programmers=[prog.info for prog in self.pool.programmers],
                            queued=queued, running=running, review=review,
                            config_errors=self.config_errors(),
                            untrusted=[u.report() for u in self.configs.untrusted()],
                            dashboard=self.dashboard.address if self.dashboard is not None else None)

    async def pool_status(self, params: p.Empty) -> p.PoolStatus:
        return self.status()

    async def shutdown(self, params: p.Empty) -> p.ShutdownResult:
        self._on_shutdown()
        return p.ShutdownResult()

    async def trust(self, params: p.TrustParams) -> p.TrustResult:
        """Trust a workspace's `.pas.toml` as it is now (hashed here, by the daemon that reads it)."""
        workspace = Path(params.workspace)
        if not workspace.is_absolute() or not workspace.is_dir():
            raise InvalidParams(f"workspace must be an absolute path to a directory: {params.workspace}")
        return self.configs.set_trust(workspace.resolve(), revoke=params.revoke)

    async def trusted(self, params: p.Empty) -> p.TrustList:
        return self.configs.trusted_files()

    async def gc(self, params: p.GcParams) -> p.GcResult:
        """Remove the stored diffs of tasks reviewed more than keep_days ago (daemon/retention.py)."""
        keep = params.keep_days if params.keep_days is not None else self.configs.get().store.keep_days
        if keep is None:
            raise InvalidParams("no retention is set: pass --keep-days N, or set keep_days under [store] "
                                "in your config")
        return await self.retention.run(keep, dry_run=params.dry_run)

    # ------------------------------------------------------------ tasks

    def task(self, ref: str) -> p.TaskInfo:
        """A task by id or unique id prefix."""
        task = self.store.get_task(ref)
        if task is not None:
            return task
        ids = self.store.find_task_ids(ref) if ref else []
        if len(ids) == 1:
            found = self.store.get_task(ids[0])
            assert found is not None
            return found
        if len(ids) > 1:
            raise InvalidParams(f"task id {ref!r} is ambiguous: {', '.join(ids)}")
        raise NotFound(f"no task {ref!r}")

    def _new_id(self) -> str:
        while True:
            task_id = secrets.token_hex(3)
            if not self.store.task_exists(task_id):
                return task_id

    async def submit(self, params: p.SubmitParams) -> p.TaskInfo:
        keys: dict[str, str] = {}
        task = await self.build_task(params, keys=keys)
        return self.scheduler.submit(task, keys)

    async def build_task(self, params: p.SubmitParams, *, job_id: str | None = None,
                         keys: dict[str, str] | None = None) -> p.TaskInfo:
        """A checked, routed task ready to queue (jobs build theirs here too); `keys` receives the
        submitted keys the task's model needs, and only those."""
        workspace = Path(params.workspace)
        if not workspace.is_absolute():
            raise InvalidParams(f"workspace must be an absolute path: {params.workspace}")
        if not workspace.is_dir():
            raise InvalidParams(f"workspace is not a directory: {params.workspace}")
        workspace = workspace.resolve()
        settings = self.configs.get(str(workspace))
        files = [self._relative(workspace, f) for f in params.files]
        selection = params.selection
        if selection is not None:
            sel_path = self._relative(workspace, selection.path)
            selection = selection.model_copy(update={"path": sel_path})
            if sel_path not in files:
                files.insert(0, sel_path)
            self._check_selection(workspace, selection)
        if not files:
            raise InvalidParams("name at least one file (or a selection) for the task")
        files = list(dict.fromkeys(files))
        # read here, like the selection above: a task's few files cost less than a thread hop per task
        if unusable := _unusable_files(workspace, files):
            raise InvalidParams(f"{'; '.join(unusable)}: a task can change text files only")
        model = params.model or settings.models.default
        route = None
        if routing.is_routed(model, settings):
            route = routing.route(settings, model, routing.scope_of(workspace, files, selection))
            model = route.model
        ms = settings.model_settings(model)
        api_base = params.api_base or ms.api_base
        await llm.ensure_loaded()
        # a remote backend's nodes hold the provider keys and check them; this machine may have none
        needed = llm.validate(ModelSpec(model=model, api_base=api_base, api_key_env=ms.api_key_env),
                              keys=self.pool.backend.name == "local", submitted=params.keys)
        if keys is not None:
            keys.update({k: params.keys[k] for k in needed})
        engine = await self._engine(params.engine or ms.engine or engines.NATIVE, settings, ms.engine_settings)
        if params.check and not command_allowed(params.check, settings.guardrails.allow_commands):
            raise GuardrailRefused(f"check command not allowed: {params.check!r}; add a matching pattern to "
                                   "[guardrails] allow_commands in the config")
        task = p.TaskInfo(
            id=self._new_id(), state=p.TaskState.QUEUED, workspace=str(workspace),
            instruction=params.instruction.strip(), files=files, selection=selection, model=model,
            api_base=api_base, check=params.check,
            # a config may say `inf` (valid TOML): a task is stored, so it gets the protocol's longest
            timeout_s=params.timeout_s or min(p.MAX_TIMEOUT_S, settings.guardrails.task_timeout_s),
            budget_usd=params.budget_usd, priority=params.priority, created_at=time.time(),
            job_id=job_id, tier=route.tier if route else None, route=route.reason if route else None,
            engine=engine,
        )
        return task

    async def _engine(self, name: str, settings: Settings, model_settings: dict[str, Any]) -> str:
        """The task's engine, checked now: an unknown or missing one fails the submit, naming the fix."""
        if name == engines.NATIVE:
            return name
        if name not in engines.ENGINES:
            raise InvalidParams(f"unknown engine {name!r}; engines: {', '.join(engines.names())}")
        found = await asyncio.to_thread(engines.get(name).find, engine_settings(settings, name, model_settings))
        if not found.installed:
            where = f" at {found.path}" if found.path else ""
            raise InvalidParams(f"engine {name!r} is not installed{where}; install it with: {found.install}")
        return name

    async def engines(self, params: p.Empty) -> p.EngineList:
        """Every engine, whether it is installed here, its version, and how to install it."""
        settings = self.configs.get()
        out = [p.EngineInfo(name=engines.NATIVE, installed=True, version=version.version(),
                            brings="pasd's own engine: SEARCH/REPLACE edits, repo map, file requests")]
        for name, engine in engines.ENGINES.items():
            found = await asyncio.to_thread(engine.find, engine_settings(settings, name, {}))
            out.append(p.EngineInfo(name=name, installed=found.installed, version=found.version, path=found.path,
                                    install=found.install, brings=found.brings))
        return p.EngineList(engines=out)

    @staticmethod
    def _relative(workspace: Path, path: str) -> str:
        if not path.strip():
            raise InvalidParams("empty file path")
        full = Path(path) if os.path.isabs(path) else workspace / path
        full = Path(os.path.normpath(full))
        try:
            rel = full.relative_to(workspace)
        except ValueError:
            raise InvalidParams(f"{path} is outside the workspace {workspace}") from None
        if not rel.parts or rel.parts[0] == ".git":
            raise InvalidParams(f"{path} is not a file a task may change")
        if full.is_dir():
            raise InvalidParams(f"{path} is a directory; name files")
        if resolved_inside(workspace, rel.as_posix()) is None:
            raise InvalidParams(f"{path} {snapshot.LEAVES}")
        return rel.as_posix()

    @staticmethod
    def _check_selection(workspace: Path, sel: p.Selection) -> None:
        try:
            text = snapshot.read_text(workspace, sel.path)
        except snapshot.UnusableFile as exc:
            raise InvalidParams(f"{exc}: a task can change text files only") from None
        if text is None:
            raise InvalidParams(f"selection is in {sel.path}, which does not exist")
        lines = text.count("\n") + 1
        if sel.start_line > lines:
            raise InvalidParams(f"selection starts at line {sel.start_line} but {sel.path} has {lines} lines")

    async def get(self, params: p.TaskRef) -> p.TaskInfo:
        return self.task(params.task_id)

    async def list(self, params: p.TaskListParams) -> p.TaskList:
        before = None
        if params.before is not None and not (before := self.store.seq_of(params.before)):
            raise InvalidParams(f"before: no task {params.before!r} to page from (give the id of a listed task)")
        tasks = self.store.list_tasks(params.states, params.workspace, params.limit + 1, before=before,
                                      model=params.model, text=params.text)
        more = len(tasks) > params.limit
        tasks = tasks[:params.limit]
        total, exact = None, True
        if params.count:  # words most tasks have are counted hit by hit: only up to TEXT_COUNT_CAP
            cap = p.TEXT_COUNT_CAP if params.text and params.text.strip() else None
            total = self.store.count_matching(params.states, params.workspace, params.model, params.text, cap)
            if cap is not None and total > cap:
                total, exact = cap, False
        return p.TaskList(tasks=tasks, next=tasks[-1].id if more else None, total=total, total_exact=exact)

    async def cancel(self, params: p.TaskRef) -> p.TaskInfo:
        task = self.task(params.task_id)
        if not task.state.active:
            raise InvalidState(f"task {task.id} is {task.state.value}; only QUEUED or RUNNING tasks can be cancelled")
        self.scheduler.cancel(task)
        await self.scheduler.wait_cancelled(task.id)
        return self.task(task.id)

    async def diff(self, params: p.TaskRef) -> p.DiffResult:
        task = self.task(params.task_id)
        result = await self.reviewer.diff(task)
        return result.model_copy(update={"pruned_at": task.pruned_at}) if task.pruned_at else result

    async def contents(self, params: p.TaskRef) -> p.ContentsResult:
        task = self.task(params.task_id)
        return p.ContentsResult(task_id=task.id, files=[
            p.FileContents(path=ch.path, base=ch.base, proposed=ch.proposed, created=ch.created)
            for ch in self.store.changes(task.id)])

    async def approve(self, params: p.ReviewParams) -> p.ReviewResult:
        task = self.task(params.task_id)
        return await self.reviewer.approve(task, params.model_copy(update={"task_id": task.id}))

    async def reject(self, params: p.ReviewParams) -> p.ReviewResult:
        task = self.task(params.task_id)
        return await self.reviewer.reject(task, params.model_copy(update={"task_id": task.id}))

    async def receipts(self, params: p.ReceiptsParams) -> p.ReceiptList:
        task_id = self.task(params.task_id).id if params.task_id else None
        return p.ReceiptList(receipts=self.store.receipts(task_id, params.limit))

    async def receipt_series(self, params: p.ReceiptSeriesParams) -> p.ReceiptSeries:
        return p.ReceiptSeries.model_validate(self.store.receipt_series(params.since))

    async def models(self, params: p.ModelsParams) -> p.ModelsResult:
        """The model choices the editors and the TUI offer, as this daemon's config has them."""
        settings = self.configs.get(params.workspace)
        return p.ModelsResult(default=settings.models.default, choices=settings.models.choices)
