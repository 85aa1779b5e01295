"""Receipt arithmetic: a job's summed receipt, and spending grouped by model, day, job or tier."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime

from daemon.protocol import JobTotals, Receipt, ReceiptGroup, ReceiptGrouping, ReceiptSummary, TokenUsage


def totals(receipts: Iterable[Receipt]) -> JobTotals:
    t = JobTotals()
    tokens = TokenUsage()
    tiers: dict[str, int] = {}
    cost = 0.0
    for r in receipts:
        t.receipts += 1
        tokens = TokenUsage(input=tokens.input + r.tokens.input, output=tokens.output + r.tokens.output,
                            reasoning=tokens.reasoning + r.tokens.reasoning)
        cost += r.cost_usd
        t.priced = t.priced and r.priced
        t.llm_s += r.llm_s
        t.wall_s += r.wall_s
        t.files_changed += r.files_changed
        t.lines_added += r.lines_added
        t.lines_removed += r.lines_removed
        if r.tier:
            tiers[r.tier] = tiers.get(r.tier, 0) + 1
    return t.model_copy(update={"tokens": tokens, "cost_usd": round(cost, 6), "llm_s": round(t.llm_s, 4),
                                "wall_s": round(t.wall_s, 4), "tiers": tiers})


KEYS: dict[str, Callable[[Receipt], str]] = {
    "model": lambda r: r.provider.model,
    "day": lambda r: datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d"),
    "job": lambda r: r.job_id or "-",
    "tier": lambda r: r.tier or "-",
}


def summarize(receipts: Iterable[Receipt], by: ReceiptGrouping, since: float | None = None) -> ReceiptSummary:
    """Receipts grouped by `by`; days in date order, everything else by cost, highest first."""
    key = KEYS[by]
    groups: dict[str, list[Receipt]] = {}
    for r in receipts:
        if since is None or r.created_at >= since:
            groups.setdefault(key(r), []).append(r)
    rows = [ReceiptGroup(key=k, receipts=len(rs), tasks=len({r.task_id for r in rs}),
                         tokens_input=sum(r.tokens.input for r in rs), tokens_output=sum(r.tokens.output for r in rs),
                         cost_usd=round(sum(r.cost_usd for r in rs), 6), unpriced=sum(1 for r in rs if not r.priced))
            for k, rs in groups.items()]
    rows.sort(key=(lambda g: g.key) if by == "day" else (lambda g: (-g.cost_usd, g.key)))
    return ReceiptSummary(by=by, groups=rows, total_usd=round(sum(g.cost_usd for g in rows), 6))


# the SQL for each grouping (the same keys as KEYS), over the store's generated receipt columns
_KEY_SQL: dict[str, str] = {
    "model": "r_model",
    "day": "date(created_at, 'unixepoch', 'localtime')",
    "job": "COALESCE(r_job, '-')",
    "tier": "COALESCE(r_tier, '-')",
}


def summarize_stored(db: sqlite3.Connection, by: ReceiptGrouping, since: float | None = None,
                     limit: int = 100_000) -> ReceiptSummary:
    """`summarize` over the newest `limit` stored receipts, summed by SQLite from one covering index
    (daemon/history_schema.py: RECEIPT_KEYS): a year of receipts is not read record by record. Receipts whose
    record cannot be read are skipped, as `Store.receipts` skips them."""
    first = 0
    if int(db.execute("SELECT COUNT(*) FROM receipts").fetchone()[0]) > limit:
        first = int(db.execute("SELECT id FROM receipts INDEXED BY receipts_id ORDER BY id DESC LIMIT 1 OFFSET ?",
                               (limit - 1,)).fetchone()[0])
    sql = (f"SELECT {_KEY_SQL[by]} AS k, COUNT(*), COUNT(DISTINCT task_id), SUM(r_tokens_in), SUM(r_tokens_out), "
           "SUM(cost_usd), SUM(r_priced = 0) FROM receipts INDEXED BY receipts_sums "
           "WHERE r_model IS NOT NULL AND id >= ? AND created_at >= ? GROUP BY k")
    rows = [ReceiptGroup(key=str(k), receipts=n, tasks=tasks, tokens_input=int(tin or 0), tokens_output=int(tout or 0),
                         cost_usd=round(cost or 0.0, 6), unpriced=int(unpriced or 0))
            for k, n, tasks, tin, tout, cost, unpriced in db.execute(sql, (first, -1e300 if since is None else since))]
    rows.sort(key=(lambda g: g.key) if by == "day" else (lambda g: (-g.cost_usd, g.key)))
    return ReceiptSummary(by=by, groups=rows, total_usd=round(sum(g.cost_usd for g in rows), 6))
