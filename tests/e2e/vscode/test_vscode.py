"""The PAS extension in a real VS Code: the harness smoke test and the review flows of docs/lsp.md."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from daemon import protocol as p
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, fake_aider, make_repo, offline_config, write_config

if TYPE_CHECKING:
    from conftest import CodeServer

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.vscode

SAMPLE = """def total(items):
    # pas: return the sum of the prices, not the count
    return len(items)


def main():
    print(total([1, 2, 3]))
"""


def test_a_workspace_cannot_choose_the_server_command(code_server: Callable[..., CodeServer],
                                                      tmp_path: Path) -> None:
    """A cloned repository's .vscode/settings.json naming pas.serverPath (a command the extension
    runs) is ignored: the server command comes from the user's machine settings only."""
    ws = tmp_path / "ws"
    (ws / ".vscode").mkdir(parents=True)
    (ws / "app.py").write_text(SAMPLE)
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.sh"
    evil.write_text(f"#!/bin/sh\necho ran > {marker}\nexec sleep 30\n")
    evil.chmod(0o755)
    (ws / ".vscode" / "settings.json").write_text(
        json.dumps({"pas.serverPath": str(evil), "pas.socket": str(tmp_path / "their.sock")}))
    cs = code_server(ws, {"pas.serverPath": "pas-lsp-that-does-not-exist --stdio"})
    cs.drive([{"do": "openFile", "path": "app.py"}, {"do": "statusBar", "match": r"PAS: offline"}])
    assert not marker.exists()


