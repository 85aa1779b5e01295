"""Run an external engine on a task: the same snapshot, guardrails, check, repair rounds, diff and
receipt as the native engine, with the tool in place of the model call.

The tool runs in the task's private snapshot (its cwd), in a process group of its own (killed with
everything it started at the task's timeout or when the task is cancelled), under bubblewrap where
the guardrails use it (only the snapshot writable, the daemon's state and the user's credential
files hidden), with an environment of PATH, a private HOME, LANG, TMPDIR and what the engine asks
for (the task's provider key and endpoint): none of the daemon's other variables.

Afterwards pasd compares the snapshot with what it was before the run. A change to a task file (or
a file the project's `allow_files` admits) is proposed; any other change (another file, a symlink,
anything under `.git`, a deletion, a non-text file) is refused, reported as a RefusedEdit, undone in
the snapshot where it can be, and never offered for review.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from daemon import paths
from daemon.programmer import sandbox, snapshot
from daemon.programmer.check import require_sandbox, run_check
from daemon.programmer.engine import SPEND, STOPPED, Progress, _Tally, _unusable, _write, bounded, verdict
from daemon.programmer.engines import base, changes, get
from daemon.programmer.engines.changes import Entry
from daemon.programmer.guard import command_allowed, refuse_path
from daemon.programmer.proc import TRUNCATED, GitError, git, run
from daemon.programmer.spec import EngineResult, FileChange, ProviderFault, TaskFailed, TaskSpec
from daemon.protocol import Receipt, RefusedEdit, TokenUsage
from daemon.secrets import redact, secret_values

MAX_REFUSED = 50  # refusals reported per round: a tool that writes a whole tree is told about the first ones
OUTPUT_BYTES = 256_000  # of the tool's stdout and stderr each: enough for its report and its spend


async def run_external(spec: TaskSpec, progress: Progress) -> EngineResult:
    """Run one attempt with the spec's external engine; raises TaskFailed or ProviderFault like run_task."""
    tally = _Tally(spec)
    run_ = _Run(spec, progress, tally)
    return await bounded(spec, run_.attempt(), run_.receipt)


@dataclass
class _Found:
    exe: str
    version: str | None


