"""Claude Code (`claude -p`) as an engine: Anthropic's coding agent reads and edits the task's
snapshot with its own file tools; pasd diffs, guards, checks and reviews what it leaves.

Claude Code speaks the Anthropic Messages API, so the task's model must be one an Anthropic
endpoint serves (`anthropic/claude-...`, or any model behind an Anthropic-compatible `api_base`).
It runs with its file tools only (no shell: the check runs in pasd's sandbox), edits accepted
without asking, no session kept, none of its background traffic, and reports its spend as JSON.
The workspace's own Claude Code settings and MCP servers are not loaded: in `--print` mode Claude
Code trusts the folder without asking, and those would run the workspace's commands (hooks, MCP
servers) outside any review. Its CLAUDE.md is read, as in any session.

Settings (`[engines.claude]` or a model's `engine_settings`): `path` (the executable, or the
folder holding `claude`), `model` (the name Claude Code is given; default: the task's model
without its `anthropic/` prefix), `tools` (default "Read,Edit,Write"), `permission_mode`
(default "acceptEdits"), `max_retries` (of a failed model request, default 2: Claude Code's own
10, with backoff, keep a task with a bad key busy for minutes), `args` (a list of extra arguments).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.programmer.engines.base import Fault, Installed, Invocation, Usage, provider_failure, provider_key, which
from daemon.programmer.spec import TaskFailed
from daemon.protocol import TokenUsage

if TYPE_CHECKING:
    from daemon.programmer.spec import TaskSpec

VERSION = "2.1.328"
HOME = "~/.local/share/pasd/claude-code"  # where INSTALL puts it; found there when not on PATH
INSTALL = f"npm install --prefix {HOME} @anthropic-ai/claude-code@{VERSION}"
BRINGS = "Anthropic's coding agent: reads the code it needs and edits with its own tools, in its own loop"
TOOLS = "Read,Edit,Write"
FILES = "Change only these files: "  # as the runner's prompts name them (engines/runner.py)
QUIET = {  # Claude Code's own switches for the traffic a task does not need
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
}


def with_files(prompt: str, spec: TaskSpec) -> str:
    """The prompt, naming the task's files where it does not (a revision's): an agent finds its own
    way around the code, and must know which files are its to change."""
    if FILES in prompt:
        return prompt
    files = dict.fromkeys([*spec.files, *(f.path for f in spec.revision.files)] if spec.revision else spec.files)
    return f"{prompt.rstrip()}\n\n{FILES}{', '.join(files)}."


def model_name(spec: TaskSpec, settings: dict[str, Any]) -> str:
    """The model Claude Code asks for: the setting, else the task's model without `anthropic/`."""
    if settings.get("model"):
        return str(settings["model"])
    return spec.model.model.removeprefix("anthropic/")


def base_url(api_base: str) -> str:
    """ANTHROPIC_BASE_URL: the SDK adds `/v1/messages` itself, so a trailing `/v1` goes."""
    return api_base.rstrip("/").removesuffix("/v1")


class ClaudeCode:
    name = "claude"

    def __init__(self) -> None:
        self._versions: dict[tuple[str, int], str | None] = {}  # (exe, mtime) -> version

    def find(self, settings: dict[str, Any]) -> Installed:
        exe = which(settings, "claude")
        if exe is None and not settings.get("path"):
            default = Path(os.path.expanduser(HOME)) / "node_modules" / ".bin" / "claude"
            exe = str(default) if default.is_file() and os.access(default, os.X_OK) else None
        version = self._version(exe) if exe else None
        return Installed(self.name, version is not None, version, exe, INSTALL, BRINGS)

    def _version(self, exe: str) -> str | None:
        """`claude --version` ("2.1.328 (Claude Code)"), once per executable and mtime; None if it fails."""
        try:
            key = (exe, os.stat(exe).st_mtime_ns)
        except OSError:
            return None
        if key not in self._versions:
            try:
                out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30,
                                     stdin=subprocess.DEVNULL, check=False)
            except (OSError, subprocess.SubprocessError):
                return None
            words = out.stdout.split()
            self._versions[key] = words[0] if out.returncode == 0 and words else None
        return self._versions[key]

    def invoke(self, spec: TaskSpec, prompt: str, root: Path, exe: str, round: int,
               settings: dict[str, Any]) -> Invocation:
        argv = [exe, "--print", "--output-format", "json",
                "--model", model_name(spec, settings),
                "--permission-mode", str(settings.get("permission_mode") or "acceptEdits"),
                "--permission-prompts", "none",  # anything that would ask is refused, never waits
                "--tools", str(settings.get("tools") or TOOLS),
                "--setting-sources", "user",  # the private HOME's: none of the workspace's hooks
                "--strict-mcp-config",  # no MCP servers from the workspace's .mcp.json
                "--no-session-persistence"]
        if spec.limits.budget_usd is not None:  # what is left of the task's budget (engines/runner.py)
            argv += ["--max-budget-usd", f"{spec.limits.budget_usd:.10g}"]
        extra = settings.get("args") or []
        if not isinstance(extra, list):
            raise TaskFailed("engine", f"[engines.claude] args must be a list of arguments, not {extra!r}")
        argv += [str(a) for a in extra]
        env = dict(QUIET)
        env["API_TIMEOUT_MS"] = str(int(spec.limits.model_timeout_s * 1000))
        env["CLAUDE_CODE_MAX_RETRIES"] = str(_retries(settings))
        key = provider_key(spec)
        if key:
            env["ANTHROPIC_API_KEY"] = key
        if spec.model.api_base:
            env["ANTHROPIC_BASE_URL"] = base_url(spec.model.api_base)
        return Invocation(argv=argv, env=env, stdin=with_files(prompt, spec))

    def failure(self, stdout: str, stderr: str) -> Fault | str | None:
        """What went wrong, from Claude Code's result: a failed request to the provider (by its HTTP
        status, or the connection error Claude Code names) as the native engine reports it, the task's
        budget spent, else Claude Code's own words ("API Error: ...")."""
        result = _result(stdout)
        if result is None or not result.get("is_error"):
            return None
        said = str(result.get("result") or result.get("subtype") or "")
        if result.get("subtype") == "error_max_budget_usd":
            spent = spend(result).cost_usd
            return TaskFailed("budget", "Claude Code stopped at the task's budget"
                              + (f", having spent ${spent:.6f}" if spent else ""))
        if result.get("terminal_reason") == "api_error" or said.startswith("API Error"):
            status = result.get("api_error_status")  # the provider's HTTP status, where it answered
            found = provider_failure(f"Claude Code said: {said}", status=_int(status) or None, **_transport(said))
            if found is not None:
                return found
        return said or None

    def usage(self, stdout: str, stderr: str, root: Path) -> Usage:
        result = _result(stdout)
        if result is None:
            return Usage(TokenUsage(), None, calls=0, reported=False)
        return spend(result)


