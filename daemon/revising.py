"""Revise: a proposal in review goes back to its Programmer with the reviewer's comment.

The task is queued again; its next attempt continues the stored conversation from the model's
last answer, on a snapshot holding the proposed files (whatever the user's tree holds now), and
its diff is again from the task's original base. The checks here run under the task's review
lock, so a revise and an approve of one task never both succeed.
"""

from __future__ import annotations

from datetime import datetime

from daemon import protocol as p
from daemon.errors import GuardrailRefused, InvalidParams, InvalidState
from daemon.jobs import JobManager
from daemon.programmer import llm
from daemon.programmer.spec import ModelSpec
from daemon.service import Service
from daemon.store import RevisionRequest


class Reviser:
    def __init__(self, service: Service, jobs: JobManager) -> None:
        self.service = service
        self.jobs = jobs
        service.handlers["task.revise"] = self.revise

    async def revise(self, params: p.ReviseParams) -> p.TaskInfo:
        """Send the proposal back with the comment (and the chosen hunks quoted); the task as queued."""
        service = self.service
        async with service.reviewer.holding([service.task(params.task_id).id]):
            task = service.task(params.task_id)  # as it is now, under the lock: an approve may have won
            if not task.state.reviewable:
                raise InvalidState(f"task {task.id} is {task.state.value}; only a task awaiting review "
                                   "(REVIEW or CONFLICT) can be revised")
            files = await service.reviewer.files_async(task)
            hunks = {h.id: (ch.path, h) for ch, fd, _ in files for h in fd.hunks}
            applied = sorted(i for i, (_, h) in hunks.items() if h.state is p.HunkState.APPLIED)
            if applied:
                raise InvalidState(f"hunk {', '.join(map(str, applied))} of task {task.id} is already applied; "
                                   "a revision reworks a whole proposal: approve or reject the rest")
            chosen = set(params.hunks or ())
            if unknown := sorted(chosen - hunks.keys()):
                raise InvalidParams(f"task {task.id} has no hunk {', '.join(map(str, unknown))} "
                                    f"(hunks are 1..{len(hunks)})")
            if service.store.conversation(task.id) is None:
                raise InvalidState(f"task {task.id} has no stored conversation (it ran on an older pasd); "
                                   "submit it again with the comment added to the instruction")
            task = self._check_budget(task)
            keys = await self._keys(task, params.keys)
            quoted = [f"--- a/{path}\n+++ b/{path}\n{h.text}" for i, (path, h) in sorted(hunks.items()) if i in chosen]
            return service.scheduler.revise(task, RevisionRequest(comment=params.comment.strip(), hunks=quoted),
                                            keys)

    async def _keys(self, task: p.TaskInfo, submitted: dict[str, str]) -> dict[str, str]:
        """The submitted keys the revision's model needs; MissingCredentials (naming the variables) now,
        not a failed revision later, when the daemon has none and none came with the request."""
        ms = self.service.configs.get(task.workspace).model_settings(task.model)
        await llm.ensure_loaded()
        needed = llm.validate(ModelSpec(model=task.model, api_base=task.api_base or ms.api_base,
                                        api_key_env=ms.api_key_env),
                              keys=self.service.pool.backend.name == "local", submitted=submitted)
        return {k: submitted[k] for k in needed}

    def _check_budget(self, task: p.TaskInfo) -> p.TaskInfo:
        """Refuse now, rather than queue a revision the scheduler would fail for want of money; the task,
        its budget lowered to what its job has left when that is less than its own."""
        g = self.service.configs.get(task.workspace).guardrails
        budget = task.budget_usd if task.budget_usd is not None else g.task_budget_usd
        if budget is not None and task.cost_usd >= budget:
            raise GuardrailRefused(f"task {task.id} has spent ${task.cost_usd:.6f} of its ${budget:g} budget, "
                                   "which covers its revisions too; nothing is left for another round")
        if g.daily_budget_usd is not None:
            midnight = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
            if self.service.store.spent_since(midnight) >= g.daily_budget_usd:
                raise GuardrailRefused(f"the daily budget of ${g.daily_budget_usd:g} is spent; "
                                       f"task {task.id} stays in review")
        left, what = self.jobs.left_for(task)
        if left is None:
            return task
        if left <= 0:
            raise GuardrailRefused(f"task {task.id} is part of job {task.job_id}, and {what} is spent; "
                                   "the task stays in review")
        # the job's other tasks may have spent since this one was given its budget
        if budget is None or task.cost_usd + left < budget:
            task = task.model_copy(update={"budget_usd": round(task.cost_usd + left, 6)})
        return task
