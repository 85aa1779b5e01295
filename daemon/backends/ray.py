"""Programmers as Ray actors on a cluster's nodes, behind the same Backend interface as local.

Every `slots` Programmers share one async actor (`num_cpus=0`, one unit of a node's
`programmer` resource, `max_concurrency=slots`), so a node with `programmer: 1` holds one
actor. The daemon stays the only scheduler: `run` packs the workspace, puts it in the object
store and streams the attempt's progress and outcome back from the actor. An actor or node
lost mid-task comes out as a ProviderFault, so the scheduler marks the Programmer FAILED and
re-queues the task; the next `run` or `health` on that actor makes a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorDiedError, RayError, RayTaskError

from daemon.backends import shipment
from daemon.backends.node import CONTROL, Message, ProgrammerNode
from daemon.errors import PasError
from daemon.programmer.engine import Progress
from daemon.programmer.spec import EngineResult, ProviderFault, TaskFailed, TaskSpec

log = logging.getLogger("pasd.ray")

RESOURCE = "programmer"  # the custom resource a node offers to hold Programmer actors
READY_TIMEOUT_S = 60.0
CONTROL_TIMEOUT_S = 10.0
KNOWN_PER_REPO = 32  # recent commits per repository a bundle may build on
INLINE_BYTES = 100_000  # smaller shipments ride with the call; larger ones go through the object store


@dataclass
class _Actor:
    index: int
    key: str  # the actor's work dir on its node; the same across daemon restarts, so leftovers are reused
    handle: Any = None
    node: str = "?"
    node_id: str = ""
    dead: bool = True
    known: dict[str, list[str]] = field(default_factory=dict)  # mirror -> commits the node has
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    warm: Any = None  # the litellm warm-up's ObjectRef

    def remember(self, repo: str, commit: str) -> None:
        commits = self.known.setdefault(repo, [])
        if commit not in commits:
            commits.append(commit)
            del commits[:-KNOWN_PER_REPO]


class RayBackend:
    """Connect with `await RayBackend.connect(...)`; `close()` kills the actors and leaves the cluster."""

    name = "ray"

    def __init__(self, address: str, workers: int, slots: int, state_dir: Path) -> None:
        self.address = address
        self.slots = slots
        self.packer = shipment.Packer(state_dir / "ray" / "ship")
        base = hashlib.sha256(f"{socket.gethostname()}:{state_dir.resolve()}".encode()).hexdigest()[:10]
        self.actors = [_Actor(i, f"{base}-{i}") for i in range(math.ceil(workers / slots))]
        self._of: dict[str, _Actor] = {}
        self._placed: Callable[[str, str], None] | None = None
        self._cls: Any = None

    @classmethod
    async def connect(cls, address: str, workers: int, slots: int, state_dir: Path) -> RayBackend:
        backend = cls(address, workers, slots, state_dir)
        await backend._start()
        return backend

    async def _start(self) -> None:
        try:
            await asyncio.to_thread(ray.init, address=self.address, namespace="pasd", log_to_driver=False,
                                    logging_level=logging.WARNING)
        except Exception as exc:
            why = _first_line(exc)
            if "No node info found" in why:  # a driver attaches through a Ray node on its own machine
                why = ("this machine is not a node of that cluster: join it first with "
                       f"`ray start --address={self.address} --num-cpus=0` (docs/ray.md)")
            raise PasError(f"cannot join the Ray cluster at {self.address}: {why}") from None
        try:
            offered = (await asyncio.to_thread(ray.cluster_resources)).get(RESOURCE, 0)
            if offered < len(self.actors):
                raise PasError(
                    f"the Ray cluster at {self.address} offers {offered:g} '{RESOURCE}' resource units, but "
                    f"{len(self.actors)} actors of {self.slots} slots are needed: start nodes with "
                    f"--resources='{{\"{RESOURCE}\": 1}}' or raise pool.slots")
            self._cls = ray.remote(concurrency_groups={CONTROL: 4})(ProgrammerNode)
            async with asyncio.timeout(READY_TIMEOUT_S):
                await asyncio.gather(*(self._spawn(a) for a in self.actors))
        except BaseException as exc:
            await self.close()
            if isinstance(exc, TimeoutError):
                raise PasError(f"the Programmer actors did not start on the Ray cluster within "
                               f"{READY_TIMEOUT_S:g} s") from None
            if isinstance(exc, RayError):
                raise PasError(f"the Programmer actors could not start: {_first_line(exc)}") from None
            raise
        log.info("%d Programmers on Ray at %s: %s", len(self.actors) * self.slots, self.address,
                 ", ".join(f"actor {a.index} on {a.node}" for a in self.actors))

    def attach(self, programmers: list[str], placed: Callable[[str, str], None]) -> None:
        """Give Programmers to actors, `slots` each in order, and report each one's node."""
        self._placed = placed
        for i, programmer in enumerate(programmers):
            actor = self.actors[(i // self.slots) % len(self.actors)]
            self._of[programmer] = actor
            placed(programmer, actor.node)

    def _actor(self, programmer: str) -> _Actor:
        if programmer not in self._of:
            self._of[programmer] = self.actors[(len(self._of) // self.slots) % len(self.actors)]
        return self._of[programmer]

    # ------------------------------------------------------------ actors

    async def _spawn(self, actor: _Actor) -> None:
        """Start (or replace) the actor and wait until it answers."""
        if actor.handle is not None:
            with contextlib.suppress(Exception):
                ray.kill(actor.handle, no_restart=True)
        actor.handle = self._cls.options(num_cpus=0, resources={RESOURCE: 1}, max_concurrency=self.slots,
                                         max_restarts=0).remote(actor.key)
        info = await actor.handle.ready.remote()
        if info["node_id"] != actor.node_id:
            actor.known.clear()  # a new node has none of the commits
        actor.node, actor.node_id, actor.dead = info["node"], info["node_id"], False
        actor.warm = actor.handle.warm.remote()
        if self._placed is not None:
            for programmer, owner in self._of.items():
                if owner is actor:
                    self._placed(programmer, actor.node)

    async def _revive(self, actor: _Actor) -> bool:
        """Replace a dead actor (once, however many callers); False if the cluster cannot place it now."""
        async with actor.lock:
            if not actor.dead:
                return True
            try:
                async with asyncio.timeout(READY_TIMEOUT_S):
                    await self._spawn(actor)
            except (TimeoutError, RayError) as exc:
                log.warning("could not restart actor %d: %s", actor.index, _first_line(exc))
                return False
            log.info("actor %d restarted on %s", actor.index, actor.node)
            return True

    # ------------------------------------------------------------ the Backend interface

    async def run(self, programmer: str, spec: TaskSpec, progress: Progress) -> EngineResult:
        actor = self._actor(programmer)
        if actor.dead and not await self._revive(actor):
            raise ProviderFault("node_lost", "no Ray node can take this Programmer's actor now")
        for _ in range(2):
            ship = await self.packer.pack(spec, actor.known)
            msg = await self._stream(actor, spec, ship, progress)
            if msg.kind == "stale":  # the node lost its mirror: send the whole history
                actor.known.pop(ship.repo or "", None)
                continue
            if ship.repo and ship.commit:
                actor.remember(ship.repo, ship.commit)
            return _outcome(msg)
        raise ProviderFault("node_lost", f"{actor.node} could not use the workspace it was sent")

    async def _stream(self, actor: _Actor, spec: TaskSpec, ship: shipment.Shipment, progress: Progress) -> Message:
        key = f"{spec.task_id}-{spec.attempt}"
        arg = ship if ship.size < INLINE_BYTES else await asyncio.to_thread(ray.put, ship)
        stream = actor.handle.run.options(num_returns="streaming").remote(spec.model_dump_json(), arg)
        try:
            async for item in stream:
                msg = Message.model_validate_json(await item)
                if msg.kind != "progress":
                    return msg
                progress(msg.phase, msg.message)
        except asyncio.CancelledError:
            # as locally, the cancel completes once the attempt has unwound and cleaned up on its node
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CONTROL_TIMEOUT_S):
                    if await actor.handle.cancel.remote(key):
                        async for item in stream:
                            await item
                    else:  # not started on the actor yet: drop the queued call
                        ray.cancel(stream)
            raise
        except RayTaskError as exc:  # the actor's own code raised: a bug, not a lost node
            raise RuntimeError(f"the Programmer actor on {actor.node} failed: {_first_line(exc)}") from None
        except RayError as exc:
            log.warning("task %s lost actor %d on %s: %s: %s", key, actor.index, actor.node, type(exc).__name__,
                        _first_line(exc))
            if isinstance(exc, ActorDiedError):
                actor.dead = True
            raise ProviderFault("node_lost", f"the Programmer's Ray actor on {actor.node} was lost mid-task: "
                                             f"{_first_line(exc)}") from None
        raise ProviderFault("node_lost", f"the Programmer actor on {actor.node} ended without an outcome")

    async def health(self, programmer: str) -> bool:
        """The actor answers and its node's tools work; a dead actor is replaced here."""
        actor = self._actor(programmer)
        if not actor.dead:
            try:
                return bool(await asyncio.wait_for(actor.handle.health.remote(), CONTROL_TIMEOUT_S))
            except ActorDiedError:
                actor.dead = True
            except (TimeoutError, RayError):
                return False
        return await self._revive(actor)

    async def close(self) -> None:
        for actor in self.actors:
            if actor.handle is not None:
                with contextlib.suppress(Exception):
                    ray.kill(actor.handle, no_restart=True)
            actor.handle, actor.dead, actor.warm = None, True, None
        await asyncio.to_thread(ray.shutdown)


def _outcome(msg: Message) -> EngineResult:
    if msg.kind == "ok" and msg.result is not None:
        return msg.result
    if msg.kind == "failed":
        raise TaskFailed(msg.reason, msg.message, receipt=msg.receipt, retryable=msg.retryable)
    if msg.kind == "fault":
        raise ProviderFault(msg.reason, msg.message, retry_after=msg.retry_after, receipt=msg.receipt)
    if msg.kind == "cancelled":
        raise ProviderFault("node_lost", "the attempt was cancelled on its node")
    raise RuntimeError(msg.message or f"unexpected message from the node: {msg.kind}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
