"""A year of history: a store filled to N tasks (default 100,000) with diffs and receipts, and the
real daemon measured on it: start, `task.list`, `pool.status`, receipts by model, pas-tui's first
paint, the state directory's size, and `pasd gc`.

The store is filled with bulk SQL into the schema `daemon.store.Store` creates (the Store opens the
database first, so the tables, indexes and pragmas are its own); rows are what the daemon writes:
TaskInfo and Receipt JSON dumped from the protocol models, every changed file's base and proposed
text, hunk states for reviewed tasks, and each receipt also appended to `receipts/<run_id>.jsonl`
(one run per day). Only the Store API would be slower, not different: a sample is read back
through it and validated before measuring.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import Conn, Report, env_with_path, pct, run_script

from daemon import protocol as p
from daemon.store import Store
from daemon.testing import DaemonProcess, offline_config

DAY = 86400.0
MODELS = [("anthropic/claude-sonnet-4-5", 0.45, 3e-6, 15e-6), ("openai/gpt-4.1-mini", 0.30, 0.4e-6, 1.6e-6),
          ("gemini/gemini-2.5-flash", 0.15, 0.3e-6, 2.5e-6), ("ollama/qwen2.5-coder", 0.10, 0.0, 0.0)]
# where a year of tasks ends up; the rest of the review queue is a few hundred at any time
STATES = [("APPLIED", 0.58), ("REJECTED", 0.2), ("FAILED", 0.09), ("CANCELLED", 0.05)]
IN_REVIEW, IN_CONFLICT = 120, 12
# a share of the tasks comes from per-file jobs of a few tasks each
JOB_SHARE, JOB_TASKS = 0.15, (2, 12)

TUI_PROBE = r"""
import asyncio, sys, time
t0 = time.perf_counter()
from pas_tui.app import PasApp
from pas_tui.widgets.task_list import TaskList

async def main():
    app = PasApp(sys.argv[1])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        first = time.perf_counter() - t0
        while app.synced < 1:
            await pilot.pause(0.01)
        synced = time.perf_counter() - t0
        tasks = app.query_one(TaskList)
        rows = tasks.table.row_count
        paged = -1
        if tasks.next_page is not None:  # scrolling down: the cursor at the end, until the next page is in
            t1 = time.perf_counter()
            tasks.table.move_cursor(row=rows - 1)
            while tasks.table.row_count == rows and time.perf_counter() - t1 < 30:
                await pilot.pause(0.001)
            paged = (time.perf_counter() - t1) * 1000 if tasks.table.row_count > rows else -1
        print(first, synced, rows, paged)

