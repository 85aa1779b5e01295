"""Receipts: one row per attempt, or sums by model, day, job or tier."""

from __future__ import annotations

import argparse

from daemon import protocol as p
from daemon.cli.output import out, paint, table
from daemon.client import PasClient
from daemon.errors import PasError
from daemon.receipts import REVIEWED


def rate(part: int, whole: int) -> str:
    """`50% (1/2)`; `-` when there is nothing to rate."""
    return f"{round(100 * part / whole)}% ({part}/{whole})" if whole else "-"


def hunks(r: p.Receipt) -> str:
    """Approved of proposed hunks once reviewed ("1/2"), else the hunks proposed ("-/2")."""
    if r.outcome in REVIEWED or r.hunks_approved or r.hunks_rejected:
        return f"{r.hunks_approved}/{r.hunks_proposed}"
    return f"-/{r.hunks_proposed}" if r.hunks_proposed else "-"


async def cmd_receipts(args: argparse.Namespace, c: PasClient) -> int:
    if args.by:
        return await cmd_receipts_by(args, c)
    rs = await c.receipts(p.ReceiptsParams(task_id=args.task, limit=args.limit))
    # a revision's attempt says which round it answered: "2 r1"
    rows = [[r.task_id, str(r.attempt) + (f" r{r.revision}" if r.revision else ""),
             r.provider.model + (f" ({r.engine})" if r.engine != "native" else ""),
             _tokens_in(r.tokens), _tokens_out(r.tokens),
             f"{r.cost_usd:.6f}" + ("" if r.priced else "*"), f"{r.wall_s:.2f}", str(r.files_changed),
             f"+{r.lines_added}/-{r.lines_removed}", str(len(r.files_read)), r.check or "-", str(r.repair_rounds),
             hunks(r),
             _outcome(r.outcome) + (f" ⚠ {p.warning_text(r.warnings)}" if r.warnings else "")] for r in rs]
    text = table(rows, ["TASK", "TRY", "MODEL", "TOK IN", "TOK OUT", "COST USD", "SECONDS", "FILES", "LINES",
                        "READS", "CHECK", "REPAIRS", "HUNKS", "OUTCOME"]) if rs else "no receipts"
    if any(not r.priced for r in rs):
        text += ("\n* unpriced: the model is not in litellm's price table (set prices in [models.settings]),"
                 " or its engine reported no spend")
    if any(r.tokens.estimated for r in rs):
        text += "\n~ counted here: the provider reported no usage for a reply"
    out(args, rs, text)
    return 0


def _tokens_in(t: p.TokenUsage) -> str:
    cached = f" ({t.cached_input} cached)" if t.cached_input else ""
    return f"{'~' if t.estimated else ''}{t.input}{cached}"


def _tokens_out(t: p.TokenUsage) -> str:
    return f"{'~' if t.estimated else ''}{t.output}"


def _outcome(text: str) -> str:
    return paint(text, "red" if text.startswith("failed") else "yellow" if text == "review" else None)


async def cmd_receipts_by(args: argparse.Namespace, c: PasClient) -> int:
    if args.task:
        raise PasError("--by sums every receipt; it does not take --task")
    summary = await c.receipts_summary(p.ReceiptsSummaryParams(by=args.by))
    rows = [[g.key, str(g.receipts), str(g.tasks), str(g.tokens_input), str(g.tokens_output),
             f"{g.cost_usd:.6f}" + ("*" if g.unpriced else ""), rate(g.hunks_approved, g.hunks_proposed),
             rate(g.checks_passed, g.checks), str(g.flagged),
             "-" if g.median_cost_usd is None else f"{g.median_cost_usd:.6f}",
             "-" if g.median_wall_s is None else f"{g.median_wall_s:.1f}"] for g in summary.groups]
    text = table(rows, [args.by.upper(), "RECEIPTS", "TASKS", "TOK IN", "TOK OUT", "COST USD", "APPROVED",
                        "CHECKS OK", "FLAGGED", "MEDIAN USD", "MEDIAN S"])
    text = f"{text}\ntotal ${summary.total_usd:.6f}" if rows else "no receipts"
    if any(g.unpriced for g in summary.groups):
        text += "\n* includes unpriced receipts (set prices in [models.settings])"
    out(args, summary, text)
    return 0


