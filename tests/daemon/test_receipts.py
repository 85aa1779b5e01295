"""Receipt summaries read from the store's covering index give what the receipts themselves give."""

from __future__ import annotations

import json
import random
from pathlib import Path

from daemon import history_schema
from daemon import protocol as p
from daemon.receipts import summarize, summarize_stored
from daemon.store import Store

MODELS = ["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5", "ollama/qwen2.5-coder"]
OUTCOMES = ["review", "approved", "rejected", "partial", "no-change", "failed: provider", "cancelled"]


def receipts(n_tasks: int, seed: int = 3) -> list[p.Receipt]:
    """Receipts of every kind the quality fields tell apart: reviewed whole or by hunk (some hunks
    still pending), checks passed, failed or not run, warnings, several attempts, jobs and tiers."""
    rng = random.Random(seed)
    out = []
    for t in range(n_tasks):
        attempts = rng.choice([1, 1, 2, 3])
        model = rng.choice(MODELS)
        for a in range(1, attempts + 1):
            proposed = rng.randint(0, 5)
            approved = rng.randint(0, proposed) if rng.random() < 0.6 else 0
            rejected = rng.randint(0, proposed - approved) if rng.random() < 0.4 else 0
            out.append(p.Receipt(
                task_id=f"t{t}", run_id=f"run{t % 4}", attempt=a, programmer="Programmer-01",
                provider=p.ProviderSnapshot(provider=model.split("/")[0], model=model),
                tokens=p.TokenUsage(input=rng.randint(1, 9000), output=rng.randint(1, 900)),
                cost_usd=round(rng.random() / 50, 6), priced=rng.random() < 0.8, wall_s=round(rng.uniform(1, 90), 3),
                llm_s=1.0, check=rng.choice(["passed", "failed", None]), outcome=rng.choice(OUTCOMES),
                created_at=1_700_000_000.0 + t * 3600 + a, job_id=f"j{t % 3}" if t % 2 else None,
                tier=rng.choice(["fast", "strong", None]), warnings=["CHECK_FAILED"] if rng.random() < 0.2 else [],
                hunks_proposed=proposed, hunks_approved=approved, hunks_rejected=rejected))
    return out


def test_stored_summaries_match_the_receipts(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    try:
        rs = receipts(120)
        for r in rs:
            assert store.add_receipt(r)
        # a receipt from before the quality fields, and a record that cannot be read: both as the store reads them
        legacy = {"task_id": "old", "run_id": "r", "attempt": 1, "programmer": "Programmer-01",
                  "provider": {"provider": "openai", "model": MODELS[0]}, "tokens": {"input": 1, "output": 2},
                  "cost_usd": 0.25, "priced": True, "wall_s": 3.0, "llm_s": 1.0, "outcome": "approved",
                  "created_at": 1_700_000_000.0}
        store.db.execute("INSERT INTO receipts (task_id, run_id, attempt, created_at, cost_usd, data) "
                         "VALUES ('old', 'r', 1, 1700000000.0, 0.25, ?)", (json.dumps(legacy),))
        store.db.execute("INSERT INTO receipts (task_id, run_id, attempt, created_at, cost_usd, data) "
                         "VALUES ('bad', 'r', 1, 1700000000.0, 1.0, 'not json')")
        every = store.receipts(None, 10_000)
        assert len(every) == len(rs) + 1
        groups = 0
        for by in ("model", "day", "job", "tier"):
            stored = summarize_stored(store.db, by)
            assert stored == summarize(every, by)
            groups += len(stored.groups)
            since = 1_700_000_000.0 + 60 * 3600
            assert summarize_stored(store.db, by, since) == summarize(every, by, since)
            # the newest 100 stored (by id; the unreadable one among them), as Store.receipts lists them
            assert summarize_stored(store.db, by, limit=100) == summarize(every[:99], by)
        assert groups > 10
        whole = summarize_stored(store.db, "model")
        assert all(g.approval_rate is not None and g.check_pass_rate is not None and g.flagged and g.median_cost_usd
                   for g in whole.groups)
    finally:
        store.close()


def test_the_summary_reads_the_covering_index_only(tmp_path: Path) -> None:
    """Each of the summary's queries reads its columns from the covering index, in the index's order by
    model: no receipt record is read (the table's cursor is only ever a deferred seek) and nothing sorted."""
    store = Store(tmp_path / "state")
    try:
        for r in receipts(10):
            store.add_receipt(r)
        traced: list[str] = []
        store.db.set_trace_callback(traced.append)
        summarize_stored(store.db, "model")
        store.db.set_trace_callback(None)
        queries = [sql for sql in traced if "GROUP BY" in sql]
        assert len(queries) == 2  # the sums, and the cost and time of each task
        table = store.db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'receipts'").fetchone()[0]
        for sql in queries:
            args = (0, -1e300) if "?" in sql else ()
            plan = [row[-1] for row in store.db.execute("EXPLAIN QUERY PLAN " + sql, args)]
            assert any(f"INDEX {history_schema.RECEIPT_INDEX}" in x for x in plan), plan
            assert not any("TEMP B-TREE" in x for x in plan), plan
            code = list(store.db.execute("EXPLAIN " + sql, args))
            cursors = {c[2] for c in code if c[1] == "OpenRead" and c[3] == table}
            assert not [c for c in code if c[1] == "Column" and c[2] in cursors], sql
    finally:
        store.close()
