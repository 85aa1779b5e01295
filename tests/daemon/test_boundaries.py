"""Import boundaries: the wire schema, the client and the CLI stay light (no litellm, no UI toolkits)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("litellm", "openai", "textual", "pygls", "watchfiles")


@pytest.mark.parametrize("module", ["daemon.protocol", "daemon.client", "daemon.cli.main", "daemon.config"])
def test_light_modules_load_nothing_heavy(module: str) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"{module} imports {out}"


def test_the_daemon_loads_litellm_only_in_the_engine() -> None:
    code = "import sys, daemon.app, daemon.server, daemon.scheduler; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_pasd_start_spawns_the_daemon_before_importing_pydantic() -> None:
    code = "import sys, daemon.launch; print(','.join(m for m in ('pydantic', 'asyncio') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
