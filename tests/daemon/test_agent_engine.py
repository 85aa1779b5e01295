"""The `claude` engine: the real Claude Code CLI driven against the offline model's Messages API.

The CLI comes from scripts/install-agent-cli.sh (a cache outside the clone). Without it the tests
skip, except in CI, where a missing CLI is a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon import protocol as p
from daemon.client import EventStream
from daemon.offline_model import OfflineModel
from daemon.programmer.engines.base import Installed, Invocation
from daemon.programmer.engines.claude import ENGINE, VERSION, base_url
from daemon.programmer.engines.runner import task_prompt
from daemon.programmer.spec import Limits, ModelSpec, ProviderFault, TaskFailed, TaskSpec
from daemon.protocol import Selection
from daemon.testing import DaemonProcess, make_repo, offline_config

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PASD_AGENT_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pasd-ci")
BIN = CACHE / f"claude-code-{VERSION}" / "node_modules" / ".bin"
APP = "import os\n\n\ndef main():\n    x = 1\n    return x\n"
KEY = "sk-ant-offline-test"


@pytest.fixture(scope="module")
def claude() -> Installed:
    """The installed CLI: the test script's cached one, else PATH's."""
    found = ENGINE.find({"path": str(BIN)}) if BIN.is_dir() else ENGINE.find({})
    if not found.installed:
        reason = f"Claude Code is not installed: run `bash scripts/install-agent-cli.sh` ({found.install})"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture
def offline(model: OfflineModel) -> OfflineModel:
    model.reset()
    return model


def task(root: Path, api_base: str, *, model: str = "anthropic/claude-sonnet-4-5",
         selection: Selection | None = None, files: list[str] | None = None) -> TaskSpec:
    return TaskSpec(task_id="t1", run_id="r1", attempt=1, programmer="p1", workspace=str(root),
                    instruction="add a note", files=files or ["app.py"], selection=selection,
                    model=ModelSpec(model=model, api_base=api_base, api_key_env="ANTHROPIC_API_KEY",
                                    keys={"ANTHROPIC_API_KEY": KEY}),
                    worktrees_dir=str(root.parent / "wt"))


def run(invocation: Invocation, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """Run the tool as the runner does: its own env on top of a minimal base, a private HOME."""
    home.mkdir(exist_ok=True)
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
            "TMPDIR": str(home)}
    return subprocess.run(invocation.argv, input=invocation.stdin, cwd=cwd, env={**base, **invocation.env},
                          capture_output=True, text=True, timeout=120, check=False)


def logged(offline: OfflineModel) -> list[dict[str, Any]]:
    return [e for e in offline.requests if e.get("api") == "messages"]


def test_find_reports_the_installed_version(claude: Installed, tmp_path: Path) -> None:
    assert claude.version == VERSION
    assert claude.path is not None and Path(claude.path).name == "claude"
    missing = ENGINE.find({"path": str(tmp_path)})
    assert (missing.installed, missing.version, missing.path) == (False, None, None)
    assert missing.install == ("npm install --prefix ~/.local/share/pasd/claude-code "
                               f"@anthropic-ai/claude-code@{VERSION}")


def test_claude_edits_the_task_file_against_the_offline_model(
        claude: Installed, offline: OfflineModel, tmp_path: Path) -> None:
    work = tmp_path / "snap"
    work.mkdir()
    (work / "app.py").write_text(APP)
    (work / "other.py").write_text("y = 2\n")
    spec = task(work, offline.url, selection=Selection(path="app.py", start_line=4, end_line=5))
    assert claude.path is not None
    invocation = ENGINE.invoke(spec, task_prompt(spec), work, claude.path, 0, {})
    assert set(invocation.env) >= {"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"}
    assert not {"PATH", "HOME"} & set(invocation.env)  # the runner's, not the engine's

    offline.prompt_cache = True  # later turns repeat the earlier ones: reported as cache reads
    try:
        done = run(invocation, work, tmp_path / "home")
    finally:
        offline.prompt_cache = False

    assert done.returncode == 0, done.stderr
    assert (work / "app.py").read_text() == "import os\n\n\n# pas: add a note\ndef main():\n    x = 1\n    return x\n"
    assert (work / "other.py").read_text() == "y = 2\n"
    assert sorted(p.name for p in work.iterdir()) == ["app.py", "other.py"]  # nothing of its own left in cwd
    requests = logged(offline)
    # read the file, edit it, then a last answer: three turns, each with the task's key and model
    assert [[b["name"] for b in e["response"]["content"] if b["type"] == "tool_use"] for e in requests] == [
        ["Read"], ["Edit"], []]
    assert {e["headers"]["x-api-key"] for e in requests} == {KEY}
    assert {e["model"] for e in requests} == {"claude-sonnet-4-5"}
    assert set(requests[0]["tools"]) == {"Read", "Edit", "Write"}  # no shell, no sub-agents

    usage = ENGINE.usage(done.stdout, done.stderr, work)
    assert usage.reported and usage.calls == 3
    # Anthropic counts cache reads apart from input_tokens; the receipt's input holds both
    cached = sum(e["usage"]["cache_read_input_tokens"] for e in requests)
    assert cached > 0 and usage.tokens.cached_input == cached
    assert usage.tokens.input == cached + sum(e["usage"]["input_tokens"] for e in requests)
    assert usage.tokens.output == sum(e["usage"]["output_tokens"] for e in requests)
    assert usage.cost_usd is not None and usage.cost_usd > 0  # Claude Code's list price for the model


def test_claude_cannot_write_outside_its_directory_or_run_commands(
        claude: Installed, offline: OfflineModel, tmp_path: Path) -> None:
    work = tmp_path / "snap"
    work.mkdir()
    (work / "app.py").write_text(APP)
    outside = tmp_path / "outside.py"
    ran = tmp_path / "ran"
    offline.script([
        {"tool_use": {"name": "Write", "input": {"file_path": str(outside), "content": "x = 3\n"}}},
        {"tool_use": {"name": "Bash", "input": {"command": f"touch {ran}", "description": "touch"}}},
        {"content": "done"},
    ])
    spec = task(work, offline.url, model="anthropic/pasd-offline")
    assert claude.path is not None
    done = run(ENGINE.invoke(spec, task_prompt(spec), work, claude.path, 0, {}), work, tmp_path / "home")

    assert done.returncode == 0, done.stderr
    assert not outside.exists() and not ran.exists()
    results = [b for e in logged(offline)[1:] for b in e["messages"][-1]["content"] if b["type"] == "tool_result"]
    assert len(results) == 2 and all(r.get("is_error") or "denied" in str(r["content"]) for r in results)
    assert (work / "app.py").read_text() == APP
    # a model Claude Code has no price for: tokens as reported, the cost left unpriced (not its guess)
    usage = ENGINE.usage(done.stdout, done.stderr, work)
    assert usage.reported and usage.tokens.input > 0 and usage.cost_usd is None


def test_the_invocation_holds_only_what_claude_needs(tmp_path: Path) -> None:
    spec = task(tmp_path, "http://127.0.0.1:9/v1/", model="anthropic/claude-opus-4-1")
    inv = ENGINE.invoke(spec, "add a note", tmp_path, "/opt/claude", 0, {"tools": "Read,Edit"})
    assert inv.env == {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
                       "API_TIMEOUT_MS": "300000", "CLAUDE_CODE_MAX_RETRIES": "2",
                       "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
                       "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1"}
    # on stdin, not in argv where `ps` shows it; naming the task's files where the prompt did not
    assert inv.stdin == "add a note\n\nChange only these files: app.py."
    assert inv.argv[0] == "/opt/claude" and "add a note" not in inv.argv
    assert inv.argv[inv.argv.index("--model") + 1] == "claude-opus-4-1"
    assert inv.argv[inv.argv.index("--tools") + 1] == "Read,Edit"
    with pytest.raises(TaskFailed, match="max_retries must be a whole number from 0 to 10, not 'many'"):
        ENGINE.invoke(spec, "add a note", tmp_path, "/opt/claude", 0, {"max_retries": "many"})
    with pytest.raises(TaskFailed, match="args must be a list of arguments, not '--verbose'"):
        ENGINE.invoke(spec, "add a note", tmp_path, "/opt/claude", 0, {"args": "--verbose"})
    assert ENGINE.invoke(spec, "x", tmp_path, "/opt/claude", 0, {"args": ["--effort", "low"]}).argv[-2:] == [
        "--effort", "low"]


def test_claude_stops_at_the_tasks_budget_and_says_so(claude: Installed, offline: OfflineModel,
                                                      tmp_path: Path) -> None:
    work = tmp_path / "snap"
    work.mkdir()
    (work / "app.py").write_text(APP)
    spec = task(work, offline.url).model_copy(update={"limits": Limits(budget_usd=0.001)})
    assert claude.path is not None
    done = run(ENGINE.invoke(spec, task_prompt(spec), work, claude.path, 0, {}), work, tmp_path / "home")

    assert done.returncode != 0 and len(logged(offline)) == 1  # the first answer already costs more
    assert (work / "app.py").read_text() == APP
    said = ENGINE.failure(done.stdout, done.stderr)
    usage = ENGINE.usage(done.stdout, done.stderr, work)
    assert usage.cost_usd is not None and usage.cost_usd > 0.001
    assert isinstance(said, TaskFailed) and said.reason == "budget"  # as the native engine says it
    assert said.message == f"Claude Code stopped at the task's budget, having spent ${usage.cost_usd:.6f}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# what the offline model answers (None: nothing listens at the endpoint) -> the native engine's verdict
@pytest.mark.parametrize(("fault", "kind", "reason", "words"), [
    ({"status": 429, "content": "slow down"}, ProviderFault, "rate_limit", "rate limiting (429)"),
    ({"status": 500, "content": "upstream exploded"}, ProviderFault, "provider", "server failed (5xx)"),
    ({"status": 503}, ProviderFault, "provider", "unavailable (503)"),
    ({"status": 529, "content": "Overloaded"}, ProviderFault, "provider", "server failed (5xx)"),
    ({"fault": "reset"}, ProviderFault, "connection", "closed before an answer"),
    ({"fault": "garbage"}, ProviderFault, "provider", "returned an error"),
    ({"fault": "hang", "latency": 30}, ProviderFault, "model_timeout", "did not answer in time"),
    (None, ProviderFault, "connection", "the connection to the provider was refused"),
    ({"status": 401, "content": "bad key"}, TaskFailed, "auth", "refused the credentials"),
    ({"status": 403, "content": "not for you"}, TaskFailed, "auth", "denied access"),
    ({"status": 404}, TaskFailed, "bad_model", "does not know this model"),  # Claude Code's words, not the body
    ({"status": 400, "content": "nonsense"}, TaskFailed, "bad_request", "rejected the request"),
])
def test_a_failed_request_gets_the_native_engines_reason(
        claude: Installed, offline: OfflineModel, tmp_path: Path, fault: dict[str, Any] | None,
        kind: type[Exception], reason: str, words: str) -> None:
    """Claude Code's result names the provider's HTTP status, or its words name the connection
    error: the failure is the one the native engine gives for the same fault."""
    work = tmp_path / "snap"
    work.mkdir()
    (work / "app.py").write_text(APP)
    if fault is not None:
        offline.set_rules([{"match": "", **fault}])
    api_base = offline.url if fault is not None else f"http://127.0.0.1:{_closed_port()}/v1"
    spec = task(work, api_base).model_copy(update={"limits": Limits(model_timeout_s=2)})
    assert claude.path is not None
    done = run(ENGINE.invoke(spec, task_prompt(spec), work, claude.path, 0, {"max_retries": 0}), work,
               tmp_path / "home")

    assert done.returncode != 0
    said = ENGINE.failure(done.stdout, done.stderr)
    assert isinstance(said, (TaskFailed, ProviderFault)) and type(said) is kind and said.reason == reason, said
    assert words in said.message and "Claude Code said: " in said.message, said.message
    if fault is not None and "content" in fault:
        assert fault["content"] in said.message  # the provider's own words, as Claude Code passed them on


def test_a_run_that_reports_nothing_is_unreported(tmp_path: Path) -> None:
    usage = ENGINE.usage("", "error: cannot connect", tmp_path)
    assert (usage.reported, usage.cost_usd, usage.tokens.input, usage.calls) == (False, None, 0, 0)


def test_the_workspaces_own_hooks_and_mcp_servers_never_run(
        claude: Installed, offline: OfflineModel, tmp_path: Path) -> None:
    """In --print mode Claude Code trusts its folder without asking: a repository's .claude/settings.json
    hooks and .mcp.json servers would run its commands, so the engine loads neither."""
    work = tmp_path / "snap"
    (work / ".claude").mkdir(parents=True)
    (work / "app.py").write_text(APP)
    hook, server = tmp_path / "hook-ran", tmp_path / "mcp-ran"
    (work / ".claude" / "settings.json").write_text(json.dumps({"hooks": {
        event: [{"hooks": [{"type": "command", "command": f"touch {hook}"}]}]
        for event in ("SessionStart", "UserPromptSubmit", "PreToolUse")}}))
    (work / ".mcp.json").write_text(json.dumps({"mcpServers": {"x": {"command": "touch", "args": [str(server)]}}}))
    spec = task(work, offline.url)
    assert claude.path is not None
    done = run(ENGINE.invoke(spec, task_prompt(spec), work, claude.path, 0, {}), work, tmp_path / "home")

    assert done.returncode == 0, done.stderr
    assert "# pas: add a note" in (work / "app.py").read_text()  # it did its work, with Read and Edit
    assert not hook.exists() and not server.exists()


# ---------------------------------------------------------------- through the daemon


SONNET = "anthropic/claude-sonnet-4-5"


@pytest.fixture(scope="module")
def pasd(claude: Installed, model: OfflineModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One daemon for the module, whose default model runs on the claude engine."""
    root = tmp_path_factory.mktemp("daemon")
    config = offline_config(model.url, **{
        "models": {"default": SONNET, "choices": [SONNET]},
        f'models.settings."{SONNET}"': {"api_base": model.url, "api_key_env": "ANTHROPIC_API_KEY",
                                         "engine": "claude"},
        "engines.claude": {"path": str(Path(claude.path or "").parent)},
    })
    d = DaemonProcess(root, workers=2, config=config, env={"ANTHROPIC_API_KEY": KEY})
    d.start()
    yield d
    d.cleanup()