class _Run:
    def __init__(self, spec: TaskSpec, progress: Progress, tally: _Tally) -> None:
        self.spec = spec
        self.progress = progress
        self.tally = tally
        self.version: str | None = None
        self.reported = True  # every run of the tool reported its spend

    def receipt(self, outcome: str, changes: list[FileChange] | None = None) -> Receipt:
        r = self.tally.receipt(outcome, changes)
        return r.model_copy(update={"engine": self.spec.engine, "engine_version": self.version,
                                    "priced": r.priced and self.reported})

    async def attempt(self) -> EngineResult:
        spec = self.spec
        try:
            engine = get(spec.engine)
        except KeyError:
            raise TaskFailed("engine", f"unknown engine {spec.engine!r}") from None
        found = await asyncio.to_thread(engine.find, spec.engine_settings)
        if not found.installed or not found.path:
            raise TaskFailed("engine", f"engine {spec.engine!r} is not installed; install it with: {found.install}")
        self.version = found.version
        if spec.check and not command_allowed(spec.check, spec.allow_commands):
            raise TaskFailed("guardrail", f"check command not in the allowlist: {spec.check}")
        if spec.check:
            await require_sandbox(spec)
        box_exe = await self._sandbox()
        self.progress("snapshot", "taking a snapshot of the workspace")
        try:
            snap = await snapshot.create(Path(spec.workspace), spec.files, Path(spec.worktrees_dir),
                                         f"{spec.task_id}-{spec.attempt}",
                                         snapshot.effective_mode(spec.snapshot, bool(spec.check)),
                                         slot=spec.programmer)
        except snapshot.UnusableFile as exc:
            raise _unusable(exc) from None
        home = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="engine-home-", dir=spec.worktrees_dir))
        try:
            return await self._rounds(engine, _Found(found.path, found.version), snap, home, box_exe)
        finally:
            await asyncio.shield(snap.remove())
            await asyncio.to_thread(shutil.rmtree, home, True)

    async def _sandbox(self) -> str | None:
        if self.spec.limits.sandbox == "off":
            return None
        exe, why = await sandbox.bwrap()
        if exe is None and self.spec.limits.sandbox == "bwrap":
            raise TaskFailed("sandbox", f"engine not run: [guardrails] sandbox = \"bwrap\", but {why}")
        return exe

    async def _rounds(self, engine: base.ExternalEngine, found: _Found, snap: snapshot.Snapshot, home: Path,
                      box_exe: str | None) -> EngineResult:
        spec, tally = self.spec, self.tally
        root = snap.root
        assert root is not None  # create() always makes a tree for the tool to work in
        top = changes.top(root, Path(spec.worktrees_dir))
        base_: dict[str, str | None] = dict(snap.base)
        messages: list[dict[str, str]] = []
        if spec.revision is not None:
            rev = spec.revision
            for ch in rev.files:
                if why := refuse_path(root, ch.path, set(spec.files) | {c.path for c in rev.files}, spec.allow_files):
                    raise TaskFailed("guardrail", f"cannot revise {ch.path}: {why}")
                base_[ch.path] = None if ch.created else ch.base
                await asyncio.to_thread(_write, root / ch.path, ch.proposed)
            messages = list(rev.messages)
            prompt = revision_prompt(rev.comment, rev.hunks)
        else:
            prompt = task_prompt(spec)
        allowed = set(spec.files) | set(base_)
        refused_keys: set[tuple[str, str]] = set()
        limits = spec.limits
        round_no = 0
        contents: dict[str, str | None] = {}
        round_refused: list[RefusedEdit] = []
        while True:
            if limits.budget_usd is not None and tally.cost >= limits.budget_usd:
                raise TaskFailed("budget", f"stopped before the next run of {spec.engine}: spent ${tally.cost:.6f} "
                                           f"of a ${limits.budget_usd:g} budget")
            inv = await asyncio.to_thread(engine.invoke, self._budgeted(), prompt, root, found.exe, round_no,
                                          spec.engine_settings)
            # the workspace's own config for the tool (.aider.conf.yml, ...) is not the workspace's to give
            await asyncio.to_thread(changes.clear, root, inv.scratch)
            before = await asyncio.to_thread(changes.scan, top)
            kind = "first" if round_no == 0 else "repair"
            self.progress("model", f"running {spec.engine}" + (f" (repair round {round_no})" if round_no else ""))
            started = time.monotonic()
            res = await self._run_tool(inv, root, top, home, box_exe)
            tally.llm_s += time.monotonic() - started
            usage = engine.usage(res.stdout, res.stderr, root)
            self._add(usage, kind)
            self.progress(SPEND, self.receipt(STOPPED).model_dump_json())
            messages += [{"role": "user", "content": prompt},
                         {"role": "assistant", "content": _tail(self._clean(res.stdout), 4000)}]

            self.progress("edit", "reading the tool's changes")
            await asyncio.to_thread(changes.clear, root, inv.scratch)
            after = await asyncio.to_thread(changes.scan, top)
            round_refused = []
            tracked: list[str] = []  # refused rewrites of the repository's files: git puts them back
            for rel_top in sorted(set(before) | set(after)):
                if before.get(rel_top) == after.get(rel_top):
                    continue
                why, rel = self._judge(rel_top, top, root, after.get(rel_top), allowed)
                if why is None:
                    continue
                if not await asyncio.to_thread(changes.undo, top, rel_top, before.get(rel_top), rel, root, base_):
                    tracked.append(rel_top)
                if len(round_refused) >= MAX_REFUSED:
                    continue
                refused = RefusedEdit(path=rel, reason=why)
                round_refused.append(refused)
                if (rel, why) not in refused_keys:
                    refused_keys.add((rel, why))
                    tally.refused.append(refused)
            if snap.repo is not None:
                for rel_top in tracked[:MAX_REFUSED]:  # one at a time: a path git does not track fails alone
                    with contextlib.suppress(GitError, OSError):
                        await git(top, "checkout", "--quiet", "HEAD", "--", rel_top)
            contents, unusable = await self._contents(root, allowed, base_, after, top)
            for refused in unusable:
                round_refused.append(refused)
                if (refused.path, refused.reason) not in refused_keys:
                    refused_keys.add((refused.path, refused.reason))
                    tally.refused.append(refused)

            changed = any(contents[p] != base_.get(p) for p in contents)
            if res.code != 0 or not changed:
                said = self._said(engine, res)
                # a provider's failure cut the run short: the attempt is retried whole, as the native
                # engine's is after a fault in any round (aider reports one and exits 0)
                if isinstance(said, ProviderFault) or (isinstance(said, TaskFailed) and not changed):
                    raise said
                if res.code != 0 and not changed:
                    raise _failure(spec, res.code, said if isinstance(said, str) else
                                   self._clean(res.stderr or res.stdout))
            check_output: str | None = None
            if spec.check and changed:
                self.progress("check", f"running {spec.check}")
                run_ = await run_check(spec, root, round_no)
                tally.checks.append(run_)
                if run_.exit_code != 0:
                    check_output = run_.output or f"exit code {run_.exit_code}"
            if (round_refused or check_output is not None) and round_no < limits.max_rounds:
                round_no += 1
                prompt = repair_prompt(spec, round_refused, check_output)
                continue
            break

        self.progress("diff", "computing the diff")
        proposal = [FileChange(path=p, base=base_.get(p) or "", proposed=c or "", created=base_.get(p) is None)
                   for p, c in sorted(contents.items()) if c is not None and c != base_.get(p)]
        if not proposal:
            if round_refused:
                raise TaskFailed("edits_failed", "every change was refused: " + "; ".join(
                    f"{r.path}: {r.reason}" for r in round_refused)[:800])
            raise TaskFailed("no_change", f"{spec.engine} changed none of the task's files")
        tally.warnings = verdict(tally.checks, round_refused, [])
        return EngineResult(changes=proposal, receipt=self.receipt("review", proposal), checks=tally.checks,
                            refused=tally.refused, unapplied=[], messages=messages)

    def _budgeted(self) -> TaskSpec:
        """The spec a run of the tool is given: its budget is what the attempt has left of the task's
        (the runner stops before a run when nothing is left)."""
        limits = self.spec.limits
        if limits.budget_usd is None:
            return self.spec
        left = max(limits.budget_usd - self.tally.cost, 0.0)
        return self.spec.model_copy(update={"limits": limits.model_copy(update={"budget_usd": left})})

    def _said(self, engine: base.ExternalEngine, res: _ToolRun) -> base.Fault | str | None:
        """What the tool says went wrong (its optional `failure`), with every known secret taken out."""
        failure = getattr(engine, "failure", None)
        said = failure(res.stdout, res.stderr) if failure is not None else None
        if isinstance(said, str):
            return self._clean(said) or None
        if isinstance(said, ProviderFault):
            return ProviderFault(said.reason, self._clean(said.message), retry_after=said.retry_after)
        if isinstance(said, TaskFailed):
            return TaskFailed(said.reason, self._clean(said.message))
        return None

    def _add(self, usage: base.Usage, kind: str) -> None:
        spec, tally = self.spec, self.tally
        tally.calls += max(usage.calls, 1)
        tally.rounds[kind] = tally.rounds.get(kind, 0) + 1
        if not usage.reported:
            self.reported = False
            tally.priced = False
            return
        tokens = usage.tokens
        tally.tokens = tally.tokens.plus(tokens)
        if usage.cost_usd is not None:
            tally.cost += usage.cost_usd
        elif spec.model.input_cost_per_token is not None or spec.model.output_cost_per_token is not None:
            tally.cost += _priced(spec, tokens)  # the tool had no price; the user's config has one
        else:
            tally.priced = False

    def _judge(self, rel_top: str, top: Path, root: Path, entry: Entry | None,
               allowed: set[str]) -> tuple[str | None, str]:
        """Why a change the tool made must be refused (None: it may be proposed), and its workspace path."""
        spec = self.spec
        try:
            rel = (top / rel_top).relative_to(root).as_posix()
        except ValueError:
            return "outside the workspace", os.path.relpath(top / rel_top, root)
        if entry is not None and entry[0] == "d":  # a new folder: what matters is what is put in it
            return ("not a regular file", rel) if rel in allowed else (None, rel)
        if rel.split("/", 1)[0] == ".git":
            return "path inside .git", rel
        if entry is not None and entry[0] == "l":
            return "the tool made a symlink; pasd proposes text files only", rel
        if why := refuse_path(root, rel, allowed, spec.allow_files):
            return why, rel
        if entry is None:
            return "deleted; pasd proposes edits, not deletions", rel
        if entry[0] != "f":
            return "not a regular file", rel
        return None, rel

    async def _contents(self, root: Path, allowed: set[str], base_: dict[str, str | None], after: dict[str, Entry],
                        top: Path) -> tuple[dict[str, str | None], list[RefusedEdit]]:
        """The proposable files as the tool left them; files admitted by `allow_files` get the user's
        current file as their base, as the native engine gives them."""
        spec = self.spec
        workspace = Path(spec.workspace)
        prefix = root.relative_to(top).as_posix() if root != top else ""
        extra = []
        for rel_top, entry in after.items():
            rel = rel_top[len(prefix) + 1:] if prefix and rel_top.startswith(prefix + "/") else (
                rel_top if not prefix else None)
            if rel is None or rel in allowed or entry[0] != "f":
                continue
            if any(fnmatch.fnmatchcase(rel, g) for g in spec.allow_files):
                extra.append(rel)
        contents: dict[str, str | None] = {}
        refused: list[RefusedEdit] = []

        def read() -> None:
            for rel in [*sorted(allowed), *extra]:
                if rel not in base_:
                    try:
                        base_[rel] = snapshot.read_text(workspace, rel)
                    except snapshot.UnusableFile:
                        base_[rel] = None
                try:
                    contents[rel] = snapshot.read_text(root, rel)
                except snapshot.UnusableFile as exc:
                    refused.append(RefusedEdit(path=rel, reason=exc.why))
                    contents[rel] = base_.get(rel)
                    if base_.get(rel) is None:
                        with contextlib.suppress(OSError):
                            (root / rel).unlink()
                    else:
                        _write(root / rel, base_[rel] or "")

        await asyncio.to_thread(read)
        return contents, refused

    async def _run_tool(self, inv: base.Invocation, root: Path, top: Path, home: Path,
                        box_exe: str | None) -> _ToolRun:
        spec = self.spec
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
               "LANG": os.environ.get("LANG") or "C.UTF-8"}
        argv = list(inv.argv)
        await asyncio.to_thread(changes.stage, home, inv.home_files, inv.home_texts)
        if box_exe is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs' note on an unset XDG_RUNTIME_DIR
                sock = paths.socket_path()
            box = sandbox.box_for(root, Path(spec.worktrees_dir), network=True, socket=sock,
                                  home=os.environ.get("HOME"))
            box_home = sandbox.TMP / "home"
            tool = Path(argv[0]).resolve().parent
            if any(tool.is_relative_to(h) for h in [*box.hide, sandbox.TMP]):
                box.restore.append(tool)  # the tool's own folder, read-only, where a tmpfs hid it
            argv = box.argv(box_exe, argv)
            at = argv.index("--chdir")  # after every tmpfs: the private HOME is bound into the box's /tmp
            argv[at:at] = ["--bind", str(home), str(box_home)]
            env.update(HOME=str(box_home), TMPDIR=str(sandbox.TMP))
        else:
            env.update(HOME=str(home), TMPDIR=str(home))
        env.update(inv.env)
        res = await run(argv, root, timeout=None, input=inv.stdin.encode() if inv.stdin is not None else None,
                        env=env, limit=OUTPUT_BYTES, marker=os.urandom(12).hex())
        return _ToolRun(res.code, res.stdout, res.stderr)

    def _clean(self, text: str) -> str:
        """Tool output with every known secret taken out."""
        spec = self.spec
        named = [*spec.secret_env, *([spec.model.api_key_env] if spec.model.api_key_env else [])]
        values = sorted({*secret_values(named), *spec.model.keys.values()}, key=len, reverse=True)
        return redact(text, values, cut=TRUNCATED)


