"""What a year of history needs from the store's schema (see bench/history.py), added to the
tables `daemon/store.py` creates: indexes for newest-first pages and receipt sums, and a small
table of store facts. Everything here is IF NOT EXISTS or added once, so a store made before it
gains it at its next start (the first one on 100,000 tasks takes a few tenths of a second).
"""

from __future__ import annotations

import sqlite3

# What a year of history needs (bench/history.py): newest-first pages with or without a state or
# workspace filter, MAX(seq) for the next task, without reading every row. Kept apart from
# store.SCHEMA and created at every open, so a store made before them gains them at its next start.
HISTORY_SCHEMA = """
CREATE INDEX IF NOT EXISTS tasks_seq ON tasks(seq);
CREATE INDEX IF NOT EXISTS tasks_state_seq ON tasks(state, seq);
CREATE INDEX IF NOT EXISTS tasks_workspace_seq ON tasks(workspace, seq);
CREATE INDEX IF NOT EXISTS receipts_run ON receipts(run_id);
CREATE INDEX IF NOT EXISTS receipts_id ON receipts(id);  -- the newest N by id, without reading the records
CREATE INDEX IF NOT EXISTS tasks_job ON tasks(json_extract(CASE WHEN json_valid(info) THEN info END, '$.job_id'))
    WHERE json_extract(CASE WHEN json_valid(info) THEN info END, '$.job_id') IS NOT NULL;
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Receipt fields `pasd receipts --by` sums, as generated columns read from the stored JSON (NULL if it
# is not JSON) and kept in one covering index, so the sums read the index and not a year of records.
RECEIPT_KEYS = {"r_model": "$.provider.model", "r_job": "$.job_id", "r_tier": "$.tier",
                "r_tokens_in": "$.tokens.input", "r_tokens_out": "$.tokens.output", "r_priced": "$.priced"}
RECEIPT_SUMS_INDEX = ("CREATE INDEX IF NOT EXISTS receipts_sums ON receipts(r_model, r_job, r_tier, created_at, "
                      "task_id, cost_usd, r_tokens_in, r_tokens_out, r_priced)")


def add(db: sqlite3.Connection) -> None:
    """Add what is missing: the indexes, the store facts table, the generated receipt columns."""
    db.executescript(HISTORY_SCHEMA)
    have = {row[1] for row in db.execute("PRAGMA table_xinfo(receipts)")}
    missing = [name for name in RECEIPT_KEYS if name not in have]
    if not missing:
        db.execute(RECEIPT_SUMS_INDEX)  # a no-op once it exists: no write lock at every start
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for name in missing:
            db.execute(f"ALTER TABLE receipts ADD COLUMN {name} GENERATED ALWAYS AS (CASE WHEN "
                       f"json_valid(data) THEN json_extract(data, '{RECEIPT_KEYS[name]}') END) VIRTUAL")
        db.execute(RECEIPT_SUMS_INDEX)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