async def settled(events: EventStream, task_id: str) -> p.TaskInfo:
    async for env in events:
        ev = env.event
        if isinstance(ev, p.TaskEvent) and ev.task.id == task_id and not ev.task.state.active:
            return ev.task
    raise AssertionError("the event stream ended")


async def test_submit_on_claude_reaches_review_with_its_receipt_and_approve_applies(
        pasd: DaemonProcess, offline: OfflineModel, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", {"app.py": APP, "util.py": "y = 2\n"})
    async with pasd.client() as c, EventStream(pasd.socket, kinds=["task"]) as events:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="add a note", files=["app.py"],
                                             selection=p.Selection(path="app.py", start_line=4, end_line=5)))
        assert task.engine == "claude"  # the model's engine
        listed = {e.name: e for e in await c.engines()}
        assert (listed["claude"].installed, listed["claude"].version) == (True, VERSION)
        done = await settled(events, task.id)
        assert done.state is p.TaskState.REVIEW, done.error

        d = await c.diff(task.id)
        assert [f.path for f in d.files] == ["app.py"]
        assert "+# pas: add a note\n def main():\n" in d.diff
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        requests = logged(offline)
        assert len(requests) == 3 and {e["headers"]["x-api-key"] for e in requests} == {KEY}
        assert (receipt.engine, receipt.engine_version) == ("claude", VERSION)
        assert receipt.tokens.input == sum(e["usage"]["input_tokens"] for e in requests)
        assert receipt.tokens.output == sum(e["usage"]["output_tokens"] for e in requests)
        # the cost is Claude Code's own: its list price for Sonnet 4.5, $3 and $15 per million tokens
        assert receipt.priced and receipt.cost_usd == pytest.approx(
            receipt.tokens.input * 3e-6 + receipt.tokens.output * 15e-6, abs=1e-6)

        await c.approve(p.ReviewParams(task_id=task.id))
    assert (repo / "app.py").read_text() == "import os\n\n\n# pas: add a note\ndef main():\n    x = 1\n    return x\n"
    assert (repo / "util.py").read_text() == "y = 2\n"