@dataclass
class _ToolRun:
    code: int | None
    stdout: str
    stderr: str


def _failure(spec: TaskSpec, code: int | None, output: str) -> TaskFailed:
    last = " | ".join(line.strip() for line in output.strip().splitlines()[-3:] if line.strip())
    said = f": {last[-400:]}" if last else ""
    return TaskFailed("engine", f"{spec.engine} exited with code {code} and changed nothing{said}")


def _tail(text: str, n: int) -> str:
    return text if len(text) <= n else "[...]\n" + text[-n:]


def _priced(spec: TaskSpec, tokens: TokenUsage) -> float:
    m = spec.model
    price_in = m.input_cost_per_token or 0.0
    cached = m.cached_input_cost_per_token if m.cached_input_cost_per_token is not None else price_in
    return ((tokens.input - tokens.cached_input) * price_in + tokens.cached_input * cached
            + tokens.output * (m.output_cost_per_token or 0.0))


def task_prompt(spec: TaskSpec) -> str:
    """What the tool is asked on the first round."""
    text = spec.instruction.strip()
    sel = spec.selection
    if sel is not None:
        text += f"\n\nApply this to lines {sel.start_line}-{sel.end_line} of {sel.path}."
    text += "\n\nChange only these files: " + ", ".join(spec.files) + "."
    return text


def repair_prompt(spec: TaskSpec, refused: list[RefusedEdit], check_output: str | None) -> str:
    """What the tool is asked after a round whose changes were refused or whose check failed."""
    parts = []
    if refused:
        parts.append("Some of your changes were refused and undone:\n" + "\n".join(
            f"- {r.path}: {r.reason}" for r in refused)
            + "\nChange only these files: " + ", ".join(spec.files) + ".")
    if check_output is not None:
        parts.append(f"The check command `{spec.check}` failed after your edits. Its output:\n```\n"
                     f"{check_output}\n```\nFix the code so that it passes.")
    return "\n\n".join(parts)


def revision_prompt(comment: str, hunks: list[str]) -> str:
    """What the tool is asked when the reviewer sends the proposal back (the files hold the proposal)."""
    text = "The reviewer read your changes to these files and sends them back with a comment."
    if hunks:
        text += "\nThe comment is about these hunks:\n```diff\n" + "\n".join(h.rstrip("\n") for h in hunks) + "\n```"
    return text + f"\n\n{comment.strip()}"
