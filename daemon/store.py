"""SQLite (WAL) store for tasks, proposed changes, hunk states and receipts.

Receipts are also appended to `receipts/<run_id>.jsonl`. Every write is one short
transaction, so a SIGKILL at any point leaves a consistent database.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from daemon import history_schema
from daemon.private import create_private, private_dir, private_files
from daemon.protocol import HunkState, Receipt, TaskInfo, TaskState

log = logging.getLogger(__name__)
UNREADABLE = "unreadable"  # the failure reason of a task whose stored record could not be read

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    workspace TEXT NOT NULL,
    info TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state);
CREATE TABLE IF NOT EXISTS changes (
    task_id TEXT NOT NULL,
    path TEXT NOT NULL,
    base TEXT NOT NULL,
    proposed TEXT NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (task_id, path)
);
CREATE TABLE IF NOT EXISTS hunk_states (
    task_id TEXT NOT NULL,
    hunk_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (task_id, hunk_id)
);
CREATE TABLE IF NOT EXISTS receipts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    created_at REAL NOT NULL,
    cost_usd REAL NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (task_id, attempt)
);
CREATE INDEX IF NOT EXISTS receipts_time ON receipts(created_at);
CREATE TABLE IF NOT EXISTS spend (
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    created_at REAL NOT NULL,
    cost_usd REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (task_id, attempt)
);
CREATE TABLE IF NOT EXISTS conversations (
    task_id TEXT PRIMARY KEY,
    messages TEXT NOT NULL,
    request TEXT
);
"""

OPEN_STATES = ("QUEUED", "RUNNING", "REVIEW", "CONFLICT")

# What `task.list` filters and pages by at 100,000 tasks without reading every record: the model as an
# index on the record's field (with seq, the list's order), and the words of each task's id,
# instruction, files and job id in a full-text table keyed by seq (not rowid: VACUUM may renumber
# rowids), kept by triggers. A store made before them gains them at its next start.
_INFO = "CASE WHEN json_valid(info) THEN info END"
_MODEL = f"json_extract({_INFO}, '$.model')"
_WORDS = ("{t}.id || ' ' || IFNULL(json_extract({info}, '$.instruction'), '') || ' ' || "
          "IFNULL(json_extract({info}, '$.files'), '') || ' ' || IFNULL(json_extract({info}, '$.job_id'), '')")


def _words(t: str) -> str:
    return _WORDS.format(t=t, info=f"CASE WHEN json_valid({t}.info) THEN {t}.info END")


LIST_SCHEMA = f"""
CREATE INDEX IF NOT EXISTS tasks_model_seq ON tasks({_MODEL}, seq);
CREATE VIRTUAL TABLE IF NOT EXISTS task_words USING fts5(words, tokenize = 'unicode61');
CREATE TRIGGER IF NOT EXISTS task_words_insert AFTER INSERT ON tasks BEGIN
    INSERT OR REPLACE INTO task_words (rowid, words) VALUES (new.seq, {_words("new")});
END;
CREATE TRIGGER IF NOT EXISTS task_words_update AFTER UPDATE OF info ON tasks
WHEN {_words("old")} IS NOT {_words("new")} BEGIN
    INSERT OR REPLACE INTO task_words (rowid, words) VALUES (new.seq, {_words("new")});
END;
CREATE TRIGGER IF NOT EXISTS task_words_delete AFTER DELETE ON tasks BEGIN
    DELETE FROM task_words WHERE rowid = old.seq;
END;
"""


# the bins of the time-per-attempt histogram (seconds); the last one runs to the longest attempt
WALL_EDGES = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


# The receipts charts' per-attempt fields, as generated columns beside history_schema's, in one covering
# index with the sums' fields: `receipts.series` reads the index, not a year of records.
SERIES_KEYS = {"r_wall_s": "$.wall_s", "r_tokens_reasoning": "$.tokens.reasoning"}
SERIES_INDEX = ("CREATE INDEX IF NOT EXISTS receipts_series ON receipts(r_model, created_at, cost_usd, r_tokens_in, "
                "r_tokens_out, r_tokens_reasoning, r_wall_s)")


