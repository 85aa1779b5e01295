"""aider (aider-chat) as an engine: one `aider --message` run per round, in the task's snapshot.

aider lives in a virtual environment of its own (it pins its own dependencies). pasd turns off
everything aider does beyond editing the files it is given: git, commits, shell commands, URL
fetching, lint and test runs (the check command is pasd's), update checks, analytics. Its spend
is read from the `message_send` events aider logs (`--analytics-log`, written to stderr, never
sent anywhere), with the "Cost:" line of its report telling whether aider had a price.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.programmer.engines.base import Fault, Installed, Invocation, Usage, provider_failure, provider_key, which
from daemon.protocol import TokenUsage

if TYPE_CHECKING:
    from daemon.programmer.spec import TaskSpec

VERSION = "0.86.2"
VENV = "~/.local/share/pasd/aider"
INSTALL = f"python3 -m venv {VENV} && {VENV}/bin/pip install aider-chat=={VERSION}"
_COST = re.compile(r"^Cost: \$[0-9.]+ message, \$[0-9.]+ session\.", re.M)
_EVENT = '{"event": "message_send"'
_ERROR = re.compile(r"^litellm\.(\w+): (.*)$", re.M)  # how aider prints the litellm error a request met
EDIT_FORMATS = ("diff", "whole", "udiff", "diff-fenced", "editor-diff", "editor-whole")


class Aider:
    name = "aider"

    def find(self, settings: dict[str, Any]) -> Installed:
        exe = which(settings, "aider")
        if exe is None and not settings.get("path"):
            default = Path(os.path.expanduser(VENV)) / "bin" / "aider"
            exe = str(default) if default.is_file() else None
        version = _version(exe) if exe else None
        return Installed(name=self.name, installed=exe is not None and version is not None, version=version,
                         path=exe or (str(settings["path"]) if settings.get("path") else None), install=INSTALL,
                         brings="aider's edit formats (diff, whole, udiff), its tree-sitter repo map, architect mode")

    def invoke(self, spec: TaskSpec, prompt: str, root: Path, exe: str, round: int,
               settings: dict[str, Any]) -> Invocation:
        model = spec.model
        name = model.model  # a litellm model string, as aider takes it
        map_tokens = int(settings.get("map_tokens", 0))
        # aider's repo map lists the repository through git: a worktree snapshot has one (read-only
        # for the tool under the sandbox); a copy holds only the task's files, and no map to make
        git = map_tokens > 0 and _in_worktree(root, Path(spec.worktrees_dir))
        argv = [exe, "--model", name, "--weak-model", name, "--editor-model", name,
                "--yes-always", "--git" if git else "--no-git", "--skip-sanity-check-repo", "--no-gitignore",
                "--no-auto-commits", "--no-dirty-commits",
                "--no-show-model-warnings", "--no-check-update", "--no-show-release-notes",
                "--no-analytics", "--analytics-log", "/dev/stderr", "--no-pretty", "--no-stream",
                "--no-suggest-shell-commands", "--no-auto-lint", "--no-auto-test", "--no-detect-urls",
                "--disable-playwright", "--no-notifications", "--no-fancy-input", "--no-restore-chat-history",
                "--chat-history-file", os.devnull, "--input-history-file", os.devnull, "--env-file", os.devnull,
                "--encoding", "utf-8", "--map-tokens", str(map_tokens)]
        edit_format = str(settings.get("edit_format") or "diff")  # aider's default for an unknown model is "whole"
        if settings.get("architect"):  # the model plans, then edits as the editor in edit_format
            argv += ["--architect", "--editor-edit-format", edit_format]
        else:
            argv += ["--edit-format", edit_format]
        # COLUMNS: aider's console folds its output at 80 columns, cutting the error lines failure() reads
        env: dict[str, str] = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "COLUMNS": "1000"}
        if git:  # with an identity, aider has no reason to write one into the repository's config
            env.update(GIT_CONFIG_COUNT="2", GIT_CONFIG_KEY_0="user.name", GIT_CONFIG_VALUE_0="pasd",
                       GIT_CONFIG_KEY_1="user.email", GIT_CONFIG_VALUE_1="pasd@localhost")
        key = provider_key(spec)
        provider = name.split("/", 1)[0] if "/" in name else "openai"
        if model.api_base and provider == "openai":
            argv += ["--openai-api-base", model.api_base]
        elif model.api_base:  # litellm reads <PROVIDER>_API_BASE
            env[f"{provider.upper()}_API_BASE"] = model.api_base
        if key is not None:
            env[model.api_key_env or f"{provider.upper()}_API_KEY"] = key
            env[f"{provider.upper()}_API_KEY"] = key  # what litellm reads for this provider
        argv += ["--message", prompt, "--", *spec.files]
        home: dict[str, str] = {}
        prices = _price_table(exe)
        if prices:  # aider fetches litellm's price table from the network unless its cache holds one
            home[".aider/caches/model_prices_and_context_window.json"] = prices
        texts: dict[str, str] = {}
        if model.params:  # the model's completion parameters, as aider's extra_params for every model it runs
            texts[".aider.model.settings.yml"] = model_settings(model.params)  # aider reads it from HOME
        return Invocation(argv=argv, env=env, scratch=[".aider*", ".env"], home_files=home, home_texts=texts)

    def failure(self, stdout: str, stderr: str) -> Fault | str | None:
        """The provider's failure aider gave up on (after its own retries, about a minute of them for
        a retryable one), by the litellm error it prints, as the native engine reports that error.

        aider exits 0 all the same; an error it does not name leaves the run to the runner's verdict."""
        found = list(_ERROR.finditer(stdout))
        if not found or "Retrying in " in stdout[found[-1].end():]:  # none, or one aider got past
            return None
        name, words = found[-1].groups()
        # "RateLimitError: OpenAIException - slow down": the provider's words after the class names
        words = re.sub(r"^(\w+(Error|Exception):\s*)+(\w+Exception\s*-\s*)?", "", words.strip())
        return provider_failure(f"aider said: {words}", error=name) or f"aider: {name}: {words}"

    def usage(self, stdout: str, stderr: str, root: Path) -> Usage:
        tokens = TokenUsage()
        cost = 0.0
        calls = 0
        decoder = json.JSONDecoder()
        for line in (stderr + "\n" + stdout).splitlines():
            at = line.find(_EVENT)
            if at < 0:
                continue
            try:
                event, _ = decoder.raw_decode(line[at:])
                props = event["properties"]
                sent, received = int(props.get("prompt_tokens", 0)), int(props.get("completion_tokens", 0))
                spent = float(props.get("cost", 0) or 0)
            except (ValueError, KeyError, TypeError):
                continue
            tokens = tokens.plus(TokenUsage(input=sent, output=received))
            cost += spent
            calls += 1
        if not calls:
            return Usage(tokens=TokenUsage(), cost_usd=None, calls=0, reported=False)
        return Usage(tokens=tokens, cost_usd=cost if _COST.search(stdout) else None, calls=calls)


