"""Choosing the backend: local stays the default and never loads Ray; the daemon refuses to join
a Ray cluster without token auth, before anything reaches the network.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.backends.ray_auth import auth_mode
from daemon.errors import ConfigError
from daemon.testing import DaemonProcess


@pytest.mark.parametrize(("address", "insecure", "env", "token_file", "expected"), [
    ("ray-head:6379", False, {"RAY_AUTH_TOKEN": "t" * 32}, None, "token"),
    ("10.0.0.5:6379", False, {"RAY_AUTH_TOKEN_PATH": "TOKEN"}, "s3cret", "token"),
    ("127.0.0.1:6379", False, {}, "s3cret", "token"),  # ~/.ray/auth_token, as `ray get-auth-token --generate` writes
    ("127.0.0.1:6379", True, {}, None, "disabled"),
    ("[::1]:6379", True, {}, None, "disabled"),
    ("localhost:6379", True, {"RAY_AUTH_TOKEN": "t" * 32}, None, "token"),  # a token is used when there is one
    ("ray-head:6379", False, {}, None, "refusing to join the Ray cluster at ray-head:6379 with no Ray auth token"),
    ("127.0.0.1:6379", False, {}, None, "--insecure-local joins without auth"),
    ("ray-head:6379", True, {}, None, "pool.insecure_local is only for a Ray cluster on this machine"),
    ("10.0.0.5:6379", True, {}, None, "is not one"),
    ("ray-head:6379", False, {"RAY_AUTH_TOKEN": "t" * 32, "RAY_AUTH_MODE": "disabled"}, None,
     "with RAY_AUTH_MODE=disabled"),
    ("ray-head:6379", False, {"RAY_AUTH_TOKEN_PATH": "TOKEN"}, "", "no Ray auth token"),  # an empty file
    ("ray://ray-head:10001", False, {"RAY_AUTH_TOKEN": "t" * 32}, None, "Ray Client (ray://) addresses"),
    (None, False, {"RAY_AUTH_TOKEN": "t" * 32}, None, "needs the cluster's address"),
])
def test_token_auth_is_required_except_for_an_insecure_loopback_cluster(
        tmp_path: Path, address: str | None, insecure: bool, env: dict[str, str], token_file: str | None,
        expected: str) -> None:
    home = tmp_path / "home"
    env = {k: str(tmp_path / v) if k == "RAY_AUTH_TOKEN_PATH" else v for k, v in env.items()}
    if token_file is not None:
        path = Path(env["RAY_AUTH_TOKEN_PATH"]) if "RAY_AUTH_TOKEN_PATH" in env else home / ".ray" / "auth_token"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(token_file)
    if expected in ("token", "disabled"):
        assert auth_mode(address, insecure, env, home) == expected
    else:
        with pytest.raises(ConfigError) as err:
            auth_mode(address, insecure, env, home)
        assert expected in err.value.message


@pytest.mark.parametrize(("argv", "words"), [
    (["serve", "--backend", "ray", "--address", "ray-head:6379"], "refusing to join the Ray cluster at ray-head:6379"),
    (["serve", "--backend", "ray", "--address", "ray-head:6379", "--insecure-local"],
     "only for a Ray cluster on this machine"),
    (["serve", "--backend", "ray"], "needs the cluster's address"),
    # `pasd start` hands the flags to the daemon it starts in the background, which says why it stopped
    (["start", "--backend", "ray", "--address", "ray-head:6379"], "refusing to join the Ray cluster at ray-head"),
])
def test_the_daemon_refuses_to_start_on_a_cluster_it_may_not_join(tmp_path: Path, argv: list[str],
                                                                   words: str) -> None:
    d = DaemonProcess(tmp_path)
    env = {k: v for k, v in d.env.items() if not k.startswith("RAY_")} | {"HOME": str(tmp_path)}
    res = subprocess.run([sys.executable, "-m", "daemon", *argv], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and words in res.stderr, res.stderr[-2000:]
    assert not d.answers()


def test_the_local_backend_never_imports_ray() -> None:
    code = ("import sys, daemon.app, daemon.backends, daemon.backends.shipment, daemon.backends.ray_auth; "
            "sys.exit('ray' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