def test_extension_loads_without_a_server(code_server: Callable[..., CodeServer], tmp_path: Path) -> None:
    """code-server starts with the extension; palette lists it; status bar reports the missing server."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "app.py").write_text(SAMPLE)
    started = time.monotonic()
    cs = code_server(
        ws, {"pas.serverPath": "pas-lsp-that-does-not-exist --stdio", "pas.models": ["m1", "m2"]}
    )
    shot = tmp_path / "smoke.png"
    result = cs.drive(
        [
            {"do": "statusBar", "match": r"PAS: (offline|starting)"},
            {"do": "paletteHas", "title": "PAS: Delegate selection"},
            {"do": "paletteHas", "title": "PAS: Show diff"},
            {"do": "openFile", "path": "app.py"},
            {"do": "statusBar", "match": r"PAS: offline"},
            # The client-side half of delegating works without a server: prompt, prefill, model pick.
            {"do": "selectLines", "from": 2, "to": 3},
            {"do": "command", "title": "PAS: Delegate selection"},
            {"do": "inputValue"},
            {"do": "type", "text": "use sum()"},
            {"do": "pick", "label": "m2"},
            {"do": "notification", "text": "not running"},
            {"do": "screenshot", "path": str(shot)},
        ]
    )
    print(f"screenshot: {shot}")
    print(f"code-server up to last step: {time.monotonic() - started:.1f} s")
    assert cs.value(result, "paletteHas") == ["PAS: Show diff"]
    assert "PAS: Delegate selection" in result["results"][2]["value"]
    assert cs.value(result, "statusBar") == "PAS: offline"
    assert cs.value(result, "inputValue") == "return the sum of the prices, not the count"
    assert cs.value(result, "pick")[:2] == ["m1", "m2"]
    assert shot.stat().st_size > 0


# --- Full flows: pas-lsp, a real daemon and the offline model ------------------------------

SUM = ("I used sum().\n\napp.py\n```\n<<<<<<< SEARCH\n    return len(items)\n=======\n"
       "    return sum(items)\n>>>>>>> REPLACE\n```\n")
MODELS = ["openai/pasd-offline", "openai/pasd-offline-b"]


@pytest.fixture
def pas_stack(tmp_path: Path) -> Iterator[tuple[DaemonProcess, OfflineModel]]:
    """The offline model (in this process) and a real daemon on a private socket and config."""
    with OfflineModel() as model:
        root = tmp_path / "daemon"
        root.mkdir()
        daemon = DaemonProcess(root, workers=2, config=offline_config(model.url), env={"PYTHONPATH": str(REPO)})
        daemon.start()
        try:
            yield daemon, model
        finally:
            daemon.cleanup()


def _workspace(tmp_path: Path, files: dict[str, str] | None) -> Path:
    return make_repo(tmp_path / "ws", {"app.py": SAMPLE, **(files or {})})


def _editor(code_server: Callable[..., CodeServer], tmp_path: Path, daemon: DaemonProcess,
            files: dict[str, str] | None = None, models: list[str] = MODELS) -> CodeServer:
    settings = {
        "pas.serverPath": f"{sys.executable} -m pas_lsp",
        "pas.models": models,
        "pas.socket": str(daemon.socket),
    }
    # The extension host passes its environment to the server it spawns: the daemon's socket, state
    # and config (pas-lsp reads models.* from it) and this tree on PYTHONPATH.
    env = {k: daemon.env[k] for k in ("PASD_SOCKET", "PASD_STATE_DIR", "PASD_CONFIG")}
    env["PYTHONPATH"] = str(REPO)
    return code_server(_workspace(tmp_path, files), settings, env)


def _delegate(shot: Path) -> list[dict[str, Any]]:
    return [
        {"do": "statusBar", "match": r"PAS \d+ idle"},
        {"do": "openFile", "path": "app.py"},
        {"do": "selectLines", "from": 2, "to": 3},
        {"do": "command", "title": "PAS: Delegate selection"},
        {"do": "inputValue"},
        {"do": "type", "text": "return the sum of the prices, not the count"},
        {"do": "pick", "label": "openai/pasd-offline"},
        {"do": "statusBar", "match": r"PAS: task \S+ queued"},
        # The offline model answers after a delay, so the busy pool is visible in the status bar.
        {"do": "statusBar", "match": r"[1-9]\d* busy", "timeoutMs": 30000},
        {"do": "statusBar", "match": r"PAS \d+ idle · 0 busy", "timeoutMs": 60000},
        # Review in place: the hunk carries the code lenses; the Problems count shows the diagnostic.
        {"do": "wait", "selector": ".codelens-decoration a:text('Approve')"},
        {"do": "wait", "selector": ".codelens-decoration a:text('Show diff')"},
        {"do": "screenshot", "path": str(shot)},
    ]


def test_delegate_review_approve(
    code_server: Callable[..., CodeServer], tmp_path: Path, pas_stack: tuple[DaemonProcess, OfflineModel]
) -> None:
    daemon, model = pas_stack
    model.script([{"content": SUM}])
    model.set_latency(2.0)
    started = time.monotonic()
    cs = _editor(code_server, tmp_path, daemon)
    shot = tmp_path / "review.png"
    result = cs.drive(
        [
            *_delegate(shot),
            {"do": "command", "title": "PAS: Show diff"},
            {"do": "waitDiff", "title": "PAS "},
            # Back to the file itself (its tab title is a substring of the diff editor's).
            {"do": "command", "title": "View: Close Editor"},
            {"do": "wait", "selector": ".tab.active:not(:has-text('PAS '))"},
            {"do": "command", "title": "PAS: Approve"},
            {"do": "notification", "text": "approved"},
            {"do": "editorText", "contains": "sum("},
            {"do": "save"},
        ],
        timeout_ms=30_000,
    )
    print(f"screenshot of the review state: {shot}")
    print(f"approve flow: {time.monotonic() - started:.1f} s")
    assert cs.value(result, "inputValue") == "return the sum of the prices, not the count"
    assert cs.value(result, "pick")[:2] == MODELS
    diff = cs.value(result, "waitDiff")
    assert "len(items)" in diff["original"] and "len(items)" not in diff["modified"]
    assert "sum(items)" in diff["modified"]
    saved = (cs.workspace / "app.py").read_text()
    assert "len(items)" not in saved and "return sum(items)" in saved
    assert shot.stat().st_size > 0


def test_delegate_review_reject(
    code_server: Callable[..., CodeServer], tmp_path: Path, pas_stack: tuple[DaemonProcess, OfflineModel]
) -> None:
    daemon, model = pas_stack
    model.script([{"content": SUM}])
    model.set_latency(2.0)
    started = time.monotonic()
    cs = _editor(code_server, tmp_path, daemon)
    shot = tmp_path / "review.png"
    result = cs.drive(
        [
            *_delegate(shot),
            {"do": "command", "title": "PAS: Reject"},
            {"do": "notification", "text": "rejected"},
            {"do": "wait", "selector": ".codelens-decoration a:text('Approve')", "state": "detached"},
            {"do": "editorText"},
        ],
        timeout_ms=30_000,
    )
    print(f"screenshot of the review state: {shot}")
    print(f"reject flow: {time.monotonic() - started:.1f} s")
    assert "return len(items)" in cs.value(result, "editorText")
    assert (cs.workspace / "app.py").read_text() == SAMPLE


def test_job_from_the_explorer_review_approve_one_task(
    code_server: Callable[..., CodeServer], tmp_path: Path, pas_stack: tuple[DaemonProcess, OfflineModel]
) -> None:
    """A folder delegated from the Explorer's menu becomes a job of one task per file, reviewed per file."""
    daemon, model = pas_stack
    model.set_latency(1.5)
    started = time.monotonic()
    a, b = "def a():\n    return 1\n", "def b():\n    return 2\n"
    cs = _editor(code_server, tmp_path, daemon, {"src/a.py": a, "src/b.py": b})
    result = cs.drive(
        [
            {"do": "statusBar", "match": r"PAS \d+ idle"},
            {"do": "explorerMenu", "item": "src", "action": "PAS: Delegate these files as a job"},
            {"do": "type", "text": "note the job"},
            {"do": "pick", "label": "openai/pasd-offline"},
            {"do": "statusBar", "match": r"PAS: job \S+ queued \(2 tasks\)"},
            {"do": "statusBar", "match": r"[1-9] busy", "timeoutMs": 30000},
            {"do": "statusBar", "match": r"PAS 2 idle · 0 busy", "timeoutMs": 60000},
            {"do": "openFile", "path": "src/a.py"},
            # The lens runs the server's pas.approve: the hunk lands in the buffer, unsaved.
            {"do": "click", "selector": ".codelens-decoration a:text('Approve')"},
            {"do": "editorText", "contains": "# pas: note the job"},
            {"do": "wait", "selector": ".tab.active.dirty"},
            {"do": "save"},
        ],
        timeout_ms=30_000,
    )
    print(f"job flow: {time.monotonic() - started:.1f} s")
    assert cs.value(result, "pick")[:2] == MODELS
    assert (cs.workspace / "src" / "a.py").read_text() == "# pas: note the job\n" + a
    assert (cs.workspace / "src" / "b.py").read_text() == b