def _day_sql(low: float, high: float) -> str:
    """SQL for the local day number (days since the epoch, local time) of `created_at`, exact across the
    UTC offset changes (daylight saving) between `low` and `high`: found in Python, an hour at a time,
    then to the second, instead of asking SQLite for local time row by row."""
    def offset(t: float) -> int:
        return int(time.localtime(t).tm_gmtoff)

    cases, t, now = [], low, offset(low)
    while t < high:
        nxt = min(t + 3600, high)
        if offset(nxt) != now:
            a, b = t, nxt
            while b - a > 1:
                mid = (a + b) / 2
                a, b = (mid, b) if offset(mid) == now else (a, mid)
            cases.append(f"WHEN created_at < {b!r} THEN {now}")
            now = offset(nxt)
        t = nxt
    shift = f"CASE {' '.join(cases)} ELSE {now} END" if cases else str(now)
    return f"CAST((created_at + {shift}) / 86400 AS INTEGER)"


def _match(text: str) -> str | None:
    """The FTS5 query for a line of words: each must begin a word (quoted: no word is an operator)."""
    words = [w for w in text.split() if any(c.isalnum() for c in w)]
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words) or None


def first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "record"
        return f"{loc}: {err['msg']}"[:300]
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def _salvage(task_id: str, workspace: object, updated_at: object, info: object, why: str) -> TaskInfo:
    """What can be kept of an unreadable task record, as a FAILED task saying why."""
    raw: Any = None
    if isinstance(info, (str, bytes)):
        try:
            raw = json.loads(info)
        except (ValueError, RecursionError):
            raw = None
    stamp = updated_at if isinstance(updated_at, (int, float)) else 0.0
    task = TaskInfo(id=str(task_id), state=TaskState.FAILED, workspace=str(workspace), instruction="(unreadable)",
                    files=[], model="", timeout_s=0.0, created_at=float(stamp))
    for key, value in (raw.items() if isinstance(raw, dict) else ()):
        if key in ("id", "state") or key not in TaskInfo.model_fields:
            continue
        try:  # field by field: everything readable survives
            task = TaskInfo.model_validate({**task.model_dump(), key: value})
        except (ValidationError, ValueError):
            continue
    return task.model_copy(update={"state": TaskState.FAILED, "reason": UNREADABLE, "programmer": None,
                                   "error": f"stored record unreadable: {why}", "finished_at": time.time()})


def _receipts(rows: Iterable[tuple[str]]) -> list[Receipt]:
    """Stored receipts, skipping (and logging) any that cannot be read."""
    out = []
    for (data,) in rows:
        try:
            out.append(Receipt.model_validate_json(data))
        except (ValidationError, ValueError) as exc:
            log.warning("skipped an unreadable stored receipt: %s", first_error(exc))
    return out


class Change(BaseModel):
    """A file the task changed: its content at the task's base and as proposed."""

    path: str
    base: str
    proposed: str
    created: bool = False


class RevisionRequest(BaseModel):
    """A revise the reviewer asked for and no attempt has answered yet."""

    comment: str
    hunks: list[str] = []  # the hunks quoted, each as a small unified diff


