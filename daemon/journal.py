"""The approve journal: what an approve under way has staged and what it replaces, in the store.

Recorded before the first temp file exists and cleared in the transaction that records the
decision, so after a crash daemon/applying.py can finish the approve or undo it.
"""

from __future__ import annotations

import json
import time

from pydantic import BaseModel

from daemon.protocol import HunkState, TaskInfo, TaskState
from daemon.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    task_id TEXT PRIMARY KEY,
    phase TEXT NOT NULL,
    state TEXT NOT NULL,
    hunk_states TEXT NOT NULL,
    made_dirs TEXT NOT NULL,
    started_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS approval_files (
    task_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    path TEXT NOT NULL,
    temp TEXT NOT NULL,
    before BLOB,
    after BLOB NOT NULL,
    mode INTEGER,
    PRIMARY KEY (task_id, seq)
);
"""


class Staged(BaseModel):
    """One file of an approve: where its new content is staged, and what it replaces."""

    path: str
    temp: str  # the staged temp file's name, in the target's directory
    before: bytes | None  # what the merge read there; None: no file
    after: bytes
    mode: int | None = None  # the replaced file's permissions, kept (None: a new file)


class Approval(BaseModel):
    """The journal of an approve under way: enough to finish it or undo it after a crash.

    `phase` is "staging" while temp files are being written (no target touched yet) and
    "switching" once every temp is staged and fsynced and the renames may begin.
    """

    task_id: str
    phase: str
    state: TaskState  # the task's state once every file is switched
    hunk_states: dict[int, HunkState]
    made_dirs: list[str] = []  # directories created for new files
    files: list[Staged]


class ApproveJournal:
    """The approvals under way, kept in the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db
        self.db.executescript(SCHEMA)

    def begin(self, approval: Approval) -> None:
        """Record an approve before its first temp file exists, so a crash leaves nothing untracked."""
        with self.store.transaction():
            self._clear(approval.task_id)
            self.db.execute(
                "INSERT INTO approvals (task_id, phase, state, hunk_states, made_dirs, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (approval.task_id, approval.phase, approval.state.value,
                 json.dumps({str(h): s.value for h, s in approval.hunk_states.items()}),
                 json.dumps(approval.made_dirs), time.time()))
            self.db.executemany(
                "INSERT INTO approval_files (task_id, seq, path, temp, before, after, mode) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(approval.task_id, n, f.path, f.temp, f.before, f.after, f.mode)
                 for n, f in enumerate(approval.files)])

    def staged(self, task_id: str, made_dirs: list[str]) -> None:
        """Every temp file is staged and fsynced: the switch may begin."""
        self.db.execute("UPDATE approvals SET phase = 'switching', made_dirs = ? WHERE task_id = ?",
                        (json.dumps(made_dirs), task_id))

    def end(self, task_id: str) -> None:
        with self.store.transaction():
            self._clear(task_id)

    def _clear(self, task_id: str) -> None:
        self.db.execute("DELETE FROM approval_files WHERE task_id = ?", (task_id,))
        self.db.execute("DELETE FROM approvals WHERE task_id = ?", (task_id,))

    def pending(self) -> list[Approval]:
        """Approves a stop interrupted (normally none)."""
        out = []
        rows = self.db.execute("SELECT task_id, phase, state, hunk_states, made_dirs FROM approvals").fetchall()
        for task_id, phase, state, hunks, made in rows:
            files = self.db.execute(
                "SELECT path, temp, before, after, mode FROM approval_files WHERE task_id = ? ORDER BY seq", (task_id,))
            out.append(Approval(
                task_id=task_id, phase=phase, state=TaskState(state),
                hunk_states={int(h): HunkState(s) for h, s in json.loads(hunks).items()}, made_dirs=json.loads(made),
                files=[Staged(path=p, temp=t, before=b, after=a, mode=m) for p, t, b, a, m in files]))
        return out

    def finish(self, task: TaskInfo, states: dict[int, HunkState]) -> None:
        """Every file is switched: set the hunk and task states and drop the journal, in one transaction."""
        with self.store.transaction():
            self.store.save_task(task)
            self.store.put_hunk_states(task.id, states)
            self._clear(task.id)
