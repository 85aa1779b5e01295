"""The messages a Programmer sends: the edit format, the files, the selection, the instruction."""

from __future__ import annotations

import re

from daemon.programmer.reads import ReadAnswer
from daemon.programmer.spec import TaskSpec

SYSTEM = """You are an expert programmer working inside a code editor. You change code only \
by answering with SEARCH/REPLACE blocks, and nothing you write outside those blocks is applied.

Every block looks like this: the file's path alone on a line, then a fenced block:

path/to/file.py
```python
<<<<<<< SEARCH
exact existing lines, copied character for character
=======
the lines that replace them
>>>>>>> REPLACE
```

Rules:
- SEARCH must match the current file exactly, including indentation; keep it short but unique.
- Use several blocks for several changes; each block changes the first match only.
- To create a new file, use an empty SEARCH section.
- Only edit the files you were given. Keep the rest of the code as it is.
- Be brief outside the blocks.

To see another file of the workspace before you edit, write a line `READ path/to/file` (one path per \
line, outside any block) and stop; its contents come back in the next message, read-only. Ask only \
for what you need."""


def _fence(content: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", content)), default=0)
    return "`" * max(3, longest + 1)


def _file(path: str, content: str, note: str = "") -> str:
    fence = _fence(content)
    body = content if content.endswith("\n") or not content else content + "\n"
    return f"### FILE: {path}{note}\n{fence}\n{body}{fence}"


def build_messages(spec: TaskSpec, contents: dict[str, str | None]) -> list[dict[str, str]]:
    """The system text, then one user message: the stable part first (files), the task-specific
    tail last (selection, instruction), so providers can cache the prefix (see `stable_end`)."""
    parts: list[str] = []
    for path in spec.files:
        content = contents.get(path)
        if content is None:
            parts.append(f"### FILE: {path}\n(this file does not exist yet; create it)\n")
            continue
        parts.append(_file(path, content) + "\n")
    sel = spec.selection
    if sel is not None:
        parts.append(f"### SELECTION: {sel.path}:{sel.start_line}-{sel.end_line}\n"
                     "(apply the instruction to these lines)\n")
    parts.append(f"### INSTRUCTION\n{spec.instruction.strip()}\n")
    system = SYSTEM if spec.context.max_reads > 0 else SYSTEM.split("\n\nTo see another file")[0]
    return [{"role": "system", "content": system}, *map_messages(spec.repo_map),
            {"role": "user", "content": "\n".join(parts)}]


MAP_ACK = "Understood: I will use those definitions as reference and edit only the files I am given."


def map_messages(repo_map: str) -> list[dict[str, str]]:
    """The repo map as its own exchange between the system prompt and the files: the workspace's
    text stays out of the system role, and a prompt cache keeps the stable prefix (system, map)."""
    if not repo_map:
        return []
    return [{"role": "user", "content": f"### REPO MAP\n{repo_map}"}, {"role": "assistant", "content": MAP_ACK}]


def stable_end(text: str) -> int:
    """Where the task-specific tail (selection, instruction) of a first user message begins; 0 if
    none is found. Only the cache mark moves with it, never the text, so a stray header inside a
    file or an instruction costs cache hits, not correctness."""
    cut = text.rfind("\n### INSTRUCTION\n")
    if cut < 0:
        return 0
    sel = text.rfind("\n### SELECTION: ", 0, cut)
    if sel >= 0 and "\n### FILE: " not in text[sel:cut]:
        cut = sel
    return cut + 1


def repair_message(problems: list[str], check_output: str | None, contents: dict[str, str | None],
                   reads: list[ReadAnswer] | None = None, reads_left: int = 0,
                   show_files: bool = False) -> dict[str, str]:
    """The next user message: what went wrong, the files read on request, the task's files as they are now."""
    text = []
    if problems:
        text.append("Some of your edits could not be applied:\n" + "\n".join(f"- {p}" for p in problems))
    if check_output is not None:
        text.append("The check command failed after your edits. Its output:\n```\n" + check_output + "\n```")
    if reads:
        listed = [f"- {r.path}: " + ("sent below, read-only (you cannot edit it)" if r.text is not None
                                     else f"refused: {r.reason}") for r in reads]
        more = (f"You may ask for more files in {reads_left} more answer(s)." if reads_left
                else "You cannot ask for more files now.")
        text.append("Your file requests:\n" + "\n".join(listed) + "\n" + more)
        text += [_file(r.path, r.text, " (read-only)") for r in reads if r.text is not None]
    if problems or check_output is not None or show_files:
        text += [_file(path, content, " (as it is now)") for path, content in contents.items() if content is not None]
    text.append("Answer with SEARCH/REPLACE blocks against the task's files as they are now.")
    return {"role": "user", "content": "\n\n".join(text)}