class Store:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.receipts_dir = state_dir / "receipts"
        private_dir(state_dir)
        private_dir(self.receipts_dir)
        private_files(self.receipts_dir)
        # SQLite gives the -wal and -shm files the database's own mode: create it 0600 first
        for name in ("pasd.db", "pasd.db-wal", "pasd.db-shm"):
            if name == "pasd.db" or (state_dir / name).exists():
                create_private(state_dir / name)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves; statements autocommit otherwise.
        self.db = sqlite3.connect(state_dir / "pasd.db", isolation_level=None, check_same_thread=False)
        # a new store frees pages in steps (`pasd gc`); takes effect only before WAL and the first table
        self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)
        self._committed: list[Receipt] = []  # receipts a transaction updated, for their JSONL once it commits
        history_schema.add(self.db)
        self._add_list_schema()
        self._add_series_columns()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            self._committed.clear()
            raise
        self.db.execute("COMMIT")
        done, self._committed = self._committed, []
        for receipt in done:
            self._append_jsonl(receipt)

    def close(self) -> None:
        self.db.close()

    def _add_series_columns(self) -> None:
        have = {row[1] for row in self.db.execute("PRAGMA table_xinfo(receipts)")}
        missing = [name for name in SERIES_KEYS if name not in have]
        if not missing:
            self.db.execute(SERIES_INDEX)  # a no-op once it exists
            return
        with self.transaction():
            for name in missing:
                self.db.execute(f"ALTER TABLE receipts ADD COLUMN {name} GENERATED ALWAYS AS (CASE WHEN "
                                f"json_valid(data) THEN json_extract(data, '{SERIES_KEYS[name]}') END) VIRTUAL")
            self.db.execute(SERIES_INDEX)

    def _add_list_schema(self) -> None:
        if self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'task_words'").fetchone() is not None:
            self.db.executescript(LIST_SCHEMA)  # IF NOT EXISTS throughout: no write at every start
            return
        try:  # in one transaction with the words of the tasks stored before the table
            self.db.executescript(f"BEGIN IMMEDIATE; {LIST_SCHEMA} INSERT OR REPLACE INTO task_words (rowid, words) "
                                  f"SELECT seq, {_words('tasks')} FROM tasks; COMMIT;")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------ tasks

    def next_seq(self) -> int:
        row = self.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM tasks").fetchone()
        return int(row[0])

    def task_exists(self, task_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM tasks WHERE id = ?", (task_id,)).fetchone() is not None

    def save_task(self, task: TaskInfo, seq: int | None = None) -> None:
        data = task.model_dump_json()
        if seq is None:
            self.db.execute(
                "UPDATE tasks SET state = ?, info = ?, updated_at = ? WHERE id = ?",
                (task.state.value, data, time.time(), task.id),
            )
        else:
            self.db.execute(
                "INSERT INTO tasks (id, seq, state, workspace, info, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (task.id, seq, task.state.value, task.workspace, data, time.time()),
            )

    def get_task(self, task_id: str) -> TaskInfo | None:
        row = self.db.execute("SELECT id, workspace, updated_at, info FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return self._load(*row) if row else None

    def _load(self, task_id: str, workspace: str, updated_at: float, info: str) -> TaskInfo | None:
        """A stored task; one whose record cannot be read is stored again as FAILED with the reason,
        keeping what can be kept of it (None, and a log line, if even that fails)."""
        try:
            return TaskInfo.model_validate_json(info)
        except (ValidationError, ValueError) as exc:
            why = first_error(exc)
        log.warning("task %s: stored record unreadable (%s); marking it FAILED", task_id, why)
        try:
            task = _salvage(task_id, workspace, updated_at, info, why)
            self.save_task(task)
        except (ValidationError, ValueError, TypeError, sqlite3.Error):
            log.exception("task %s: cannot mark the unreadable record FAILED; skipping it", task_id)
            return None
        return task

    def mend_tasks(self) -> int:
        """Mark FAILED every open task (queued, running, in review) whose record is not JSON or whose state
        is unknown, and every task in a state this version does not know; returns how many. Run at start,
        before queries that read inside records. Finished tasks are left to `_load`, which mends one
        when it is read: a year of them is not parsed at every start."""
        known = [s.value for s in TaskState]
        marks = ",".join("?" * len(known))
        rows = self.db.execute(
            f"SELECT id, workspace, updated_at, info FROM tasks WHERE state IN ({','.join('?' * len(OPEN_STATES))}) "
            f"AND (NOT json_valid(info) OR json_extract(CASE WHEN json_valid(info) THEN info END, '$.state') "
            f"NOT IN ({marks})) "
            f"UNION ALL SELECT id, workspace, updated_at, info FROM tasks WHERE state IN "
            f"(SELECT DISTINCT state FROM tasks WHERE state NOT IN ({marks}))",
            [*OPEN_STATES, *known, *known]).fetchall()
        for row in rows:
            self._load(*row)
        return len(rows)

    def find_task_ids(self, prefix: str) -> list[str]:
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.db.execute("SELECT id FROM tasks WHERE id LIKE ? ESCAPE '\\' LIMIT 5", (like,))
        return [r[0] for r in rows]

    def list_tasks(self, states: Iterable[TaskState] | None = None, workspace: str | None = None,
                   limit: int = 200, *, before: int | None = None, model: str | None = None,
                   text: str | None = None) -> list[TaskInfo]:
        """The newest `limit` tasks matching the filters, queued before seq `before` if given."""
        source, where, args = self._filters(states, workspace, model, text)
        if before is not None:
            where += " AND seq < ?"
            args.append(before)
        sql = f"SELECT id, workspace, updated_at, info FROM {source} WHERE {where} ORDER BY seq DESC LIMIT ?"
        return [t for t in (self._load(*r) for r in self.db.execute(sql, [*args, limit]).fetchall())
                if t is not None]

    def count_matching(self, states: Iterable[TaskState] | None = None, workspace: str | None = None,
                       model: str | None = None, text: str | None = None, cap: int | None = None) -> int:
        """How many tasks `list_tasks` would page through with these filters; with `cap`, counting stops
        past it (cap + 1: more): counting words most tasks have is a walk through every hit."""
        source, where, args = self._filters(states, workspace, model, text)
        if cap is None:
            return int(self.db.execute(f"SELECT COUNT(*) FROM {source} WHERE {where}", args).fetchone()[0])
        sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT ?)"
        return int(self.db.execute(sql, [*args, cap + 1]).fetchone()[0])

    @staticmethod
    def _filters(states: Iterable[TaskState] | None, workspace: str | None, model: str | None,
                 text: str | None) -> tuple[str, str, list[object]]:
        """(tables, condition, arguments). With words, the full-text table leads, newest first, and each
        hit is looked up by seq: a page of words most tasks have stops after a page of hits, instead of
        collecting every hit first."""
        source, where, args = "tasks", "1=1", list[object]()
        if text is not None and (match := _match(text)) is not None:
            source = "(SELECT rowid AS seq FROM task_words WHERE task_words MATCH ? ORDER BY rowid DESC) AS w " \
                     f"CROSS JOIN tasks {'INDEXED BY tasks_model_seq ' if model is not None else ''}USING (seq)"
            args.append(match)
        if states is not None:
            states = list(states)
            where += f" AND state IN ({','.join('?' * len(states))})"
            args += [s.value for s in states]
        if workspace is not None:
            where += " AND workspace = ?"
            args.append(workspace)
        if model is not None:
            where += f" AND {_MODEL} = ?"
            args.append(model)
        return source, where, args

    def job_task_ids(self, job_id: str) -> list[str]:
        """The ids of a job's tasks in the order they were queued, as the tasks themselves record it."""
        rows = self.db.execute("SELECT id FROM tasks WHERE json_extract(CASE WHEN json_valid(info) THEN info END, "
                               "'$.job_id') = ? ORDER BY seq", (job_id,))
        return [r[0] for r in rows]

    def count_tasks(self, states: Iterable[TaskState]) -> int:
        """How many tasks are in these states, without reading them (pool.status asks often)."""
        states = list(states)
        sql = f"SELECT COUNT(*) FROM tasks WHERE state IN ({','.join('?' * len(states))})"
        return int(self.db.execute(sql, [s.value for s in states]).fetchone()[0])

    def workspaces(self, states: Iterable[TaskState]) -> set[str]:
        """The workspaces of tasks in these states, without reading the tasks."""
        states = list(states)
        sql = f"SELECT DISTINCT workspace FROM tasks WHERE state IN ({','.join('?' * len(states))})"
        return {r[0] for r in self.db.execute(sql, [s.value for s in states])}

    def queued_in_order(self) -> list[tuple[int, TaskInfo]]:
        rows = self.db.execute(
            "SELECT seq, id, workspace, updated_at, info FROM tasks WHERE state = 'QUEUED' ORDER BY seq").fetchall()
        out = []
        for seq, *row in rows:
            task = self._load(*row)
            if task is not None and task.state is TaskState.QUEUED:
                out.append((int(seq), task))
        return out

    def seq_of(self, task_id: str) -> int:
        row = self.db.execute("SELECT seq FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------ changes and hunks

    def save_result(self, task: TaskInfo, changes: list[Change], receipt: Receipt | None,
                    messages: list[dict[str, str]] | None = None) -> bool:
        """Store a finished attempt (and the conversation behind it) in one transaction; False if its
        receipt was already stored."""
        with self.transaction():
            if messages:
                self.db.execute("INSERT OR REPLACE INTO conversations (task_id, messages, request) VALUES (?, ?, NULL)",
                                (task.id, json.dumps(messages)))
            self.db.execute("DELETE FROM changes WHERE task_id = ?", (task.id,))
            self.db.execute("DELETE FROM hunk_states WHERE task_id = ?", (task.id,))
            self.db.executemany(
                "INSERT INTO changes (task_id, path, base, proposed, created) VALUES (?, ?, ?, ?, ?)",
                [(task.id, c.path, c.base, c.proposed, int(c.created)) for c in changes],
            )
            inserted = receipt is not None and self._insert_receipt(receipt)
            self.save_task(task)
        if inserted and receipt is not None:
            self._append_jsonl(receipt)
        return inserted

    def changes(self, task_id: str) -> list[Change]:
        rows = self.db.execute(
            "SELECT path, base, proposed, created FROM changes WHERE task_id = ? ORDER BY path", (task_id,)
        )
        return [Change(path=p, base=b, proposed=n, created=bool(c)) for p, b, n, c in rows]

    def hunk_states(self, task_id: str) -> dict[int, HunkState]:
        rows = self.db.execute("SELECT hunk_id, state FROM hunk_states WHERE task_id = ?", (task_id,))
        return {int(h): HunkState(s) for h, s in rows}

    def put_hunk_states(self, task_id: str, states: dict[int, HunkState]) -> None:
        """Call inside a transaction, after saving the task: the review's receipt gets its hunk counts and
        outcome with it."""
        self.db.executemany("INSERT OR REPLACE INTO hunk_states (task_id, hunk_id, state) VALUES (?, ?, ?)",
                            [(task_id, h, s.value) for h, s in states.items()])
        if states:
            self._review_receipt(task_id)

    def _review_receipt(self, task_id: str) -> None:
        """Count the decided hunks on the receipt of the attempt under review; once none is pending, its
        outcome becomes approved, rejected or partial. The updated receipt is appended to its JSONL
        again after the commit: in a receipts file, the last line of a task attempt is the current one."""
        row = self.db.execute(
            "SELECT id, data FROM receipts WHERE task_id = ? AND json_valid(data) AND "
            "json_extract(data, '$.outcome') IN ('review', 'approved', 'rejected', 'partial') "
            "ORDER BY attempt DESC LIMIT 1", (task_id,)).fetchone()
        if row is None:
            return
        receipts = _receipts([(row[1],)])
        if not receipts:
            return
        counts = dict(self.db.execute(
            "SELECT state, COUNT(*) FROM hunk_states WHERE task_id = ? GROUP BY state", (task_id,)).fetchall())
        approved, rejected = counts.get(HunkState.APPLIED.value, 0), counts.get(HunkState.REJECTED.value, 0)
        receipt = receipts[0]
        state = self.db.execute("SELECT state FROM tasks WHERE id = ?", (task_id,)).fetchone()
        final = state is not None and state[0] in (TaskState.APPLIED.value, TaskState.REJECTED.value)
        outcome = "review"
        if final:  # no hunk pending any more
            outcome = "partial" if approved and rejected else "approved" if approved else "rejected"
        # a receipt stored before hunks were counted: every decided hunk was proposed
        proposed = approved + rejected if final and not receipt.hunks_proposed else receipt.hunks_proposed
        receipt = receipt.model_copy(update={
            "hunks_proposed": proposed, "hunks_approved": approved, "hunks_rejected": rejected, "outcome": outcome,
            "reviewed_at": time.time() if outcome != "review" else None})
        self.db.execute("UPDATE receipts SET data = ? WHERE id = ?", (receipt.model_dump_json(), row[0]))
        self._committed.append(receipt)

    def set_hunk_states(self, task: TaskInfo, states: dict[int, HunkState]) -> None:
        with self.transaction():
            self.save_task(task)
            self.put_hunk_states(task.id, states)

    def set_stale_hunks(self, task_id: str, stale: list[int]) -> TaskInfo | None:
        """Record a task's stale hunks only while it still awaits review; the updated task, or None.

        One conditional UPDATE: a review decision made meanwhile is never overwritten.
        """
        cur = self.db.execute(
            "UPDATE tasks SET info = json_set(info, '$.stale_hunks', json(?)), updated_at = ? "
            "WHERE id = ? AND state IN ('REVIEW', 'CONFLICT') "
            "AND IFNULL(json_extract(info, '$.stale_hunks'), '[]') != json(?)",
            (json.dumps(stale), time.time(), task_id, json.dumps(stale)))
        return self.get_task(task_id) if cur.rowcount == 1 else None

    # ------------------------------------------------------------ conversations (revise)

    def conversation(self, task_id: str) -> list[dict[str, str]] | None:
        """The messages behind the task's proposal, ending with the model's answer (None: not stored)."""
        row = self.db.execute("SELECT messages FROM conversations WHERE task_id = ?", (task_id,)).fetchone()
        if row is None:
            return None
        try:
            messages = json.loads(row[0])
        except ValueError:
            log.warning("task %s: stored conversation unreadable", task_id)
            return None
        ok = isinstance(messages, list) and all(
            isinstance(m, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in m.items())
            for m in messages)
        return messages if ok else None

    def revision_request(self, task_id: str) -> RevisionRequest | None:
        row = self.db.execute("SELECT request FROM conversations WHERE task_id = ?", (task_id,)).fetchone()
        if row is None or row[0] is None:
            return None
        try:
            return RevisionRequest.model_validate_json(row[0])
        except (ValidationError, ValueError):
            return None

    def ask_revision(self, task: TaskInfo, request: RevisionRequest | None) -> None:
        """Save the task with the revise it waits for (None: it waits for none now), in one transaction."""
        with self.transaction():
            self.db.execute("UPDATE conversations SET request = ? WHERE task_id = ?",
                            (request.model_dump_json() if request else None, task.id))
            self.save_task(task)

    # ------------------------------------------------------------ receipts

    def _insert_receipt(self, receipt: Receipt) -> bool:
        """Call inside a transaction: the attempt's spend row goes with it."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO receipts (task_id, run_id, attempt, created_at, cost_usd, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (receipt.task_id, receipt.run_id, receipt.attempt, receipt.created_at, receipt.cost_usd,
             receipt.model_dump_json()),
        )
        self.db.execute("DELETE FROM spend WHERE task_id = ? AND attempt = ?", (receipt.task_id, receipt.attempt))
        return cur.rowcount == 1

    def add_receipt(self, receipt: Receipt) -> bool:
        """Store a receipt once; False (and nothing written) if that attempt already has one."""
        with self.transaction():
            inserted = self._insert_receipt(receipt)
        if inserted:
            self._append_jsonl(receipt)
        return inserted

    def _append_jsonl(self, receipt: Receipt) -> None:
        fd = os.open(self.receipts_dir / f"{receipt.run_id}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "a", encoding="utf-8") as fh:
            fh.write(receipt.model_dump_json() + "\n")

    def reconcile_jsonl(self) -> int:
        """Append receipts a crash kept out of their JSONL file (SQLite is written first).

        Only receipts stored since the last start are checked (`store_meta.jsonl_checked`, the highest
        receipt id seen then): a crash can only have cut the files of the runs since, and a year of
        files is not read at every start."""
        row = self.db.execute("SELECT value FROM store_meta WHERE key = 'jsonl_checked'").fetchone()
        checked = int(row[0]) if row else 0
        top = int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM receipts").fetchone()[0])
        added = 0
        runs = self.db.execute("SELECT run_id, COUNT(*) FROM receipts WHERE run_id IN "
                               "(SELECT DISTINCT run_id FROM receipts WHERE id > ?) GROUP BY run_id",
                               (checked,)).fetchall()
        for run_id, count in runs:
            path = self.receipts_dir / f"{run_id}.jsonl"
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                lines = []
            if len(lines) >= count:
                continue
            have = set()
            for line in lines:
                try:
                    r = Receipt.model_validate_json(line)
                    have.add((r.task_id, r.attempt))
                except ValueError:
                    continue  # a torn last line from a crash
            rows = self.db.execute("SELECT data FROM receipts WHERE run_id = ? ORDER BY id", (run_id,))
            for r in _receipts(rows.fetchall()):
                if (r.task_id, r.attempt) not in have:
                    self._append_jsonl(r)
                    added += 1
        self.db.execute("INSERT OR REPLACE INTO store_meta (key, value) VALUES ('jsonl_checked', ?)", (str(top),))
        return added

    def receipts(self, task_id: str | None = None, limit: int = 500) -> list[Receipt]:
        if task_id is None:
            rows = self.db.execute("SELECT data FROM receipts ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = self.db.execute(
                "SELECT data FROM receipts WHERE task_id = ? ORDER BY id DESC LIMIT ?", (task_id, limit)
            )
        return _receipts(rows.fetchall())

    def receipt_series(self, since: float | None = None) -> dict[str, Any]:
        """The receipts charts' sums in SQL, from the receipts_series index (ReceiptSeries' fields): cost
        per model per local day, tokens per model, and attempts per bin of WALL_EDGES seconds."""
        low = -1e300 if since is None else since
        rows = "FROM receipts INDEXED BY receipts_series WHERE r_model IS NOT NULL AND created_at >= ?"
        first, last = self.db.execute("SELECT MIN(created_at), MAX(created_at) FROM receipts WHERE created_at >= ?",
                                      (low,)).fetchone()  # two probes of receipts_time
        days = []
        if first is not None:
            for d, m, c, n in self.db.execute(f"SELECT {_day_sql(first, last)} AS d, r_model, SUM(cost_usd), COUNT(*) "
                                              f"{rows} GROUP BY d, r_model ORDER BY d, r_model", (low,)):
                day = time.strftime("%Y-%m-%d", time.gmtime(d * 86400))
                days.append({"day": day, "model": m, "cost_usd": round(c or 0.0, 6), "receipts": n})
        edges = WALL_EDGES  # whole seconds: an attempt's bin is that of its whole seconds
        sums: dict[str, dict[str, Any]] = {}
        top = 0.0
        for model, secs, n, cost, tin, tout, reasoning, longest in self.db.execute(
                "SELECT r_model, CAST(r_wall_s AS INTEGER) AS s, COUNT(*), SUM(cost_usd), SUM(r_tokens_in), "
                f"SUM(r_tokens_out), SUM(r_tokens_reasoning), MAX(r_wall_s) {rows} GROUP BY r_model, s", (low,)):
            m = sums.setdefault(model, {"model": model, "receipts": 0, "cost_usd": 0.0, "tokens_input": 0,
                                        "tokens_output": 0, "tokens_reasoning": 0, "wall": [0] * len(edges)})
            m["receipts"] += n
            m["cost_usd"] += cost or 0.0
            m["tokens_input"] += int(tin or 0)
            m["tokens_output"] += int(tout or 0)
            m["tokens_reasoning"] += int(reasoning or 0)
            m["wall"][bisect.bisect_right(edges, max(int(secs or 0), 0)) - 1] += n
            top = max(top, float(longest or 0.0))
        used = max((i for m in sums.values() for i, n in enumerate(m["wall"]) if n), default=0) + 1
        for m in sums.values():
            m["wall"] = m["wall"][:used]
            m["cost_usd"] = round(m["cost_usd"], 6)
        models = sorted(sums.values(), key=lambda m: (-m["cost_usd"], m["model"]))
        return {"receipts": sum(m["receipts"] for m in models), "days": days, "models": models,
                "wall_edges": [*edges[:used], max(top, edges[used - 1])],
                "total_usd": round(sum(m["cost_usd"] for m in models), 6)}

    def spent_since(self, since: float) -> float:
        """Spent since `since`: every receipt, and every model reply whose attempt has none yet."""
        row = self.db.execute(
            "SELECT (SELECT COALESCE(SUM(cost_usd), 0) FROM receipts WHERE created_at >= ?)"
            " + (SELECT COALESCE(SUM(cost_usd), 0) FROM spend WHERE created_at >= ?)", (since, since))
        return float(row.fetchone()[0])

    # ------------------------------------------------------------ spend not yet receipted

    def record_spend(self, receipt: Receipt) -> None:
        """What an attempt has spent so far, as the receipt it gets if it never finishes (one row per attempt)."""
        self.db.execute(
            "INSERT OR REPLACE INTO spend (task_id, attempt, created_at, cost_usd, data) VALUES (?, ?, ?, ?, ?)",
            (receipt.task_id, receipt.attempt, receipt.created_at, receipt.cost_usd, receipt.model_dump_json()))

    def unsettled_spend(self, task_id: str | None = None, attempt: int | None = None) -> list[Receipt]:
        """The provisional receipts of attempts that spent money but have no receipt yet."""
        sql, args = "SELECT data FROM spend WHERE 1=1", list[object]()
        if task_id is not None:
            sql += " AND task_id = ?"
            args.append(task_id)
        if attempt is not None:
            sql += " AND attempt = ?"
            args.append(attempt)
        return _receipts(self.db.execute(sql + " ORDER BY created_at", args).fetchall())

    def settle_spend(self, receipt: Receipt, task: TaskInfo | None) -> bool:
        """Store an unfinished attempt's receipt, forget its spend row and save the task (its cost), all in
        one transaction; False (and only the spend row dropped) if the attempt already had a receipt."""
        with self.transaction():
            inserted = self._insert_receipt(receipt)
            if inserted and task is not None:
                self.save_task(task)
        if inserted:
            self._append_jsonl(receipt)
        return inserted
