"""The Ray backend on a two-node Ray cluster on this machine, driven through a real daemon.

A head node and one worker node offering the `programmer` resource, with token auth on. Run
inside a private network namespace (scripts/test-ray.sh): a starting Ray head probes outside
addresses. Everything Ray starts is stopped through its API, then checked for by pid.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from daemon import protocol as p
from daemon.client import EventStream
from daemon.errors import MissingCredentials
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, make_repo, offline_config, ray_cluster

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
WORKER = "worker-1"
SAMPLE = {
    "app.py": "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
    "util.py": "def mul(a, b):\n    return a * b\n",
    "README.md": "# sample\n",
}


# ---------------------------------------------------------------- processes


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            children.setdefault(st[1], []).append(int(entry.name))
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def live(pids: list[int]) -> list[int]:
    """Those still running; zombies among our children are reaped."""
    out = []
    for pid in pids:
        st = _stat(pid)
        if st is None:
            continue
        if st[0] == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            continue
        out.append(pid)
    return out


def actor_pid(raylet: int) -> int:
    """The Programmer actor's worker process under a node's raylet."""
    found = [pid for pid in descendants(raylet) if cmdline(pid).startswith("ray::ProgrammerNode")]
    assert len(found) == 1, [cmdline(pid) for pid in descendants(raylet)]
    return found[0]


# ---------------------------------------------------------------- the cluster and the daemons


@dataclass
class RayCluster:
    cluster: Any  # ray.cluster_utils.Cluster
    worker_raylet: int
    node_dir: Path

    @property
    def address(self) -> str:
        return str(self.cluster.address)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    # Orphans of Ray's processes become our children, so none can escape the check at the end.
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    tmp = Path(tempfile.mkdtemp(prefix="pr-", dir="/tmp"))  # short: Ray's socket paths are length-limited
    started = time.monotonic()
    try:
        with ray_cluster(tmp, WORKER) as (c, worker):
            print(f"\ncluster up in {time.monotonic() - started:.1f} s at {c.address}")
            yield RayCluster(c, worker.all_processes["raylet"][0].process.pid, tmp / "node")
            ours = descendants(os.getpid())
        deadline = time.monotonic() + 15
        while (left := live(ours + descendants(os.getpid()))) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        live(left)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert not left, "processes left after the cluster's shutdown: " + "; ".join(cmdline(p) for p in left)


@pytest.fixture
def offline(model: OfflineModel) -> OfflineModel:
    model.reset()
    return model


KEYED = "openai/gpt-4.1-mini"  # a model whose key is named in the config and set nowhere


def _daemon(root: Path, model: OfflineModel, **pool: object) -> DaemonProcess:
    return DaemonProcess(root, workers=8, config=offline_config(
        model.url, pool={"max_retries": 2, **pool}, guardrails={"allow_commands": ["python check.py"]},
        **{f'models.settings."{KEYED}"': {"api_key_env": "PASD_TEST_NODE_KEY"}}))


@pytest.fixture(scope="module")
def remote(cluster: RayCluster, model: OfflineModel, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[DaemonProcess]:
    d = _daemon(tmp_path_factory.mktemp("ray"), model, backend="ray", address=cluster.address, slots=8)
    started = time.monotonic()
    d.start(timeout=90)
    print(f"\ndaemon on Ray up in {time.monotonic() - started:.1f} s")
    yield d
    d.cleanup()


@pytest.fixture(scope="module")
def local(model: OfflineModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = _daemon(tmp_path_factory.mktemp("local"), model)
    yield d.start()
    d.cleanup()


def node_leftovers(cluster: RayCluster, task_ids: list[str]) -> list[str]:
    """What these tasks' attempts left on the node; mirrors, the programmers' staged repositories and
    their reused snapshot worktrees stay by design."""
    work = cluster.node_dir / "work"
    return [str(p.relative_to(work)) for p in work.glob("*/*/*") if any(t in p.name for t in task_ids)]


# ---------------------------------------------------------------- tests


def _tasks(tmp: Path) -> list[p.SubmitParams]:
    """A dirty repository with an untracked check script, a selection, and a workspace without git."""
    repo = make_repo(tmp / "ws", SAMPLE)
    (repo / "app.py").write_text(SAMPLE["app.py"] + "\n\ndef neg(a):\n    return -a\n")  # uncommitted
    (repo / "check.py").write_text("import app, util\nassert app.neg(2) == -2 and util.mul(2, 3) == 6\n")
    plain = tmp / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("one\ntwo\nthree\n")
    return [
        p.SubmitParams(workspace=str(repo), instruction="note the new function", files=["app.py"],
                       check="python check.py"),
        p.SubmitParams(workspace=str(repo), instruction="note mul", files=["util.py"],
                       selection=p.Selection(path="util.py", start_line=2, end_line=2)),
        p.SubmitParams(workspace=str(plain), instruction="note two", files=["notes.txt"],
                       selection=p.Selection(path="notes.txt", start_line=2, end_line=2)),
    ]


async def _run(d: DaemonProcess, tasks: list[p.SubmitParams]) -> list[tuple[p.TaskInfo, str, list[p.Receipt]]]:
    out = []
    async with d.client() as c:
        for params in tasks:
            task = await c.wait((await c.submit(params)).id)
            out.append((task, (await c.diff(task.id)).diff, await c.receipts(p.ReceiptsParams(task_id=task.id))))
    return out


VOLATILE = {"task_id", "run_id", "programmer", "wall_s", "llm_s", "created_at", "node"}


async def test_tasks_run_on_the_worker_node_with_the_local_backends_diffs_and_receipts(
        cluster: RayCluster, remote: DaemonProcess, local: DaemonProcess, offline: OfflineModel,
        tmp_path: Path) -> None:
    there = await _run(remote, _tasks(tmp_path / "a"))
    here = await _run(local, _tasks(tmp_path / "b"))
    for (rt, rdiff, rrec), (lt, ldiff, lrec) in zip(there, here, strict=True):
        assert rt.state is lt.state is p.TaskState.REVIEW, (rt.error, lt.error)
        assert rdiff == ldiff and rdiff
        assert [r.node for r in rrec] == [WORKER] and [r.node for r in lrec] == ["local"]
        assert [r.model_dump(exclude=VOLATILE) for r in rrec] == [r.model_dump(exclude=VOLATILE) for r in lrec]
    assert there[0][2][0].check == "passed"  # the untracked check script and the tracked util.py reached the node
    async with remote.client() as c:
        st = await c.status()
    assert {pr.node for pr in st.programmers} == {WORKER}
    shown = subprocess.run([sys.executable, "-m", "daemon", "status"], env=remote.env, capture_output=True,
                           text=True, timeout=60).stdout
    assert shown.splitlines()[0].split()[-1] == "NODE" and shown.count(WORKER) == 8
    assert node_leftovers(cluster, [t.id for t, _, _ in there]) == []
    # review is unchanged: approving a remote task's diff writes the user's file
    async with remote.client() as c:
        res = await c.approve(p.ReviewParams(task_id=there[1][0].id))
    assert res.task.state is p.TaskState.APPLIED
    assert "# pas: note mul" in (tmp_path / "a" / "ws" / "util.py").read_text()


async def _burst(d: DaemonProcess, repo: Path, n: int) -> tuple[float, list[p.TaskInfo], list[p.Receipt]]:
    async with d.client() as c:
        started = time.monotonic()
        submitted = await asyncio.gather(*(c.submit(p.SubmitParams(
            workspace=str(repo), instruction="note it", files=[f"m{i}.py"])) for i in range(n)))
        tasks = await asyncio.gather(*(c.wait(t.id) for t in submitted))
        wall = time.monotonic() - started
        ids = {t.id for t in tasks}
        return wall, tasks, [r for r in await c.receipts() if r.task_id in ids]


async def test_sixteen_tasks_on_eight_remote_slots_take_about_two_rounds(
        remote: DaemonProcess, local: DaemonProcess, offline: OfflineModel, tmp_path: Path) -> None:
    latency, n, slots = 1.0, 16, 8
    repo = make_repo(tmp_path / "ws", {**SAMPLE, **{f"m{i}.py": f"X{i} = {i}\n" for i in range(n)}})
    for d in (local, remote):  # litellm's first import (daemon and actor) is not what is measured
        async with d.client() as c:
            await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction="warm", files=["app.py"]))).id)
    offline.set_latency(latency)
    local_wall, _, _ = await _burst(local, repo, n)
    wall, tasks, receipts = await _burst(remote, repo, n)
    ideal = n / slots * latency
    print(f"\n{n} tasks, {latency:g} s model latency, {slots} slots: Ray {wall:.2f} s, local {local_wall:.2f} s, "
          f"ideal {ideal:.2f} s; efficiency on Ray {ideal / wall:.0%} (local {ideal / local_wall:.0%})")
    assert all(t.state is p.TaskState.REVIEW for t in tasks)
    assert {r.node for r in receipts} == {WORKER} and len(receipts) == n
    # two waves of eight: the first eight all start before any task finishes, the rest after
    starts = sorted(t.started_at or 0 for t in tasks)
    first_done = min(t.finished_at or 0 for t in tasks)
    assert sum(1 for s in starts if s < first_done) == slots


async def test_killing_the_actor_mid_task_requeues_the_task_and_the_programmer_recovers(
        cluster: RayCluster, remote: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    # every call hangs until the kill (the "model" event comes just before the request leaves), then none does
    offline.set_rules([{"match": "", "fault": "hang", "latency": 60}])
    async with remote.client() as c, EventStream(remote.socket, kinds=["programmer", "progress"]) as events:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="note it", files=["app.py"]))
        async for env in events:
            ev = env.event
            if isinstance(ev, p.ProgressEvent) and ev.task_id == task.id and ev.phase == "model":
                victim = ev.programmer
                break
        killed = actor_pid(cluster.worker_raylet)
        os.kill(killed, signal.SIGKILL)
        offline.set_rules([])
        seen: list[p.ProgrammerState] = []
        async for env in events:
            ev = env.event
            if isinstance(ev, p.ProgrammerEvent) and ev.programmer.id == victim:
                seen.append(ev.programmer.state)
                if p.ProgrammerState.FAILED in seen and seen[-1] is p.ProgrammerState.IDLE:
                    break
        done = await c.wait(task.id)
        st = await c.status()
        receipts = await c.receipts(p.ReceiptsParams(task_id=task.id))
    assert done.state is p.TaskState.REVIEW and done.attempts == 2
    assert seen[seen.index(p.ProgrammerState.FAILED):][-1] is p.ProgrammerState.IDLE
    prog = next(pr for pr in st.programmers if pr.id == victim)
    assert prog.failures == 1 and "lost" in (prog.last_error or "") and prog.node == WORKER
    assert [(r.attempt, r.node) for r in receipts] == [(2, WORKER)]  # the killed attempt left no receipt
    assert actor_pid(cluster.worker_raylet) != killed  # a new actor took the slot


async def test_cancelling_a_remote_task_stops_it_on_the_node(
        cluster: RayCluster, remote: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    offline.script([{"fault": "hang", "latency": 60}])
    async with remote.client() as c, EventStream(remote.socket, kinds=["progress"]) as events:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="note it", files=["app.py"]))
        async for env in events:
            ev = env.event
            if isinstance(ev, p.ProgressEvent) and ev.task_id == task.id and ev.phase == "model":
                break
        assert node_leftovers(cluster, [task.id])  # the staged workspace and the snapshot exist mid-task
        assert (await c.cancel(task.id)).state is p.TaskState.CANCELLED
        st = await c.status()
    assert all(pr.state is p.ProgrammerState.IDLE for pr in st.programmers)
    assert node_leftovers(cluster, [task.id]) == []  # the cancel returned once the node had cleaned up


async def test_provider_keys_are_the_nodes_and_checked_there(remote: DaemonProcess, local: DaemonProcess,
                                                             repo: Path) -> None:
    params = p.SubmitParams(workspace=str(repo), instruction="note it", files=["app.py"], model=KEYED)
    async with local.client() as c:  # locally the daemon is where the key must be
        with pytest.raises(MissingCredentials):
            await c.submit(params)
    async with remote.client() as c:  # on Ray the daemon needs none; the node that runs the task does
        task = await c.wait((await c.submit(params)).id)
    assert task.state is p.TaskState.FAILED and task.reason == "credentials"
    assert f"on node {WORKER}" in (task.error or "") and "PASD_TEST_NODE_KEY" in (task.error or "")


async def test_file_requests_on_a_node_read_the_commit_sent_there_or_say_why_not(
        remote: DaemonProcess, offline: OfflineModel, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", SAMPLE)
    (repo / "check.py").write_text("import util\n")
    edit = "app.py\n```\n<<<<<<< SEARCH\ndef add(a, b):\n=======\ndef add(a, b):  # read util\n>>>>>>> REPLACE\n```\n"
    offline.script([{"read": ["util.py"], "content": edit}])
    tree = p.SubmitParams(workspace=str(repo), instruction="x", files=["app.py"], check="python check.py")
    offline.script([{"read": ["util.py"], "content": edit}])
    files_only = p.SubmitParams(workspace=str(repo), instruction="y", files=["app.py"])
    (t1, _, r1), (t2, _, r2) = await _run(remote, [tree, files_only])
    assert t1.state is t2.state is p.TaskState.REVIEW, (t1.error, t2.error)
    assert r1[0].files_read == ["util.py"] and r2[0].files_read == []
    # the two tasks run at once: their second requests may come in either order
    told = {instruction: m["messages"][-1]["content"] for m in offline.requests if len(m["messages"]) > 2
            for instruction in ("x", "y") if f"### INSTRUCTION\n{instruction}\n" in m["messages"][1]["content"]}
    assert f"### FILE: util.py (read-only)\n```\n{SAMPLE['util.py']}```" in told["x"]
    assert (f"- util.py: refused: the workspace is not reachable from Ray node {WORKER}: only the task's files "
            "were sent there") in told["y"]


async def test_a_revision_runs_on_the_node_from_the_conversation_it_ships(
        remote: DaemonProcess, offline: OfflineModel, tmp_path: Path) -> None:
    """The revision's spec carries the conversation and the proposed files: the node needs nothing else."""
    repo = make_repo(tmp_path / "ws", SAMPLE)
    async with remote.client() as c:
        task = await c.wait((await c.submit(p.SubmitParams(
            workspace=str(repo), instruction="note mul", files=["util.py"]))).id)
        await c.revise(p.ReviseParams(task_id=task.id, comment="note the types too"))
        task = await c.wait(task.id)
        assert task.state is p.TaskState.REVIEW and task.revision == 1, task.error
        diff = (await c.diff(task.id)).diff
        receipts = sorted(await c.receipts(p.ReceiptsParams(task_id=task.id)), key=lambda r: r.attempt)
    assert "+# pas: note the types too\n+# pas: note mul\n" in diff
    assert [(r.revision, r.node) for r in receipts] == [(0, WORKER), (1, WORKER)]
    first, second = (r["messages"] for r in offline.requests)
    assert second[: len(first)] == first and second[len(first)]["role"] == "assistant"
