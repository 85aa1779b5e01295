"""Receipts: one row per attempt, or sums by model, day, job or tier."""

from __future__ import annotations

import argparse

from daemon import protocol as p
from daemon.cli.output import out, table
from daemon.client import PasClient
from daemon.errors import PasError


async def cmd_receipts(args: argparse.Namespace, c: PasClient) -> int:
    if args.by:
        return await cmd_receipts_by(args, c)
    rs = await c.receipts(p.ReceiptsParams(task_id=args.task, limit=args.limit))
    rows = [[r.task_id, str(r.attempt), r.provider.model, str(r.tokens.input), str(r.tokens.output),
             f"{r.cost_usd:.6f}" + ("" if r.priced else "*"), f"{r.wall_s:.2f}", str(r.files_changed),
             f"+{r.lines_added}/-{r.lines_removed}", r.outcome] for r in rs]
    text = table(rows, ["TASK", "TRY", "MODEL", "TOK IN", "TOK OUT", "COST USD", "SECONDS", "FILES", "LINES",
                        "OUTCOME"]) if rs else "no receipts"
    if any(not r.priced for r in rs):
        text += "\n* unpriced: the model is not in litellm's price table (set prices in [models.settings])"
    out(args, rs, text)
    return 0


async def cmd_receipts_by(args: argparse.Namespace, c: PasClient) -> int:
    if args.task:
        raise PasError("--by sums every receipt; it does not take --task")
    summary = await c.receipts_summary(p.ReceiptsSummaryParams(by=args.by))
    rows = [[g.key, str(g.receipts), str(g.tasks), str(g.tokens_input), str(g.tokens_output),
             f"{g.cost_usd:.6f}" + ("*" if g.unpriced else "")] for g in summary.groups]
    text = table(rows, [args.by.upper(), "RECEIPTS", "TASKS", "TOK IN", "TOK OUT", "COST USD"])
    text = f"{text}\ntotal ${summary.total_usd:.6f}" if rows else "no receipts"
    if any(g.unpriced for g in summary.groups):
        text += "\n* includes unpriced receipts (set prices in [models.settings])"
    out(args, summary, text)
    return 0


