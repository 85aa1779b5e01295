"""The receipts screen: totals per model and per day, quality per model, and cost over time."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Sparkline, Static

from daemon.protocol import Receipt
from daemon.receipts import quality
from pas_tui import totals
from pas_tui.format import cost, duration, tokens

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
    ReceiptsScreen Sparkline { height: 4; margin: 0 1; }
    """

    def __init__(self, receipts: list[Receipt]) -> None:
        super().__init__()
        self.receipts = list(receipts)

    def compose(self) -> ComposeResult:
        yield Static("", id="receipts-total", classes="caption")
        yield Static("Per model", classes="caption")
        yield DataTable(id="by-model", cursor_type="none")
        yield Static("Quality per model", classes="caption")
        yield DataTable(id="quality", cursor_type="none")
        yield Static("Per day", classes="caption")
        yield DataTable(id="by-day", cursor_type="none")
        yield Static("Cost over time", classes="caption")
        yield Sparkline([], id="cost-spark")
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
        self.query_one(Sparkline).data = totals.cost_series(self.receipts)
