"""The receipts screen: totals per model and per day, quality per model, and cost over time."""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from daemon.protocol import Receipt
from daemon.receipts import quality
from pas_tui import totals
from pas_tui.format import cost, duration, tokens
from pas_tui.totals import day

HEADERS = ("Tasks", "Tokens in", "Tokens out", "Cost")
QUALITY = ("Model", "Tasks", "Approved hunks", "Checks passed", "Flagged", "Median $/approved", "Median time")


def percent(part: int, whole: int) -> str:
    """`75% (3/4)`; `-` when there is nothing to rate."""
    return f"{round(100 * part / whole)}% ({part}/{whole})" if whole else "-"


def quality_row(model: str, receipts: list[Receipt]) -> tuple[str, ...]:
    """One model's row of the quality table (daemon/receipts.py `quality` does the arithmetic)."""
    q = quality(receipts)
    median_cost, median_wall = q["median_cost_usd"], q["median_wall_s"]
    return (model, str(len({r.task_id for r in receipts})), percent(q["hunks_approved"], q["hunks_proposed"]),
            percent(q["checks_passed"], q["checks"]), str(q["flagged"]),
            "-" if median_cost is None else cost(median_cost), "-" if median_wall is None else duration(median_wall))


class ReceiptsScreen(Screen[None]):
    """Built from a list of receipts; `add` keeps it live while it is open."""

    BINDINGS = [Binding("escape,R,q", "app.pop_screen", "Back")]
    DEFAULT_CSS = """
    ReceiptsScreen DataTable { height: auto; max-height: 14; margin: 0 1 1 1; }
    ReceiptsScreen .caption { margin: 0 1; text-style: bold; }
    ReceiptsScreen #cost-chart { height: 1fr; min-height: 10; max-height: 18; margin: 0 1; }
    """

    def __init__(self, receipts: list[Receipt]) -> None:
        super().__init__()
        self.receipts = list(receipts)

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot  # plotext loads only when this screen first opens

        yield Static("", id="receipts-total", classes="caption")
        yield Static("Per model", classes="caption")
        yield DataTable(id="by-model", cursor_type="none")
        yield Static("Quality per model", classes="caption")
        yield DataTable(id="quality", cursor_type="none")
        yield Static("Per day", classes="caption")
        yield DataTable(id="by-day", cursor_type="none")
        yield PlotextPlot(id="cost-chart")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#by-model", DataTable).add_columns("Model", *HEADERS)
        self.query_one("#by-day", DataTable).add_columns("Day", *HEADERS)
        self.query_one("#quality", DataTable).add_columns(*QUALITY)
        self.refresh_totals()

    def add(self, receipt: Receipt) -> None:
        """A new receipt, or a newer version of one (a review decided its hunks): it replaces the old one."""
        key = (receipt.task_id, receipt.attempt)
        self.receipts = [r for r in self.receipts if (r.task_id, r.attempt) != key] + [receipt]
        self.refresh_totals()

    def refresh_totals(self) -> None:
        for table_id, groups in (("#by-model", totals.by_model(self.receipts)),
                                 ("#by-day", totals.by_day(self.receipts))):
            table = self.query_one(table_id, DataTable)
            table.clear()
            for t in groups:
                table.add_row(t.key, str(t.tasks), tokens(t.tokens_in), tokens(t.tokens_out),
                              cost(t.cost_usd) + (f" ({t.unpriced} unpriced)" if t.unpriced else ""))
        by_model: dict[str, list[Receipt]] = {}
        for r in self.receipts:
            by_model.setdefault(r.provider.model, []).append(r)
        table = self.query_one("#quality", DataTable)
        table.clear()
        for model in sorted(by_model):
            table.add_row(*quality_row(model, by_model[model]))
        spent = sum(r.cost_usd for r in self.receipts)
        self.query_one("#receipts-total", Static).update(
            f"Receipts — {len(self.receipts)} task attempts, {cost(spent)} in all")
        self.draw_chart()

    def draw_chart(self) -> None:
        """Cost over time: each attempt (or time slice, when many) as a bar, and the running total."""
        from textual_plotext import PlotextPlot

        chart = self.query_one("#cost-chart", PlotextPlot)
        plt = chart.plt
        plt.clear_figure()
        plt.title("Cost over time")
        points = totals.cost_over_time(self.receipts)
        if not points:
            plt.xlabel("no receipts yet")
            chart.refresh()
            return
        xs = [float(i) for i in range(1, len(points) + 1)]
        costs = [c for _, c in points]
        running = [sum(costs[: i + 1]) for i in range(len(costs))]
        sliced = len(points) < len(self.receipts)
        plt.bar(xs, costs, label="cost of each time slice (left)" if sliced else "cost of each attempt (left)",
                color="cyan", width=0.3)
        plt.plot(xs, running, label="running total (right)", color="magenta", marker="braille", yside="right")
        step = max(1, len(xs) // 6)
        ticks = xs[::step]
        plt.xticks(ticks, [_when(points[int(x) - 1][0], points) for x in ticks])
        plt.xlim(0.5, len(xs) + 0.5)
        for side, top in ((1, max(costs)), (2, running[-1])):  # y axes 1 (left) and 2 (right)
            top = top or 1.0  # all unpriced: an axis from $0 to $1 rather than a flat, unlabelled one
            plt.ylim(0, top * 1.05, yside=side)
            digits = 2 if top >= 1 else 4 if top >= 0.01 else 6  # one precision per axis, enough to tell ticks apart
            plt.yticks([top * i / 4 for i in range(5)], [f"${top * i / 4:.{digits}f}" for i in range(5)], yside=side)
        plt.xlabel("time (local)")
        chart.refresh()


def _when(ts: float, points: list[tuple[float, float]]) -> str:
    """A tick label: the time of day when every point is on one day, else the date and time."""
    one_day = day(points[0][0]) == day(points[-1][0])
    return datetime.fromtimestamp(ts).strftime("%H:%M" if one_day else "%m-%d %H:%M")