asyncio.run(main())
"""


# ---------------------------------------------------------------- content


def _line(rng: random.Random, i: int) -> str:
    kind = rng.random()
    if kind < 0.12:
        return f"def handle_{i}_{rng.randrange(10**6)}(request, context=None):"
    if kind < 0.2:
        return ""
    if kind < 0.3:
        return f"    # keep the {rng.choice(['cache', 'queue', 'index', 'buffer'])} warm for item {i}"
    return (f"    value_{i} = compute_{rng.randrange(1000)}(value_{max(0, i - 1)}, "
            f"{rng.randrange(10**5)}, name={rng.choice(['alpha', 'beta', 'gamma', 'delta'])!r})")


def make_file(rng: random.Random, i: int) -> str:
    """A source file of a typical size: median ~120 lines (~5 kB), a long tail to ~1,500."""
    n = max(8, min(1500, int(rng.lognormvariate(4.8, 0.7))))
    return "\n".join(_line(rng, k) for k in range(n)) + "\n"


def edit(rng: random.Random, text: str, n_edits: int) -> tuple[str, int, int]:
    """The text with n small edits (a line changed, or lines inserted); (proposed, added, removed)."""
    lines = text.split("\n")
    added = removed = 0
    for _ in range(n_edits):
        at = rng.randrange(len(lines))
        if rng.random() < 0.6:
            lines[at] = lines[at] + f"  # reviewed {rng.randrange(10**6)}"
            added += 1
            removed += 1
        else:
            new = [_line(rng, at + k) for k in range(rng.randint(1, 6))]
            lines[at:at] = new
            added += len(new)
    return "\n".join(lines), added, removed


def pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    x = rng.random() * sum(w for _, w in weighted)
    for name, w in weighted:
        x -= w
        if x <= 0:
            return name
    return weighted[-1][0]


def store_jobs(state_dir: Path, jobs: list[list[Any]]) -> None:
    """The jobs' records, finished, in the daemon's own jobs.db (its JobStore makes the schema)."""
    from daemon.jobs import JobRecord, JobStore

    store = JobStore(state_dir / "jobs.db")
    try:
        store.db.execute("BEGIN")
        for job_id, workspace, created, model, task_ids in jobs:
            files = [f"src/mod_{k:03d}.py" for k in range(len(task_ids))]
            plan = [p.PlanItem(instruction=f"add type hints to {f}", files=[f]) for f in files]
            store.save(JobRecord(id=job_id, workspace=workspace, instruction="add type hints", split="per-file",
                                 model=model, files=files, plan=plan, task_ids=task_ids, created_at=created))
        store.db.execute("COMMIT")
    finally:
        store.close()


def fill(state_dir: Path, ws_root: Path, n: int, *, n_workspaces: int = 4, seed: int = 7) -> dict[str, Any]:
    """Fill a store to n tasks over the year before now; returns counts."""
    rng = random.Random(seed)
    now = time.time()
    start = now - 365 * DAY
    workspaces = []
    pools: list[list[tuple[str, str]]] = []
    for w in range(n_workspaces):
        root = ws_root / f"ws{w}"
        files = [(f"src/pkg{k // 20}/mod_{k:03d}.py", make_file(rng, k)) for k in range(80)]
        for rel, text in files:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        workspaces.append(str(root.resolve()))
        pools.append(files)
    model_weights = [(m, w) for m, w, _, _ in MODELS]
    prices = {m: (i, o) for m, _, i, o in MODELS}
    task_tpl = p.TaskInfo(id="x", state=p.TaskState.APPLIED, workspace="", instruction="", files=[], model="",
                          timeout_s=600.0, created_at=0.0).model_dump(mode="json")
    receipt_tpl = p.Receipt(task_id="x", run_id="x", attempt=1, programmer="Programmer-01",
                            provider=p.ProviderSnapshot(provider="x", model="x", litellm_version="1.106.2"),
                            tokens=p.TokenUsage(), cost_usd=0.0, priced=True, wall_s=0.0, llm_s=0.0, outcome="review",
                            created_at=0.0).model_dump(mode="json")
    open_ids = set(rng.sample(range(n), min(n, IN_REVIEW + IN_CONFLICT)))
    conflict_ids = set(list(open_ids)[:IN_CONFLICT])
    Store(state_dir).close()  # the daemon's own schema and pragmas
    import sqlite3

    db = sqlite3.connect(state_dir / "pasd.db", isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    jsonl: dict[str, list[str]] = {}
    jobs: list[list[Any]] = []  # [id, workspace, created, model, task ids]
    counts = {"tasks": 0, "changes": 0, "hunk_states": 0, "receipts": 0}
    batch = 2000
    job_id: str | None = None
    job_left = 0
    for lo in range(0, n, batch):
        tasks, changes, hunks, receipts = [], [], [], []
        for i in range(lo, min(n, lo + batch)):
            created = start + (i + rng.random()) * (365 * DAY) / n
            task_id = f"{i:06x}"
            if job_left == 0 and rng.random() < JOB_SHARE / JOB_TASKS[1]:
                job_id, job_left, w = f"j{i:06x}", rng.randint(*JOB_TASKS), rng.randrange(n_workspaces)
                model = pick(rng, model_weights)
                jobs.append([job_id, workspaces[w], created, model, []])
            if job_left:  # a job's tasks: one workspace and model, queued one after another
                job_left -= 1
                jobs[-1][4].append(task_id)
            else:
                job_id = None
                w = rng.randrange(n_workspaces)
                model = pick(rng, model_weights)
            state = "CONFLICT" if i in conflict_ids else "REVIEW" if i in open_ids else pick(rng, STATES)
            has_diff = state not in ("FAILED", "CANCELLED") or rng.random() < 0.3
            n_files = 1 if rng.random() < 0.7 else 2 if rng.random() < 0.7 else 3
            chosen = rng.sample(pools[w], n_files)
            added = removed = n_hunks = 0
            for rel, base in chosen if has_diff else []:
                k = rng.randint(1, 4)
                proposed, a, r = edit(rng, base, k)
                changes.append((task_id, rel, base, proposed, 0))
                added, removed, n_hunks = added + a, removed + r, n_hunks + k
            if state in ("APPLIED", "REJECTED") and n_hunks:
                hs = "applied" if state == "APPLIED" else "rejected"
                hunks += [(task_id, h, hs) for h in range(1, n_hunks + 1)]
            attempts = 1 if rng.random() < 0.9 else 2
            finished = created + rng.uniform(20, 240)
            updated = finished + (rng.uniform(60, 3 * DAY) if state in ("APPLIED", "REJECTED") else 0)
            run_id = time.strftime("%Y%m%d-000000-", time.gmtime(created)) + "a1b2"
            info = dict(task_tpl, id=task_id, state=state, workspace=workspaces[w],
                        instruction=f"refactor handle_{i} to take a context and update its callers "
                                    f"({rng.randrange(10**6)})",
                        files=[rel for rel, _ in chosen], model=model, created_at=created, started_at=created + 1,
                        finished_at=finished, attempts=attempts, programmer=None,
                        files_changed=n_files if has_diff else 0, lines_added=added, lines_removed=removed,
                        job_id=job_id)
            if state == "FAILED":
                info.update(reason="check", error="the check still fails after 2 runs: pytest -q")
            cost = 0.0
            for attempt in range(1, attempts + 1):
                tin, tout = rng.randint(2_000, 40_000), rng.randint(100, 4_000)
                pin, pout = prices[model]
                c = round(tin * pin + tout * pout, 6)
                cost += c
                last = attempt == attempts
                # what the review made of the attempt that left the diff, as the daemon records it
                proposed = approved = rejected = 0
                outcome = "failed: provider"
                if last and has_diff:
                    outcome, proposed = "review", n_hunks
                    if state == "APPLIED":
                        outcome, approved = "approved", n_hunks
                    elif state == "REJECTED":
                        outcome, rejected = "rejected", n_hunks
                roll = rng.random()
                check = "passed" if roll < 0.45 else "failed" if roll < 0.5 else None
                r = dict(receipt_tpl, task_id=task_id, run_id=run_id, attempt=attempt,
                         provider=dict(receipt_tpl["provider"], provider=model.split("/")[0], model=model),
                         tokens={"input": tin, "output": tout, "reasoning": 0}, cost_usd=c, priced=pin > 0,
                         wall_s=round(finished - created, 3), llm_s=round((finished - created) * 0.8, 3),
                         llm_calls=rng.randint(1, 3), files_changed=n_files if last and has_diff else 0,
                         lines_added=added if last else 0, lines_removed=removed if last else 0,
                                  check=check, warnings=["CHECK_FAILED"] if check == "failed" and last else [],
                         outcome=outcome, hunks_proposed=proposed, hunks_approved=approved, hunks_rejected=rejected,
                         reviewed_at=updated if approved or rejected else None, created_at=finished, job_id=job_id)
                data = json.dumps(r, separators=(",", ":"))
                receipts.append((task_id, run_id, attempt, finished, c, data))
                jsonl.setdefault(run_id, []).append(data)
            info["cost_usd"] = round(cost, 6)
            tasks.append((task_id, i + 1, state, workspaces[w], json.dumps(info, separators=(",", ":")), updated))
        db.execute("BEGIN")
        db.executemany("INSERT INTO tasks (id, seq, state, workspace, info, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                       tasks)
        db.executemany("INSERT INTO changes (task_id, path, base, proposed, created) VALUES (?, ?, ?, ?, ?)",
                       changes)
        db.executemany("INSERT INTO hunk_states (task_id, hunk_id, state) VALUES (?, ?, ?)", hunks)
        db.executemany("INSERT INTO receipts (task_id, run_id, attempt, created_at, cost_usd, data) "
                       "VALUES (?, ?, ?, ?, ?, ?)", receipts)
        db.execute("COMMIT")
        for key, rows in (("tasks", tasks), ("changes", changes), ("hunk_states", hunks), ("receipts", receipts)):
            counts[key] += len(rows)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    store_jobs(state_dir, jobs)
    counts["jobs"] = len(jobs)
    for run_id, lines in jsonl.items():
        fd = os.open(state_dir / "receipts" / f"{run_id}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    # read a sample back through the Store API: the rows are what the daemon itself reads
    store = Store(state_dir)
    try:
        for t in store.list_tasks(limit=50):
            assert t.model and t.workspace, t
        assert len(store.receipts(None, 50)) == 50
    finally:
        store.close()
    counts["workspaces"] = n_workspaces
    return counts


# ---------------------------------------------------------------- measuring


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


async def round_trips(socket: Path, method: str, params: dict[str, Any], n: int, warm: int = 5) -> list[float]:
    c = await Conn.open(socket)
    try:
        for _ in range(warm):
            await c.call(method, params)
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            await c.call(method, params)
            out.append(1000 * (time.perf_counter() - t0))
        return out
    finally:
        await c.close()


def timed_start(d: DaemonProcess) -> float:
    t0 = time.perf_counter()
    d.start(timeout=300)
    return time.perf_counter() - t0


def pasd_cli(d: DaemonProcess, *args: str) -> tuple[float, str]:
    env = {**env_with_path(), **{k: v for k, v in d.env.items() if k.startswith("PASD_")}}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "daemon", *args], env=env, check=True, capture_output=True,
                         text=True, timeout=600)
    return time.perf_counter() - t0, out.stdout


def store_start(state_dir: Path) -> float:
    """Seconds of the store's part of a daemon start, in process: open (and migrate), reconcile the
    receipts JSONL, mend and recover tasks, pending approves; the rest of a start does not grow with
    history."""
    from daemon.journal import ApproveJournal

    t0 = time.perf_counter()
    store = Store(state_dir)
    try:
        store.reconcile_jsonl()
        store.mend_tasks()
        store.unsettled_spend()
        store.list_tasks([p.TaskState.RUNNING], limit=100_000)
        store.queued_in_order()
        ApproveJournal(store).pending()
        store.count_tasks([p.TaskState.REVIEW, p.TaskState.CONFLICT])
        store.next_seq()
    finally:
        store.close()
    return time.perf_counter() - t0


def tui_probe(socket: Path) -> tuple[float, float, int, float]:
    """(start to first paint, start to the task list filled, rows the list built, ms to read and show the
    next page once the cursor reaches the end: -1 if no page came), headless."""
    probe = subprocess.run([sys.executable, "-c", TUI_PROBE, str(socket)], env=env_with_path(), check=True,
                           capture_output=True, text=True, timeout=300)
    paint, synced, rows, paged = probe.stdout.split()[-4:]
    return float(paint), float(synced), int(rows), float(paged)


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[0]


def main(args: argparse.Namespace) -> Report:
    n = args.tasks or (2_000 if args.quick else 100_000)
    runs = 1 if args.quick else 3
    r = Report(f"history: a store of {n:,} tasks and their receipts (a year of a busy team)")
    tmp = Path(tempfile.mkdtemp(prefix="pasd-hist-", dir=args.dir))
    try:
        d = DaemonProcess(tmp, workers=4, config=offline_config("http://127.0.0.1:9"))
        d.state_dir.mkdir(parents=True)
        empty = []
        for _ in range(runs):
            empty.append(timed_start(d))
            d.stop()
        r.add("daemon start to ready, empty store (this machine's floor now)", sorted(empty)[runs // 2], "s",
              note=f"median of {runs}; load {load()}")
        d.start()
        st = asyncio.run(round_trips(d.socket, "pool.status", {}, 1000 if not args.quick else 300, warm=20))
        r.add("pool.status p99, empty store (this machine's floor now)", pct(st, 99), "ms",
              note=f"p50 {pct(st, 50):.2f} ms; load {load()}")
        with contextlib.suppress(Exception):  # only a reference; the figure that counts is below
            paints = sorted(tui_probe(d.socket)[0] for _ in range(runs))
            r.add("pas-tui first paint, empty store (this machine's floor now)", paints[runs // 2], "s",
                  note=f"median of {runs}; load {load()}")
        d.stop()
        shutil.rmtree(d.state_dir)
        d.state_dir.mkdir()
        t0 = time.perf_counter()
        counts = fill(d.state_dir, tmp / "workspaces", n)
        r.info(f"filled in {time.perf_counter() - t0:.1f} s: {counts} (load {load()})")
        size = du(d.state_dir)
        r.add("state dir size per 1,000 tasks", size / 1e6 / (n / 1000), "MB",
              note=f"{size / 1e9:.2f} GB for {n:,} tasks; load {load()}")
        migrate = store_start(d.state_dir)
        again = store_start(d.state_dir)
        r.add("store work in a daemon start (in process)", again * 1000, "ms",
              note=f"first open {migrate * 1000:.0f} ms (adds any index the store lacks); load {load()}")
        first = timed_start(d)
        r.add("daemon start to ready, first start on this store", first, "s",
              note=f"builds any index the store lacks; load {load()}")
        d.stop()
        starts = []
        for _ in range(runs):
            starts.append(timed_start(d))
            d.stop()
        starts.sort()
        r.add("daemon start to ready", starts[runs // 2], "s", ("<=", 1.0),
              note=f"median of {runs}, {min(starts):.2f}-{max(starts):.2f}; load {load()}")
        d.start(timeout=300)
        time.sleep(2)  # the watcher's first look at the tasks in review
        sock = d.socket
        calls = 100 if args.quick else 300
        lt = asyncio.run(round_trips(sock, "task.list", {"limit": 50}, calls))
        r.add("`pasd tasks` (task.list, 50 newest) p99", pct(lt, 99), "ms", ("<=", 50),
              note=f"p50 {pct(lt, 50):.2f} ms; load {load()}")
        lt = asyncio.run(round_trips(sock, "task.list", {"limit": 50, "states": ["REVIEW", "CONFLICT"]}, calls))
        r.add("task.list in review p99", pct(lt, 99), "ms", note=f"p50 {pct(lt, 50):.2f} ms; load {load()}")
        lt = asyncio.run(round_trips(sock, "task.list", {"limit": 50, "states": ["REJECTED"]}, calls))
        r.add("task.list rejected p99", pct(lt, 99), "ms", note=f"p50 {pct(lt, 50):.2f} ms; load {load()}")
        with contextlib.closing(sqlite3.connect(d.state_dir / "pasd.db")) as db:
            deep = db.execute("SELECT id FROM tasks ORDER BY seq LIMIT 1 OFFSET 1000").fetchone()[0]
        lt = asyncio.run(round_trips(sock, "task.list", {"limit": 50, "before": deep}, calls))
        r.add("task.list deep page (the 50 before the 1,001st oldest, by cursor) p99", pct(lt, 99), "ms", ("<=", 50),
              note=f"p50 {pct(lt, 50):.2f} ms; load {load()}")
        model = MODELS[3][0]
        filtered = {"limit": 50, "model": model, "text": "mod_007", "count": True}
        lt = asyncio.run(round_trips(sock, "task.list", filtered, calls))
        r.add("task.list filtered (a model and a file word, with the total) p99", pct(lt, 99), "ms", ("<=", 50),
              note=f"p50 {pct(lt, 50):.2f} ms; load {load()}")
        common = {"limit": 50, "model": model, "text": "refactor callers", "count": True}
        lt = asyncio.run(round_trips(sock, "task.list", common, calls))
        r.add("task.list filtered (words every task has, a model, with the total: counted to 1,000) p99",
              pct(lt, 99), "ms", ("<=", 50), note=f"p50 {pct(lt, 50):.2f} ms; load {load()}")
        common = {"limit": 50, "model": model, "text": "refactor callers", "before": deep}
        lt = asyncio.run(round_trips(sock, "task.list", common, calls))
        r.add("task.list filtered deep page (the same words and model, by cursor) p99",
              pct(lt, 99), "ms", ("<=", 50), note=f"p50 {pct(lt, 50):.2f} ms; load {load()}")
        st = asyncio.run(round_trips(sock, "pool.status", {}, 1000 if not args.quick else 300, warm=20))
        r.add("pool.status p99", pct(st, 99), "ms", ("<=", 5), note=f"p50 {pct(st, 50):.2f} ms; load {load()}")
        by = asyncio.run(round_trips(sock, "receipts.summary", {"by": "model"}, 10, warm=1))
        r.add("receipts.summary by model (`pasd receipts --by model`), median", pct(by, 50), "ms", ("<=", 300),
              note=f"max {max(by):.0f} ms over {counts['receipts']:,} receipts; load {load()}")
        series = asyncio.run(round_trips(sock, "receipts.series", {}, 10, warm=1))
        r.add("receipts.series (`pasd web`'s charts over every receipt), median", pct(series, 50), "ms",
              note=f"max {max(series):.0f} ms over {counts['receipts']:,} receipts; load {load()}")
        cli_s, _ = pasd_cli(d, "receipts", "--by", "model")
        r.add("`pasd receipts --by model` whole command", cli_s, "s",
              note=f"includes the CLI's own start (~0.4 s idle); load {load()}")
        cli_s, _ = pasd_cli(d, "tasks")
        r.add("`pasd tasks` whole command", cli_s, "s", note=f"load {load()}")
        try:
            probes = sorted(tui_probe(sock) for _ in range(runs))
            paint, synced, rows, _ = probes[runs // 2]
            r.add("pas-tui start to first paint (headless)", paint, "s", ("<=", 1.5),
                  note=f"median of {runs}; load {load()}")
            r.add("pas-tui start to task list filled", synced, "s",
                  note=f"{rows} rows built (the newest page), not {n:,}; load {load()}")
            paged = sorted(pr[3] for pr in probes)
            if paged[0] >= 0:
                r.add("pas-tui: the next page as the cursor reaches the end of the list", paged[runs // 2], "ms",
                      note=f"median of {runs}; max {paged[-1]:.0f} ms; until its rows are in the table (the "
                           f"review of the task the cursor lands on loads beside it); load {load()}")
        except Exception as exc:  # a figure not available; the rest stands
            detail = getattr(exc, "stderr", "") or str(exc)
            r.add("pas-tui first paint", None, note=f"failed: {detail.strip().splitlines()[-1][:120]}")
        keep = 30
        if args.no_gc:
            return r
        t0 = time.perf_counter()
        _, dry = pasd_cli(d, "gc", "--keep-days", str(keep), "--dry-run", "--json")
        r.add(f"`pasd gc --keep-days {keep} --dry-run`", time.perf_counter() - t0, "s",
              note=f"would remove {json.loads(dry)['tasks']:,} tasks' diffs; load {load()}")
        t0 = time.perf_counter()
        _, out = pasd_cli(d, "gc", "--keep-days", str(keep), "--json")
        gc = json.loads(out)
        r.add(f"`pasd gc --keep-days {keep}`", time.perf_counter() - t0, "s",
              note=f"{gc['tasks']:,} tasks, {gc['freed_bytes'] / 1e9:.2f} GB freed, vacuum {gc['vacuumed']}; "
                   f"load {load()}")
        d.stop()
        after = du(d.state_dir)
        r.add(f"state dir size per 1,000 tasks after gc (keep {keep} days)", after / 1e6 / (n / 1000), "MB",
              note=f"{after / 1e9:.2f} GB; receipts and task summaries kept")
        d.start(timeout=300)
        lt = asyncio.run(round_trips(sock, "task.list", {"limit": 50}, calls))
        r.add("`pasd tasks` p99 after gc", pct(lt, 99), "ms", ("<=", 50), note=f"load {load()}")
    finally:
        try:
            d.cleanup()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return r


def add_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--tasks", type=int, help="how many tasks (default 100,000; --quick 2,000)")
    ap.add_argument("--no-gc", action="store_true", help="measure without running `pasd gc`")
    ap.add_argument("--dir", help="where to make the temporary state (default: the system temp dir)")


if __name__ == "__main__":
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    run_script(__doc__.splitlines()[0], main, add_args)
