"""Receipt arithmetic: a job's summed receipt, and spending and quality grouped by model, day, job or tier."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any

from daemon import history_schema
from daemon.protocol import JobTotals, Receipt, ReceiptGroup, ReceiptGrouping, ReceiptSummary, TokenUsage


def totals(receipts: Iterable[Receipt]) -> JobTotals:
    t = JobTotals()
    tokens = TokenUsage()
    tiers: dict[str, int] = {}
    cost = 0.0
    for r in receipts:
        t.receipts += 1
        tokens = tokens.plus(r.tokens)
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


REVIEWED = ("approved", "rejected", "partial")
MICRO = 1_000_000


def micro(x: float) -> int:
    """x in millionths, rounded: sums of these are exact in any order, in Python and in SQLite alike
    (its `CAST(x * 1000000 + 0.5 AS INTEGER)`), so a median of per-task sums is the same either way."""
    return int(x * MICRO + 0.5)


@dataclass(frozen=True)
class Graded:
    """What the quality of one attempt is judged on (a receipt's few quality fields)."""

    task_id: str
    outcome: str
    check: str | None
    flagged: bool
    hunks_proposed: int
    hunks_approved: int
    hunks_rejected: int
    cost_usd: float
    wall_s: float

    @classmethod
    def of(cls, r: Receipt) -> Graded:
        return cls(r.task_id, r.outcome, r.check, bool(r.warnings), r.hunks_proposed, r.hunks_approved,
                   r.hunks_rejected, r.cost_usd, r.wall_s)

    @property
    def reviewed(self) -> bool:
        """Has the user decided any hunk of this attempt's diff?"""
        return self.outcome in REVIEWED or self.hunks_approved + self.hunks_rejected > 0


def quality(receipts: Iterable[Receipt | Graded]) -> dict[str, Any]:
    """How good a group's results were: the ReceiptGroup quality fields.

    Approval rate: approved hunks over the hunks proposed by attempts the user reviewed (a diff still
    waiting for review counts for nothing yet). Check pass rate: attempts whose last check passed,
    over those that ran one. Median cost and time: per task with an approved hunk, over all its
    attempts in the group (summed in millionths).
    """
    rs = [r if isinstance(r, Graded) else Graded.of(r) for r in receipts]
    done = [r for r in rs if r.reviewed]
    proposed = sum(max(r.hunks_proposed, r.hunks_approved + r.hunks_rejected) for r in done)
    approved = sum(r.hunks_approved for r in done)
    checked = [r for r in rs if r.check is not None]
    passed = sum(1 for r in checked if r.check == "passed")
    winners = {r.task_id for r in rs if r.hunks_approved > 0}
    cost: dict[str, int] = {}
    wall: dict[str, int] = {}
    for r in rs:
        if r.task_id in winners:
            cost[r.task_id] = cost.get(r.task_id, 0) + micro(r.cost_usd)
            wall[r.task_id] = wall.get(r.task_id, 0) + micro(r.wall_s)
    return {
        "hunks_proposed": proposed, "hunks_approved": approved,
        "hunks_rejected": sum(r.hunks_rejected for r in done),
        "approval_rate": round(approved / proposed, 4) if proposed else None,
        "checks": len(checked), "checks_passed": passed,
        "check_pass_rate": round(passed / len(checked), 4) if checked else None,
        "flagged": sum(1 for r in rs if r.flagged),
        "approved_tasks": len(winners),
        "median_cost_usd": round(median(cost.values()) / MICRO, 6) if cost else None,
        "median_wall_s": round(median(wall.values()) / MICRO, 3) if wall else None,
    }


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
                         cost_usd=round(sum(r.cost_usd for r in rs), 6), unpriced=sum(1 for r in rs if not r.priced),
                         **quality(rs))
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


# Two passes over the covering index (daemon/history_schema.py: RECEIPT_KEYS, whose quality columns
# hold `quality`'s per-receipt terms): the sums by key, then each task's cost and time by key and task
# for the tasks with an approved hunk and their median (in the index's order when grouped by model).
_WHERE_SQL = "WHERE r_model IS NOT NULL AND id >= ? AND created_at >= ?"
_SUMS_SQL = ("SELECT {key} AS k, COUNT(*), SUM(r_tokens_in), SUM(r_tokens_out), SUM(cost_usd), SUM(r_priced = 0), "
             "SUM(r_proposed), SUM(r_approved), SUM(r_rejected), COUNT(r_check), SUM(r_check = 'passed'), "
             "SUM(r_flagged) FROM receipts INDEXED BY {index} " + _WHERE_SQL + " GROUP BY k")
_TASKS_SQL = ("SELECT {key} AS k, MAX(r_approved) > 0, SUM(r_cost_m), SUM(r_wall_m) "
              "FROM receipts INDEXED BY {index} " + _WHERE_SQL + " GROUP BY k, task_id")


def summarize_stored(db: sqlite3.Connection, by: ReceiptGrouping, since: float | None = None,
                     limit: int = 100_000) -> ReceiptSummary:
    """`summarize` over the newest `limit` stored receipts, summed and graded by SQLite from a covering
    index: a year of receipts is not read record by record. Receipts whose record cannot be read are
    skipped, as `Store.receipts` skips them."""
    first = 0
    if int(db.execute("SELECT COUNT(*) FROM receipts").fetchone()[0]) > limit:
        first = int(db.execute("SELECT id FROM receipts INDEXED BY receipts_id ORDER BY id DESC LIMIT 1 OFFSET ?",
                               (limit - 1,)).fetchone()[0])
    args = (first, -1e300 if since is None else since)
    fill = {"key": _KEY_SQL[by], "index": history_schema.RECEIPT_INDEX}
    tasks: dict[str, int] = {}
    costs: dict[str, list[int]] = {}
    walls: dict[str, list[int]] = {}
    for k, won, cost_m, wall_m in db.execute(_TASKS_SQL.format(**fill), args):
        tasks[k] = tasks.get(k, 0) + 1
        if won:
            costs.setdefault(k, []).append(cost_m)
            walls.setdefault(k, []).append(wall_m)
    rows = []
    for k, n, tin, tout, cost, unpriced, proposed, approved, rejected, checks, passed, flagged in db.execute(
            _SUMS_SQL.format(**fill), args):
        proposed, approved, passed = int(proposed or 0), int(approved or 0), int(passed or 0)
        won = k in costs
        rows.append(ReceiptGroup(
            key=str(k), receipts=n, tasks=tasks.get(k, 0), tokens_input=int(tin or 0), tokens_output=int(tout or 0),
            cost_usd=round(cost or 0.0, 6), unpriced=int(unpriced or 0), hunks_proposed=proposed,
            hunks_approved=approved, hunks_rejected=int(rejected or 0),
            approval_rate=round(approved / proposed, 4) if proposed else None, checks=checks, checks_passed=passed,
            check_pass_rate=round(passed / checks, 4) if checks else None, flagged=int(flagged or 0),
            approved_tasks=len(costs[k]) if won else 0,
            median_cost_usd=round(median(costs[k]) / MICRO, 6) if won else None,
            median_wall_s=round(median(walls[k]) / MICRO, 3) if won else None))
    rows.sort(key=(lambda g: g.key) if by == "day" else (lambda g: (-g.cost_usd, g.key)))
    return ReceiptSummary(by=by, groups=rows, total_usd=round(sum(g.cost_usd for g in rows), 6))
