"""The receipts charts' data, kept by the hub: the newest receipts as small rows, loaded once on the
first look and extended by each receipt event, so a chart costs no trip to the daemon per event."""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any, NamedTuple

from daemon import protocol as p

HELD = 2_000  # the newest receipts the charts are drawn from (10,000 took the daemon ~3 s to send)
POINTS = 600  # at most this many points per model on the cost line (evenly thinned, the last kept)


class Row(NamedTuple):
    key: tuple[str, str, int]  # task, run, attempt: one receipt
    created_at: float
    model: str
    cost: float
    tokens_in: int
    tokens_out: int
    tokens_reasoning: int
    wall_s: float


def row(r: p.Receipt) -> Row:
    return Row((r.task_id, r.run_id, r.attempt), r.created_at, r.provider.model, r.cost_usd, r.tokens.input,
               r.tokens.output, r.tokens.reasoning, r.wall_s)


class Series:
    """The newest HELD receipts, oldest first."""

    def __init__(self, receipts: list[p.Receipt]) -> None:
        self.rows: deque[Row] = deque(sorted((row(r) for r in receipts), key=lambda x: x.created_at), maxlen=HELD)
        self._keys = {x.key for x in self.rows}

    def add(self, receipt: p.Receipt) -> None:
        new = row(receipt)
        if new.key in self._keys:
            return
        if len(self.rows) == self.rows.maxlen:
            self._keys.discard(self.rows[0].key)
        self.rows.append(new)  # receipts arrive in time order
        self._keys.add(new.key)

    def data(self, summary: p.ReceiptSummary) -> dict[str, Any]:
        """Cumulative cost per model over time, tokens per model, the distribution of time per
        attempt, and per model the approval and check-pass rates (from the daemon's summary)."""
        cost: dict[str, list[list[float]]] = defaultdict(list)
        tokens: dict[str, dict[str, int]] = defaultdict(lambda: {"input": 0, "output": 0, "reasoning": 0})
        total: dict[str, float] = defaultdict(float)
        for x in self.rows:
            total[x.model] += x.cost
            cost[x.model].append([x.created_at, round(total[x.model], 6)])
            t = tokens[x.model]
            t["input"] += x.tokens_in
            t["output"] += x.tokens_out
            t["reasoning"] += x.tokens_reasoning
        edges = bins([x.wall_s for x in self.rows])
        hist: dict[str, list[int]] = defaultdict(lambda: [0] * (len(edges) - 1))
        for x in self.rows:
            hist[x.model][which(edges, x.wall_s)] += 1
        rates = [{"model": g.key, "approval": g.approval_rate, "check": g.check_pass_rate, "receipts": g.receipts,
                  "cost": g.cost_usd} for g in summary.groups]
        return {"receipts": len(self.rows), "held": HELD, "total_usd": summary.total_usd,
                "cost": {m: thin(points) for m, points in cost.items()}, "tokens": tokens,
                "wall": {"edges": edges, "counts": hist}, "rates": rates}


def thin(points: list[list[float]], keep: int = POINTS) -> list[list[float]]:
    if len(points) <= keep:
        return points
    step = len(points) / (keep - 1)
    return [points[int(i * step)] for i in range(keep - 1)] + [points[-1]]


def bins(values: list[float], n: int = 12) -> list[float]:
    top = max(values, default=1.0) or 1.0
    step = top / n
    return [round(i * step, 3) for i in range(n)] + [top]


def which(edges: list[float], value: float) -> int:
    for i in range(len(edges) - 1):
        if value < edges[i + 1]:
            return i
    return len(edges) - 2