# the connection errors Claude Code names (its words give the code in parentheses) -> llm.TRANSPORT's kind
_CODES = {
    **dict.fromkeys(("ECONNREFUSED", "ConnectionRefused"), "refused"),
    **dict.fromkeys(("ECONNRESET", "EPIPE", "ECONNABORTED", "ConnectionClosed", "ERR_SOCKET_CLOSED", "UND_ERR_SOCKET"),
                    "reset"),
    **dict.fromkeys(("ENOTFOUND", "EAI_AGAIN", "FailedToOpenSocket"), "dns"),
    **dict.fromkeys(("ENETUNREACH", "ENETDOWN", "EHOSTUNREACH", "EHOSTDOWN", "ERR_PROXY_TUNNEL", "ETIMEDOUT"),
                    "unreachable"),
}
_CODE = re.compile(r"\((\w+)\)")


def _transport(said: str) -> dict[str, str]:
    """What failed below HTTP, from Claude Code's words for it: `transport` and `detail` for
    provider_failure, or nothing."""
    first = said.strip().splitlines()[0] if said.strip() else ""
    if first.startswith("Request timed out"):  # no answer within API_TIMEOUT_MS
        return {"transport": "timeout"}
    codes = _CODE.findall(first)
    code = next((c for c in codes if c in _CODES), codes[-1] if codes else "")
    if "Unable to connect to API: SSL" in first or "Self-signed certificate" in first:
        return {"transport": "tls", "detail": code or "certificate"}
    if code in _CODES:
        return {"transport": _CODES[code], "detail": code}
    if first.startswith(("API Error: Unable to connect to API", "Unable to connect to API")):
        return {"transport": "unreachable", "detail": code or "no connection"}
    if "JSON Parse error" in first:  # a proxy's error page where the answer should be
        return {"error": "APIError"}
    return {}


def _retries(settings: dict[str, Any]) -> int:
    value = settings.get("max_retries", 2)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10:
        raise TaskFailed("engine", f"[engines.claude] max_retries must be a whole number from 0 to 10, not {value!r}")
    return value


def _result(stdout: str) -> dict[str, Any] | None:
    """The `{"type": "result", ...}` object `--output-format json` prints last."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("type") == "result":
            return value
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def spend(result: dict[str, Any]) -> Usage:
    """Tokens and cost from Claude Code's result: per model (`modelUsage`) where it has one.

    A model Claude Code has no price for is priced on a guess (`costBasis: "unknown"`): that cost is
    not reported, so the config's prices for the model apply, else the receipt says unpriced.
    """
    per_model = [m for m in (result.get("modelUsage") or {}).values() if isinstance(m, dict)]
    if per_model:
        cached = sum(_int(m.get("cacheReadInputTokens")) for m in per_model)
        written = sum(_int(m.get("cacheCreationInputTokens")) for m in per_model)
        fresh = sum(_int(m.get("inputTokens")) for m in per_model)
        output = sum(_int(m.get("outputTokens")) for m in per_model)
        thinking = sum(_int(m.get("thinkingTokens")) for m in per_model)
        guessed = any(m.get("costBasis") == "unknown" for m in per_model)
    else:
        u = _dict(result.get("usage"))
        cached, written = _int(u.get("cache_read_input_tokens")), _int(u.get("cache_creation_input_tokens"))
        fresh, output = _int(u.get("input_tokens")), _int(u.get("output_tokens"))
        thinking, guessed = _int(_dict(u.get("output_tokens_details")).get("thinking_tokens")), False
    # Anthropic counts cached prompt tokens apart from `input_tokens`; a receipt's input holds them all
    tokens = TokenUsage(input=fresh + cached + written, output=output, reasoning=thinking,
                        cached_input=cached, cache_write=written)
    cost = result.get("total_cost_usd")
    if not isinstance(cost, int | float) or isinstance(cost, bool) or cost < 0 or guessed:
        return Usage(tokens, None, calls=max(_int(result.get("num_turns")), 1))
    return Usage(tokens, float(cost), calls=max(_int(result.get("num_turns")), 1))


ENGINE = ClaudeCode()
