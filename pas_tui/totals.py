"""Receipt arithmetic for the receipts screen: totals per model and per day, cost over time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from daemon.protocol import Receipt


@dataclass
class Totals:
    key: str
    tasks: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0

    def add(self, r: Receipt) -> None:
        self.tasks += 1
        self.tokens_in += r.tokens.input
        self.tokens_out += r.tokens.output + r.tokens.reasoning
        self.cost_usd += r.cost_usd
        self.unpriced += not r.priced


def _group(receipts: Iterable[Receipt], key: Callable[[Receipt], str]) -> list[Totals]:
    out: dict[str, Totals] = {}
    for r in receipts:
        k = key(r)
        out.setdefault(k, Totals(k)).add(r)
    return list(out.values())


def day(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d")


def by_model(receipts: Iterable[Receipt]) -> list[Totals]:
    """Most expensive model first."""
    return sorted(_group(receipts, lambda r: r.provider.model), key=lambda t: (-t.cost_usd, t.key))


def by_day(receipts: Iterable[Receipt]) -> list[Totals]:
    """Newest day first (local time)."""
    return sorted(_group(receipts, lambda r: day(r.created_at)), key=lambda t: t.key, reverse=True)


def cost_over_time(receipts: Iterable[Receipt], buckets: int = 60) -> list[tuple[float, float]]:
    """(start time, cost) of equal time slices from the first receipt to the last; one per receipt if few."""
    rs = sorted(receipts, key=lambda r: r.created_at)
    if len(rs) <= buckets:
        return [(r.created_at, r.cost_usd) for r in rs]
    start, span = rs[0].created_at, (rs[-1].created_at - rs[0].created_at) or 1.0
    out = [0.0] * buckets
    for r in rs:
        out[min(buckets - 1, int((r.created_at - start) / span * buckets))] += r.cost_usd
    return [(start + i * span / buckets, c) for i, c in enumerate(out)]


def cost_series(receipts: Iterable[Receipt], buckets: int = 60) -> list[float]:
    """Cost per equal time slice from the first receipt to the last (one slice per receipt if few)."""
    return [c for _, c in cost_over_time(receipts, buckets)]
