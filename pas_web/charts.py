"""The receipts charts' data, from the daemon's sums over the whole history (`receipts.series` and
`receipts.summary`): the page gets a few hundred numbers, never the receipts themselves."""

from __future__ import annotations

from typing import Any

from daemon import protocol as p


def data(series: p.ReceiptSeries, summary: p.ReceiptSummary) -> dict[str, Any]:
    """Cumulative cost per model by day, tokens per model, the distribution of time per attempt, and per
    model the approval and check-pass rates."""
    cost: dict[str, list[list[Any]]] = {}
    total: dict[str, float] = {}
    for d in series.days:
        total[d.model] = total.get(d.model, 0.0) + d.cost_usd
        cost.setdefault(d.model, []).append([d.day, round(total[d.model], 6)])
    tokens = {m.model: {"input": m.tokens_input, "output": m.tokens_output, "reasoning": m.tokens_reasoning}
              for m in series.models}
    rates = [{"model": g.key, "approval": g.approval_rate, "check": g.check_pass_rate, "receipts": g.receipts,
              "cost": g.cost_usd} for g in summary.groups]
    return {"receipts": series.receipts, "total_usd": series.total_usd, "cost": cost, "tokens": tokens,
            "wall": {"edges": series.wall_edges, "counts": {m.model: m.wall for m in series.models}},
            "rates": rates}
