"""Splitting a job: its scope of files, the per-file split, and the model's plan (prompt and parse).

A plan is refused as a whole when it names a file outside the job's allowlist: the job's own
files plus the project's `[guardrails] allow_files` globs.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from daemon.errors import GuardrailRefused, InvalidParams, InvalidState
from daemon.programmer.guard import normalize, refuse_path
from daemon.protocol import PlanItem, ProviderSnapshot, Receipt, TokenUsage

GLOB_CHARS = re.compile(r"[*?\[]")
SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", "venv", ".mypy_cache", ".ruff_cache", ".pytest_cache"}

PLAN_SYSTEM = """You are the lead programmer of a small team. Split the job below into subtasks; \
each subtask goes to one programmer, who sees only the files the subtask names.

Answer with JSON only, in exactly this form:
{"tasks": [{"instruction": "what to do, in one or two sentences", "files": ["path/one.py"]}]}

Rules:
- Name only files from the list you are given, with their paths exactly as written.
- Every subtask names at least one file. Prefer one subtask per file; put files together only when \
one change needs them together.
- At most {max_tasks} subtasks. No text outside the JSON."""


def expand_scope(workspace: Path, patterns: list[str]) -> list[str]:
    """Files (relative, posix) named by paths, directories or globs, in order and without repeats."""
    out: list[str] = []
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern:
            raise InvalidParams("empty file pattern")
        full = pattern if os.path.isabs(pattern) else str(workspace / pattern)
        if GLOB_CHARS.search(pattern):
            rel = os.path.relpath(full, workspace)
            if rel.startswith(".."):
                raise InvalidParams(f"{pattern} is outside the workspace {workspace}")
            found = sorted(p for p in workspace.glob(rel) if p.is_file() and not _skipped(workspace, p))
            if not found:
                raise InvalidParams(f"no files match {rel!r} in {workspace}")
            out += [p.relative_to(workspace).as_posix() for p in found]
        elif os.path.isdir(full):
            found = sorted(p for p in Path(full).rglob("*") if p.is_file() and not _skipped(workspace, p))
            if not found:
                raise InvalidParams(f"{pattern} holds no files")
            out += [p.relative_to(workspace).as_posix() for p in found]
        else:
            out.append(pattern)  # a single file: checked (and made relative) when its task is built
    return list(dict.fromkeys(out))


def _skipped(workspace: Path, path: Path) -> bool:
    try:
        parts = path.relative_to(workspace).parts
    except ValueError:
        return True
    return any(part in SKIP_DIRS for part in parts[:-1]) or path.is_symlink()


def per_file(instruction: str, files: list[str]) -> list[PlanItem]:
    return [PlanItem(instruction=instruction, files=[f]) for f in files]


def plan_messages(workspace: Path, instruction: str, files: list[str], max_tasks: int,
                  max_bytes: int) -> list[dict[str, str]]:
    listing, bodies, size = [], [], 0
    for f in files:
        try:
            text = (workspace / f).read_bytes().decode("utf-8", errors="replace")
        except OSError:
            text = ""
        listing.append(f"- {f} ({text.count(chr(10))} lines)")
        if size + len(text) <= max_bytes:
            size += len(text)
            bodies.append(f"### FILE: {f}\n```\n{text}{'' if text.endswith(chr(10)) or not text else chr(10)}```\n")
    user = (f"### JOB PLAN\n{instruction.strip()}\n\n### FILES YOU MAY USE\n" + "\n".join(listing) + "\n\n"
            + "\n".join(bodies))
    return [{"role": "system", "content": PLAN_SYSTEM.replace("{max_tasks}", str(max_tasks))},
            {"role": "user", "content": user}]


def _json_candidates(text: str) -> list[str]:
    fenced = re.findall(r"```(?:json)?\s*\n(.*?)```", text, flags=re.S)
    out = [*fenced, text.strip()]
    for open_, close in (("{", "}"), ("[", "]")):
        a, b = text.find(open_), text.rfind(close)
        if 0 <= a < b:
            out.append(text[a : b + 1])
    return out


def parse_plan(text: str, max_tasks: int) -> list[PlanItem]:
    """The subtasks in a model's answer; raises InvalidState when no usable plan is in it."""
    data: Any = None
    for candidate in _json_candidates(text):
        try:
            data = json.loads(candidate)
            break
        except ValueError:
            continue
    if data is None:
        raise InvalidState(f"the planning model did not answer with a JSON plan: {text.strip()[:200]!r}")
    if isinstance(data, dict):
        data = next((data[k] for k in ("tasks", "subtasks", "plan") if isinstance(data.get(k), list)), None)
    if not isinstance(data, list) or not data:
        raise InvalidState('the plan has no subtasks (expected {"tasks": [{"instruction": ..., "files": [...]}]})')
    items: list[PlanItem] = []
    for i, raw in enumerate(data, 1):
        if not isinstance(raw, dict):
            raise InvalidState(f"subtask {i} of the plan is not an object")
        instruction = next((raw[k] for k in ("instruction", "task", "description") if isinstance(raw.get(k), str)), "")
        files = raw.get("files", raw.get("file"))
        if isinstance(files, str):
            files = [files]
        if not instruction.strip() or not isinstance(files, list) or not files \
                or not all(isinstance(f, str) and f.strip() for f in files):
            raise InvalidState(f"subtask {i} of the plan needs an instruction and a list of files")
        items.append(PlanItem(instruction=instruction.strip(), files=list(dict.fromkeys(normalize(f) for f in files))))
    if len(items) > max_tasks:
        raise InvalidState(f"the plan has {len(items)} subtasks; a job may have at most {max_tasks}")
    return items


def check_plan(workspace: Path, items: list[PlanItem], scope: list[str], allow_files: list[str]) -> None:
    """Refuse the whole plan when any subtask names a file outside the job's allowlist."""
    bad = []
    for item in items:
        for f in item.files:
            why = refuse_path(workspace, f, set(scope), allow_files)
            if why:
                bad.append(f"{f} ({why.replace('one of the task', 'one of the job')})")
    if bad:
        raise GuardrailRefused("the plan was refused: it names files outside the job's allowlist: "
                               + ", ".join(dict.fromkeys(bad)) + "; nothing was queued")


def plan_receipt(job_id: str, run_id: str, model: str, api_base: str | None, params: dict[str, Any],
                 tokens: TokenUsage, cost: float, priced: bool, started: float, llm_s: float, outcome: str,
                 tier: str | None, route: str | None) -> Receipt:
    """The receipt of a job's planning call; its task_id is the job's id."""
    from daemon.programmer import llm

    return Receipt(task_id=job_id, run_id=run_id, attempt=1, programmer="planner",
                   provider=ProviderSnapshot(provider=llm.provider_of(model), model=model, api_base=api_base,
                                             params=params, litellm_version=llm.version()),
                   tokens=tokens, cost_usd=round(cost, 6), priced=priced, wall_s=round(time.time() - started, 4),
                   llm_s=round(llm_s, 4), llm_calls=1, outcome=outcome, created_at=time.time(), job_id=job_id,
                   tier=tier, route=route)
