"""The PAS extension in a real VS Code: the harness smoke test and the review flows of docs/lsp.md."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

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


# --- Full flows: need pas_lsp and the daemon (with its offline model) -----------------------

HAVE_STACK = all(
    importlib.util.find_spec(m) is not None for m in ("pas_lsp", "daemon.service", "daemon.offline_model")
)
needs_stack = pytest.mark.skipif(
    not HAVE_STACK, reason="pas_lsp / daemon.service / daemon.offline_model not in this tree yet"
)


@pytest.fixture
def pas_stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Offline model + daemon on a private socket; yields the env and settings the editor needs.

    Assumed interfaces (to be confirmed when they land): `python -m daemon.offline_model --port N`
    serves an OpenAI-compatible API on 127.0.0.1, and `python -m daemon serve` runs the daemon
    in the foreground on $PASD_SOCKET with state in $PASD_STATE_DIR.
    """
    sock = tmp_path / "pasd.sock"
    env = {**os.environ, "PASD_SOCKET": str(sock), "PASD_STATE_DIR": str(tmp_path / "state")}
    model = subprocess.Popen(
        [sys.executable, "-m", "daemon.offline_model", "--port", "0", "--print-url"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert model.stdout is not None
    api_base = model.stdout.readline().strip()  # the model prints its URL once it listens
    daemon = subprocess.Popen(
        [sys.executable, "-m", "daemon", "serve"], cwd=REPO, env=env, start_new_session=True
    )
    try:
        yield {
            "PASD_SOCKET": env["PASD_SOCKET"],
            "PASD_STATE_DIR": env["PASD_STATE_DIR"],
            "api_base": api_base,
        }
    finally:
        for p in (daemon, model):
            p.terminate()
            p.wait(timeout=10)


def _workspace(tmp_path: Path, api_base: str) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "app.py").write_text(SAMPLE)
    (ws / ".pas.toml").write_text(
        '[models]\ndefault = "openai/pasd-offline"\nchoices = ["openai/pasd-offline"]\n'
        f'[models.settings."openai/pasd-offline"]\napi_base = "{api_base}"\n'
    )
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    subprocess.run(["git", "add", "."], cwd=ws, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"], cwd=ws, check=True
    )
    return ws


def _editor(code_server: Callable[..., CodeServer], tmp_path: Path, stack: dict[str, str]) -> CodeServer:
    ws = _workspace(tmp_path, stack["api_base"])
    settings = {
        "pas.serverPath": f"{sys.executable} -m pas_lsp",
        "pas.models": ["openai/pasd-offline"],
        "pas.defaultModel": "openai/pasd-offline",
        "pas.socket": stack["PASD_SOCKET"],
    }
    env = {
        "PASD_SOCKET": stack["PASD_SOCKET"],
        "PASD_STATE_DIR": stack["PASD_STATE_DIR"],
        "PYTHONPATH": str(REPO),
    }
    return code_server(ws, settings, env)


DELEGATE: list[dict[str, Any]] = [
    {"do": "statusBar", "match": r"PAS \d+ idle"},
    {"do": "openFile", "path": "app.py"},
    {"do": "selectLines", "from": 2, "to": 3},
    {"do": "command", "title": "PAS: Delegate selection"},
    {"do": "inputValue"},
    {"do": "type", "text": "return the sum of the prices, not the count"},
    # One model configured: no quick pick. Then the pool gets busy and the task reaches review.
    {"do": "statusBar", "match": r"PAS: task \S+ queued"},
    {"do": "statusBar", "match": r"[1-9]\d* busy", "timeoutMs": 30000},
    {"do": "statusBar", "match": r"PAS \d+ idle · 0 busy", "timeoutMs": 60000},
    # Review in place: the hunk is an Information diagnostic and carries the code lenses.
    {"do": "wait", "selector": ".codelens-decoration a:text('Approve')"},
]


@needs_stack
def test_delegate_review_approve(
    code_server: Callable[..., CodeServer], tmp_path: Path, pas_stack: dict[str, str]
) -> None:
    cs = _editor(code_server, tmp_path, pas_stack)
    shot = tmp_path / "approve.png"
    result = cs.drive(
        [
            *DELEGATE,
            {"do": "command", "title": "PAS: Show diff"},
            {"do": "waitDiff", "title": "PAS "},
            {"do": "openFile", "path": "app.py"},
            {"do": "command", "title": "PAS: Approve"},
            {"do": "notification", "text": "approved"},
            {"do": "editorText", "contains": "sum("},
            {"do": "save"},
            {"do": "screenshot", "path": str(shot)},
        ],
        timeout_ms=30_000,
    )
    print(f"screenshot: {shot}")
    assert cs.value(result, "inputValue") == "return the sum of the prices, not the count"
    diff = cs.value(result, "waitDiff")
    assert "len(items)" in diff["original"] and "len(items)" not in diff["modified"]
    saved = (cs.workspace / "app.py").read_text()
    assert "len(items)" not in saved and "sum(" in saved


@needs_stack
def test_delegate_review_reject(
    code_server: Callable[..., CodeServer], tmp_path: Path, pas_stack: dict[str, str]
) -> None:
    cs = _editor(code_server, tmp_path, pas_stack)
    result = cs.drive(
        [
            *DELEGATE,
            {"do": "command", "title": "PAS: Reject"},
            {"do": "notification", "text": "rejected"},
            {"do": "wait", "selector": ".codelens-decoration a:text('Approve')", "state": "detached"},
            {"do": "editorText"},
        ],
        timeout_ms=30_000,
    )
    assert "return len(items)" in cs.value(result, "editorText")
    assert (cs.workspace / "app.py").read_text() == SAMPLE