def test_with_no_models_set_the_pick_offers_the_daemons_choices(
    code_server: Callable[..., CodeServer], tmp_path: Path, pas_stack: tuple[DaemonProcess, OfflineModel]
) -> None:
    """`pas.models` empty: Delegate selection asks the server, which asks the daemon, for the choices;
    with an engine besides native installed, a second pick offers the engines."""
    daemon, model = pas_stack
    # the daemon re-reads its config: a stand-in aider is installed, claude is not
    write_config(daemon.config_file, offline_config(model.url, engines={
        "aider": {"path": str(fake_aider(tmp_path / "bin"))}, "claude": {"path": str(tmp_path / "none")}}))
    cs = _editor(code_server, tmp_path, daemon, models=[])
    result = cs.drive(
        [
            {"do": "statusBar", "match": r"PAS \d+ idle"},
            {"do": "openFile", "path": "app.py"},
            {"do": "selectLines", "from": 2, "to": 3},
            {"do": "command", "title": "PAS: Delegate selection"},
            {"do": "type", "text": "return the sum of the prices"},
            {"do": "pick", "label": "openai/pasd-offline-b"},
            {"do": "pick", "label": "aider"},
            {"do": "statusBar", "match": r"PAS: task \S+ queued"},
        ],
        timeout_ms=30_000,
    )
    models, engines = [r["value"] for r in result["results"] if r["do"] == "pick"]
    assert models == MODELS  # the daemon's models.choices, its default first
    assert engines == ["native", "aider"]
    task_id = cs.value(result, "statusBar").split()[2]

    async def finished() -> p.TaskInfo:
        async with daemon.client() as c:
            return await c.wait(task_id)

    task = asyncio.run(finished())
    assert (task.model, task.engine, task.state.value) == ("openai/pasd-offline-b", "aider", "REVIEW")