async def test_revise_sends_the_comment_to_claude_over_its_proposal(pasd: DaemonProcess, offline: OfflineModel,
                                                                    tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", {"app.py": APP})
    async with pasd.client() as c:
        t = await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction="add a note",
                                                        files=["app.py"]))).id)
        assert t.state is p.TaskState.REVIEW, t.error
        offline.reset()
        await c.revise(p.ReviseParams(task_id=t.id, comment="say why"))
        t = await c.wait(t.id, until={p.TaskState.REVIEW, p.TaskState.FAILED})
        assert t.state is p.TaskState.REVIEW and t.revision == 1, t.error
        [f] = (await c.contents(t.id)).files
    asked = json.dumps(logged(offline)[0]["messages"])
    assert "say why" in asked and "Change only these files: app.py." in asked
    assert f.base == APP  # still reviewed against the user's file, with the second note over the first
    assert f.proposed.startswith("# pas: The reviewer read your changes")
    assert f.proposed.count("# pas: ") == 2 and f.proposed.endswith(APP)


async def test_a_write_outside_the_task_files_is_refused_and_the_tool_asked_again(
        pasd: DaemonProcess, offline: OfflineModel, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", {"app.py": APP, "util.py": "y = 2\n"})
    # the first run writes util.py and stops; the repair run is told why, and edits app.py
    offline.script([{"tool_use": {"name": "Write", "input": {"file_path": "{cwd}/util.py", "content": "y = 3\n"}}}])
    async with pasd.client() as c, EventStream(pasd.socket, kinds=["task"]) as events:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="add a note", files=["app.py"]))
        done = await settled(events, task.id)
        assert done.state is p.TaskState.REVIEW, done.error
        assert [(r.path, r.reason) for r in done.refused] == [("util.py", "not one of the task's files")]
        d = await c.diff(task.id)
        assert [f.path for f in d.files] == ["app.py"]
    repair = [e for e in logged(offline) if "were refused" in json.dumps(e["messages"][0])]
    assert repair and "util.py" in json.dumps(repair[0]["messages"][0])
    assert (repo / "util.py").read_text() == "y = 2\n"


