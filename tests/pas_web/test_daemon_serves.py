"""`[web] enabled = true`: the daemon runs the dashboard beside it, as a child that gets none of
its keys, comes back if it dies, and goes when the daemon goes (even killed)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon.testing import DaemonFactory, DaemonProcess

SECRET = "sk-test-never-in-the-dashboard"


def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError(f"never: {what}")


def pasd(d: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=d.env, capture_output=True, text=True)


def web_url(d: DaemonProcess, not_this: str | None = None) -> str:
    def read() -> str | None:
        r = pasd(d, "web", "--url")
        return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() != not_this else None
    return str(until(read, "the dashboard's URL"))


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def dashboard_of(daemon_pid: int) -> int | None:
    """The `pasd web` child of the daemon, if it runs."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == daemon_pid and b"web" in cmdline and b"daemon" in cmdline:
            return int(entry.name)
    return None


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def api_state(url: str) -> dict[str, Any]:
    base, token = url.split("?token=")
    status, body = get(f"{base.rstrip('/')}/api/state?token={token}")
    assert status == 200, body
    return dict(json.loads(body))


def test_the_daemon_runs_the_dashboard_and_it_goes_with_the_daemon(make_daemon: DaemonFactory) -> None:
    d = make_daemon(web={"enabled": True, "port": 0}, env={"OPENAI_API_KEY": SECRET})
    assert d.proc is not None
    url = web_url(d)
    base, token = url.split("?token=")
    assert base.startswith("http://127.0.0.1:")
    until(lambda: api_state(url)["connected"], "the dashboard follows the daemon")
    assert get(f"{base.rstrip('/')}/api/state")[0] == 403  # no token, no dashboard
    # `pasd status` names its address, never its token
    st = pasd(d, "status", "--json")
    assert json.loads(st.stdout)["dashboard"] == base and token not in st.stdout
    assert f"web dashboard: {base}" in pasd(d, "status").stdout
    # the child has none of the daemon's keys
    child = until(lambda: dashboard_of(d.proc.pid), "the dashboard process")  # type: ignore[union-attr]
    assert SECRET.encode() not in Path(f"/proc/{child}/environ").read_bytes()
    url_file = d.state_dir / "web-url"
    assert url_file.stat().st_mode & 0o777 == 0o600

    # killed, it comes back (with a new token)
    os.kill(child, signal.SIGKILL)
    again = web_url(d, not_this=url)
    until(lambda: api_state(again)["connected"], "the new dashboard follows the daemon")
    child = until(lambda: dashboard_of(d.proc.pid), "the new dashboard process")  # type: ignore[union-attr]

    # the daemon stops: the dashboard and its URL go with it
    assert d.stop() == 0
    until(lambda: not alive(child), "the dashboard ends with the daemon", timeout=10)
    assert not url_file.exists()
    r = pasd(d, "web", "--url")
    assert r.returncode == 1 and "the daemon is not running" in r.stderr and "Traceback" not in r.stderr


def test_a_killed_daemon_takes_its_dashboard_with_it(make_daemon: DaemonFactory) -> None:
    d = make_daemon(web={"enabled": True, "port": 0})
    assert d.proc is not None
    web_url(d)
    child = until(lambda: dashboard_of(d.proc.pid), "the dashboard process")  # type: ignore[union-attr]
    d.kill()
    until(lambda: not alive(child), "the dashboard ends with the killed daemon", timeout=10)


def test_a_busy_port_is_logged_and_the_daemon_carries_on(make_daemon: DaemonFactory) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        d = make_daemon(web={"enabled": True, "port": port})
        until(lambda: "the web dashboard stopped" in d.log.read_text(), "the failure in the log")
        log = d.log.read_text()
        assert f"cannot listen on 127.0.0.1:{port}" in log and "starting it again" in log
        st = json.loads(pasd(d, "status", "--json").stdout)
        assert st["dashboard"] is None
        assert pasd(d, "web", "--url").returncode == 1


def test_only_the_users_config_turns_it_on(make_daemon: DaemonFactory, repo: Path) -> None:
    d = make_daemon()
    (repo / ".pas.toml").write_text("[web]\nenabled = true\nport = 0\n")
    assert pasd(d, "trust", str(repo)).returncode == 0  # even a trusted workspace file cannot
    r = pasd(d, "submit", "--workspace", str(repo), "--wait", "--file", str(repo / "app.py"), "tidy")
    assert r.returncode == 0, r.stderr
    assert json.loads(pasd(d, "status", "--json").stdout)["dashboard"] is None
    assert d.proc is not None and dashboard_of(d.proc.pid) is None
    r = pasd(d, "web", "--url")
    assert r.returncode == 1 and "[web] enabled = true" in r.stderr