HANDLE_NONE = ("Empty lists too.\n\napp.py\n```\n<<<<<<< SEARCH\n    return sum(items)\n=======\n"
               "    return sum(items or [])\n>>>>>>> REPLACE\n```\n")


def test_revise_lens_then_approve(
    code_server: Callable[..., CodeServer], tmp_path: Path, pas_stack: tuple[DaemonProcess, OfflineModel]
) -> None:
    """The hunk's "Revise…" lens asks for a comment in an input box; the revised proposal comes back to review."""
    daemon, model = pas_stack
    model.script([{"content": SUM}, {"content": HANDLE_NONE}])
    model.set_latency(1.0)
    cs = _editor(code_server, tmp_path, daemon)
    cs.drive(
        [
            *_delegate(tmp_path / "review.png"),
            {"do": "click", "selector": ".codelens-decoration a:text('Revise…')"},
            {"do": "type", "text": "also take None"},
            {"do": "statusBar", "match": r"PAS: revision 1 of task \S+ queued"},
            {"do": "statusBar", "match": r"PAS \d+ idle · 0 busy", "timeoutMs": 60000},
            {"do": "wait", "selector": ".codelens-decoration a:text('Approve')"},
            {"do": "command", "title": "PAS: Approve"},
            {"do": "notification", "text": "approved"},
            {"do": "editorText", "contains": "sum(items or [])"},
            {"do": "save"},
        ],
        timeout_ms=30_000,
    )
    request = model.requests[-1]["messages"][-1]["content"]
    assert "### INSTRUCTION\nalso take None" in request and "+    return sum(items)" in request  # the hunk quoted
    saved = (cs.workspace / "app.py").read_text()
    assert "return sum(items or [])" in saved and "len(items)" not in saved


REFUSED = ("I used sum() and noted it in util.py.\n\napp.py\n```\n<<<<<<< SEARCH\n    return len(items)\n=======\n"
           "    return sum(items)\n>>>>>>> REPLACE\n```\n\nutil.py\n```\n<<<<<<< SEARCH\nX = 1\n=======\nX = 2\n"
           ">>>>>>> REPLACE\n```\n")
UTIL_AGAIN = "util.py needs it too.\n\nutil.py\n```\n<<<<<<< SEARCH\nX = 1\n=======\nX = 2\n>>>>>>> REPLACE\n```\n"


def test_a_flagged_review_is_a_notification_with_show_diff(
    code_server: Callable[..., CodeServer], tmp_path: Path, pas_stack: tuple[DaemonProcess, OfflineModel]
) -> None:
    """An edit of a file the task may not change is refused: the task reaches review flagged, the
    window that delegated it shows a warning with Show diff, and the Approve lens says why."""
    daemon, model = pas_stack
    # each repair round (two by default) tries util.py again: the last round's edit is still refused
    model.script([{"content": REFUSED}, {"content": UTIL_AGAIN}, {"content": UTIL_AGAIN}])
    cs = _editor(code_server, tmp_path, daemon, files={"util.py": "X = 1\n"})
    result = cs.drive(
        [
            {"do": "statusBar", "match": r"PAS \d+ idle"},
            {"do": "openFile", "path": "app.py"},
            {"do": "selectLines", "from": 2, "to": 3},
            {"do": "command", "title": "PAS: Delegate selection"},
            {"do": "type", "text": "return the sum of the prices, not the count"},
            {"do": "pick", "label": "openai/pasd-offline"},
            {"do": "notification", "text": "is in review, but flagged: edits refused"},
            {"do": "wait", "selector": ".codelens-decoration a:text('Approve (edits refused)')"},
            {"do": "click", "selector": ".notification-list-item .monaco-button:text('Show diff')"},
            {"do": "waitDiff", "title": "PAS "},
        ],
        timeout_ms=60_000,
    )
    diff = cs.value(result, "waitDiff")
    assert "sum(items)" in diff["modified"]
    assert (cs.workspace / "util.py").read_text() == "X = 1\n"