def model_settings(params: dict[str, Any]) -> str:
    """aider's model settings file (YAML; JSON is YAML) giving every model `params` as extra_params:
    aider passes them to litellm's completion over its own (its temperature 0 included)."""
    return json.dumps([{"name": "aider/extra_params", "extra_params": params}], indent=1) + "\n"


def _in_worktree(root: Path, worktrees: Path) -> bool:
    """Whether the snapshot at root is a git worktree (its `.git` at root or above, inside the snapshots' folder)."""
    worktrees = worktrees.resolve()
    for folder in [root.resolve(), *root.resolve().parents]:
        if folder == worktrees or worktrees not in folder.parents:
            return False
        if (folder / ".git").exists():
            return True
    return False


def _site_packages(exe: str) -> Path | None:
    """The site-packages of the venv an `aider` script runs in (from its shebang)."""
    try:
        with open(exe, "rb") as fh:
            first = fh.readline(4096).decode("utf-8", "replace")
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    python = Path(first[2:].strip().split()[0])
    found = sorted(glob.glob(str(python.parent.parent / "lib" / "python3*" / "site-packages")))
    return Path(found[-1]) if found else None


def _version(exe: str) -> str | None:
    """aider's version from its venv's metadata (running `aider --version` takes seconds)."""
    site = _site_packages(exe)
    if site is not None:
        for meta in glob.glob(str(site / "aider_chat-*.dist-info" / "METADATA")):
            for line in Path(meta).read_text(errors="replace").splitlines():
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
    try:  # not a venv's script (a wrapper, pipx's link, ...): ask it
        res = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"\b(\d+\.\d+[\w.]*)", res.stdout) if res.returncode == 0 else None
    return found.group(1) if found else None


def _price_table(exe: str) -> str | None:
    site = _site_packages(exe)
    table = site / "litellm" / "model_prices_and_context_window_backup.json" if site else None
    return str(table) if table is not None and table.is_file() else None


ENGINE = Aider()
