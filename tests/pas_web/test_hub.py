"""The receipts charts' data: the daemon's sums (receipts.series, receipts.summary) as the page draws them."""

from __future__ import annotations

from daemon import protocol as p
from pas_web import charts


def test_the_charts_take_the_daemons_sums_cumulative_per_model_by_day() -> None:
    series = p.ReceiptSeries(
        receipts=5, total_usd=0.6, wall_edges=[0.0, 5.0, 10.0],
        days=[p.DayCost(day="2026-01-01", model="a", cost_usd=0.1, receipts=1),
              p.DayCost(day="2026-01-01", model="b", cost_usd=0.2, receipts=2),
              p.DayCost(day="2026-01-03", model="a", cost_usd=0.3, receipts=2)],
        models=[p.ModelSeries(model="a", receipts=3, cost_usd=0.4, tokens_input=10, tokens_output=5, tokens_reasoning=1,
                              wall=[2, 1]),
                p.ModelSeries(model="b", receipts=2, cost_usd=0.2, tokens_input=7, tokens_output=3, tokens_reasoning=0,
                              wall=[0, 2])])
    summary = p.ReceiptSummary(by="model", total_usd=0.6, groups=[
        p.ReceiptGroup(key="a", receipts=3, tasks=2, tokens_input=10, tokens_output=5, cost_usd=0.4, approval_rate=0.5,
                       check_pass_rate=1.0)])
    data = charts.data(series, summary)
    assert data["cost"] == {"a": [["2026-01-01", 0.1], ["2026-01-03", 0.4]], "b": [["2026-01-01", 0.2]]}
    assert data["tokens"]["a"] == {"input": 10, "output": 5, "reasoning": 1}
    assert data["wall"] == {"edges": [0.0, 5.0, 10.0], "counts": {"a": [2, 1], "b": [0, 2]}}
    assert data["rates"] == [{"model": "a", "approval": 0.5, "check": 1.0, "receipts": 3, "cost": 0.4}]
    assert (data["receipts"], data["total_usd"]) == (5, 0.6)
