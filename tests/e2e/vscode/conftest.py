"""A real VS Code (code-server) with the PAS extension, driven by headless Chromium.

`setup.sh` installs the tools once per version into a cache outside the clone; the fixtures here
package the extension, start code-server on a free loopback port with a fresh profile under
tmp_path, and hand the test a `CodeServer` whose `drive()` runs `drive.mjs` steps.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
EXTENSION = REPO / "editors" / "vscode"
CACHE = Path(os.environ.get("PASD_E2E_CACHE", Path.home() / ".cache" / "pasd-e2e"))

# Quieter workbench: no welcome page, no update or telemetry chatter, no trust prompt.
BASE_SETTINGS: dict[str, Any] = {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.enableExperiments": False,
    "security.workspace.trust.enabled": False,
    "telemetry.telemetryLevel": "off",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "update.mode": "none",
    "editor.minimap.enabled": False,
    "editor.cursorBlinking": "solid",
    "files.autoSave": "off",
    "chat.disableAIFeatures": True,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
}


@dataclass
class Tools:
    """Paths written by setup.sh to e2e.env."""

    env: dict[str, str]

    @property
    def code_server(self) -> str:
        return self.env["CODE_SERVER"]

    def process_env(self, **extra: str) -> dict[str, str]:
        """Environment with Node 24 first on PATH and playwright-core on NODE_PATH."""
        env = {**os.environ, **extra}
        env["PATH"] = f"{self.env['NODE_BIN']}{os.pathsep}{env.get('PATH', '')}"
        env["NODE_PATH"] = self.env["NODE_PATH"]
        env["CHROMIUM"] = self.env["CHROMIUM"]
        env["npm_config_nodedir"] = self.env["NODE_DIR"]
        return env


@pytest.fixture(scope="session")
def e2e_tools() -> Tools:
    """Run setup.sh (seconds when warm); a failure fails the test with setup.sh's reason."""
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(HERE / "setup.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "PASD_E2E_CACHE": str(CACHE)},
        check=False,
    )
    print(proc.stdout, end="")
    if proc.returncode != 0:
        pytest.fail(f"tests/e2e/vscode/setup.sh failed:\n{proc.stderr.strip() or proc.stdout.strip()}")
    env = dict(line.split("=", 1) for line in (CACHE / "e2e.env").read_text().splitlines() if "=" in line)
    print(f"setup.sh took {time.monotonic() - started:.1f} s")
    return Tools(env)


@pytest.fixture(scope="session")
def vsix(e2e_tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build pas.vsix from editors/vscode (npm ci only when node_modules is missing)."""
    env = e2e_tools.process_env()
    if not (EXTENSION / "node_modules").is_dir():
        _run(["npm", "ci", "--no-audit", "--no-fund"], EXTENSION, env)
    _run(["npm", "run", "package"], EXTENSION, env)
    out = tmp_path_factory.mktemp("vsix") / "pas.vsix"
    shutil.copy(EXTENSION / "pas.vsix", out)
    return out


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CodeServer:
    """A running code-server; `drive()` runs drive.mjs steps against its workbench."""

    url: str
    workspace: Path
    root: Path
    tools: Tools
    log: Path
    shots: list[Path] = field(default_factory=list)

    def drive(
        self, steps: list[dict[str, Any]], timeout_ms: int = 20_000, check: bool = True
    ) -> dict[str, Any]:
        """Run the steps in a fresh browser page; return drive.mjs's JSON, failing on a failed step."""
        n = len(list(self.root.glob("drive-*.json")))
        script = self.root / f"drive-{n}.json"
        failure = self.root / f"failure-{n}.png"
        script.write_text(
            json.dumps(
                {"url": self.url, "steps": steps, "timeoutMs": timeout_ms, "failureScreenshot": str(failure)}
            )
        )
        proc = subprocess.run(
            ["node", str(HERE / "drive.mjs"), str(script)],
            env=self.tools.process_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        try:
            result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            pytest.fail(f"drive.mjs printed no result (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        script.with_suffix(".result.json").write_text(json.dumps(result, indent=2))
        if check and not result["ok"]:
            failed = next((r for r in result["results"] if not r["ok"]), result)
            pytest.fail(
                f"step {failed.get('do')} failed: {failed.get('error')}\n"
                f"screenshot: {failure}\ncode-server log: {self.log}"
            )
        return result

    def value(self, result: dict[str, Any], step: str) -> Any:
        """The value of the last step named `step` in a drive() result."""
        return [r for r in result["results"] if r["do"] == step][-1].get("value")


@pytest.fixture
def code_server(e2e_tools: Tools, vsix: Path, tmp_path: Path) -> Iterator[Callable[..., CodeServer]]:
    """Factory: start code-server on `workspace` with `settings`; every server is killed at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(workspace: Path, settings: dict[str, Any], env: dict[str, str] | None = None) -> CodeServer:
        root = tmp_path / f"code-server-{len(procs)}"
        user_data, extensions = root / "user-data", root / "extensions"
        (user_data / "User").mkdir(parents=True)
        extensions.mkdir()
        port = _free_port()
        config = root / "config.yaml"
        config.write_text(f"bind-addr: 127.0.0.1:{port}\nauth: none\ncert: false\n")
        (user_data / "User" / "settings.json").write_text(json.dumps({**BASE_SETTINGS, **settings}, indent=2))
        # pas.serverPath and pas.socket are machine settings: code-server, like any remote, reads them
        # from its machine settings, never from a workspace's .vscode/settings.json
        (user_data / "Machine").mkdir()
        (user_data / "Machine" / "settings.json").write_text(json.dumps(settings, indent=2))
        profile = [
            "--config",
            str(config),
            "--user-data-dir",
            str(user_data),
            "--extensions-dir",
            str(extensions),
        ]
        penv = e2e_tools.process_env(**(env or {}))
        install = subprocess.run(
            [e2e_tools.code_server, *profile, "--install-extension", str(vsix)],
            env=penv,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if install.returncode != 0 or not any(extensions.glob("pasd.pas-*")):
            pytest.fail(f"installing pas.vsix failed:\n{install.stdout}\n{install.stderr}")
        log = root / "code-server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    e2e_tools.code_server,
                    *profile,
                    "--bind-addr",
                    f"127.0.0.1:{port}",
                    "--auth",
                    "none",
                    "--disable-telemetry",
                    "--disable-update-check",
                    "--disable-workspace-trust",
                    str(workspace),
                ],
                env=penv,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed whole at teardown
            )
        procs.append(proc)
        _wait_healthy(port, proc, log)
        return CodeServer(f"http://127.0.0.1:{port}/?folder={workspace}", workspace, root, e2e_tools, log)

    yield start

    for proc in procs:
        _kill_group(proc)


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"code-server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)  # polling a port that is not bound yet; there is no event to wait on
    pytest.fail(f"code-server did not answer /healthz within {timeout} s:\n{log.read_text()[-3000:]}")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill code-server and what it started (extension host, language server) as one group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
            # Children may outlive the leader for a moment; the SIGKILL round reaps them.
        except subprocess.TimeoutExpired:
            continue
    proc.wait()
