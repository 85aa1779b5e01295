"""The Programmer pool: who is IDLE, BUSY or FAILED, and the backend that runs their tasks.

The pool talks to programmers through one small interface (run, health, close) so a
remote backend can replace the local one without touching the scheduler.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Protocol

from daemon.events import EventBus
from daemon.programmer.engine import Progress, run_task
from daemon.programmer.spec import EngineResult, TaskSpec
from daemon.protocol import ProgrammerEvent, ProgrammerInfo, ProgrammerState


class Backend(Protocol):
    """Where programmers run. Cancelling the awaiting asyncio task cancels the run."""

    name: str

    async def run(self, programmer: str, spec: TaskSpec, progress: Progress) -> EngineResult: ...

    async def health(self, programmer: str) -> bool: ...

    async def close(self) -> None: ...


class LocalBackend:
    """Programmers as asyncio workers inside the daemon process."""

    name = "local"

    def __init__(self, worktrees_dir: Path) -> None:
        self.worktrees_dir = worktrees_dir

    async def run(self, programmer: str, spec: TaskSpec, progress: Progress) -> EngineResult:
        return await run_task(spec, progress)

    async def health(self, programmer: str) -> bool:
        """The engine's tools work: git answers and the snapshot dir is writable."""
        try:
            proc = await asyncio.create_subprocess_exec(
                "git", "--version", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            if await proc.wait() != 0:
                return False
            self.worktrees_dir.mkdir(parents=True, exist_ok=True)
            return os.access(self.worktrees_dir, os.W_OK)
        except OSError:
            return False

    async def close(self) -> None:
        return None


class Programmer:
    def __init__(self, index: int, node: str = "local") -> None:
        self.info = ProgrammerInfo(id=f"Programmer-{index:02d}", state=ProgrammerState.IDLE, node=node)

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def state(self) -> ProgrammerState:
        return self.info.state


class Pool:
    def __init__(self, size: int, backend: Backend, bus: EventBus) -> None:
        self.backend = backend
        self.bus = bus
        self.programmers = [Programmer(i + 1) for i in range(size)]
        self._next = 0  # round-robin cursor

    def next_idle(self) -> Programmer | None:
        """The next IDLE programmer after the last one assigned, round robin."""
        n = len(self.programmers)
        for step in range(n):
            prog = self.programmers[(self._next + step) % n]
            if prog.state is ProgrammerState.IDLE:
                self._next = (self._next + step + 1) % n
                return prog
        return None

    def counts(self) -> dict[ProgrammerState, int]:
        out = dict.fromkeys(ProgrammerState, 0)
        for prog in self.programmers:
            out[prog.state] += 1
        return out

    def busy(self, prog: Programmer, task_id: str, model: str, engine: str = "native") -> None:
        self._set(prog, state=ProgrammerState.BUSY, task_id=task_id, model=model, engine=engine,
                  busy_since=time.time())

    def idle(self, prog: Programmer, *, done: bool = True) -> None:
        self._set(prog, state=ProgrammerState.IDLE, task_id=None, model=None, engine=None, busy_since=None,
                  tasks_done=prog.info.tasks_done + (1 if done else 0))

    def failed(self, prog: Programmer, error: str) -> None:
        self._set(prog, state=ProgrammerState.FAILED, task_id=None, model=None, engine=None, busy_since=None,
                  failures=prog.info.failures + 1, last_error=error)

    def recovered(self, prog: Programmer) -> None:
        self._set(prog, state=ProgrammerState.IDLE)

    def place(self, programmer: str, node: str) -> None:
        """A remote backend reports the node a programmer now runs on."""
        for prog in self.programmers:
            if prog.id == programmer and prog.info.node != node:
                self._set(prog, node=node)

    def _set(self, prog: Programmer, **changes: object) -> None:
        prog.info = prog.info.model_copy(update=changes)
        self.bus.publish(ProgrammerEvent(programmer=prog.info))