def _tool_processes(base_url: str) -> dict[int, int]:
    """pid -> process group of every process whose environment points at this offline model."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            if f"ANTHROPIC_BASE_URL={base_url}".encode() in environ:
                found[int(entry.name)] = os.getpgid(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return found


async def test_cancel_kills_the_tools_process_group(pasd: DaemonProcess, offline: OfflineModel,
                                                     tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", {"app.py": APP})
    offline.script([{"fault": "hang"}])
    async with pasd.client() as c, EventStream(pasd.socket, kinds=["task"]) as events:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="add a note", files=["app.py"]))
        assert await asyncio.to_thread(offline.wait_until, lambda log: len(log) >= 1, 60)
        running = _tool_processes(base_url(offline.url))
        assert running, "no process of the tool found"
        groups = set(running.values())
        assert os.getpgid(pasd.proc.pid if pasd.proc else 0) not in groups  # a group of its own
        await c.cancel(task.id)
        done = await settled(events, task.id)
        assert done.state is p.TaskState.CANCELLED

    def gone() -> bool:
        return not any(pg in groups for pg in _tool_processes(base_url(offline.url)).values())

    for _ in range(300):  # the kill is asynchronous: wait for the group to go
        if gone():
            break
        await asyncio.sleep(0.1)
    assert gone()


async def test_a_refused_key_fails_the_task_with_the_auth_reason_and_no_retry(
        pasd: DaemonProcess, offline: OfflineModel, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", {"app.py": APP})
    offline.set_rules([{"match": "", "status": 401, "content": "this key was revoked"}])
    async with pasd.client() as c, EventStream(pasd.socket, kinds=["task"]) as events:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="add a note", files=["app.py"]))
        done = await settled(events, task.id)
        receipts = await c.receipts(p.ReceiptsParams(task_id=task.id))
    assert done.state is p.TaskState.FAILED and done.attempts == 1
    # the native engine's reason and words for a refused key, with Claude Code's own
    assert done.reason == "auth", done.error
    assert "refused the credentials" in (done.error or "") and "API Error: 401 this key was revoked" in (
        done.error or ""), done.error
    assert [r.outcome for r in receipts] == ["failed: auth"]
    assert len(logged(offline)) == 3  # the first request and the engine's two retries, not Claude Code's ten
    assert (repo / "app.py").read_text() == APP


async def test_a_rate_limited_run_is_retried_on_another_programmer(
        pasd: DaemonProcess, offline: OfflineModel, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", {"app.py": APP})
    # Claude Code's own request and its two retries are refused; the next attempt is answered
    offline.script([{"status": 429, "content": "slow down"}] * 3)
    async with pasd.client() as c, EventStream(pasd.socket, kinds=["task"]) as events:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="add a note", files=["app.py"]))
        done = await settled(events, task.id)
        receipts = sorted(await c.receipts(p.ReceiptsParams(task_id=task.id)), key=lambda r: r.attempt)
        d = await c.diff(task.id)
    assert done.state is p.TaskState.REVIEW and done.attempts == 2, done.error
    assert [r.outcome for r in receipts] == ["failed: rate_limit", "review"]
    assert receipts[0].programmer != receipts[1].programmer
    assert receipts[0].engine == receipts[1].engine == "claude"
    statuses = [e["response"].get("status") for e in logged(offline)]
    assert statuses[:3] == [429] * 3 and None not in statuses[:3] and len(statuses) == 6  # then Read, Edit, done
    assert "+# pas: add a note\n" in d.diff


async def test_a_server_error_in_the_repair_run_retries_the_whole_attempt(
        pasd: DaemonProcess, offline: OfflineModel, tmp_path: Path) -> None:
    """A run cut short by the provider proves nothing about what it left: the attempt is retried whole,
    as the native engine's is after a fault in any round."""
    repo = make_repo(tmp_path / "ws", {"app.py": APP, "util.py": "y = 2\n"})
    write = {"tool_use": {"name": "Write", "input": {"file_path": "{cwd}/util.py", "content": "y = 3\n"}}}
    offline.script([write, {"content": "done"}, *[{"status": 500, "content": "upstream exploded"}] * 3])
    async with pasd.client() as c:
        t = await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction="add a note",
                                                        files=["app.py"]))).id)
        receipts = sorted(await c.receipts(p.ReceiptsParams(task_id=t.id)), key=lambda r: r.attempt)
    assert t.state is p.TaskState.REVIEW and t.attempts == 2, t.error
    assert [(r.outcome, r.rounds) for r in receipts] == [("failed: provider", {"first": 1, "repair": 1}),
                                                         ("review", {"first": 1})]
    assert (repo / "util.py").read_text() == "y = 2\n"


