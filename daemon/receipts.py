"""Receipt arithmetic: a job's summed receipt, and spending and quality grouped by model, day, job or tier."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from statistics import median
from typing import Any

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


REVIEWED = ("approved", "rejected", "partial")


def reviewed(r: Receipt) -> bool:
    """Has the user decided any hunk of this attempt's diff?"""
    return r.outcome in REVIEWED or r.hunks_approved + r.hunks_rejected > 0


def quality(receipts: list[Receipt]) -> dict[str, Any]:
    """How good a group's results were: the ReceiptGroup quality fields.

    Approval rate: approved hunks over the hunks proposed by attempts the user reviewed (a diff still
    waiting for review counts for nothing yet). Check pass rate: attempts whose last check passed,
    over those that ran one. Median cost and time: per task with an approved hunk, over all its
    attempts in the group.
    """
    done = [r for r in receipts if reviewed(r)]
    proposed = sum(max(r.hunks_proposed, r.hunks_approved + r.hunks_rejected) for r in done)
    approved = sum(r.hunks_approved for r in done)
    checked = [r for r in receipts if r.check is not None]
    passed = sum(1 for r in checked if r.check == "passed")
    winners = {r.task_id for r in receipts if r.hunks_approved > 0}
    cost: dict[str, float] = {}
    wall: dict[str, float] = {}
    for r in receipts:
        if r.task_id in winners:
            cost[r.task_id] = cost.get(r.task_id, 0.0) + r.cost_usd
            wall[r.task_id] = wall.get(r.task_id, 0.0) + r.wall_s
    return {
        "hunks_proposed": proposed, "hunks_approved": approved,
        "hunks_rejected": sum(r.hunks_rejected for r in done),
        "approval_rate": round(approved / proposed, 4) if proposed else None,
        "checks": len(checked), "checks_passed": passed,
        "check_pass_rate": round(passed / len(checked), 4) if checked else None,
        "flagged": sum(1 for r in receipts if r.warnings),
        "approved_tasks": len(winners),
        "median_cost_usd": round(median(cost.values()), 6) if cost else None,
        "median_wall_s": round(median(wall.values()), 3) if wall else None,
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
