"""Config files: bad TOML or bad values name the file, the key and the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon import config
from daemon import protocol as p
from daemon.errors import ConfigError
from daemon.testing import DaemonProcess
from daemon.trust import TrustStore


def start(d: DaemonProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", "start"], env=d.env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize(("text", "words"), [
    ("[pool\nworkers = 2\n", "invalid TOML"),
    ("[pool]\nworkers = 0\n", "key 'pool.workers': Input should be greater than or equal to 1"),
    ("[pool]\nworkerz = 2\n", "key 'pool.workerz': Extra inputs are not permitted"),
    ("[guardrails]\nallow_commands = 'pytest'\n", "key 'guardrails.allow_commands': Input should be a valid list"),
])
def test_bad_user_config_stops_the_start_with_file_key_and_problem(tmp_path: Path, text: str, words: str) -> None:
    d = DaemonProcess(tmp_path)
    d.config_file.write_text(text)
    try:
        r = start(d)
        assert r.returncode == 1
        assert str(d.config_file) in r.stderr and words in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    finally:
        d.cleanup()


async def test_bad_project_config_is_reported_at_submit(daemon: DaemonProcess, repo: Path) -> None:
    (repo / ".pas.toml").write_text("[models]\nchoices = 'one'\n")
    async with daemon.client() as c:
        with pytest.raises(ConfigError) as info:
            await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["app.py"]))
    assert str(repo / ".pas.toml") in info.value.message and "models.choices" in info.value.message


def test_project_config_overrides_user_config(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text('[models]\ndefault = "openai/a"\nchoices = ["openai/a", "ollama/b"]\n[pool]\nworkers = 3\n')
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".pas.toml").write_text('[models]\ndefault = "ollama/b"\n')  # a model the user's config names
    s = config.load(ws, user, TrustStore(tmp_path / "state"))
    assert (s.models.default, s.models.choices, s.pool.workers) == ("ollama/b", ["openai/a", "ollama/b"], 3)
    assert config.load(None, user).models.default == "openai/a"
