"""`pasd web` as a command: the rest of the CLI never loads its server, a bad port is a usage error,
and listening beyond loopback says so."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from pas_web.testing import WebProcess

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("aiohttp", "jinja2", "pygments", "pas_web", "litellm")


def loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return set(out.stdout.split())


def test_the_cli_loads_no_web_server_until_asked() -> None:
    found = loaded_after("import daemon.cli.main as m; m.build_parser().parse_args(['web', '--port', '0'])")
    assert not found & set(HEAVY), found & set(HEAVY)


def test_the_dashboard_loads_no_model_or_terminal_library() -> None:
    found = loaded_after("import pas_web.serve, pas_web.app, pas_web.render")
    assert {"aiohttp", "jinja2"} <= found
    assert not found & {"litellm", "textual", "pygls"}, found


def test_a_bad_port_is_a_usage_error(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "daemon", "web", "--port", "70000"], cwd=ROOT, capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(ROOT), "PASD_SOCKET": str(tmp_path / "s")})
    assert r.returncode == 2
    assert r.stderr.strip() == "pasd web: --port takes 0 to 65535, got 70000 (see `pasd web --help`)"


def test_listening_beyond_loopback_warns_and_the_server_runs_without_a_daemon(tmp_path: Path) -> None:
    web = WebProcess(tmp_path / "no-daemon.sock", tmp_path / "web.log", host="0.0.0.0").start()
    try:
        text = (tmp_path / "web.log").read_text()
        assert "warning: serving on 0.0.0.0, beyond this machine" in text
        assert web.url.startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 30  # printed just after the URL
        while "no daemon answers at" not in (tmp_path / "web.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "web.log").read_text()
            time.sleep(0.02)
    finally:
        assert web.stop() == 0
