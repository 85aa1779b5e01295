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
# Receipt fields `pasd receipts --by` sums and grades, as generated columns read from the stored JSON
# (NULL if it is not JSON) and kept in one covering index, so a summary reads the index and not a year
# of records. Nothing changes in how receipts are written.
_REVIEWED = ("(json_extract(data, '$.outcome') IN ('approved', 'rejected', 'partial') OR "
             "COALESCE(json_extract(data, '$.hunks_approved'), 0) + COALESCE(json_extract(data, '$.hunks_rejected'), 0)"
             " > 0)")
RECEIPT_KEYS = {"r_model": "json_extract(data, '$.provider.model')", "r_job": "json_extract(data, '$.job_id')",
                "r_tier": "json_extract(data, '$.tier')", "r_tokens_in": "json_extract(data, '$.tokens.input')",
                "r_tokens_out": "json_extract(data, '$.tokens.output')", "r_priced": "json_extract(data, '$.priced')",
                # quality (daemon/receipts.py: `quality`), worked out once per receipt as it is written rather
                # than at every summary: hunks proposed by an attempt the user reviewed (every decided hunk was
                # proposed), hunks decided (a decided hunk means a reviewed attempt), the check, warnings, and
                # cost and time in millionths (`receipts.micro`), whose sums are exact in any order
                "r_proposed": (f"CASE WHEN {_REVIEWED} THEN max(COALESCE(json_extract(data, '$.hunks_proposed'), 0), "
                               "COALESCE(json_extract(data, '$.hunks_approved'), 0) + "
                               "COALESCE(json_extract(data, '$.hunks_rejected'), 0)) ELSE 0 END"),
                "r_approved": "COALESCE(json_extract(data, '$.hunks_approved'), 0)",
                "r_rejected": "COALESCE(json_extract(data, '$.hunks_rejected'), 0)",
                "r_check": "json_extract(data, '$.check')",
                "r_flagged": "COALESCE(json_array_length(data, '$.warnings') > 0, 0)",
                "r_cost_m": "CAST(cost_usd * 1000000 + 0.5 AS INTEGER)",
                "r_wall_m": "CAST(COALESCE(json_extract(data, '$.wall_s'), 0) * 1000000 + 0.5 AS INTEGER)"}
# r_model and task_id first: grouped by model, and by model and task (for the medians), the index is
# read in its order, with no sort. It replaces receipts_sums, which held the sums' columns only.
RECEIPT_INDEX = "receipts_groups"
RECEIPT_INDEX_SQL = (f"CREATE INDEX IF NOT EXISTS {RECEIPT_INDEX} ON receipts(r_model, task_id, created_at, "
                     "cost_usd, r_tokens_in, r_tokens_out, r_priced, r_job, r_tier, r_proposed, r_approved, "
                     "r_rejected, r_check, r_flagged, r_cost_m, r_wall_m)")
FORMER_INDEXES = ("receipts_sums",)


def add(db: sqlite3.Connection) -> None:
    """Add what is missing: the indexes, the store facts table, the generated receipt columns."""
    db.executescript(HISTORY_SCHEMA)
    have = {row[1] for row in db.execute("PRAGMA table_xinfo(receipts)")}
    missing = [name for name in RECEIPT_KEYS if name not in have]
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    former = [name for name in FORMER_INDEXES if name in indexes]
    if not missing and not former and RECEIPT_INDEX in indexes:
        return  # nothing to do: no write lock at every start
    db.execute("BEGIN IMMEDIATE")
    try:
        for name in missing:
            db.execute(f"ALTER TABLE receipts ADD COLUMN {name} GENERATED ALWAYS AS "
                       f"(CASE WHEN json_valid(data) THEN {RECEIPT_KEYS[name]} END) VIRTUAL")
        for name in former:
            db.execute(f"DROP INDEX {name}")
        db.execute(RECEIPT_INDEX_SQL)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