# Claude Code's list price for Sonnet 4.5: $3 and $15 per million tokens
def _cost(prompt: int, completion: int) -> float:
    return prompt * 3e-6 + completion * 15e-6


async def test_a_repair_run_gets_only_what_is_left_of_the_budget(
        pasd: DaemonProcess, offline: OfflineModel, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", {"app.py": APP, "util.py": "y = 2\n"})
    write = {"tool_use": {"name": "Write", "input": {"file_path": "{cwd}/util.py", "content": "y = 3\n"}}}
    first = [{**write, "prompt_tokens": 1000, "completion_tokens": 100},
             {"content": "done", "prompt_tokens": 1000, "completion_tokens": 100}]  # $0.009, refused: a repair
    read = {"tool_use": {"name": "Read", "input": {"file_path": "{cwd}/app.py"}},
            "prompt_tokens": 2000, "completion_tokens": 100}  # $0.0075: within the task's $0.015, not within
    offline.script([*first, read])                            # the $0.006 left of it
    async with pasd.client() as c:
        t = await c.wait((await c.submit(p.SubmitParams(workspace=str(repo), instruction="add a note",
                                                        files=["app.py"], budget_usd=0.015))).id)
        [r] = await c.receipts(p.ReceiptsParams(task_id=t.id))
    assert t.state is p.TaskState.FAILED and t.reason == "budget" and t.attempts == 1, t.error
    assert "Claude Code stopped at the task's budget" in (t.error or "")
    # the repair run stopped after its first answer (given the whole budget, it would have gone on)
    requests = logged(offline)
    assert len(requests) == 3
    # Claude Code tells the model the budget it was given: the task's, then what the first run left
    assert "USD budget: $0/$0.015;" in json.dumps(requests[0]["messages"])
    assert "USD budget: $0/$0.006;" in json.dumps(requests[2]["messages"])
    assert r.rounds == {"first": 1, "repair": 1} and r.outcome == "failed: budget"
    assert r.cost_usd == pytest.approx(2 * _cost(1000, 100) + _cost(2000, 100), abs=1e-6)
