"""The receipt of the selected task (tokens, cost, time, changes, checks, refusals), or a job's summed receipt."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from daemon.protocol import CHECK_FAILED, JobTotals, Receipt, warning_text
from pas_tui.format import cost, tokens


def receipt_table(r: Receipt) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    table.add_row("model", r.provider.model)
    table.add_row("tokens in", tokens(r.tokens.input))
    table.add_row("tokens out", tokens(r.tokens.output) + (f" (+{tokens(r.tokens.reasoning)} reasoning)"
                                                           if r.tokens.reasoning else ""))
    table.add_row("cost", cost(r.cost_usd, r.priced))
    table.add_row("wall", f"{r.wall_s:.2f}s")
    table.add_row("llm", f"{r.llm_s:.2f}s")
    table.add_row("files", str(r.files_changed))
    table.add_row("lines", Text.assemble((f"+{r.lines_added}", "green"), " ", (f"-{r.lines_removed}", "red")))
    check = r.check or "none"
    table.add_row("check", f"{check}, {r.check_rounds} round{'s' if r.check_rounds != 1 else ''}")
    table.add_row("refused", Text(str(len(r.refused)), style="red" if r.refused else ""))
    for ref in r.refused:
        table.add_row("", Text(f"{ref.path}: {ref.reason}", style="red"))
    if r.warnings:
        table.add_row("flagged", Text(warning_text(r.warnings), style="bold red" if CHECK_FAILED in r.warnings
                                      else "bold yellow"))
    table.add_row("outcome", r.outcome)
    if r.hunks_approved or r.hunks_rejected:
        table.add_row("hunks", f"{r.hunks_approved} approved, {r.hunks_rejected} rejected of {r.hunks_proposed}")
    return table


def totals_table(t: JobTotals, tasks: int) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    table.add_row("job of", f"{_n(tasks, 'task')}, {_n(t.receipts, 'receipt')}")
    table.add_row("tokens in", tokens(t.tokens.input))
    table.add_row("tokens out", tokens(t.tokens.output) + (f" (+{tokens(t.tokens.reasoning)} reasoning)"
                                                           if t.tokens.reasoning else ""))
    table.add_row("cost", cost(t.cost_usd) + ("" if t.priced else " (some unpriced)"))
    table.add_row("wall", f"{t.wall_s:.2f}s summed")
    table.add_row("llm", f"{t.llm_s:.2f}s")
    table.add_row("files", str(t.files_changed))
    table.add_row("lines", Text.assemble((f"+{t.lines_added}", "green"), " ", (f"-{t.lines_removed}", "red")))
    for tier, n in sorted(t.tiers.items()):
        table.add_row("tier", f"{tier}: {_n(n, 'attempt')}")
    return table


def _n(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


class ReceiptPanel(Static):
    """Beside the diff; empty until the task has a receipt."""

    DEFAULT_CSS = """
    ReceiptPanel { width: 1fr; min-width: 30; max-width: 44; height: 1fr; border-left: solid $primary; padding: 0 1; }
    """

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.receipt: Receipt | None = None
        self.totals: JobTotals | None = None

    def show(self, receipt: Receipt | None) -> None:
        self.receipt = receipt
        self.totals = None
        self.update(receipt_table(receipt) if receipt else Text("no receipt yet", style="dim"))

    def show_totals(self, totals: JobTotals, tasks: int) -> None:
        self.receipt = None
        self.totals = totals
        self.update(totals_table(totals, tasks))
