"""The native Programmer engine: snapshot -> model -> edits -> check -> diff + receipt.

`run_task` takes a self-contained TaskSpec and returns an EngineResult; it shares no state
with the scheduler, so a remote backend can run it unchanged.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from daemon.programmer import llm, reads, snapshot
from daemon.programmer.check import require_sandbox, run_check
from daemon.programmer.edits import Edit, EditRefused, apply_edit, parse_reply, resolve_path
from daemon.programmer.guard import NOT_A_TASK_FILE, command_allowed, normalize, refuse_path
from daemon.programmer.prompt import build_messages, repair_message, revision_message
from daemon.programmer.repomap.rank import estimate_tokens
from daemon.programmer.spec import EngineResult, FileChange, ProviderFault, TaskFailed, TaskSpec
from daemon.protocol import (
    CHECK_FAILED,
    EDITS_REFUSED,
    EDITS_UNAPPLIED,
    CheckRun,
    ProviderSnapshot,
    Receipt,
    RefusedEdit,
    TokenUsage,
)

Progress = Callable[[str, str], None]

# The progress phase that carries the attempt's spend after each model reply: the message is the
# receipt the attempt gets if it never finishes (JSON). It travels wherever progress does, so
# every backend reports spend as it happens and the daemon can store it before anything else.
SPEND = "spend"
STOPPED = "failed: the daemon stopped"
# The progress phase of a streaming reply: the message is JSON {"tokens": n, "blocks": n, "final": bool}
# (`streamed` reads it). Sent at most every STREAM_EVERY_S per attempt, and once more when it ends.
STREAM = "stream"
STREAM_EVERY_S = 0.25
_BLOCK_END = re.compile(r"^\s*>{5,9} ?REPLACE<?\s*$")  # as daemon/programmer/edits.py closes a block


def spent(message: str) -> Receipt:
    """The provisional receipt a SPEND progress message carries."""
    return Receipt.model_validate_json(message)


@dataclass
class _Tally:
    """What the attempt has spent so far; becomes the receipt."""

    spec: TaskSpec
    started: float = field(default_factory=time.time)
    tokens: TokenUsage = field(default_factory=TokenUsage)
    cost: float = 0.0
    priced: bool = True
    llm_s: float = 0.0
    calls: int = 0
    checks: list[CheckRun] = field(default_factory=list)
    refused: list[RefusedEdit] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)
    rounds: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # set once the last round is over

    def add(self, reply: llm.Reply, kind: str = "first") -> None:
        self.tokens = self.tokens.plus(reply.tokens)
        self.cost += reply.cost_usd
        self.priced = self.priced and reply.priced
        self.llm_s += reply.seconds
        self.calls += 1
        self.rounds[kind] = self.rounds.get(kind, 0) + 1

    def receipt(self, outcome: str, changes: list[FileChange] | None = None) -> Receipt:
        spec = self.spec
        added = removed = hunks = 0
        for ch in changes or []:
            a, r, h = _line_delta(ch.base, ch.proposed)
            added, removed, hunks = added + a, removed + r, hunks + h
        check = None
        if self.checks:
            check = "passed" if self.checks[-1].exit_code == 0 else "failed"
        return Receipt(
            task_id=spec.task_id, run_id=spec.run_id, attempt=spec.attempt, programmer=spec.programmer,
            provider=ProviderSnapshot(provider=llm.provider_of(spec.model.model), model=spec.model.model,
                                      api_base=spec.model.api_base, params=spec.model.params,
                                      litellm_version=llm.version()),
            tokens=self.tokens, cost_usd=round(self.cost, 6), priced=self.priced and self.calls > 0,
            wall_s=round(time.time() - self.started, 4), llm_s=round(self.llm_s, 4), llm_calls=self.calls,
            files_changed=len(changes or []), lines_added=added, lines_removed=removed,
            check=check, check_rounds=len(self.checks), refused=list(self.refused),
            checks=[c.model_copy(update={"output": c.output[-2000:]}) for c in self.checks],
            outcome=outcome, created_at=time.time(), files_read=list(self.files_read), rounds=dict(self.rounds),
            warnings=list(self.warnings), repair_rounds=self.rounds.get("repair", 0), hunks_proposed=hunks,
            map_tokens=estimate_tokens(spec.repo_map),
            revision=spec.revision.number if spec.revision else 0,
        )


@dataclass
class Streamed:
    """Where a streaming reply stands: output tokens and complete edit blocks so far."""

    tokens: int = 0
    blocks: int = 0
    final: bool = False

    def message(self) -> str:
        return json.dumps({"tokens": self.tokens, "blocks": self.blocks, "final": self.final})


def streamed(message: str) -> Streamed:
    """The counts a STREAM progress message carries."""
    data = json.loads(message)
    return Streamed(tokens=int(data.get("tokens", 0)), blocks=int(data.get("blocks", 0)),
                    final=bool(data.get("final", False)))


class _Counter:
    """Counts a reply as it streams and reports it through progress, throttled.

    Tokens are estimated from the text while it streams (about 4 characters each) and replaced by
    the provider's count when the reply ends; blocks are complete `>>>>>>> REPLACE` lines.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.chars = 0
        self.blocks = 0
        self.line = ""  # the tail of the current line: enough to recognise a marker
        self.sent = 0.0

    def __call__(self, piece: str) -> None:
        self.chars += len(piece)
        *done, rest = (self.line + piece).split("\n")
        self.blocks += sum(1 for line in done if _BLOCK_END.match(line))
        self.line = rest[-64:]
        now = time.monotonic()
        if now - self.sent >= STREAM_EVERY_S:
            self.sent = now
            self.progress(STREAM, Streamed(tokens=(self.chars + 3) // 4, blocks=self.blocks).message())

    def end(self, tokens: int) -> None:
        blocks = self.blocks + (1 if _BLOCK_END.match(self.line) else 0)
        self.progress(STREAM, Streamed(tokens=tokens, blocks=blocks, final=True).message())


def _line_delta(base: str, new: str) -> tuple[int, int, int]:
    """Lines added and removed, and hunks as review numbers them (daemon/programmer/diffs.py)."""
    from daemon.programmer.diffs import LineMatcher, split_lines  # difflib's matcher is quadratic on repeats

    added = removed = 0
    for tag, i1, i2, j1, j2 in LineMatcher(base.splitlines(), new.splitlines()).get_opcodes():
        if tag in ("replace", "delete"):
            removed += i2 - i1
        if tag in ("replace", "insert"):
            added += j2 - j1
    hunks = sum(1 for _ in LineMatcher(split_lines(base), split_lines(new)).get_grouped_opcodes(3))
    return added, removed, hunks


async def run_task(spec: TaskSpec, progress: Progress) -> EngineResult:
    """Run one attempt; raises TaskFailed (a verdict) or ProviderFault (worth a retry)."""
    if spec.engine != "native":
        from daemon.programmer.engines.runner import run_external  # an external tool in the snapshot

        return await run_external(spec, progress)
    tally = _Tally(spec)
    return await bounded(spec, _attempt(spec, progress, tally), tally.receipt)


async def bounded(spec: TaskSpec, attempt: Awaitable[EngineResult],
                  receipt: Callable[[str], Receipt]) -> EngineResult:
    """An attempt within the task's time limit, each failure carrying the receipt of what it spent
    (every engine's attempt goes through here)."""
    try:
        async with asyncio.timeout(spec.limits.timeout_s):
            return await attempt
    except TimeoutError:
        raise TaskFailed("timeout", f"the task ran past its {spec.limits.timeout_s:g} s limit",
                         receipt=receipt("failed: timeout")) from None
    except TaskFailed as exc:
        exc.receipt = exc.receipt or receipt(f"failed: {exc.reason}")
        raise
    except ProviderFault as exc:
        exc.receipt = receipt(f"failed: {exc.reason}")
        raise


async def _attempt(spec: TaskSpec, progress: Progress, tally: _Tally) -> EngineResult:
    workspace = Path(spec.workspace)
    if spec.check and not command_allowed(spec.check, spec.allow_commands):
        raise TaskFailed("guardrail", f"check command not in the allowlist: {spec.check}")
    if spec.check:
        await require_sandbox(spec)  # before the model is paid for a task whose check cannot run
    progress("snapshot", "taking a snapshot of the workspace")
    mode = snapshot.effective_mode(spec.snapshot, bool(spec.check))
    try:
        if mode == "copy":  # nothing runs in a copy of a task without a check: its files are edited in memory
            snap = await snapshot.in_memory(workspace, spec.files)
        else:
            snap = await snapshot.create(workspace, spec.files, Path(spec.worktrees_dir),
                                         f"{spec.task_id}-{spec.attempt}", mode, slot=spec.programmer)
    except snapshot.UnusableFile as exc:
        raise _unusable(exc) from None
    try:
        return await _rounds(spec, progress, tally, snap)
    finally:
        if snap.dir is not None:
            await asyncio.shield(snap.remove())


async def _rounds(spec: TaskSpec, progress: Progress, tally: _Tally, snap: snapshot.Snapshot) -> EngineResult:
    workspace = Path(spec.workspace)
    base: dict[str, str | None] = dict(snap.base)
    contents: dict[str, str | None] = dict(snap.base)
    if spec.revision is not None:
        messages = await _resume(spec, snap, base, contents)
    else:
        messages = build_messages(spec, contents)
    revised = _proposal(base, contents) if spec.revision is not None else None  # what a revision starts from
    limits, ctx = spec.limits, spec.context
    problems: list[str] = []
    unapplied: list[str] = []  # this round's edits that did not apply (malformed, path or SEARCH not found)
    refused_from = 0  # this round's refusals are tally.refused[refused_from:]
    kind, repairs, read_rounds, proposed = "first", 0, 0, False
    while True:
        if limits.budget_usd is not None and tally.cost >= limits.budget_usd:
            raise TaskFailed("budget", f"stopped before the next model call: spent ${tally.cost:.6f} "
                                       f"of a ${limits.budget_usd:g} budget")
        note = {"first": "", "read": " (with the files it asked for)", "repair": f" (repair round {repairs})"}
        progress("model", f"asking {spec.model.model}{note[kind]}")
        counter = _Counter(progress)
        reply = await llm.complete(spec.model, messages, limits.model_timeout_s, counter)
        counter.end(reply.tokens.output)
        tally.add(reply, kind)
        progress(SPEND, tally.receipt(STOPPED).model_dump_json())
        messages.append({"role": "assistant", "content": reply.text})

        progress("edit", "applying edits")
        parsed = parse_reply(reply.text)
        problems = list(parsed.problems)
        unapplied, refused_from = list(parsed.problems), len(tally.refused)
        proposed = proposed or bool(parsed.edits)
        if kind == "first" and not (parsed.edits or parsed.problems or parsed.reads):
            raise TaskFailed("no_edits", "the model answered without any SEARCH/REPLACE edit")
        applied = 0
        for edit in parsed.edits:
            applied += await _apply(spec, tally, snap, edit, base, contents, problems, unapplied)

        answers: list[reads.ReadAnswer] | None = None
        if parsed.reads and read_rounds < ctx.max_reads:
            read_rounds += 1
            progress("read", f"reading {len(parsed.reads)} file(s) the model asked for")
            answers = await reads.answer(workspace, parsed.reads, ctx, set(spec.files), tally.files_read)
            tally.files_read += [a.path for a in answers if a.text is not None]
        elif parsed.reads:
            problems.append("file requests refused: " + (f"the {ctx.max_reads} read round(s) are used up"
                            if ctx.max_reads else "this task takes no file requests")
                            + "; answer with SEARCH/REPLACE blocks against the files you have")

        check_output: str | None = None
        changed = any(contents[p] != base.get(p) for p in contents)
        if spec.check and changed and answers is None and snap.root is not None:  # a model still reading
            progress("check", f"running {spec.check}")  # has not finished its edits
            run = await run_check(spec, snap.root, repairs)
            tally.checks.append(run)
            if run.exit_code != 0:
                check_output = run.output or f"exit code {run.exit_code}"
        if answers is not None:
            messages.append(repair_message(problems, check_output, contents, answers, ctx.max_reads - read_rounds,
                                           show_files=applied > 0))
            kind = "read"
            continue
        if (problems or check_output is not None) and repairs < limits.max_rounds:
            repairs += 1
            messages.append(repair_message(problems, check_output, contents))
            kind = "repair"
            continue
        break

    progress("diff", "computing the diff")
    changes = [FileChange(path=p, base=base.get(p) or "", proposed=c or "", created=base.get(p) is None)
               for p, c in sorted(contents.items()) if c is not None and c != base.get(p)]
    if not changes:
        if problems:
            raise TaskFailed("edits_failed", "no edit applied: " + "; ".join(problems)[:800])
        if not proposed:
            raise TaskFailed("no_edits", "the model answered without any SEARCH/REPLACE edit")
        raise TaskFailed("no_change", "the model's edits change nothing")
    if revised is not None and _proposal(base, contents) == revised:
        if problems:
            raise TaskFailed("edits_failed", "no edit of the revision applied: " + "; ".join(problems)[:800])
        raise TaskFailed("no_change", "the revision's edits change nothing in the proposal")
    tally.warnings = verdict(tally.checks, tally.refused[refused_from:], unapplied)
    return EngineResult(changes=changes, receipt=tally.receipt("review", changes), checks=tally.checks,
                        refused=tally.refused, unapplied=unapplied, messages=messages)


def _proposal(base: dict[str, str | None], contents: dict[str, str | None]) -> dict[str, str | None]:
    return {p: c for p, c in contents.items() if c != base.get(p)}


async def _resume(spec: TaskSpec, snap: snapshot.Snapshot, base: dict[str, str | None],
                  contents: dict[str, str | None]) -> list[dict[str, str]]:
    """A revision starts where the proposal left off: the snapshot holds the proposed files (whatever
    the user's tree holds now), their base is the task's original base, and the conversation goes on."""
    rev = spec.revision
    assert rev is not None
    allowed = set(spec.files) | {c.path for c in rev.files}
    for ch in rev.files:
        if why := refuse_path(snap.root or Path(spec.workspace), ch.path, allowed, spec.allow_files):
            raise TaskFailed("guardrail", f"cannot revise {ch.path}: {why}")
        base[ch.path] = None if ch.created else ch.base
        contents[ch.path] = ch.proposed
        await _write_in(snap, ch.path, ch.proposed)
    return [*rev.messages, revision_message(rev.comment, rev.hunks, contents)]


def verdict(checks: list[CheckRun], refused: list[RefusedEdit], unapplied: list[str]) -> list[str]:
    """What keeps a result from being a good one once the last round is over (empty: nothing)."""
    warnings = []
    if checks and checks[-1].exit_code != 0:
        warnings.append(CHECK_FAILED)
    if refused:
        warnings.append(EDITS_REFUSED)
    if unapplied:
        warnings.append(EDITS_UNAPPLIED)
    return warnings


async def _apply(spec: TaskSpec, tally: _Tally, snap: snapshot.Snapshot, edit: Edit, base: dict[str, str | None],
                 contents: dict[str, str | None], problems: list[str], unapplied: list[str]) -> int:
    """Apply one block in the snapshot (1), or say in `problems` why not (0); a block refused by the
    guardrails goes to `tally.refused`, one that does not apply (its path or SEARCH not found) to `unapplied`."""
    workspace = Path(spec.workspace)
    allowed = set(spec.files)
    try:
        path = normalize(resolve_path(edit.path, allowed, spec.allow_files))
    except EditRefused as exc:
        problems.append(str(exc))
        unapplied.append(str(exc))
        return 0
    why = (refuse_path(snap.root, path, allowed, spec.allow_files) if snap.root is not None else None) or refuse_path(
        workspace, path, allowed, spec.allow_files)
    if why == NOT_A_TASK_FILE and path in tally.files_read:
        why = "read-only: it was sent because you asked to read it; only the task's files can be edited"
    if why:
        tally.refused.append(RefusedEdit(path=path, reason=why))
        problems.append(f"{path}: refused, {why}")
        return 0
    if path not in contents:
        # a file admitted by the project's allowlist globs: like the task's files, its base is
        # the user's file as it is now (it may be untracked or edited)
        try:
            current = await asyncio.to_thread(snapshot.read_text, workspace, path)
        except snapshot.UnusableFile as exc:
            raise _unusable(exc) from None
        contents[path] = base[path] = current
        if current is not None:
            await _write_in(snap, path, current)
    try:
        new = apply_edit(contents[path] or "", edit)
    except EditRefused as exc:
        problems.append(str(exc))
        unapplied.append(str(exc))
        return 0
    contents[path] = new
    await _write_in(snap, path, new)
    return 1


def _unusable(exc: snapshot.UnusableFile) -> TaskFailed:
    """A file pasd cannot work on is the task's problem, not the programmer's: fail it, never retry."""
    return TaskFailed(exc.reason, f"{exc.path} {exc.why}; pasd edits text files only")


async def _write_in(snap: snapshot.Snapshot, rel: str, text: str) -> None:
    """Write a file of the snapshot's tree (none when its files are held in memory)."""
    if snap.root is not None:
        await asyncio.to_thread(_write, snap.root / rel, text)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(text)
